#pragma once

// What the bench programs share: a clock, peak memory from /proc, and the one
// line a measurement prints for bench/run.sh ("sample FIGURE SIDE VALUE").

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace bench {

using clock = std::chrono::steady_clock;

inline double seconds_since(clock::time_point start) {
  return std::chrono::duration<double>(clock::now() - start).count();
}

/// A field of /proc/self/status in bytes: "VmHWM" (peak resident memory) or "VmRSS".
inline double status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  const std::string prefix = field + ":";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0)
      return std::strtod(line.c_str() + prefix.size(), nullptr) * 1024;
  }
  return 0;
}

constexpr double mib = 1024.0 * 1024.0;

/// One measurement: `side` is "sdk" or "baseline"; bench/run.sh collects the
/// lines and unloc_bench_report takes the median of each side.
inline void sample(const char* figure, const char* side, double value) {
  std::printf("sample %s %s %.9g\n", figure, side, value);
  std::fflush(stdout);
}

/// Stops the program: the figure would be meaningless.
[[noreturn]] inline void fail(const std::string& why) {
  std::fprintf(stderr, "bench: %s\n", why.c_str());
  std::exit(1);
}

/// Keeps the optimizer from dropping the computation that produced `value`.
template <typename T>
inline void keep(const T& value) {
  asm volatile("" : : "r"(&value) : "memory");
}

}  // namespace bench

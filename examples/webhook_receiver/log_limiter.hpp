#pragma once

// Rate-limits the receiver's rejection lines (401, 404, 408, ...), so that one
// client sending bad requests in a loop cannot flood the log.

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>

namespace receiver {

/// Lets at most `lines_per_interval` rejection lines through per interval (the
/// interval starts at the first line let through); the rest are counted, and the
/// next line after the interval is preceded by one "... and K more rejections
/// suppressed" summary. Thread-safe; `sink` is called outside the lock.
class log_limiter {
 public:
  /// Where lines go, e.g. receiver::diagnostic.
  using sink_type = std::function<void(const std::string&)>;
  /// The clock read for intervals; injectable for tests.
  using clock_type = std::function<std::chrono::steady_clock::time_point()>;

  /// `lines_per_interval` lines per `interval`, timed by `now`.
  log_limiter(std::size_t lines_per_interval, std::chrono::steady_clock::duration interval,
              clock_type now = &std::chrono::steady_clock::now);

  /// Writes `line` through `sink` when allowed (after the summary of the
  /// previous interval's suppressed lines, if any); otherwise counts it.
  void reject(const std::string& line, const sink_type& sink);

  /// Writes the summary of the lines suppressed so far, if any, through `sink`
  /// (for a periodic timer or the final stop, so that no count is lost).
  void flush(const sink_type& sink);

 private:
  const std::size_t lines_per_interval_;
  const std::chrono::steady_clock::duration interval_;
  const clock_type now_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point interval_start_{};
  std::size_t written_ = 0;     // lines let through in this interval
  std::size_t suppressed_ = 0;  // lines counted and not written since the last summary
};

}  // namespace receiver

// unloc_bench_report: reads the samples bench/run.sh collected ("sample FIGURE
// SIDE VALUE" lines), takes the median of each side of each figure, prints the
// table and writes the JSON. A "skipped FIGURE REASON" line (run.sh could not
// measure it here, e.g. no PostgreSQL server) lists the figure under "skipped".
//
//   unloc_bench_report SAMPLES OUTPUT.json [--no-targets]
//
// Exit status: 0 every figure measured or skipped and every target holds, 3 a
// target is missed (or, with --no-targets, never), 1 a figure is missing, 2 bad usage.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

struct figure {
  const char* name;
  const char* unit;
  const char* baseline;
  bool at_least;  // the target is ratio >= limit; otherwise ratio <= limit
  double limit;
};

// The table, in its order.
const figure figures[] = {
    {"validate_delivery", "events/s", "nlohmann::json::parse of the same body (DOM)", true, 1.25},
    {"log_page_time", "s", "nlohmann DOM parse, then from_json of each event", false, 0.65},
    {"log_page_rss_over_input", "MiB", "the input's size", false, 2.2},
    {"paged_read_rss_growth", "MiB", "the same with a 10,000-event log", false, 1.10},
    {"client_calls", "calls/s", "raw libcurl, one reused handle, same requests", true, 0.9},
    {"receiver_load", "requests/s",
     "bare Boost.Beast HTTPS, same TLS and threads, 204, a line each", true, 0.9},
    {"receiver_vs_httplib", "requests/s", "bare cpp-httplib HTTPS, TCP_NODELAY, 204", true, 0.9},
    {"receiver_under_attack", "ms p99", "p99 with no slow clients", false, 3.0},
    {"compile_full_O0", "s", "<nlohmann/json.hpp> + <curl/curl.h>, one parse", false, 1.2},
    {"compile_full_O2", "s", "<nlohmann/json.hpp> + <curl/curl.h>, one parse", false, 1.2},
    {"compile_validation_O0", "s", "<nlohmann/json.hpp>, one parse", false, 1.2},
    {"compile_validation_O2", "s", "<nlohmann/json.hpp>, one parse", false, 1.2},
    {"store_sqlite", "deliveries/s",
     "the same receiver with the memory store; SQLite in WAL mode, synchronous=NORMAL", true, 0.5},
    {"store_postgresql", "deliveries/s",
     "bare libpq client, the store's INSERT ... ON CONFLICT transactions, same connections, "
     "synchronous_commit=on",
     true, 0.8},
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, v >= 1000 ? "%.0f" : v >= 10 ? "%.1f" : "%.3f", v);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  const bool check_targets = !(argc == 4 && std::string(argv[3]) == "--no-targets");
  if (argc != 3 && (argc != 4 || check_targets)) {
    std::fprintf(stderr, "usage: %s SAMPLES OUTPUT.json [--no-targets]\n", argv[0]);
    return 2;
  }
  std::map<std::pair<std::string, std::string>, std::vector<double>> samples;
  std::map<std::string, std::string> skipped;  // figure -> why
  std::ifstream in(argv[1]);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string tag, name, side;
    double value = 0;
    if (fields >> tag >> name && tag == "skipped") {
      std::getline(fields >> std::ws, skipped[name]);
    } else if (fields >> side >> value && tag == "sample") {
      samples[{name, side}].push_back(value);
    }
  }

  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  nlohmann::ordered_json skipped_list = nlohmann::ordered_json::array();
  int missing = 0;
  int missed = 0;
  std::printf("%-24s %12s %-11s %12s %7s %8s %s\n", "figure", "value", "unit", "baseline", "ratio",
              "target", "rounds");
  for (const figure& f : figures) {
    const auto& ours = samples[{f.name, "sdk"}];
    const auto& base = samples[{f.name, "baseline"}];
    if (const auto why = skipped.find(f.name); why != skipped.end()) {
      std::printf("%-24s skipped: %s\n", f.name, why->second.c_str());
      skipped_list.push_back({{"name", f.name}, {"reason", why->second}});
      continue;
    }
    if (ours.empty() || base.empty()) {
      std::printf("%-24s not measured\n", f.name);
      ++missing;
      continue;
    }
    const double value = median(ours);
    const double baseline_value = median(base);
    const double ratio = value / baseline_value;
    char limit[16];
    std::snprintf(limit, sizeof limit, "%.2f", f.limit);
    const std::string target = std::string(f.at_least ? ">= " : "<= ") + limit;
    const bool holds = f.at_least ? ratio >= f.limit : ratio <= f.limit;
    if (!holds) ++missed;
    std::printf("%-24s %12s %-11s %12s %7.3f %8s %zu%s\n", f.name, number(value).c_str(), f.unit,
                number(baseline_value).c_str(), ratio, target.c_str(), ours.size(),
                !check_targets ? ""
                : holds        ? "  holds"
                               : "  MISSED");
    list.push_back({{"name", f.name},
                    {"value", value},
                    {"unit", f.unit},
                    {"baseline", f.baseline},
                    {"baseline_value", baseline_value},
                    {"ratio", ratio},
                    {"target", target}});
  }
  std::ofstream out(argv[2]);
  out << nlohmann::ordered_json{{"figures", list}, {"skipped", skipped_list}}.dump(2) << "\n";
  if (!out.flush()) {
    std::fprintf(stderr, "cannot write %s\n", argv[2]);
    return 1;
  }
  if (missing > 0) return 1;
  if (check_targets && missed > 0) {
    std::printf("%d target(s) missed\n", missed);
    return 3;
  }
  return 0;
}

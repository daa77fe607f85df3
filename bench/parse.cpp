// unloc_bench_parse: the CPU and memory of reading Access Events, each beside
// its baseline (bench/run.sh runs it).
//
//   validate ROUNDS EVENTS   validate_delivery: interleaved rounds of EVENTS deliveries,
//                            nlohmann DOM parse of each body vs the full validation
//   make-log EVENTS FILE     writes an access-log page of EVENTS events
//   log-page FILE dom|sdk    one measurement, in its own process (peak memory):
//                            log_page_time and, for sdk, log_page_rss_over_input

#include <unloc/core.hpp>
#include <unloc/testing.hpp>

#include "common.hpp"
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

// Events shaped like the reference server's: fresh ids, one Lock, 1 s apart.
class event_maker {
 public:
  unloc::access_event next(unloc::timestamp created) {
    unloc::access_event e = unloc::testing::sample_access_event();
    e.id = random_uuid();
    e.key_id = random_uuid();
    e.lock_name = "Reference lock";
    e.created = created;
    return e;
  }

 private:
  unloc::uuid random_uuid() {
    std::array<std::uint8_t, 16> bytes{};
    for (auto& b : bytes) b = static_cast<std::uint8_t>(rng_());
    return unloc::uuid(bytes);
  }
  std::mt19937_64 rng_{20240501};
};

unloc::timestamp now() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

int validate(int rounds, int events) {
  const unloc::basic_credentials credentials{"unloc-bench", "b3nch-passw0rd-1234"};
  unloc::delivery_options options;
  options.credentials = {credentials};
  const unloc::delivery_validator validator(options);
  unloc::memory_event_store store;  // the integrator's first step after validating: claim
  event_maker maker;

  for (int round = -1; round < rounds; ++round) {  // round -1 warms up
    std::vector<unloc::testing::test_delivery> deliveries;
    deliveries.reserve(static_cast<std::size_t>(events));
    for (int i = 0; i < events; ++i) {
      deliveries.push_back(unloc::testing::make_test_delivery(maker.next(now()), credentials));
    }
    const auto dom = [&] {
      const auto start = bench::clock::now();
      for (const auto& d : deliveries) {
        const auto doc = nlohmann::json::parse(d.body);
        bench::keep(doc);
      }
      return events / bench::seconds_since(start);
    };
    const auto sdk = [&] {
      const auto start = bench::clock::now();
      for (const auto& d : deliveries) {
        const auto decision = validator.validate({d.method, d.path, d.headers, d.body});
        if (!decision.ok()) bench::fail("validation refused a delivery: " + decision.message);
        const auto claim = store.claim(decision.event->id, decision.event->created);
        if (!claim || !claim->mine()) {
          bench::fail("the event store did not take a new event");
        }
        bench::keep(decision);
      }
      return events / bench::seconds_since(start);
    };
    // Alternate which goes first, so that a drift of the machine hits both sides.
    double base = 0;
    double ours = 0;
    if (round % 2 == 0) {
      base = dom();
      ours = sdk();
    } else {
      ours = sdk();
      base = dom();
    }
    if (round >= 0) {
      bench::sample("validate_delivery", "baseline", base);
      bench::sample("validate_delivery", "sdk", ours);
    }
  }
  return 0;
}

int make_log(int events, const char* file) {
  std::FILE* out = std::fopen(file, "wb");
  if (out == nullptr) bench::fail(std::string("cannot write ") + file);
  event_maker maker;
  const auto newest = now();
  std::fputs("{\"accessEvents\":[", out);
  for (int i = 0; i < events; ++i) {
    if (i != 0) std::fputc(',', out);
    std::fputs(unloc::to_json_text(maker.next(newest - std::chrono::seconds(i))).c_str(), out);
  }
  std::fputs("],\"nextCursor\":null}", out);
  return std::fclose(out) == 0 ? 0 : 1;
}

std::string read_whole(const char* file) {
  std::FILE* in = std::fopen(file, "rb");
  if (in == nullptr) bench::fail(std::string("cannot read ") + file);
  std::fseek(in, 0, SEEK_END);
  std::string text(static_cast<std::size_t>(std::ftell(in)), '\0');
  std::fseek(in, 0, SEEK_SET);
  const bool ok = std::fread(text.data(), 1, text.size(), in) == text.size();
  std::fclose(in);
  if (!ok) bench::fail(std::string("cannot read ") + file);
  return text;
}

// The baseline: the whole page as a DOM, then each element converted (nlohmann's
// from_json), then the DOM freed.
std::vector<unloc::access_event> dom_then_convert(const std::string& text) {
  std::vector<unloc::access_event> events;
  auto doc = nlohmann::json::parse(text);
  const auto& list = doc.at("accessEvents");
  events.reserve(list.size());
  for (const auto& item : list) events.push_back(item.get<unloc::access_event>());
  return events;
}

int log_page(const char* file, const std::string& mode) {
  if (mode != "dom" && mode != "sdk") bench::fail("log-page: dom or sdk, not " + mode);
  const double rss_before = bench::status_bytes("VmRSS");
  const std::string text = read_whole(file);  // the input buffer counts in the peak
  const auto start = bench::clock::now();
  std::size_t count = 0;
  if (mode == "dom") {
    count = dom_then_convert(text).size();
  } else {
    auto page = unloc::parse_access_log_page(text);
    if (!page) bench::fail("the page does not parse: " + page.error().message);
    count = page->events.size();
  }
  const double took = bench::seconds_since(start);
  const double peak = bench::status_bytes("VmHWM") - rss_before;
  const char* side = mode == "dom" ? "baseline" : "sdk";
  bench::sample("log_page_time", side, took);
  if (mode == "sdk") {
    bench::sample("log_page_rss_over_input", "sdk", peak / bench::mib);
    bench::sample("log_page_rss_over_input", "baseline",
                  static_cast<double>(text.size()) / bench::mib);
  }
  std::printf("info log-page %s: %zu events, %.1f MiB input, %.3f s, peak %.1f MiB (%.2fx input)\n",
              mode.c_str(), count, static_cast<double>(text.size()) / bench::mib, took,
              peak / bench::mib, peak / static_cast<double>(text.size()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "validate" && argc == 4) return validate(std::stoi(argv[2]), std::stoi(argv[3]));
  if (command == "make-log" && argc == 4) return make_log(std::stoi(argv[2]), argv[3]);
  if (command == "log-page" && argc == 4) return log_page(argv[2], argv[3]);
  std::fprintf(stderr,
               "usage: %s validate ROUNDS EVENTS | make-log EVENTS FILE | log-page FILE dom|sdk\n",
               argv[0]);
  return 2;
}

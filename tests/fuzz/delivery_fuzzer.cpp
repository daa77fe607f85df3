// libFuzzer target: whatever a client sends, the delivery validator answers
// with a status from the table and never crashes, hangs or leaks.

#include <unloc/core.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

namespace {

const unloc::delivery_validator& validator() {
  static const unloc::delivery_validator instance = [] {
    unloc::delivery_options options;
    options.credentials = {{"myuser", "mypasswoord"}, {"next", "n3w"}};
    options.max_body_bytes = 4096;
    return unloc::delivery_validator(options);
  }();
  return instance;
}

bool in_status_table(int status) {
  switch (status) {
    case 204: case 400: case 401: case 404: case 405: case 413: case 415: case 422: case 503:
      return true;
    default:
      return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string method = in.ConsumeBool() ? "POST" : in.ConsumeRandomLengthString(8);
  const std::string path = in.ConsumeBool() ? "/accessEvents" : in.ConsumeRandomLengthString(32);
  unloc::http_headers headers;
  const int header_count = in.ConsumeIntegralInRange(0, 6);
  for (int i = 0; i < header_count; ++i) {
    static const char* const names[] = {"Content-Type", "authorization", "Content-Length", "X-Other"};
    std::string name = names[in.ConsumeIntegralInRange(0, 3)];
    std::string value;
    switch (in.ConsumeIntegralInRange(0, 3)) {
      case 0: value = "application/json"; break;
      case 1: value = "Basic bXl1c2VyOm15cGFzc3dvb3Jk"; break;
      default: value = in.ConsumeRandomLengthString(64); break;
    }
    headers.add(std::move(name), std::move(value));
  }
  const std::string body = in.ConsumeRemainingBytesAsString();

  const auto decision = validator().validate({method, path, headers, body});
  if (!in_status_table(decision.status)) std::abort();
  if (decision.ok() != decision.event.has_value()) std::abort();
  if (decision.ok()) {
    // What was accepted must survive the round trip through its own JSON.
    auto again = unloc::parse_access_event(unloc::to_json_text(*decision.event));
    if (!again || again->id != decision.event->id || again->created != decision.event->created) {
      std::abort();
    }
  }
  return 0;
}

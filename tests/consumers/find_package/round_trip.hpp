// The nlohmann/json round trip from a consumer's side: the SDK does not bring
// nlohmann/json, the consumer links its own and the SDK's to_json/from_json
// hooks are found by ADL. Included by full.cpp when UNLOC_ROUND_TRIP is defined.
#pragma once

#include <unloc/core.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>

namespace unloc_consumer {

// Prints the event's JSON and returns 0 when the round trip keeps it.
inline int round_trip() {
  const unloc::result<unloc::access_event> event = unloc::parse_access_event(
      R"({"id":"ae832e61-c8fa-4ed9-8196-61210cb4207b","action":"unlock",)"
      R"("created":"2024-03-01T12:00:00.000Z","keyId":"0b6f2a1e-4c1d-4f3e-9a5b-7c8d9e0f1a2b",)"
      R"("lockId":"5f4e3d2c-1b0a-4987-8654-3210fedcba98","lockName":"Front door",)"
      R"("appUserId":"+4790000000","userName":null})");
  if (!event) {
    std::fprintf(stderr, "parse_access_event: %s\n", event.error().message.c_str());
    return 1;
  }
  const nlohmann::json j = *event;
  const auto back = j.get<unloc::access_event>();
  const auto id = nlohmann::json(event->id).get<unloc::uuid>();
  if (back.id != event->id || back.lock_name != "Front door" || id != event->id ||
      j.at("appUserId") != "+4790000000" || !j.at("userName").is_null()) {
    std::fprintf(stderr, "the round trip changed the event: %s\n", j.dump().c_str());
    return 1;
  }
  std::printf("round trip through nlohmann/json %d.%d.%d: %s\n", NLOHMANN_JSON_VERSION_MAJOR,
              NLOHMANN_JSON_VERSION_MINOR, NLOHMANN_JSON_VERSION_PATCH, j.dump().c_str());
  return 0;
}

}  // namespace unloc_consumer

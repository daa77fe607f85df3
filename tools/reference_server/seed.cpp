#include "seed.hpp"

#include <unloc/credentials.hpp>
#include <unloc/parse.hpp>

#include "delivery.hpp"
#include "util.hpp"
#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>
#include <vector>

namespace refserver {
namespace {

// A webhook in the API's shape; id and created are made up when absent.
std::string load_webhook(store& state, const nlohmann::json& item, std::size_t index,
                         bool allow_http_loopback) {
  const std::string where = "webhooks[" + std::to_string(index) + "]: ";
  if (!item.is_object()) return where + "must be an object";
  std::string problem;
  const auto url = string_field(item, "url", problem);
  const auto trigger = string_field(item, "trigger", problem);
  const auto lock = string_field(item, "lockId", problem);
  const auto id = string_field(item, "id", problem);
  const auto created = string_field(item, "created", problem);
  if (!problem.empty()) return where + problem;
  if (!url) return where + "field 'url' is missing";
  if (auto valid = parse_delivery_url(*url, allow_http_loopback); !valid) {
    return where + valid.error().message;
  }
  if (trigger && *trigger != unloc::access_event_trigger)
    return where + "trigger must be accessEvent";
  unloc::webhook hook;
  hook.trigger = std::string(unloc::access_event_trigger);
  hook.url = *url;
  hook.id = random_uuid();
  hook.created = now_ms();
  if (id) {
    auto parsed = unloc::uuid::parse(*id);
    if (!parsed) return where + parsed.error().message;
    hook.id = *parsed;
  }
  if (lock) {
    auto parsed = unloc::uuid::parse(*lock);
    if (!parsed) return where + parsed.error().message;
    hook.lock_id = *parsed;
  }
  if (created) {
    auto parsed = unloc::parse_timestamp(*created);
    if (!parsed) return where + parsed.error().message;
    hook.created = *parsed;
  }
  if (!state.add_webhook(std::move(hook))) return where + "duplicate webhook id";
  return {};
}

}  // namespace

std::string load_seed(store& state, const std::string& path, bool allow_http_loopback) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return "cannot read the seed file '" + path + "'";
  const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_object()) return "the seed file '" + path + "' is not a JSON object";
  for (const auto& [key, value] : doc.items()) {
    if (key != "webhooks" && key != "accessEvents") {
      return "the seed file has an unknown field '" + key + "' (expected webhooks, accessEvents)";
    }
    if (!value.is_array()) return "the seed file's '" + key + "' must be an array";
  }
  if (const auto hooks = doc.find("webhooks"); hooks != doc.end()) {
    for (std::size_t i = 0; i < hooks->size(); ++i) {
      if (auto problem = load_webhook(state, (*hooks)[i], i, allow_http_loopback);
          !problem.empty()) {
        return problem;
      }
    }
  }
  if (const auto events = doc.find("accessEvents"); events != doc.end()) {
    std::vector<unloc::access_event> parsed;
    parsed.reserve(events->size());
    for (std::size_t i = 0; i < events->size(); ++i) {
      auto event = unloc::parse_access_event((*events)[i].dump());
      if (!event) return "accessEvents[" + std::to_string(i) + "]: " + event.error().message;
      parsed.push_back(std::move(*event));
    }
    if (state.record(parsed) != parsed.size()) return "accessEvents: an event id appears twice";
  }
  return {};
}

}  // namespace refserver

#pragma once

/// @file
/// Webhooks: where Unloc POSTs the Access Events of a Lock.

#include <unloc/credentials.hpp>
#include <unloc/detail/json_document.hpp>
#include <unloc/error.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/uuid.hpp>
#include <unloc/version.hpp>

#include <nlohmann/json.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE

/// The trigger of Access Event webhooks, the only one Unloc has.
inline constexpr std::string_view access_event_trigger = "accessEvent";

/// What to register: deliver the Access Events of `lock_id` to `url`.
struct webhook_registration {
  std::string trigger{access_event_trigger};  ///< Always `accessEvent` today.
  /// The https URL to POST to; may carry Basic credentials
  /// (`https://user:password@host/path`), which makes it a secret.
  std::string url;
  std::optional<uuid> lock_id;  ///< The Lock whose events are reported.
};

/// A registered webhook, as the API lists it.
struct webhook {
  uuid id;                           ///< The webhook's id (to delete it).
  std::string trigger;               ///< `accessEvent`.
  std::string url;                   ///< The URL, credentials included: a secret.
  std::optional<uuid> lock_id;       ///< The Lock, when the webhook names one.
  std::optional<timestamp> created;  ///< When it was registered, when the API says.
  nlohmann::json extra;              ///< Fields this SDK does not know, as received.
};

/// One line for logs, with the password in the URL replaced by `REDACTED`.
[[nodiscard]] inline std::string to_string(const webhook_registration& r) {
  return "webhook_registration{trigger=" + r.trigger + ", url=" + redact_url(r.url) +
         ", lock=" + (r.lock_id ? r.lock_id->to_string() : std::string("null")) + "}";
}

/// One line for logs, with the password in the URL replaced by `REDACTED`.
[[nodiscard]] inline std::string to_string(const webhook& w) {
  return "webhook{id=" + w.id.to_string() + ", trigger=" + w.trigger +
         ", url=" + redact_url(w.url) +
         ", lock=" + (w.lock_id ? w.lock_id->to_string() : std::string("null")) +
         ", created=" + (w.created ? format_timestamp(*w.created) : std::string("null")) + "}";
}

namespace detail {

inline error webhook_error(std::string message, std::string field = {}) {
  return make_error(error_category::invalid_response, std::move(message), std::move(field));
}

/// A webhook from a JSON object, with every field checked; never throws.
[[nodiscard]] inline result<webhook> webhook_from_document(const nlohmann::json& j) {
  if (!j.is_object()) return webhook_error("a webhook must be a JSON object");
  webhook out;
  bool has_id = false;
  bool has_url = false;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const auto* text = it->template get_ptr<const std::string*>();
    if (key == "id" || key == "url" || key == "trigger") {
      if (text == nullptr) return webhook_error("webhook field '" + key + "' must be a string", key);
      if (key == "id") {
        auto id = uuid::parse(*text);
        if (!id) return webhook_error("webhook field 'id' is not a UUID", key);
        out.id = *id;
        has_id = true;
      } else if (key == "url") {
        out.url = *text;
        has_url = true;
      } else {
        out.trigger = *text;
      }
    } else if (key == "lockId" || key == "created") {
      if (it->is_null()) continue;
      if (text == nullptr) return webhook_error("webhook field '" + key + "' must be a string", key);
      if (key == "lockId") {
        auto id = uuid::parse(*text);
        if (!id) return webhook_error("webhook field 'lockId' is not a UUID", key);
        out.lock_id = *id;
      } else {
        auto created = parse_timestamp(*text);
        if (!created) return webhook_error("webhook field 'created' is not a timestamp", key);
        out.created = *created;
      }
    } else {
      if (!out.extra.is_object()) out.extra = nlohmann::json::object();
      out.extra[key] = *it;
    }
  }
  if (!has_id) return webhook_error("webhook field 'id' is missing", "id");
  if (!has_url) return webhook_error("webhook field 'url' is missing", "url");
  if (out.trigger.empty()) out.trigger = std::string(access_event_trigger);
  return out;
}

}  // namespace detail

/// The registration as the API's request body.
template <typename BasicJsonType>
void to_json(BasicJsonType& j, const webhook_registration& r) {
  j = BasicJsonType::object();
  j["trigger"] = r.trigger;
  j["url"] = r.url;
  if (r.lock_id) j["lockId"] = r.lock_id->to_string();
}

/// Reads a registration from trusted JSON; throws `std::invalid_argument`
/// naming the field when invalid.
template <typename BasicJsonType>
void from_json(const BasicJsonType& j, webhook_registration& r) {
  const auto text = [&j](const char* key, bool required) -> std::optional<std::string> {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      if (required) throw std::invalid_argument(std::string("field '") + key + "' is missing");
      return std::nullopt;
    }
    if (!it->is_string()) throw std::invalid_argument(std::string("field '") + key + "' must be a string");
    return it->template get<std::string>();
  };
  if (!j.is_object()) throw std::invalid_argument("a webhook registration must be a JSON object");
  webhook_registration out;
  out.trigger = *text("trigger", true);
  out.url = *text("url", true);
  if (const auto lock = text("lockId", false)) {
    auto id = uuid::parse(*lock);
    if (!id) throw std::invalid_argument("field 'lockId': " + id.error().message);
    out.lock_id = *id;
  }
  r = std::move(out);
}

/// The webhook as the API writes it.
template <typename BasicJsonType>
void to_json(BasicJsonType& j, const webhook& w) {
  j = BasicJsonType::object();
  j["id"] = w.id.to_string();
  j["trigger"] = w.trigger;
  j["url"] = w.url;
  j["lockId"] = w.lock_id ? BasicJsonType(w.lock_id->to_string()) : BasicJsonType();
  if (w.created) j["created"] = format_timestamp(*w.created);
  if (w.extra.is_object()) {
    for (const auto& item : w.extra.items()) {
      if (j.find(item.key()) == j.end()) j[item.key()] = item.value();
    }
  }
}

/// Reads a webhook from trusted JSON; throws `std::invalid_argument` naming
/// the field when invalid (nlohmann's convention). Responses from the network
/// are read by the client with `parse_webhook`, which never throws.
template <typename BasicJsonType>
void from_json(const BasicJsonType& j, webhook& w) {
  auto read = detail::webhook_from_document(nlohmann::json(j));
  if (!read) throw std::invalid_argument(read.error().message);
  w = std::move(*read);
}

/// Reads a webhook as the API returns it: the object itself, or wrapped as
/// `{"webhook":{…}}`.
[[nodiscard]] inline result<webhook> parse_webhook(std::string_view json_text) {
  auto doc = detail::parse_json_document(json_text);
  if (!doc) return doc.error();
  if (const auto it = doc->find("webhook"); it != doc->end() && it->is_object()) {
    return detail::webhook_from_document(*it);
  }
  return detail::webhook_from_document(*doc);
}

/// Reads the list of webhooks `{"webhooks":[…]}` (a bare array is accepted too).
[[nodiscard]] inline result<std::vector<webhook>> parse_webhook_list(std::string_view json_text) {
  auto doc = detail::parse_json_document(json_text);
  if (!doc) return doc.error();
  const nlohmann::json* list = &*doc;
  if (doc->is_object()) {
    const auto it = doc->find("webhooks");
    if (it == doc->end()) return detail::response_error("field 'webhooks' is missing", "webhooks");
    list = &*it;
  }
  if (!list->is_array()) return detail::response_error("field 'webhooks' must be an array", "webhooks");
  std::vector<webhook> out;
  out.reserve(list->size());
  for (const auto& item : *list) {
    auto hook = detail::webhook_from_document(item);
    if (!hook) return hook.error();
    out.push_back(std::move(*hook));
  }
  return out;
}

UNLOC_END_NAMESPACE

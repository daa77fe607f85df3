#pragma once

/// @file
/// Webhooks: where Unloc POSTs the Access Events of a Lock.

#include <unloc/credentials.hpp>
#include <unloc/detail/json_reader.hpp>
#include <unloc/detail/text.hpp>
#include <unloc/error.hpp>
#include <unloc/json_member.hpp>
#include <unloc/parse.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/uuid.hpp>
#include <unloc/version.hpp>

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>  // std::size too: <iterator> would bring the streams
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
  std::vector<json_member> extra;    ///< Fields this SDK does not know, as received.
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

// The webhook as read from untrusted JSON (the API's responses) and by from_json.

[[nodiscard]] inline webhook& webhook_at(void* target) noexcept {
  return *static_cast<webhook*>(target);
}

[[nodiscard]] inline std::string store_webhook_uuid(std::optional<uuid>& out, json_scalar value) {
  if (value.null) {
    out.reset();
    return {};
  }
  auto parsed = uuid::parse(value.text);
  if (!parsed) return "is not a UUID: " + quoted(value.text);
  out = *parsed;
  return {};
}

// Its fields, then the wrapper `{"webhook":{…}}` that parse_webhook accepts.
inline constexpr json_field webhook_fields[] = {
    {"id", json_kind::string, true, false,
     [](void* w, json_scalar v) {
       std::optional<uuid> id;
       std::string why = store_webhook_uuid(id, v);
       if (id) webhook_at(w).id = *id;
       return why;
     }},
    {"url", json_kind::string, true, false,
     [](void* w, json_scalar v) -> std::string {
       webhook_at(w).url.assign(v.text);
       return {};
     }},
    {"trigger", json_kind::string, false, false,
     [](void* w, json_scalar v) -> std::string {
       webhook_at(w).trigger.assign(v.text);
       return {};
     }},
    {"lockId", json_kind::string, false, true,
     [](void* w, json_scalar v) { return store_webhook_uuid(webhook_at(w).lock_id, v); }},
    {"created", json_kind::string, false, true,
     [](void* w, json_scalar v) -> std::string {
       if (v.null) {
         webhook_at(w).created.reset();
         return {};
       }
       auto created = parse_timestamp(v.text);
       if (!created) return "is not an RFC 3339 timestamp: " + quoted(v.text);
       webhook_at(w).created = *created;
       return {};
     }},
    {"webhook", json_kind::wrapper, false, false},
};

inline void keep_webhook_member(void* w, std::string&& name, std::string&& value) {
  webhook_at(w).extra.push_back({std::move(name), std::move(value)});
}

/// A webhook object.
inline constexpr json_object webhook_object{"a webhook", webhook_fields,
                                            std::size(webhook_fields) - 1, keep_webhook_member};

/// A webhook response: the object, or the object wrapped as `{"webhook":{…}}`.
inline constexpr json_object webhook_response{"a webhook", webhook_fields,
                                              std::size(webhook_fields), keep_webhook_member};

/// The list `{"webhooks":[…]}`, or the array alone.
inline constexpr json_field webhook_list_fields[] = {
    {"webhooks", json_kind::objects, true, false, nullptr, &webhook_object,
     [](void* list) -> void* {
       webhook& w = static_cast<std::vector<webhook>*>(list)->emplace_back();
       w.trigger = std::string(access_event_trigger);  // when the API leaves it out
       return &w;
     },
     [](void*) { return true; }},
};

inline constexpr json_object webhook_list_object{"a webhook list", webhook_list_fields, 1, nullptr,
                                                 webhook_list_fields};

/// A webhook read as `object` describes it; never throws.
[[nodiscard]] inline result<webhook> read_webhook(std::string_view text,
                                                  const json_object& object) {
  webhook out;
  out.trigger = std::string(access_event_trigger);  // when the API leaves it out
  read_error e = read_json(text, object, &out, max_response_depth);
  if (e.failed()) return response_error(std::move(e));
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

/// The registration as the API's request body, compact JSON text.
[[nodiscard]] inline std::string to_json_text(const webhook_registration& r) {
  const std::string lock = r.lock_id ? r.lock_id->to_string() : std::string();
  return r.lock_id ? detail::json_object_text({{"trigger", r.trigger}, {"url", r.url}, {"lockId", lock}})
                   : detail::json_object_text({{"trigger", r.trigger}, {"url", r.url}});
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
  for (const auto& member : w.extra) {
    if (j.find(member.name) == j.end()) j[member.name] = BasicJsonType::parse(member.value);
  }
}

/// Reads a webhook from trusted JSON; throws `std::invalid_argument` naming
/// the field when invalid (nlohmann's convention). Responses from the network
/// are read by the client with `parse_webhook`, which never throws.
template <typename BasicJsonType>
void from_json(const BasicJsonType& j, webhook& w) {
  auto read = detail::read_webhook(j.dump(), detail::webhook_object);
  if (!read) throw std::invalid_argument(read.error().message);
  w = std::move(*read);
}

/// Reads a webhook as the API returns it: the object itself, or wrapped as
/// `{"webhook":{…}}` with no other member (read in one pass). Never throws.
[[nodiscard]] inline result<webhook> parse_webhook(std::string_view json_text) {
  return detail::read_webhook(json_text, detail::webhook_response);
}

/// Reads the list of webhooks `{"webhooks":[…]}` (a bare array is accepted
/// too). Never throws.
[[nodiscard]] inline result<std::vector<webhook>> parse_webhook_list(std::string_view json_text) {
  std::vector<webhook> out;
  detail::read_error e =
      detail::read_json(json_text, detail::webhook_list_object, &out, detail::max_response_depth);
  if (e.failed()) return detail::response_error(std::move(e));
  return out;
}

UNLOC_END_NAMESPACE

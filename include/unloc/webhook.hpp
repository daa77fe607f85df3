#pragma once

/// @file
/// Webhooks: where Unloc POSTs the Access Events of a Lock.

#include <unloc/credentials.hpp>
#include <unloc/detail/json_reader.hpp>
#include <unloc/detail/text.hpp>
#include <unloc/error.hpp>
#include <unloc/json_member.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/uuid.hpp>
#include <unloc/version.hpp>

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
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

/// Reads a webhook object at the reader's position (`depth` deep). Schema
/// problems are recorded in the reader; false only when reading must stop.
inline bool read_webhook(json_reader& reader, std::size_t depth, webhook& out) {
  unsigned seen = 0;  // a bit per known field
  std::unordered_set<std::string> extra_names;
  const bool read = reader.read_members(depth, [&](std::string_view key) {
    static constexpr std::string_view known[] = {"id", "url", "trigger", "lockId", "created"};
    std::size_t field = 0;
    while (field < std::size(known) && known[field] != key) ++field;
    if (field == std::size(known)) return reader.keep_member(key, depth, extra_names, out.extra);
    if ((seen & (1U << field)) != 0) return reader.fail_duplicate(key) && reader.read_value(nullptr, depth);
    seen |= 1U << field;
    // lockId and created may be null; every field is otherwise a string.
    if (reader.peek() == 'n' && field >= 3) return reader.read_value(nullptr, depth);
    if (reader.peek() != '"') {
      return reader.fail_schema("webhook field '" + std::string(key) + "' must be a string",
                                std::string(key)) &&
             reader.read_value(nullptr, depth);
    }
    std::string_view text;
    if (!reader.read_string(text)) return false;
    switch (field) {
      case 0:
      case 3: {
        auto id = uuid::parse(text);
        if (!id) {
          const std::string name(known[field]);
          return reader.fail_schema("webhook field '" + name + "' is not a UUID", name);
        }
        (field == 0 ? out.id : out.lock_id.emplace()) = *id;
        return true;
      }
      case 1: out.url = std::string(text); return true;
      case 2: out.trigger = std::string(text); return true;
      default: {
        auto created = parse_timestamp(text);
        if (!created) return reader.fail_schema("webhook field 'created' is not a timestamp", "created");
        out.created = *created;
        return true;
      }
    }
  });
  if (!read || !reader.ok()) return read;
  if ((seen & 1U) == 0) return reader.fail_schema("webhook field 'id' is missing", "id");
  if ((seen & 2U) == 0) return reader.fail_schema("webhook field 'url' is missing", "url");
  if (out.trigger.empty()) out.trigger = std::string(access_event_trigger);
  return true;
}

/// A webhook from the text of one JSON object; never throws.
[[nodiscard]] inline result<webhook> webhook_from_json(std::string_view text) {
  json_reader reader(text, max_response_depth);
  webhook out;
  reader.read_document("a webhook", [&] { return read_webhook(reader, 1, out); });
  if (!reader.ok()) return response_error(reader);
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
  auto read = detail::webhook_from_json(j.dump());
  if (!read) throw std::invalid_argument(read.error().message);
  w = std::move(*read);
}

/// Reads a webhook as the API returns it: the object itself, or wrapped as
/// `{"webhook":{…}}`.
[[nodiscard]] inline result<webhook> parse_webhook(std::string_view json_text) {
  // First the whole text is checked and the wrapped object found, then the
  // webhook is read from it: which of the two it is shows only at the end.
  detail::json_reader reader(json_text, detail::max_response_depth);
  reader.begin();
  std::string_view wrapped;
  if (reader.peek() == '{') {
    reader.read_members(1, [&](std::string_view key) {
      const bool object = key == "webhook" && reader.peek() == '{';
      const char* start = reader.position();
      if (!reader.read_value(nullptr, 1)) return false;
      if (object) wrapped = std::string_view(start, static_cast<std::size_t>(reader.position() - start));
      return true;
    });
  } else {
    reader.read_value(nullptr, 0);
  }
  if (reader.state() == detail::reader_state::syntax_error || !reader.finish()) {
    return detail::response_error(reader);
  }
  return detail::webhook_from_json(wrapped.empty() ? json_text : wrapped);
}

/// Reads the list of webhooks `{"webhooks":[…]}` (a bare array is accepted too).
[[nodiscard]] inline result<std::vector<webhook>> parse_webhook_list(std::string_view json_text) {
  detail::json_reader reader(json_text, detail::max_response_depth);
  std::vector<webhook> out;
  bool saw_list = false;
  const auto read_list = [&](std::size_t depth) {
    if (saw_list) {
      return reader.fail_duplicate("webhooks") && reader.read_value(nullptr, depth - 1);
    }
    saw_list = true;
    if (reader.peek() != '[') {
      return reader.fail_schema("field 'webhooks' must be an array", "webhooks") &&
             reader.read_value(nullptr, depth - 1);
    }
    return reader.read_elements(depth, [&] {
      if (reader.peek() != '{') {
        return reader.fail_schema("a webhook must be a JSON object", {}) &&
               reader.read_value(nullptr, depth);
      }
      out.emplace_back();
      return detail::read_webhook(reader, depth + 1, out.back());
    });
  };
  reader.begin();
  const bool read = reader.peek() == '{' ? reader.read_members(1, [&](std::string_view key) {
    return key == "webhooks" ? read_list(2) : reader.read_value(nullptr, 1);
  })
                                         : read_list(1);
  if (read && reader.finish() && !saw_list) {
    reader.fail_schema("field 'webhooks' is missing", "webhooks");
  }
  if (!reader.ok()) return detail::response_error(reader);
  return out;
}

UNLOC_END_NAMESPACE

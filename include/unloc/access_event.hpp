#pragma once

/// @file
/// The Access Event: what Unloc reports each time a User opens or locks a Lock
/// with a Key, live through a webhook and afterwards in the 30-day access log.

#include <unloc/detail/text.hpp>
#include <unloc/error.hpp>
#include <unloc/json_member.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/uuid.hpp>
#include <unloc/version.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

UNLOC_BEGIN_NAMESPACE

/// What the User did. `unknown` keeps an event with an action this SDK
/// version does not know readable; its text is in `access_event::action_text`.
enum class access_action : std::uint8_t {
  locked,       ///< The Lock was locked.
  unlocked,     ///< The Lock was unlocked.
  viewed_code,  ///< An app user viewed the code of a code lock (`viewedCode`).
  unknown,      ///< An action this SDK does not know.
};

/// The wire name of an action (`"viewedCode"`); `"unknown"` for `unknown`.
[[nodiscard]] constexpr std::string_view to_string(access_action action) noexcept {
  switch (action) {
    case access_action::locked: return "locked";
    case access_action::unlocked: return "unlocked";
    case access_action::viewed_code: return "viewedCode";
    case access_action::unknown: break;
  }
  return "unknown";
}

/// The action named by a wire text; `unknown` for any other text.
[[nodiscard]] constexpr access_action parse_access_action(std::string_view text) noexcept {
  if (text == "unlocked") return access_action::unlocked;
  if (text == "locked") return access_action::locked;
  if (text == "viewedCode") return access_action::viewed_code;
  return access_action::unknown;
}

/// One Access Event, as delivered to a webhook or listed in the access log.
struct access_event {
  uuid id;                                 ///< The event's id: the key for de-duplication.
  access_action action = access_action::unknown;  ///< What the User did.
  std::string action_text;                 ///< The action as received (kept for `unknown`).
  timestamp created{};                     ///< When it happened (UTC, milliseconds).
  uuid key_id;                             ///< The Key that was used.
  uuid lock_id;                            ///< The Lock it was used on.
  std::string lock_name;                   ///< The Lock's display name.
  /// The app user's phone number (E.164). Personal data; absent for
  /// anonymized events. `to_string` masks it unless asked not to.
  std::optional<std::string> app_user_id;
  std::optional<std::string> user_name;    ///< The user's name; may be absent or empty.
  /// Fields this SDK version does not know, in the order received, each value
  /// as compact JSON text (`find_member(event.extra, "battery")`).
  std::vector<json_member> extra;
};

/// One page of an access log: events newest first, and the cursor of the next
/// page (none on the last page).
struct access_log_page {
  std::vector<access_event> events;        ///< The page's events, in the order served.
  std::optional<std::string> next_cursor;  ///< Opaque; absent on the last page.
};

/// How `to_string` prints personal data.
struct print_options {
  /// Print the app user's phone number in full instead of only its last two digits.
  bool reveal_personal_data = false;
};

/// A phone number with every digit but the last two replaced by `*`.
[[nodiscard]] inline std::string mask_phone_number(std::string_view phone) {
  std::string out(phone);
  std::size_t digits_left = 0;
  for (auto it = out.rbegin(); it != out.rend(); ++it) {
    if (*it >= '0' && *it <= '9' && ++digits_left > 2) *it = '*';
  }
  return out;
}

/// One line for logs: `access_event{id=…, action=unlocked, …}`. The phone
/// number is masked unless `options.reveal_personal_data` is set.
[[nodiscard]] inline std::string to_string(const access_event& event, print_options options = {}) {
  std::string out = "access_event{id=" + event.id.to_string() + ", action=";
  out += event.action == access_action::unknown ? detail::quoted(event.action_text)
                                                 : std::string(to_string(event.action));
  out += ", created=" + format_timestamp(event.created);
  out += ", lock=" + event.lock_id.to_string() + " " + detail::quoted(event.lock_name, 128);
  out += ", key=" + event.key_id.to_string() + ", app_user=";
  if (!event.app_user_id) {
    out += "null";
  } else {
    out += detail::quoted(options.reveal_personal_data ? *event.app_user_id
                                                        : mask_phone_number(*event.app_user_id));
  }
  out += ", user_name=";
  out += event.user_name ? detail::quoted(*event.user_name, 128) : std::string("null");
  out += '}';
  return out;
}

namespace detail {

// The eight fields of the contract. One table serves the strict reader
// (untrusted bodies) and from_json (trusted DOM), so the two can never disagree.
enum class event_field : std::uint8_t {
  id, action, created, key_id, lock_id, lock_name, app_user_id, user_name, unknown
};

inline constexpr std::string_view event_field_names[] = {
    "id", "action", "created", "keyId", "lockId", "lockName", "appUserId", "userName"};

/// Bits of the fields an event must carry.
inline constexpr unsigned required_event_fields = 0b0011'1111U;

[[nodiscard]] constexpr event_field event_field_from_key(std::string_view key) noexcept {
  for (std::size_t i = 0; i < std::size(event_field_names); ++i) {
    if (event_field_names[i] == key) return static_cast<event_field>(i);
  }
  return event_field::unknown;
}

[[nodiscard]] constexpr std::string_view event_field_name(event_field field) noexcept {
  return field == event_field::unknown ? std::string_view("?")
                                       : event_field_names[static_cast<std::size_t>(field)];
}

[[nodiscard]] inline error event_field_error(event_field field, std::string why) {
  const std::string name(event_field_name(field));
  return make_error(error_category::invalid_input, "field '" + name + "' " + why, name);
}

/// Sets a known field from a JSON string value.
[[nodiscard]] inline result<void> set_event_field(access_event& event, event_field field,
                                                  std::string&& value) {
  const auto set_uuid = [&](uuid& target) -> result<void> {
    auto parsed = uuid::parse(value);
    if (!parsed) return event_field_error(field, "is not a UUID: " + detail::quoted(value));
    target = *parsed;
    return {};
  };
  switch (field) {
    case event_field::id: return set_uuid(event.id);
    case event_field::key_id: return set_uuid(event.key_id);
    case event_field::lock_id: return set_uuid(event.lock_id);
    case event_field::action:
      if (value.empty()) return event_field_error(field, "must not be empty");
      event.action = parse_access_action(value);
      event.action_text = std::move(value);
      return {};
    case event_field::created: {
      auto parsed = parse_timestamp(value);
      if (!parsed) return event_field_error(field, "is not an RFC 3339 timestamp: " + detail::quoted(value));
      event.created = *parsed;
      return {};
    }
    case event_field::lock_name: event.lock_name = std::move(value); return {};
    case event_field::app_user_id: event.app_user_id = std::move(value); return {};
    case event_field::user_name: event.user_name = std::move(value); return {};
    case event_field::unknown: break;
  }
  return {};
}

/// A known field was null: fine for the optional ones.
[[nodiscard]] inline result<void> set_event_field_null(access_event& event, event_field field) {
  if (field == event_field::app_user_id) {
    event.app_user_id.reset();
    return {};
  }
  if (field == event_field::user_name) {
    event.user_name.reset();
    return {};
  }
  return event_field_error(field, "must be a string, got null");
}

/// Names the first required field missing from `seen` (a bit per event_field).
[[nodiscard]] inline result<void> check_required_event_fields(unsigned seen) {
  for (std::size_t i = 0; i < std::size(event_field_names); ++i) {
    if ((required_event_fields & (1U << i)) != 0 && (seen & (1U << i)) == 0) {
      return event_field_error(static_cast<event_field>(i), "is missing");
    }
  }
  return {};
}

}  // namespace detail

/// Writes the event with the API's field names, in the API's order when the
/// JSON type keeps order (`nlohmann::ordered_json`), unknown fields after them.
/// A template on the JSON type, so that the SDK's headers need no JSON library:
/// include yours and `nlohmann::json j = event;` finds it.
template <typename BasicJsonType>
void to_json(BasicJsonType& j, const access_event& event) {
  j = BasicJsonType::object();
  j["id"] = event.id.to_string();
  j["action"] = event.action == access_action::unknown ? event.action_text
                                                        : std::string(to_string(event.action));
  j["created"] = format_timestamp(event.created);
  j["keyId"] = event.key_id.to_string();
  j["lockId"] = event.lock_id.to_string();
  j["lockName"] = event.lock_name;
  j["appUserId"] = event.app_user_id ? BasicJsonType(*event.app_user_id) : BasicJsonType();
  j["userName"] = event.user_name ? BasicJsonType(*event.user_name) : BasicJsonType();
  for (const auto& member : event.extra) {
    if (detail::event_field_from_key(member.name) != detail::event_field::unknown) continue;
    j[member.name] = BasicJsonType::parse(member.value);
  }
}

/// Reads an event from trusted JSON (nlohmann's convention: throws
/// `std::invalid_argument` naming the field on invalid input). For bodies
/// from the network use `parse_access_event`, which never throws.
template <typename BasicJsonType>
void from_json(const BasicJsonType& j, access_event& event) {
  if (!j.is_object()) throw std::invalid_argument("an Access Event must be a JSON object");
  access_event out;
  unsigned seen = 0;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto field = detail::event_field_from_key(it.key());
    if (field == detail::event_field::unknown) {
      out.extra.push_back({it.key(), it->dump()});
      continue;
    }
    seen |= 1U << static_cast<unsigned>(field);
    result<void> set = it->is_null()     ? detail::set_event_field_null(out, field)
                       : it->is_string() ? detail::set_event_field(
                                               out, field, it->template get<std::string>())
                                         : result<void>(detail::event_field_error(
                                               field, std::string("must be a string, got ") +
                                                          it->type_name()));
    if (!set) throw std::invalid_argument(set.error().message);
  }
  if (auto required = detail::check_required_event_fields(seen); !required) {
    throw std::invalid_argument(required.error().message);
  }
  event = std::move(out);
}

/// The event as compact JSON text, fields in the API's order, unknown fields
/// after them with their text as kept (one named like a known field is left
/// out). The known fields are written as `to_json` into
/// `nlohmann::ordered_json` and `dump` with invalid UTF-8 replaced write them.
[[nodiscard]] inline std::string to_json_text(const access_event& event) {
  std::string out;
  out.reserve(320);
  const auto field = [&out](std::string_view name, const std::optional<std::string_view>& value) {
    out += out.empty() ? "{\"" : ",\"";
    out += name;
    out += "\":";
    if (value) {
      detail::append_json_string(out, *value);
    } else {
      out += "null";
    }
  };
  field("id", event.id.to_string());
  field("action",
        event.action == access_action::unknown ? event.action_text : to_string(event.action));
  field("created", format_timestamp(event.created));
  field("keyId", event.key_id.to_string());
  field("lockId", event.lock_id.to_string());
  field("lockName", event.lock_name);
  field("appUserId", event.app_user_id);
  field("userName", event.user_name);
  for (const auto& member : event.extra) {
    if (detail::event_field_from_key(member.name) != detail::event_field::unknown) continue;
    out += ',';
    detail::append_json_string(out, member.name);
    out += ':';
    out += member.value;
  }
  out += '}';
  return out;
}

UNLOC_END_NAMESPACE

#pragma once

/// @file
/// The Access Event: what Unloc reports each time a User opens or locks a Lock
/// with a Key, live through a webhook and afterwards in the 30-day access log.

#include <unloc/detail/json_reader.hpp>
#include <unloc/detail/text.hpp>
#include <unloc/error.hpp>
#include <unloc/json_member.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/uuid.hpp>
#include <unloc/version.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>  // std::size too: <iterator> would bring the streams
#include <utility>
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
  for (std::size_t i = out.size(); i-- > 0;) {
    if (out[i] >= '0' && out[i] <= '9' && ++digits_left > 2) out[i] = '*';
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

// The Access Event as read from untrusted JSON: one description that the strict
// reader (parse_access_event, access-log pages) and from_json both go by, so
// that the two can never disagree.

[[nodiscard]] inline access_event& event_at(void* target) noexcept {
  return *static_cast<access_event*>(target);
}

// The 36-character form (either case), a table lookup a digit: an event holds
// three. False for anything else, which uuid::parse then reads or names.
[[nodiscard]] inline bool read_canonical_uuid(std::string_view text, uuid& out) noexcept {
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' ||
      text[23] != '-') {
    return false;
  }
  // A bad digit is negative, and is looked for once at the end rather than at every digit.
  std::array<std::uint8_t, 16> bytes{};
  int bad = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const int high = hex_digit_value(text[uuid_digit_starts[i]]);
    const int low = hex_digit_value(text[uuid_digit_starts[i] + 1U]);
    bad |= high | low;
    // Unsigned: a bad digit's -1 is shifted too (then dropped), which a signed shift may not be.
    bytes[i] =
        static_cast<std::uint8_t>((static_cast<unsigned>(high) << 4) | static_cast<unsigned>(low));
  }
  if (bad < 0) return false;
  out = uuid(bytes);
  return true;
}

[[nodiscard]] inline std::string store_event_uuid(uuid& out, std::string_view text) {
  if (read_canonical_uuid(text, out)) return {};
  auto parsed = uuid::parse(text);
  if (!parsed) return "is not a UUID: " + quoted(text);
  out = *parsed;
  return {};
}

[[nodiscard]] inline std::string store_event_optional(std::optional<std::string>& out,
                                                      json_scalar value) {
  if (value.null) {
    out.reset();
  } else {
    out.emplace(value.text);
  }
  return {};
}

// The eight fields of the contract, in the API's order.
inline constexpr json_field event_fields[] = {
    {"id", json_kind::string, true, false,
     [](void* e, json_scalar v) { return store_event_uuid(event_at(e).id, v.text); }},
    {"action", json_kind::string, true, false,
     [](void* e, json_scalar v) -> std::string {
       if (v.text.empty()) return "must not be empty";
       event_at(e).action = parse_access_action(v.text);
       event_at(e).action_text.assign(v.text);
       return {};
     }},
    {"created", json_kind::string, true, false,
     [](void* e, json_scalar v) -> std::string {
       auto parsed = parse_timestamp(v.text);
       if (!parsed) return "is not an RFC 3339 timestamp: " + quoted(v.text);
       event_at(e).created = *parsed;
       return {};
     }},
    {"keyId", json_kind::string, true, false,
     [](void* e, json_scalar v) { return store_event_uuid(event_at(e).key_id, v.text); }},
    {"lockId", json_kind::string, true, false,
     [](void* e, json_scalar v) { return store_event_uuid(event_at(e).lock_id, v.text); }},
    {"lockName", json_kind::string, true, false,
     [](void* e, json_scalar v) -> std::string {
       event_at(e).lock_name.assign(v.text);
       return {};
     }},
    {"appUserId", json_kind::string, false, true,
     [](void* e, json_scalar v) { return store_event_optional(event_at(e).app_user_id, v); }},
    {"userName", json_kind::string, false, true,
     [](void* e, json_scalar v) { return store_event_optional(event_at(e).user_name, v); }},
};

inline constexpr json_object event_object{
    "an Access Event", event_fields, std::size(event_fields),
    [](void* e, std::string&& name, std::string&& value) {
      event_at(e).extra.push_back({std::move(name), std::move(value)});
    }};

// A name the event has a field for (kept out of `extra` when written).
[[nodiscard]] inline bool is_event_field(std::string_view name) noexcept {
  return find_field(event_object, name) != nullptr;
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
    if (detail::is_event_field(member.name)) continue;
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
  std::uint32_t seen = 0;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto* field = detail::find_field(detail::event_object, it.key());
    if (field == nullptr) {
      out.extra.push_back({it.key(), it->dump()});
      continue;
    }
    seen |= std::uint32_t{1} << (field - detail::event_fields);
    std::string why;
    if (it->is_string()) {
      why = field->store(&out, {false, it->template get_ref<const std::string&>()});
    } else if (it->is_null() && field->nullable) {
      why = field->store(&out, {true, {}});
    } else {
      why = std::string("must be a string, got ") + (it->is_null() ? "null" : it->type_name());
    }
    if (!why.empty()) throw std::invalid_argument(detail::field_message(field->name, why));
  }
  if (const auto* missing = detail::missing_field(detail::event_object, seen)) {
    throw std::invalid_argument(detail::field_message(missing->name, "is missing"));
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
  const auto text_or_null = [&out](const std::optional<std::string>& value) {
    if (value) {
      detail::append_json_string(out, *value);
    } else {
      out += "null";
    }
  };
  // UUIDs and the timestamp need no escaping: written in place, between quotes.
  out += R"({"id":")";
  detail::append_uuid(out, event.id);
  out += R"(","action":)";
  detail::append_json_string(
      out, event.action == access_action::unknown ? event.action_text : to_string(event.action));
  out += R"(,"created":")";
  detail::append_timestamp(out, event.created);
  out += R"(","keyId":")";
  detail::append_uuid(out, event.key_id);
  out += R"(","lockId":")";
  detail::append_uuid(out, event.lock_id);
  out += R"(","lockName":)";
  detail::append_json_string(out, event.lock_name);
  out += ",\"appUserId\":";
  text_or_null(event.app_user_id);
  out += ",\"userName\":";
  text_or_null(event.user_name);
  for (const auto& member : event.extra) {
    if (detail::is_event_field(member.name)) continue;
    out += ',';
    detail::append_json_string(out, member.name);
    out += ':';
    out += member.value;
  }
  out += '}';
  return out;
}

UNLOC_END_NAMESPACE

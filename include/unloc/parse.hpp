#pragma once

/// @file
/// Reading untrusted JSON (a webhook body, an API response) into models,
/// without exceptions: every failure is an `error` naming the reason.

#include <unloc/access_event.hpp>
#include <unloc/detail/event_reader.hpp>
#include <unloc/error.hpp>
#include <unloc/token.hpp>
#include <unloc/version.hpp>
#include <unloc/webhook.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE

/// Bounds on what a parser accepts from the network.
struct parse_limits {
  /// The deepest nesting of objects and arrays accepted (an event is 1 deep,
  /// an access-log page 3; unknown fields may nest further).
  std::size_t max_depth = 32;
};

namespace detail {

/// Why reading failed: the text is not JSON (or not UTF-8), or it is JSON but
/// not the expected shape.
enum class read_failure : unsigned char { none, syntax, schema };

template <typename OnEvent>
[[nodiscard]] inline read_failure read_events(std::string_view text, reader_shape shape,
                                              const parse_limits& limits, OnEvent&& on_event,
                                              error& err,
                                              std::optional<std::string>* next_cursor) {
  try {
    event_sax_reader<OnEvent&> reader(shape, limits.max_depth, on_event);
    const bool parsed = nlohmann::json::sax_parse(text.begin(), text.end(), &reader);
    switch (reader.state()) {
      case reader_state::ok: break;
      case reader_state::syntax_error: err = reader.take_error(); return read_failure::syntax;
      case reader_state::schema_error:
      case reader_state::stopped: err = reader.take_error(); return read_failure::schema;
    }
    if (!parsed) {
      err = make_error(error_category::invalid_input, "body is not valid JSON");
      return read_failure::syntax;
    }
    if (shape == reader_shape::page && !reader.saw_events()) {
      err = make_error(error_category::invalid_input, "field 'accessEvents' is missing",
                       "accessEvents");
      return read_failure::schema;
    }
    if (next_cursor != nullptr) *next_cursor = std::move(reader.next_cursor());
    return read_failure::none;
  } catch (const std::bad_alloc&) {
    err = make_error(error_category::internal, "out of memory while reading JSON");
  } catch (const std::exception& e) {
    err = make_error(error_category::internal, std::string("unexpected failure reading JSON: ") +
                                                   e.what());
  }
  return read_failure::schema;
}

/// One event from `text`; `failure` says why it failed, if it did.
[[nodiscard]] inline result<access_event> read_access_event(std::string_view text,
                                                            const parse_limits& limits,
                                                            read_failure& failure) {
  std::optional<access_event> event;
  error err;
  failure = read_events(
      text, reader_shape::event, limits,
      [&event](access_event&& e) {
        event = std::move(e);
        return true;
      },
      err, nullptr);
  if (failure != read_failure::none) return err;
  return std::move(*event);
}

}  // namespace detail

/// Reads one Access Event from JSON text. Rejects non-UTF-8, invalid JSON,
/// duplicate keys, nesting deeper than `limits.max_depth`, a required field
/// missing or of the wrong type, and malformed UUIDs and timestamps; accepts
/// unknown actions and unknown fields (kept in `access_event::extra`).
[[nodiscard]] inline result<access_event> parse_access_event(std::string_view json_text,
                                                             parse_limits limits = {}) {
  detail::read_failure failure{};
  return detail::read_access_event(json_text, limits, failure);
}

/// Reads an access-log page `{"accessEvents":[…],"nextCursor":…}`, handing
/// each event to `on_event(access_event&&)` as soon as it is read, so memory
/// stays bounded by one event; `on_event` returns false to stop. Returns the
/// next page's cursor (none on the last page).
template <typename OnEvent>
[[nodiscard]] result<std::optional<std::string>> read_access_log_page(
    std::string_view json_text, OnEvent&& on_event, parse_limits limits = {}) {
  error err;
  std::optional<std::string> cursor;
  if (detail::read_events(json_text, detail::reader_shape::page, limits, on_event, err, &cursor) !=
      detail::read_failure::none) {
    return err;
  }
  return cursor;
}

/// Reads a whole access-log page into memory.
[[nodiscard]] inline result<access_log_page> parse_access_log_page(std::string_view json_text,
                                                                   parse_limits limits = {}) {
  access_log_page page;
  auto cursor = read_access_log_page(
      json_text,
      [&page](access_event&& e) {
        page.events.push_back(std::move(e));
        return true;
      },
      limits);
  if (!cursor) return cursor.error();
  page.next_cursor = std::move(*cursor);
  return page;
}

namespace detail {

inline error response_error(std::string message, std::string field = {}) {
  return make_error(error_category::invalid_response, std::move(message), std::move(field));
}

/// JSON from the network, parsed without exceptions; an error when it is not JSON.
[[nodiscard]] inline result<nlohmann::json> parse_json_document(std::string_view text) {
  auto doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded()) return response_error("response body is not valid JSON");
  return doc;
}

}  // namespace detail

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

/// Reads a token endpoint response; `expires_in` is counted from `now`.
[[nodiscard]] inline result<access_token> parse_access_token(
    std::string_view json_text,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
  auto doc = detail::parse_json_document(json_text);
  if (!doc) return doc.error();
  if (!doc->is_object()) return detail::response_error("a token response must be a JSON object");
  access_token out;
  const auto value = doc->find("access_token");
  if (value == doc->end() || !value->is_string() || value->get_ref<const std::string&>().empty()) {
    return detail::response_error("field 'access_token' is missing or not a string", "access_token");
  }
  out.value = value->get<std::string>();
  if (const auto type = doc->find("token_type"); type != doc->end()) {
    if (!type->is_string() || !detail::ascii_iequals(type->get_ref<const std::string&>(), "bearer")) {
      return detail::response_error("field 'token_type' must be 'bearer'", "token_type");
    }
  }
  const auto expires = doc->find("expires_in");
  if (expires == doc->end() || !expires->is_number() || expires->get<double>() < 0 ||
      expires->get<double>() > 1e9) {
    return detail::response_error("field 'expires_in' must be a number of seconds", "expires_in");
  }
  out.expires_at = now + std::chrono::seconds(expires->get<long long>());
  if (const auto scope = doc->find("scope"); scope != doc->end()) {
    if (scope->is_string()) {
      out.scope = detail::split_scope(scope->get_ref<const std::string&>());
    } else if (scope->is_array()) {
      for (const auto& s : *scope) {
        if (s.is_string()) out.scope.push_back(s.get<std::string>());
      }
    }
  }
  if (const auto project = doc->find("project_id"); project != doc->end() && project->is_string()) {
    out.project_id = project->get<std::string>();
  }
  return out;
}

UNLOC_END_NAMESPACE

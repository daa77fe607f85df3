#pragma once

/// @file
/// Reading untrusted JSON (a webhook body, an access-log page, an API error)
/// without exceptions: every failure is an `error` naming the reason. One
/// strict reader serves every body, each described beside its model: the
/// Access Event in access_event.hpp, `parse_webhook` in webhook.hpp,
/// `parse_access_token` in token.hpp.

#include <unloc/access_event.hpp>
#include <unloc/detail/json_reader.hpp>
#include <unloc/error.hpp>
#include <unloc/version.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>  // std::size too: <iterator> would bring the streams
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

/// Nesting accepted in the API's responses (a webhook list is 3 deep).
inline constexpr std::size_t max_response_depth = 32;

/// A body received (a delivery) that did not read: invalid input.
[[nodiscard]] UNLOC_DETAIL_COLD inline error input_error(read_error&& e) {
  return make_error(
      e.status == read_status::internal ? error_category::internal : error_category::invalid_input,
      e.take_message(), std::move(e.field));
}

/// An API response that did not read: an invalid response.
[[nodiscard]] UNLOC_DETAIL_COLD inline error response_error(read_error&& e) {
  std::string message = e.take_message();
  if (e.status == read_status::syntax) message.insert(0, "response ");
  return make_error(e.status == read_status::internal ? error_category::internal
                                                      : error_category::invalid_response,
                    std::move(message), std::move(e.field));
}

/// One event from `text`; `status` says how reading ended (syntax: 400, else 422).
[[nodiscard]] inline result<access_event> read_access_event(std::string_view text,
                                                            const parse_limits& limits,
                                                            read_status& status) {
  access_event event;
  read_error e = read_json(text, event_object, &event, limits.max_depth);
  status = e.status;
  if (e.failed()) return input_error(std::move(e));
  return event;
}

/// Where a page's events go, one by one: `handle(context, event)`, false to
/// stop. A function pointer rather than a template parameter, so that the
/// reader is compiled once per translation unit, not once per callback.
struct event_sink {
  void* context = nullptr;
  bool (*handle)(void* context, access_event&& event) = nullptr;
};

/// An access-log page being read: one event at a time, so memory stays
/// bounded by one event.
struct page_reading {
  event_sink sink;
  access_event event;
  std::optional<std::string> next_cursor;
};

[[nodiscard]] inline page_reading& page_at(void* target) noexcept {
  return *static_cast<page_reading*>(target);
}

/// `{"accessEvents":[…],"nextCursor":string|null}`; other members checked, dropped.
inline constexpr json_field page_fields[] = {
    {"accessEvents", json_kind::objects, true, false, nullptr, &event_object,
     [](void* page) -> void* {
       page_at(page).event = access_event{};
       return &page_at(page).event;
     },
     [](void* page) {
       page_reading& p = page_at(page);
       return p.sink.handle(p.sink.context, std::move(p.event));
     }},
    {"nextCursor", json_kind::string, false, true,
     [](void* page, json_scalar v) -> std::string {
       if (v.null) {
         page_at(page).next_cursor.reset();
       } else {
         page_at(page).next_cursor.emplace(v.text);
       }
       return {};
     }},
};

inline constexpr json_object page_object{"an access-log page", page_fields, std::size(page_fields)};

/// Reads a page, each event to `on_event` (false to stop); its cursor to `cursor`.
template <typename OnEvent>
[[nodiscard]] read_error read_events(std::string_view text, const parse_limits& limits,
                                     OnEvent& on_event, std::optional<std::string>& cursor) {
  page_reading page{{const_cast<void*>(static_cast<const void*>(&on_event)),
                     [](void* context, access_event&& e) -> bool {
                       return (*static_cast<OnEvent*>(context))(std::move(e));
                     }},
                    {},
                    {}};
  read_error e = read_json(text, page_object, &page, limits.max_depth);
  if (!e.failed()) cursor = std::move(page.next_cursor);
  return e;
}

/// An API error body `{"error":"<code>","message":"<text>"}`.
struct api_error_body {
  std::string code;
  std::string message;
};

inline constexpr json_field api_error_fields[] = {
    {"error", json_kind::string, false, false,
     [](void* body, json_scalar v) -> std::string {
       static_cast<api_error_body*>(body)->code.assign(v.text);
       return {};
     }},
    {"message", json_kind::string, false, false,
     [](void* body, json_scalar v) -> std::string {
       static_cast<api_error_body*>(body)->message.assign(v.text);
       return {};
     }},
};

inline constexpr json_object api_error_object{"an API error", api_error_fields,
                                              std::size(api_error_fields)};

/// Sets e.api_code and e.api_message from an error response's body, when it
/// is an API error; leaves them empty otherwise.
inline void read_api_error(std::string_view body, error& e) {
  api_error_body read;
  if (read_json(body, api_error_object, &read, max_response_depth).failed()) return;
  e.api_code = std::move(read.code);
  e.api_message = std::move(read.message);
}

}  // namespace detail

/// Reads one Access Event from JSON text. Rejects non-UTF-8, invalid JSON,
/// duplicate keys, nesting deeper than `limits.max_depth`, a required field
/// missing or of the wrong type, and malformed UUIDs and timestamps; accepts
/// unknown actions and unknown fields (kept in `access_event::extra`).
[[nodiscard]] inline result<access_event> parse_access_event(std::string_view json_text,
                                                             parse_limits limits = {}) {
  detail::read_status status{};
  return detail::read_access_event(json_text, limits, status);
}

/// Reads an access-log page `{"accessEvents":[…],"nextCursor":…}`, handing
/// each event to `on_event(access_event&&)` as soon as it is read, so memory
/// stays bounded by one event; `on_event` returns false to stop. Returns the
/// next page's cursor (none on the last page).
template <typename OnEvent>
[[nodiscard]] result<std::optional<std::string>> read_access_log_page(std::string_view json_text,
                                                                      OnEvent&& on_event,
                                                                      parse_limits limits = {}) {
  std::optional<std::string> cursor;
  detail::read_error e = detail::read_events(json_text, limits, on_event, cursor);
  if (e.failed()) return detail::input_error(std::move(e));
  return cursor;
}

namespace detail {

/// The shortest JSON text of a valid Access Event: its six required fields, three
/// UUIDs, a one-letter action, a timestamp without fraction and an empty lock name.
inline constexpr std::size_t min_event_json_bytes = 200;

}  // namespace detail

/// Reads a whole access-log page into memory.
[[nodiscard]] inline result<access_log_page> parse_access_log_page(std::string_view json_text,
                                                                   parse_limits limits = {}) {
  access_log_page page;
  // Room for as many events as the text can hold, once: growing by doubling would
  // hold the old and the new array at once, over the size of the input.
  page.events.reserve(json_text.size() / detail::min_event_json_bytes);
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

UNLOC_END_NAMESPACE

#pragma once

/// @file
/// Reading Access Events from untrusted JSON (a webhook body, an access-log
/// page) without exceptions: every failure is an `error` naming the reason.
/// The API's other responses are read next to their models: `parse_webhook`
/// in webhook.hpp, `parse_access_token` in token.hpp.

#include <unloc/access_event.hpp>
#include <unloc/detail/event_reader.hpp>
#include <unloc/error.hpp>
#include <unloc/version.hpp>

#include <cstddef>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
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
    using callback = std::remove_reference_t<OnEvent>;
    const event_sink sink{const_cast<void*>(static_cast<const void*>(&on_event)),
                          [](void* context, access_event&& e) -> bool {
                            return (*static_cast<callback*>(context))(std::move(e));
                          }};
    event_reader reader(text, shape, limits.max_depth, sink);
    reader.read();
    switch (reader.state()) {
      case reader_state::ok: break;
      case reader_state::syntax_error: err = reader.take_error(); return read_failure::syntax;
      case reader_state::schema_error:
      case reader_state::stopped: err = reader.take_error(); return read_failure::schema;
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

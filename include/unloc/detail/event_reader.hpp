#pragma once

// Reads untrusted text straight into access_event values with the strict
// json_reader: no DOM, a UUID or a timestamp read from a view of the input
// without a copy, unknown fields kept as compact JSON text. Serves a single
// event (a webhook delivery) and an access-log page, event by event.

#include <unloc/access_event.hpp>
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
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

UNLOC_BEGIN_NAMESPACE
namespace detail {

enum class reader_shape : std::uint8_t { event, page };

// Where complete events go: `handle(context, event)`, false to stop reading. A
// function pointer rather than a template parameter, so that the reader is
// compiled once per translation unit, not once per caller's callback.
struct event_sink {
  void* context;
  bool (*handle)(void* context, access_event&& event);
};

class event_reader : public json_reader {
 public:
  event_reader(std::string_view text, reader_shape shape, std::size_t max_depth, event_sink sink)
      : json_reader(text, max_depth), shape_(shape), sink_(sink) {}

  // Reads the whole text: one JSON value, then nothing but whitespace.
  void read() {
    if (shape_ == reader_shape::event) {
      read_document("an Access Event", [this] { return read_event(1); });
    } else {
      read_document("an access-log page", [this] { return read_page(); });
    }
  }

  [[nodiscard]] std::optional<std::string>& next_cursor() noexcept { return next_cursor_; }
  // After a successful read: whether the page carried its events array.
  [[nodiscard]] bool saw_events() const noexcept { return saw_events_; }

 private:
  // Each returns false when reading must stop.

  bool read_page() {
    return read_members(1, [this](std::string_view key) {
      if (!page_keys_.insert(std::string(key)).second) {
        return fail_duplicate(key) && read_value(nullptr, 1);
      }
      if (key == "accessEvents") {
        if (peek() != '[') {
          return fail_schema("field 'accessEvents' must be an array", "accessEvents") &&
                 read_value(nullptr, 1);
        }
        saw_events_ = true;
        return read_elements(2, [this] {
          if (peek() == '{') return read_event(3);
          return fail_schema("accessEvents must hold objects", "accessEvents") &&
                 read_value(nullptr, 2);
        });
      }
      if (key == "nextCursor") {
        if (peek() == 'n') return read_literal("null");
        if (peek() != '"') {
          return fail_schema("field 'nextCursor' must be a string or null", "nextCursor") &&
                 read_value(nullptr, 1);
        }
        std::string_view cursor;
        if (!read_string(cursor)) return false;
        next_cursor_ = std::string(cursor);
        return true;
      }
      std::string dropped;  // an unknown page field: read, checked, dropped
      return read_value(ok() ? &dropped : nullptr, 1);
    });
  }

  bool read_event(std::size_t depth) {
    event_ = access_event{};
    seen_ = 0;
    if (!extra_names_.empty()) extra_names_ = {};
    const bool read =
        read_members(depth, [this, depth](std::string_view key) { return read_event_field(key, depth); });
    if (!read || !ok()) return read;
    if (auto required = check_required_event_fields(seen_); !required) {
      return apply(std::move(required));
    }
    return sink_.handle(sink_.context, std::move(event_)) || stop();
  }

  bool read_event_field(std::string_view key, std::size_t depth) {
    if (!ok()) return read_value(nullptr, depth);
    const event_field field = event_field_from_key(key);
    if (field == event_field::unknown) return keep_member(key, depth, extra_names_, event_.extra);
    const unsigned bit = 1U << static_cast<unsigned>(field);
    if ((seen_ & bit) != 0) return fail_duplicate(key) && read_value(nullptr, depth);
    seen_ |= bit;
    switch (peek()) {
      case '"': {
        std::string_view text;
        return read_string(text) && apply(set_field(field, text));
      }
      case 'n': return read_literal("null") && apply(set_event_field_null(event_, field));
      default:
        return apply(event_field_error(field,
                                       std::string("must be a string, got ") + kind_at(peek()))) &&
               read_value(nullptr, depth);
    }
  }

  // UUIDs and timestamps straight from the input; anything else (and every
  // failure, for its message) through the table that from_json uses too.
  result<void> set_field(event_field field, std::string_view text) {
    uuid* target = field == event_field::id        ? &event_.id
                   : field == event_field::key_id  ? &event_.key_id
                   : field == event_field::lock_id ? &event_.lock_id
                                                   : nullptr;
    if (target != nullptr) {
      if (read_canonical_uuid(text, *target)) return {};
    } else if (field == event_field::created) {
      if (auto parsed = parse_timestamp(text)) {
        event_.created = *parsed;
        return {};
      }
    }
    return set_event_field(event_, field, std::string(text));
  }

  // The 36-character form (either case), a table lookup a digit: an event holds
  // three. False for anything else, which uuid::parse then reads or names.
  static bool read_canonical_uuid(std::string_view text, uuid& out) noexcept {
    if (text.size() != 36) return false;
    std::array<std::uint8_t, 16> bytes{};
    std::size_t at = 0;
    for (auto& byte : bytes) {
      if (at == 8 || at == 13 || at == 18 || at == 23) {
        if (text[at++] != '-') return false;
      }
      const int high = hex_digit_value(text[at]);
      const int low = hex_digit_value(text[at + 1]);
      if (high < 0 || low < 0) return false;
      byte = static_cast<std::uint8_t>((high << 4) | low);
      at += 2;
    }
    out = uuid(bytes);
    return true;
  }

  reader_shape shape_;
  event_sink sink_;

  access_event event_;
  unsigned seen_ = 0;
  std::unordered_set<std::string> extra_names_;  // of the event being read: a set, they may be many
  std::unordered_set<std::string> page_keys_;    // a set: a page may hold many unknown keys
  bool saw_events_ = false;
  std::optional<std::string> next_cursor_;
};

}  // namespace detail
UNLOC_END_NAMESPACE

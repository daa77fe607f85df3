#pragma once

// The access log: Access Events indexed newest first, per project and per
// Lock, and the opaque cursor that pages through them. Not thread-safe: the
// store holds it behind its mutex.

#include <unloc/access_event.hpp>
#include <unloc/uuid.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace refserver {

/// Where an event sits in the log: the order is `created` descending, then `id` ascending.
struct log_position {
  std::int64_t created_ms = 0;
  unloc::uuid id;
};

/// The log's order: newest first, ties broken by id.
struct newest_first {
  bool operator()(const log_position& a, const log_position& b) const noexcept {
    if (a.created_ms != b.created_ms) return a.created_ms > b.created_ms;
    return a.id < b.id;
  }
};

/// One page request, already validated and clamped.
struct log_query {
  std::optional<unloc::uuid> lock_id;  ///< Only this Lock's events.
  std::int64_t from_ms = 0;            ///< Inclusive.
  std::optional<std::int64_t> to_ms;   ///< Exclusive.
  std::optional<log_position> after;   ///< Continue after this position (a cursor).
  std::size_t limit = 100;
};

/// One page: copies of the events, and the position to continue from when more follow.
struct log_page {
  std::vector<unloc::access_event> events;
  std::optional<log_position> next;
};

/// The events of the log, indexed for paging.
class event_log {
 public:
  /// Adds an event; false when an event with its id is already there.
  bool add(unloc::access_event event);
  /// The page `query` asks for.
  [[nodiscard]] log_page page(const log_query& query) const;
  /// How many events are stored.
  [[nodiscard]] std::size_t size() const noexcept { return events_.size(); }
  /// Forgets every event.
  void clear();

 private:
  std::map<log_position, unloc::access_event, newest_first> events_;
  std::unordered_map<unloc::uuid, std::set<log_position, newest_first>> by_lock_;
  std::unordered_map<unloc::uuid, std::int64_t> created_by_id_;
};

/// What a cursor carries: where the last page ended, and the query's window,
/// so that later pages answer the same query however many events are recorded meanwhile.
struct log_cursor {
  log_position after;
  std::int64_t from_ms = 0;
  std::optional<std::int64_t> to_ms;
  std::optional<unloc::uuid> lock_id;
};

/// The cursor as opaque text (base64url of a small JSON object).
[[nodiscard]] std::string encode_cursor(const log_cursor& cursor);
/// Reads a cursor made by `encode_cursor`; nothing when the text is not one.
[[nodiscard]] std::optional<log_cursor> decode_cursor(std::string_view text);

}  // namespace refserver

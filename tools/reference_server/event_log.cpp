#include "event_log.hpp"

#include "util.hpp"
#include <nlohmann/json.hpp>

#include <utility>

namespace refserver {
namespace {

// Walks `index` (a map or set keyed by log_position) from where `query` starts;
// `event_at` turns an iterator into its event.
template <typename Index, typename EventAt>
log_page collect(const Index& index, const log_query& query, EventAt event_at) {
  log_page page;
  auto it = index.begin();
  if (query.after) {
    it = index.upper_bound(*query.after);
  } else if (query.to_ms) {
    // The first position with created < to: created <= to - 1, smallest id first.
    it = index.lower_bound(log_position{*query.to_ms - 1, unloc::uuid{}});
  }
  page.events.reserve(query.limit);
  const log_position* last = nullptr;
  for (; it != index.end(); ++it) {
    const log_position& position = event_at.position(it);
    if (position.created_ms < query.from_ms) break;
    if (query.to_ms && position.created_ms >= *query.to_ms) continue;  // a forged cursor only
    if (page.events.size() == query.limit) {
      page.next = *last;
      break;
    }
    page.events.push_back(event_at.event(it));
    last = &position;
  }
  return page;
}

struct map_access {
  template <typename It>
  const log_position& position(It it) const {
    return it->first;
  }
  template <typename It>
  const unloc::access_event& event(It it) const {
    return it->second;
  }
};

struct set_access {
  const std::map<log_position, unloc::access_event, newest_first>& events;
  template <typename It>
  const log_position& position(It it) const {
    return *it;
  }
  template <typename It>
  const unloc::access_event& event(It it) const {
    return events.at(*it);
  }
};

}  // namespace

bool event_log::add(unloc::access_event event) {
  const log_position position{millis(event.created), event.id};
  if (!created_by_id_.emplace(event.id, position.created_ms).second) return false;
  by_lock_[event.lock_id].insert(position);
  events_.emplace(position, std::move(event));
  return true;
}

log_page event_log::page(const log_query& query) const {
  if (query.lock_id) {
    const auto lock = by_lock_.find(*query.lock_id);
    if (lock == by_lock_.end()) return {};
    return collect(lock->second, query, set_access{events_});
  }
  return collect(events_, query, map_access{});
}

void event_log::clear() {
  events_.clear();
  by_lock_.clear();
  created_by_id_.clear();
}

std::string encode_cursor(const log_cursor& cursor) {
  nlohmann::json j = {{"v", 1},
                      {"c", cursor.after.created_ms},
                      {"i", cursor.after.id.to_string()},
                      {"f", cursor.from_ms}};
  j["t"] = cursor.to_ms ? nlohmann::json(*cursor.to_ms) : nlohmann::json();
  j["l"] = cursor.lock_id ? nlohmann::json(cursor.lock_id->to_string()) : nlohmann::json();
  return base64url_encode(j.dump());
}

std::optional<log_cursor> decode_cursor(std::string_view text) {
  if (text.empty() || text.size() > 1024) return std::nullopt;
  const auto raw = base64url_decode(text);
  if (!raw) return std::nullopt;
  const auto j = nlohmann::json::parse(*raw, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  const auto integer = [&j](const char* key) -> const nlohmann::json* {
    const auto it = j.find(key);
    return it != j.end() && it->is_number_integer() ? &*it : nullptr;
  };
  const auto text_at = [&j](const char* key) -> const std::string* {
    const auto it = j.find(key);
    return it != j.end() ? it->get_ptr<const std::string*>() : nullptr;
  };
  const auto* version = integer("v");
  const auto* created = integer("c");
  const auto* from = integer("f");
  const auto* id = text_at("i");
  if (version == nullptr || version->get<long long>() != 1 || created == nullptr ||
      from == nullptr || id == nullptr) {
    return std::nullopt;
  }
  log_cursor cursor;
  const auto parsed_id = unloc::uuid::parse(*id);
  if (!parsed_id) return std::nullopt;
  cursor.after = log_position{created->get<std::int64_t>(), *parsed_id};
  cursor.from_ms = from->get<std::int64_t>();
  if (const auto* to = integer("t")) {
    cursor.to_ms = to->get<std::int64_t>();
  } else if (const auto it = j.find("t"); it == j.end() || !it->is_null()) {
    return std::nullopt;
  }
  if (const auto* lock = text_at("l")) {
    const auto parsed_lock = unloc::uuid::parse(*lock);
    if (!parsed_lock) return std::nullopt;
    cursor.lock_id = *parsed_lock;
  } else if (const auto it = j.find("l"); it == j.end() || !it->is_null()) {
    return std::nullopt;
  }
  return cursor;
}

}  // namespace refserver

#pragma once

/// @file
/// Remembering which Access Events were already handed over, so that a
/// repeated delivery is acknowledged without being acted on twice.

#include <unloc/timestamp.hpp>
#include <unloc/uuid.hpp>
#include <unloc/version.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <utility>

UNLOC_BEGIN_NAMESPACE

/// The set of event ids already seen. Implementations must be safe to call
/// from many threads at once, and `insert` must be atomic: of two concurrent
/// inserts of one id, exactly one returns true. Replace the in-memory store
/// with one over a shared database when several receivers run.
class duplicate_store {
 public:
  virtual ~duplicate_store() = default;
  /// Records `id` (of an event created at `created`); true when it was new,
  /// false when it had been seen already.
  virtual bool insert(const uuid& id, timestamp created) = 0;
  /// Forgets `id`, so that its next delivery counts as new: call it when
  /// handling a new event failed and the delivery is answered with an error.
  virtual void erase(const uuid& id) = 0;
  /// True when `id` is remembered.
  [[nodiscard]] virtual bool contains(const uuid& id) const = 0;
};

/// A `duplicate_store` in memory, bounded by count and by age: an id is
/// forgotten `max_age` after it was first seen, and the oldest ids go first
/// when `max_entries` is reached. Thread-safe.
class memory_duplicate_store final : public duplicate_store {
 public:
  /// The store's clock, replaceable in tests.
  using clock_function = std::function<std::chrono::steady_clock::time_point()>;

  /// Keeps at most `max_entries` ids, each for at most `max_age` (default:
  /// a day past the access log's 30 days, the longest Unloc may redeliver).
  explicit memory_duplicate_store(std::size_t max_entries = 100'000,
                                  std::chrono::milliseconds max_age = std::chrono::hours(24 * 31),
                                  clock_function clock = &std::chrono::steady_clock::now)
      : max_entries_(max_entries == 0 ? 1 : max_entries),
        max_age_(max_age),
        clock_(std::move(clock)) {}

  bool insert(const uuid& id, timestamp /*created*/) override {
    const auto now = clock_();
    const std::lock_guard<std::mutex> lock(mutex_);
    expire(now);
    if (!ids_.emplace(id, next_sequence_).second) return false;
    order_.push_back(entry{id, now, next_sequence_++});
    while (ids_.size() > max_entries_) evict_oldest();
    if (order_.size() > 2 * max_entries_) drop_stale_entries();
    return true;
  }

  void erase(const uuid& id) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    ids_.erase(id);  // its entry in order_ is skipped when it comes up
  }

  [[nodiscard]] bool contains(const uuid& id) const override {
    const auto now = clock_();
    const std::lock_guard<std::mutex> lock(mutex_);
    expire(now);
    return ids_.count(id) != 0;
  }

  /// How many ids are remembered.
  [[nodiscard]] std::size_t size() const {
    const auto now = clock_();
    const std::lock_guard<std::mutex> lock(mutex_);
    expire(now);
    return ids_.size();
  }

 private:
  // Forgetting expired ids does not change what the store means, so const callers may do it.
  void expire(std::chrono::steady_clock::time_point now) const {
    while (!order_.empty() && now - order_.front().first_seen >= max_age_) evict_oldest();
  }

  void evict_oldest() const {
    const entry& oldest = order_.front();
    // Only the entry that inserted the id removes it: an id erased and inserted
    // again has a newer entry further back.
    if (const auto it = ids_.find(oldest.id); it != ids_.end() && it->second == oldest.sequence) {
      ids_.erase(it);
    }
    order_.pop_front();
  }

  // Entries left by erase() are skipped when they come up; when they pile up
  // (many erase-then-insert cycles), they are dropped here, never a live id.
  void drop_stale_entries() {
    std::deque<entry> live;
    for (const auto& e : order_) {
      if (const auto it = ids_.find(e.id); it != ids_.end() && it->second == e.sequence) {
        live.push_back(e);
      }
    }
    order_.swap(live);
  }

  std::size_t max_entries_;
  std::chrono::milliseconds max_age_;
  clock_function clock_;
  mutable std::mutex mutex_;
  struct entry {
    uuid id;
    std::chrono::steady_clock::time_point first_seen;
    std::uint64_t sequence;
  };
  mutable std::unordered_map<uuid, std::uint64_t> ids_;  // id -> sequence of its live entry
  mutable std::deque<entry> order_;                       // oldest first
  std::uint64_t next_sequence_ = 0;
};

UNLOC_END_NAMESPACE

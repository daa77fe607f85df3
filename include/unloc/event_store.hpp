#pragma once

/// @file
/// "Handled once": the one store that remembers which Access Events were
/// handled, shared by the integrator's delivery handler, `unloc::reconciler`
/// and `unloc-webhook-receiver`. Validation never touches it: the caller
/// claims an event, does its work, then marks it handled or releases it.

#include <unloc/error.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/uuid.hpp>
#include <unloc/version.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

UNLOC_BEGIN_NAMESPACE

/// What a claim of an event found.
enum class claim_status : std::uint8_t {
  mine,             ///< Claimed by this call: do the work, then `mark_handled` or `release`.
  already_handled,  ///< Handled before: acknowledge (2xx), do not act again.
  held_elsewhere,   ///< Another claim holds it now: answer 503 with `Retry-After`, retry later.
};

/// `"mine"`, `"already_handled"` or `"held_elsewhere"`.
[[nodiscard]] constexpr const char* to_string(claim_status status) noexcept {
  switch (status) {
    case claim_status::mine: return "mine";
    case claim_status::already_handled: return "already_handled";
    case claim_status::held_elsewhere: return "held_elsewhere";
  }
  return "unknown";
}

/// The answer to `event_store::claim`.
struct event_claim {
  claim_status status = claim_status::held_elsewhere;  ///< What the claim found.
  /// With `mine`: an earlier claim of this event was never resolved (its
  /// process stopped, or it held the claim past the lease), so its work may
  /// have been done. Look for the event in your own records before acting.
  bool in_doubt = false;

  /// True when the event is this caller's to handle.
  [[nodiscard]] bool mine() const noexcept { return status == claim_status::mine; }
};

/// Which Access Events were handled, and how far each access log was read.
///
/// The protocol, for each event: `claim` it; when the claim is `mine`, do the
/// work, then `mark_handled` (after the work succeeded, or inside the work's
/// own transaction when the store lives in the same database) or `release`
/// (the work failed: the next claim is `mine` again). A claim is exclusive:
/// of concurrent claims of one event, at most one is `mine`; the others are
/// `held_elsewhere` until it is marked or released. A claim that is neither
/// within the store's lease is taken over by the next claim, flagged
/// `in_doubt`: so a process that died holding a claim never blocks an event.
///
/// Contract for implementations: safe to call from many threads at once;
/// every method returns an error rather than throwing; a method returns only
/// once what it records is saved as durably as the store promises;
/// `mark_handled` of an event already marked succeeds and changes nothing
/// (the caller's transaction may have marked it); `release` of an event not
/// claimed changes nothing. A store over a shared database (one row an event:
/// id, state, owner, lease expiry) serves several processes at once.
class event_store {
 public:
  virtual ~event_store() = default;
  /// Claims the event `id`, created at `created` (stores may use it to forget old ids).
  [[nodiscard]] virtual result<event_claim> claim(const uuid& id, timestamp created) = 0;
  /// Records that the claimed event `id` was handled: later claims are `already_handled`.
  [[nodiscard]] virtual result<void> mark_handled(const uuid& id) = 0;
  /// Gives up the claim of `id` without handling it: the next claim is `mine`.
  [[nodiscard]] virtual result<void> release(const uuid& id) = 0;
  /// How far the access log of `scope` (a Lock's id, or `"project"`) was read:
  /// every event it held created before the checkpoint was handled. Empty
  /// when that log was never read.
  [[nodiscard]] virtual result<std::optional<timestamp>> checkpoint(const std::string& scope) = 0;
  /// Moves the checkpoint of `scope` (one word) to `read_to`, never backwards.
  [[nodiscard]] virtual result<void> save_checkpoint(const std::string& scope,
                                                     timestamp read_to) = 0;
};

/// How much a `memory_event_store` keeps.
struct memory_store_limits {
  /// The most ids kept; the oldest go first.
  std::size_t max_entries = 100'000;
  /// How long an id is kept after it was first claimed: a day past the access
  /// log's 30 days, the longest Unloc may deliver an event again.
  std::chrono::milliseconds max_age = std::chrono::hours(24 * 31);
  /// How long a claim holds before the next claim of its event takes it over.
  std::chrono::milliseconds claim_lease = std::chrono::minutes(5);
};

/// An `event_store` in memory, bounded by count and age (see
/// `memory_store_limits`): one process, forgotten when it stops. Thread-safe;
/// each call holds a small lock for a few map operations.
class memory_event_store final : public event_store {
 public:
  /// The store's clock, replaceable in tests.
  using clock_function = std::function<std::chrono::steady_clock::time_point()>;

  /// A store within `limits`, timed by `clock`.
  explicit memory_event_store(memory_store_limits limits = {},
                              clock_function clock = &std::chrono::steady_clock::now)
      : limits_(limits), clock_(std::move(clock)) {
    if (limits_.max_entries == 0) limits_.max_entries = 1;
  }

  [[nodiscard]] result<event_claim> claim(const uuid& id, timestamp /*created*/) override {
    try {
      const auto now = clock_();
      const std::lock_guard<std::mutex> lock(mutex_);
      expire(now);
      const auto [found, added] =
          ids_.try_emplace(id, slot{next_sequence_, now, false, true, false});
      if (added) {
        remember(id, now);
        return event_claim{claim_status::mine, false};
      }
      slot& s = found->second;
      if (s.handled) return event_claim{claim_status::already_handled, false};
      if (s.claimed && now - s.claimed_at < limits_.claim_lease) {
        return event_claim{claim_status::held_elsewhere, false};
      }
      // Its holder outlived the lease, or released it while in doubt: in doubt from now on.
      s.claimed = true;
      s.claimed_at = now;
      s.in_doubt = true;
      return event_claim{claim_status::mine, true};
    } catch (...) {
      return failure("claim");
    }
  }

  [[nodiscard]] result<void> mark_handled(const uuid& id) override {
    try {
      const std::lock_guard<std::mutex> lock(mutex_);
      const auto found = ids_.find(id);
      if (found != ids_.end()) {
        found->second.handled = true;
        return {};
      }
      // Its claim was evicted meanwhile: remember it all the same.
      const auto now = clock_();
      ids_.emplace(id, slot{next_sequence_, now, true, false, false});
      remember(id, now);
      return {};
    } catch (...) {
      return failure("mark_handled");
    }
  }

  [[nodiscard]] result<void> release(const uuid& id) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto found = ids_.find(id);
    if (found == ids_.end() || found->second.handled) return {};
    if (found->second.in_doubt) {
      found->second.claimed = false;  // free, and still in doubt for the next claim
    } else {
      ids_.erase(found);  // order_ skips its entry
    }
    return {};
  }

  [[nodiscard]] result<std::optional<timestamp>> checkpoint(const std::string& scope) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = checkpoints_.find(scope);
    if (it == checkpoints_.end()) return std::optional<timestamp>{};
    return std::optional<timestamp>{it->second};
  }

  [[nodiscard]] result<void> save_checkpoint(const std::string& scope, timestamp read_to) override {
    try {
      const std::lock_guard<std::mutex> lock(mutex_);
      auto& saved = checkpoints_[scope];
      saved = (std::max)(saved, read_to);
      return {};
    } catch (...) {
      return failure("save_checkpoint");
    }
  }

  /// True when `id` is kept as handled (a query: it claims nothing).
  [[nodiscard]] bool handled(const uuid& id) const {
    const auto now = clock_();
    const std::lock_guard<std::mutex> lock(mutex_);
    expire(now);
    const auto found = ids_.find(id);
    return found != ids_.end() && found->second.handled;
  }

  /// How many ids are kept, claimed or handled.
  [[nodiscard]] std::size_t size() const {
    const auto now = clock_();
    const std::lock_guard<std::mutex> lock(mutex_);
    expire(now);
    return ids_.size();
  }

 private:
  using time_point = std::chrono::steady_clock::time_point;

  static error failure(const char* what) {
    return make_error(error_category::internal,
                      std::string("memory_event_store: ") + what + " failed (out of memory)");
  }

  // Queues the id just added to ids_ (with the sequence next_sequence_) for expiry.
  void remember(const uuid& id, time_point now) {
    order_.push_back(entry{id, now, next_sequence_++});
    while (ids_.size() > limits_.max_entries) evict_oldest();
    if (order_.size() > 2 * limits_.max_entries) drop_stale_entries();
  }

  // Forgetting expired ids does not change what the store means, so const callers may do it.
  void expire(time_point now) const {
    while (!order_.empty() && now - order_.front().first_seen >= limits_.max_age) evict_oldest();
  }

  void evict_oldest() const {
    const entry& oldest = order_.front();
    // Only the entry that added the id removes it: an id released and claimed
    // again has a newer entry further back.
    if (const auto it = ids_.find(oldest.id);
        it != ids_.end() && it->second.sequence == oldest.sequence) {
      ids_.erase(it);
    }
    order_.pop_front();
  }

  // Entries left by release() are skipped when they come up; when they pile up
  // (many claim-release cycles), they are dropped here, never a live id.
  void drop_stale_entries() {
    std::deque<entry> live;
    for (const auto& e : order_) {
      if (const auto it = ids_.find(e.id); it != ids_.end() && it->second.sequence == e.sequence) {
        live.push_back(e);
      }
    }
    order_.swap(live);
  }

  struct slot {
    std::uint64_t sequence;  // of its entry in order_
    time_point claimed_at;
    bool handled;
    bool claimed;   // held by a claim since claimed_at
    bool in_doubt;  // a claim of it was taken over: its work may have been done
  };
  struct entry {
    uuid id;
    time_point first_seen;
    std::uint64_t sequence;
  };

  memory_store_limits limits_;
  clock_function clock_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<uuid, slot> ids_;
  mutable std::deque<entry> order_;  // oldest first
  std::uint64_t next_sequence_ = 0;
  std::map<std::string, timestamp> checkpoints_;
};

UNLOC_END_NAMESPACE

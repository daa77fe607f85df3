#pragma once

/// @file
/// "Handled once": the one store that remembers which Access Events were
/// handled, shared by the integrator's delivery handler, `unloc::reconciler`
/// and `unloc-webhook-receiver`. Validation never touches it: the caller
/// claims an event, does its work, then marks it handled or releases it.

#include <unloc/access_event.hpp>
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
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE

/// Where an event handed over came from.
enum class event_source : std::uint8_t {
  webhook,     ///< A webhook delivery.
  access_log,  ///< The access log (missed or not yet delivered by webhook).
};

/// `"webhook"` or `"access_log"`.
[[nodiscard]] constexpr const char* to_string(event_source source) noexcept {
  return source == event_source::webhook ? "webhook" : "access_log";
}

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

/// Who holds a claim: `claim` hands out a new token with each `mine`, and
/// `mark_handled` and `release` act only for the token that holds the claim
/// now. A store over a database keeps it in an owner column (a 64-bit
/// integer from a sequence, or random), set anew at each claim and takeover.
using claim_token = std::uint64_t;

/// What `event_store::mark_handled` or `event_store::release` did.
enum class settle_status : std::uint8_t {
  done,       ///< Recorded (a mark of an event already handled changes nothing and is `done`).
  not_owner,  ///< The token does not hold the claim (taken over, or released): nothing changed.
};

/// `"done"` or `"not_owner"`.
[[nodiscard]] constexpr const char* to_string(settle_status status) noexcept {
  return status == settle_status::done ? "done" : "not_owner";
}

/// What a database store's `handle_once` did with an event: the
/// integrator's work and the store's mark, committed in one transaction.
enum class handle_status : std::uint8_t {
  handled,          ///< New: the work ran and committed with the mark.
  already_handled,  ///< Handled before: the work did not run. Acknowledge (2xx).
  held_elsewhere,   ///< Another claim holds it now: the work did not run. Answer 503.
};

/// `"handled"`, `"already_handled"` or `"held_elsewhere"`.
[[nodiscard]] constexpr const char* to_string(handle_status status) noexcept {
  switch (status) {
    case handle_status::handled: return "handled";
    case handle_status::already_handled: return "already_handled";
    case handle_status::held_elsewhere: return "held_elsewhere";
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
  /// With `mine`: the claim's owner, for `mark_handled` and `release`.
  claim_token token = 0;

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
/// The claim's token says who holds it: the holder whose claim was taken over
/// gets `not_owner` from a late `mark_handled` or `release`, which change
/// nothing, so it never frees or ends the new holder's claim.
///
/// Contract for implementations: safe to call from many threads at once;
/// every method returns an error rather than throwing; a method returns only
/// once what it records is saved as durably as the store promises;
/// `mark_handled` and `release` act only when `token` holds the claim now
/// (`not_owner` otherwise), except that `mark_handled` of an event already
/// marked is `done` and changes nothing (the caller's transaction may have
/// marked it), and of an event the store no longer keeps (forgotten while
/// claimed) records it. A store over a shared database (one row an event: id,
/// state, owner token, lease expiry; mark and release update `WHERE id = ? AND
/// owner = ?`) serves several processes at once.
///
/// Reading an access log: a store shared by several processes grants the
/// lease on reading one log (`acquire_log_lease`) to one holder at a time, and
/// moves its checkpoint only for the newest lease (`save_checkpoint` with the
/// lease's fencing token), so that a holder that stalled past its lease never
/// moves the checkpoint over its successor's read.
///
/// A store that overrides one overload of `mark_handled`, `record_once` or
/// `save_checkpoint` brings in the others with `using event_store::mark_handled;`
/// (and `record_once`, `save_checkpoint`), as `memory_event_store` does: else
/// a call of another overload through the store's own type does not compile.
class event_store {
 public:
  virtual ~event_store() = default;
  /// Claims the event `id`, created at `created` (stores may use it to forget old ids).
  [[nodiscard]] virtual result<event_claim> claim(const uuid& id, timestamp created) = 0;
  /// Records that the event `id`, claimed with `token`, was handled: later
  /// claims are `already_handled`. `not_owner` when `token` no longer holds it.
  [[nodiscard]] virtual result<settle_status> mark_handled(const uuid& id, claim_token token) = 0;
  /// Gives up the claim `token` of `id` without handling it: the next claim is
  /// `mine`. `not_owner` when `token` does not hold it (taken over, or ended).
  [[nodiscard]] virtual result<settle_status> release(const uuid& id, claim_token token) = 0;
  /// How far the access log of `scope` (a Lock's id, or `"project"`) was read:
  /// every event it held created before the checkpoint was handled. Empty
  /// when that log was never read.
  [[nodiscard]] virtual result<std::optional<timestamp>> checkpoint(const std::string& scope) = 0;
  /// Moves the checkpoint of `scope` (one word) to `read_to`, never backwards.
  [[nodiscard]] virtual result<void> save_checkpoint(const std::string& scope,
                                                     timestamp read_to) = 0;

  /// Marks `event` handled under `token`, as `mark_handled(event.id, token)`
  /// does, and keeps the event where the store keeps events: a database store
  /// writes its row to the events table (with `source`, the time of receipt
  /// and the lag) in the same transaction as the mark. Default: `mark_handled`.
  [[nodiscard]] virtual result<settle_status> mark_handled(const access_event& event,
                                                           event_source source,
                                                           claim_token token) {
    (void)source;
    return mark_handled(event.id, token);
  }

  /// Records `event` handled, when it is neither handled nor held by a live
  /// claim, in one step: for a hand-over whose whole work is the store's own
  /// record (a database store's events table). The SQLite and PostgreSQL
  /// stores write the mark and the event's row in one transaction, with no
  /// claim committed before them. `handled` when this call recorded it.
  /// Default: `claim`, then `mark_handled(event, source, token)` (the claim
  /// released when the mark fails).
  [[nodiscard]] virtual result<handle_status> record_once(const access_event& event,
                                                          event_source source) {
    auto claimed = claim(event.id, event.created);
    if (!claimed) return claimed.error();
    if (claimed->status == claim_status::already_handled) return handle_status::already_handled;
    if (claimed->status == claim_status::held_elsewhere) return handle_status::held_elsewhere;
    auto marked = mark_handled(event, source, claimed->token);
    if (!marked) {
      (void)release(event.id, claimed->token);  // no work was done outside the store
      return marked.error();
    }
    return *marked == settle_status::done ? handle_status::handled : handle_status::held_elsewhere;
  }

  /// The work `record_once(event, source, work)` does before the mark: true
  /// confirms it. `possibly_repeated`: an earlier run for this event may have
  /// had its effect, and was never settled (a claim that a stop or a lapsed
  /// lease left; on SQLite, this call's own run in a shared commit that then
  /// failed). Where the work runs inside the store's transaction (SQLite), a
  /// stop leaves no trace, and the next run is not told.
  using record_work = std::function<bool(bool possibly_repeated)>;

  /// `record_once`, with `work` run once the event is found neither handled
  /// nor held, before the mark: the mark and the row are written only when it
  /// returns true. An error when it returned false or threw (nothing marked).
  /// Default: `claim`, `work`, then `mark_handled(event, source, token)`, as a
  /// `reconciler` does (`held_elsewhere` when the claim was taken over while
  /// `work` ran). The SQLite store runs `work` inside the transaction that
  /// writes the mark and the row, sharing its commit with other calls: one
  /// commit an event, not two, and no claim left in doubt by a stop. There it
  /// runs on whichever thread commits, with the store's write lock held: keep
  /// it short (printing a line), and never call the store from it.
  [[nodiscard]] virtual result<handle_status> record_once(const access_event& event,
                                                          event_source source,
                                                          const record_work& work) {
    auto claimed = claim(event.id, event.created);
    if (!claimed) return claimed.error();
    if (claimed->status == claim_status::already_handled) return handle_status::already_handled;
    if (claimed->status == claim_status::held_elsewhere) return handle_status::held_elsewhere;
    bool confirmed = false;
    try {
      confirmed = work && work(claimed->in_doubt);
    } catch (...) {
    }
    if (!confirmed) {
      (void)release(event.id, claimed->token);  // a failed release: the lease frees it later
      return make_error(error_category::internal,
                        "the work did not confirm event " + event.id.to_string(), "handler");
    }
    // Not released when the mark fails: the work was done, so the event stays
    // held until the lease ends, then comes again possibly repeated.
    auto marked = mark_handled(event, source, claimed->token);
    if (!marked) return marked.error();
    return *marked == settle_status::done ? handle_status::handled : handle_status::held_elsewhere;
  }

  /// Takes or renews the lease on reading the access log of `scope` for
  /// `holder` (unique per process, such as `host:pid:random`) for `duration`:
  /// its fencing token when granted, none while another holder's lease runs.
  /// The holder renewing its lease keeps its token; a new holder gets a larger
  /// token than every earlier one. Default (a store that one process owns):
  /// granted, token 1.
  [[nodiscard]] virtual result<std::optional<std::uint64_t>> acquire_log_lease(
      const std::string& scope, const std::string& holder, std::chrono::milliseconds duration) {
    (void)scope;
    (void)holder;
    (void)duration;
    return std::optional<std::uint64_t>{1};
  }

  /// Moves the checkpoint as `save_checkpoint(scope, read_to)` does, only while
  /// `lease` is the newest token of `scope`: `not_owner` (nothing moved) when
  /// another holder took the lease since. Default: `save_checkpoint`, `done`.
  [[nodiscard]] virtual result<settle_status> save_checkpoint(const std::string& scope,
                                                              timestamp read_to,
                                                              std::uint64_t lease) {
    (void)lease;
    if (auto saved = save_checkpoint(scope, read_to); !saved) return saved.error();
    return settle_status::done;
  }

  /// Whether the store works now (for a health check): an error saying why
  /// not (never a secret). Default: works.
  [[nodiscard]] virtual result<void> check() { return {}; }
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
/// `memory_store_limits`): one process, forgotten when it stops. Its log
/// leases work as a shared store's do, among the reconcilers of this process.
/// Thread-safe; each call holds a small lock for a few map operations.
class memory_event_store final : public event_store {
 public:
  using event_store::mark_handled;
  using event_store::save_checkpoint;

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
      const claim_token token = next_token_++;
      if (slot* s = find(id)) {
        if (s->handled) return event_claim{claim_status::already_handled, false, 0};
        if (s->owner != 0 && now - s->claimed_at < limits_.claim_lease) {
          return event_claim{claim_status::held_elsewhere, false, 0};
        }
        // Its holder outlived the lease, or released it while in doubt: in doubt from now on.
        s->owner = token;
        s->claimed_at = now;
        s->in_doubt = true;
        return event_claim{claim_status::mine, true, token};
      }
      add(id, now, token, false);
      return event_claim{claim_status::mine, false, token};
    } catch (...) {
      return failure("claim");
    }
  }

  [[nodiscard]] result<settle_status> mark_handled(const uuid& id, claim_token token) override {
    try {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (slot* s = find(id)) {
        if (s->handled) return settle_status::done;
        if (s->owner != token) return settle_status::not_owner;
        s->handled = true;
        s->owner = 0;
        return settle_status::done;
      }
      // Its claim was evicted meanwhile, and nobody claimed it since: remember it all the same.
      add(id, clock_(), 0, true);
      return settle_status::done;
    } catch (...) {
      return failure("mark_handled");
    }
  }

  [[nodiscard]] result<settle_status> release(const uuid& id, claim_token token) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    slot* s = find(id);
    if (s == nullptr || s->handled || s->owner != token) return settle_status::not_owner;
    if (s->in_doubt) {
      s->owner = 0;  // free, and still in doubt for the next claim
    } else {
      erase(s);  // order_ skips its entry
    }
    return settle_status::done;
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

  [[nodiscard]] result<std::optional<std::uint64_t>> acquire_log_lease(
      const std::string& scope, const std::string& holder,
      std::chrono::milliseconds duration) override {
    try {
      const auto now = clock_();
      const std::lock_guard<std::mutex> lock(mutex_);
      log_lease& lease = leases_[scope];
      if (lease.holder != holder) {
        if (lease.token != 0 && now < lease.expires) return std::optional<std::uint64_t>{};
        lease.holder = holder;
        ++lease.token;
      }
      lease.expires = now + duration;
      return std::optional<std::uint64_t>{lease.token};
    } catch (...) {
      return failure("acquire_log_lease");
    }
  }

  [[nodiscard]] result<settle_status> save_checkpoint(const std::string& scope, timestamp read_to,
                                                      std::uint64_t lease) override {
    try {
      const std::lock_guard<std::mutex> lock(mutex_);
      const auto it = leases_.find(scope);
      if (it == leases_.end() || it->second.token != lease) return settle_status::not_owner;
      auto& saved = checkpoints_[scope];
      saved = (std::max)(saved, read_to);
      return settle_status::done;
    } catch (...) {
      return failure("save_checkpoint");
    }
  }

  /// True when `id` is kept as handled (a query: it claims nothing).
  [[nodiscard]] bool handled(const uuid& id) const {
    const auto now = clock_();
    const std::lock_guard<std::mutex> lock(mutex_);
    expire(now);
    const slot* s = find(id);
    return s != nullptr && s->handled;
  }

  /// How many ids are kept, claimed or handled.
  [[nodiscard]] std::size_t size() const {
    const auto now = clock_();
    const std::lock_guard<std::mutex> lock(mutex_);
    expire(now);
    return count_;
  }

 private:
  using time_point = std::chrono::steady_clock::time_point;

  static error failure(const char* what) {
    return make_error(error_category::internal,
                      std::string("memory_event_store: ") + what + " failed (out of memory)");
  }

  // An id kept: claimed, or handled. `sequence` 0 marks an empty slot.
  struct slot {
    uuid id;
    std::uint64_t sequence;  // of its entry in order_
    time_point claimed_at;
    claim_token owner;  // the claim holding it since claimed_at; 0: none
    bool handled;
    bool in_doubt;  // a claim of it was taken over: its work may have been done
  };
  struct entry {
    uuid id;
    time_point first_seen;
    std::uint64_t sequence;
  };

  // The ids live in one array, open addressing with linear probing, at most
  // half full: a claim touches a cache line or two and allocates nothing once
  // the store is full (a node-based map allocated, freed and chased pointers
  // on every claim, and cost more than validating the delivery).
  std::size_t home(const uuid& id) const noexcept {
    return std::hash<uuid>{}(id) & (slots_.size() - 1);
  }

  // The empty slot where `id` (not kept) goes.
  std::size_t free_slot(const uuid& id) const noexcept {
    std::size_t i = home(id);
    while (slots_[i].sequence != 0) i = (i + 1) & (slots_.size() - 1);
    return i;
  }

  slot* find(const uuid& id) const noexcept {
    if (slots_.empty()) return nullptr;
    for (std::size_t i = home(id);; i = (i + 1) & (slots_.size() - 1)) {
      slot& s = slots_[i];
      if (s.sequence == 0) return nullptr;
      if (s.id == id) return &s;
    }
  }

  // Adds `id` (not kept yet) and queues it for expiry; evicts the oldest past max_entries.
  void add(const uuid& id, time_point now, claim_token owner, bool handled) {
    if ((count_ + 1) * 2 > slots_.size()) grow();
    order_.push_back(entry{id, now, next_sequence_});  // first: a throw leaves the table as it was
    slots_[free_slot(id)] = slot{id, next_sequence_++, now, owner, handled, false};
    ++count_;
    while (count_ > limits_.max_entries) evict_oldest();
    if (order_.size() > 2 * limits_.max_entries) drop_stale_entries();
  }

  void grow() {
    std::vector<slot> old(slots_.size() < 16 ? 32 : slots_.size() * 2, slot{});
    old.swap(slots_);
    for (const slot& s : old) {
      if (s.sequence != 0) slots_[free_slot(s.id)] = s;
    }
  }

  // Empties `s`, moving back the slots after it that probing would no longer reach.
  void erase(slot* s) const noexcept {
    const std::size_t mask = slots_.size() - 1;
    auto hole = static_cast<std::size_t>(s - slots_.data());
    for (std::size_t next = (hole + 1) & mask; slots_[next].sequence != 0;
         next = (next + 1) & mask) {
      const std::size_t want = home(slots_[next].id);
      // Movable into the hole when its home is not within (hole, next], cyclically.
      if (((next - want) & mask) >= ((next - hole) & mask)) {
        slots_[hole] = slots_[next];
        hole = next;
      }
    }
    slots_[hole].sequence = 0;
    --count_;
  }

  // Forgetting expired ids does not change what the store means, so const callers may do it.
  void expire(time_point now) const {
    while (!order_.empty() && now - order_.front().first_seen >= limits_.max_age) evict_oldest();
  }

  void evict_oldest() const {
    const entry& oldest = order_.front();
    // Only the entry that added the id removes it: an id released and claimed
    // again has a newer entry further back.
    if (slot* s = find(oldest.id); s != nullptr && s->sequence == oldest.sequence) erase(s);
    order_.pop_front();
  }

  // Entries left by release() are skipped when they come up; when they pile up
  // (many claim-release cycles), they are dropped here, never a live id.
  void drop_stale_entries() {
    std::deque<entry> live;
    for (const auto& e : order_) {
      if (const slot* s = find(e.id); s != nullptr && s->sequence == e.sequence) live.push_back(e);
    }
    order_.swap(live);
  }

  memory_store_limits limits_;
  clock_function clock_;
  mutable std::mutex mutex_;
  mutable std::vector<slot> slots_;  // a power of two in size, or empty
  mutable std::size_t count_ = 0;
  mutable std::deque<entry> order_;  // oldest first
  std::uint64_t next_sequence_ = 1;
  claim_token next_token_ = 1;  // unique among this store's claims; 0 is no claim
  std::map<std::string, timestamp> checkpoints_;
  struct log_lease {
    std::string holder;
    std::uint64_t token = 0;  // 0: never granted
    time_point expires{};
  };
  std::map<std::string, log_lease> leases_;
};

UNLOC_END_NAMESPACE

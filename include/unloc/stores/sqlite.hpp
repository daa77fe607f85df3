#pragma once

/// @file
/// `unloc::sqlite_event_store`: "handled once" and the events table in an
/// SQLite database, the embedded store of one machine. Needs SQLite 3.35 or
/// later (the CMake target `unloc::sqlite`); the core never includes it.

#include <unloc/access_event.hpp>
#include <unloc/detail/os.hpp>
#include <unloc/detail/text.hpp>
#include <unloc/error.hpp>
#include <unloc/event_store.hpp>
#include <unloc/stores/schema.hpp>
#include <unloc/stores/sqlite_wal_vfs.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/uuid.hpp>
#include <unloc/version.hpp>

#include <sqlite3.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE

/// How durable each commit of a `sqlite_event_store` is: SQLite's
/// `PRAGMA synchronous`, in WAL mode.
enum class sqlite_durability : std::uint8_t {
  /// `synchronous=NORMAL`, the default: a commit survives the process being
  /// killed; a power loss or an operating system crash may undo the last
  /// commits, never corrupt the database. Undone commits are marks of events
  /// already acknowledged: the access log read brings them back (in doubt).
  normal,
  /// `synchronous=FULL`: each commit is on the disk before it returns, at the
  /// cost of a flush per commit.
  full,
};

/// How a `sqlite_event_store` works.
struct sqlite_store_options {
  /// How durable each commit is (only where the store opens the database itself).
  sqlite_durability durability = sqlite_durability::normal;
  /// How long a call waits for another connection's write to end before it
  /// fails (`PRAGMA busy_timeout`; only where the store opens the database).
  std::chrono::milliseconds busy_timeout = std::chrono::seconds(5);
  /// The pages written to the WAL since the last checkpoint past which a thread
  /// of the store copies them into the database (a PASSIVE checkpoint on its
  /// own connection, with its flushes), off the path of the calls; past a WAL
  /// of 10 times as many, the call that finds it so large waits for the thread
  /// and copies the frames left itself, so that the WAL starts over and stays
  /// bounded (for this store: others writing to the same file meanwhile can
  /// push it further). 0 or less: SQLite's own automatic checkpoint, on the
  /// committing call, every 1000 pages. Only where the store opens the
  /// database itself.
  int checkpoint_pages = 1000;
  /// How long a claim holds before the next claim of its event takes it over.
  std::chrono::milliseconds claim_lease = std::chrono::minutes(5);
  /// How long the claim of an event is kept after the event was created and
  /// after the store first saw it, whichever is later: a day past the access
  /// log's 30 days. The events table is never pruned.
  std::chrono::milliseconds retention = std::chrono::hours(24 * 31);
  /// The wall clock (claim and log leases, the time of receipt), replaceable in tests.
  std::function<timestamp()> clock = [] {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now());
  };
};

/// An `event_store` in an SQLite database (docs/stores.md describes its
/// tables): the claims, the handled marks, the events table, the access-log
/// checkpoints and leases, all kept across restarts. Creates and migrates its
/// schema itself, and refuses a database written by a newer version.
///
/// Several stores, in one process or several on one machine, may share one
/// database file: every state change is one SQLite transaction, so claims
/// stay exclusive across them (not over a network file system, where SQLite's
/// WAL mode does not work).
///
/// Thread safety: every method may be called from many threads at once; the
/// calls on one store take turns on its connection, and concurrent writes
/// share one commit (each returns once its own writes are committed).
class sqlite_event_store final : public event_store {
 public:
  using event_store::mark_handled;
  using event_store::record_once;
  using event_store::save_checkpoint;

  /// The integrator's work in `handle_once`: their writes on the connection
  /// given, inside the store's transaction. True confirms; false or a throw
  /// rolls back the work and the mark.
  using work_function = std::function<bool(sqlite3*)>;

  /// Opens (creates) the database at `path` in WAL mode with
  /// `options.durability` and `options.busy_timeout`, and creates or migrates
  /// the schema. An error when it cannot (a directory that does not exist, a
  /// file that is not a database, a schema of a newer version).
  [[nodiscard]] static result<std::unique_ptr<sqlite_event_store>> open(
      const std::string& path, sqlite_store_options options = {}) {
    sqlite3* db = nullptr;
    const int opened = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                       detail::sqlite_wal_vfs::install());
    std::unique_ptr<sqlite_event_store> store(new (std::nothrow)
                                                  sqlite_event_store(db, true, std::move(options)));
    if (store == nullptr) {
      sqlite3_close(db);
      return make_error(error_category::internal, "sqlite store: out of memory", "store");
    }
    if (opened != SQLITE_OK) return store->failure("cannot open " + detail::quoted(path, 256));
    sqlite3_extended_result_codes(db, 1);
    if (sqlite3_busy_timeout(db, static_cast<int>(store->options_.busy_timeout.count())) !=
        SQLITE_OK) {
      return store->failure("busy_timeout");
    }
    // The journal mode is the database's, and sticks: every later connection is in WAL too.
    auto mode = store->pragma("journal_mode=WAL");
    if (!mode) return mode.error();
    if (*mode != "wal" && *mode != "memory") {
      return make_error(error_category::internal,
                        "sqlite store: " + detail::quoted(path, 256) +
                            " cannot be put in WAL mode (journal_mode is " + *mode +
                            "); is it on a network file system?",
                        "store");
    }
    const bool full = store->options_.durability == sqlite_durability::full;
    if (auto sync = store->pragma(full ? "synchronous=FULL" : "synchronous=NORMAL"); !sync) {
      return sync.error();
    }
    if (auto migrated = store->migrate(); !migrated) return migrated.error();
    if (store->options_.checkpoint_pages > 0) {
      // Not a failure without it: the calls then begin their reads anew each time.
      if (sqlite3_prepare_v3(db, "SELECT version FROM unloc_schema_version", -1,
                             SQLITE_PREPARE_PERSISTENT, &store->hold_, nullptr) != SQLITE_OK) {
        store->hold_ = nullptr;
      }
      if (auto started = store->start_checkpointer(path); !started) return started.error();
    }
    return store;
  }

  /// A store over the integrator's own connection `db` (not owned: it must
  /// outlive the store), so that `handle_once` commits their writes and the
  /// mark together. Its settings (journal mode, synchronous, busy timeout) are
  /// left as the integrator made them. Creates or migrates the schema. While a
  /// call of the store runs, nothing else may use `db`.
  [[nodiscard]] static result<std::unique_ptr<sqlite_event_store>> attach(
      sqlite3* db, sqlite_store_options options = {}) {
    if (db == nullptr) {
      return make_error(error_category::invalid_input, "sqlite store: no connection", "store");
    }
    std::unique_ptr<sqlite_event_store> store(
        new (std::nothrow) sqlite_event_store(db, false, std::move(options)));
    if (store == nullptr) {
      return make_error(error_category::internal, "sqlite store: out of memory", "store");
    }
    if (auto migrated = store->migrate(); !migrated) return migrated.error();
    return store;
  }

  /// Closes the connection when the store opened it.
  ~sqlite_event_store() override {
    if (checkpointer_.joinable()) {
      {
        const std::lock_guard<std::mutex> lock(checkpoint_mutex_);
        checkpoint_stop_ = true;
      }
      checkpoint_changed_.notify_all();
      checkpointer_.join();
    }
    sqlite3_close(checkpoint_db_);  // before db_: the last connection to close checkpoints the rest
    sqlite3_finalize(hold_);
    for (auto& s : statements_) sqlite3_finalize(s);
    if (owned_) sqlite3_close(db_);
  }

  sqlite_event_store(const sqlite_event_store&) = delete;
  sqlite_event_store& operator=(const sqlite_event_store&) = delete;

  [[nodiscard]] result<event_claim> claim(const uuid& id, timestamp created) override {
    return batched<event_claim>("claim", [&]() -> result<event_claim> {
      const auto now = clock_ms();
      ++claims_since_prune_;
      const claim_token token = next_token();
      // A new claim, else a takeover: two statements rather than one upsert with
      // RETURNING, whose rows SQLite keeps in a temporary table built for each
      // call (its allocation grew and trimmed the heap at every claim).
      for (const int q : {q_claim_new, q_claim_take_over}) {
        sqlite3_stmt* s = statement(q);
        if (s == nullptr) return failure("claim");
        bind_id(s, 1, id);
        sqlite3_bind_int64(s, 2, static_cast<std::int64_t>(token));
        sqlite3_bind_int64(s, 3, now + options_.claim_lease.count());
        sqlite3_bind_int64(s, 4, q == q_claim_new ? ms(created) : now);
        if (q == q_claim_new) sqlite3_bind_int64(s, 5, now);
        if (!step_done(s)) return failure("claim");
        if (sqlite3_changes(db_) > 0) {
          return event_claim{claim_status::mine, q == q_claim_take_over, token};
        }
      }
      auto state = read_claim(id);
      if (!state) return state.error();
      if (state->found && state->handled)
        return event_claim{claim_status::already_handled, false, 0};
      return event_claim{claim_status::held_elsewhere, false, 0};
    });
  }

  [[nodiscard]] result<settle_status> mark_handled(const uuid& id, claim_token token) override {
    return batched<settle_status>("mark_handled", [&] { return mark(id, token, nullptr, {}); });
  }

  [[nodiscard]] result<settle_status> mark_handled(const access_event& event, event_source source,
                                                   claim_token token) override {
    return batched<settle_status>("mark_handled",
                                  [&] { return mark(event.id, token, &event, source); });
  }

  [[nodiscard]] result<settle_status> release(const uuid& id, claim_token token) override {
    return batched<settle_status>("release", [&]() -> result<settle_status> {
      if (token == 0) return settle_status::not_owner;
      // A claim that was never in doubt goes (the next claim is as the first);
      // one in doubt stays in doubt, free.
      for (const int q : {q_release_delete, q_release_free}) {
        sqlite3_stmt* s = statement(q);
        if (s == nullptr) return failure("release");
        bind_id(s, 1, id);
        sqlite3_bind_int64(s, 2, static_cast<std::int64_t>(token));
        if (!step_done(s)) return failure("release");
        if (sqlite3_changes(db_) > 0) return settle_status::done;
      }
      return settle_status::not_owner;
    });
  }

  [[nodiscard]] result<std::optional<timestamp>> checkpoint(const std::string& scope) override {
    return guarded<std::optional<timestamp>>(
        "checkpoint", [&]() -> result<std::optional<timestamp>> {
          release_hold();  // read what other connections wrote since
          sqlite3_stmt* s = statement(q_checkpoint);
          if (s == nullptr) return failure("checkpoint");
          bind_text(s, 1, scope);
          const int rc = sqlite3_step(s);
          if (rc == SQLITE_DONE) return std::optional<timestamp>{};
          if (rc != SQLITE_ROW) return failure("checkpoint");
          const timestamp t{std::chrono::milliseconds(sqlite3_column_int64(s, 0))};
          if (!step_done(s)) return failure("checkpoint");
          return std::optional<timestamp>{t};
        });
  }

  [[nodiscard]] result<void> save_checkpoint(const std::string& scope, timestamp read_to) override {
    auto saved = batched<settle_status>("save_checkpoint", [&]() -> result<settle_status> {
      if (!upsert_checkpoint(scope, read_to)) return failure("save_checkpoint");
      return settle_status::done;
    });
    if (!saved) return saved.error();
    return {};
  }

  [[nodiscard]] result<settle_status> save_checkpoint(const std::string& scope, timestamp read_to,
                                                      std::uint64_t lease) override {
    return batched<settle_status>("save_checkpoint", [&]() -> result<settle_status> {
      auto held = read_lease(scope);
      if (!held) return held.error();
      if (!held->found || held->token != lease) return settle_status::not_owner;
      if (!upsert_checkpoint(scope, read_to)) return failure("save_checkpoint");
      return settle_status::done;
    });
  }

  [[nodiscard]] result<std::optional<std::uint64_t>> acquire_log_lease(
      const std::string& scope, const std::string& holder,
      std::chrono::milliseconds duration) override {
    using granted = std::optional<std::uint64_t>;
    return batched<granted>("acquire_log_lease", [&]() -> result<granted> {
      const auto now = clock_ms();
      auto held = read_lease(scope);
      if (!held) return held.error();
      if (held->found && held->holder != holder && held->expires_ms > now) return granted{};
      const std::uint64_t token = !held->found             ? 1
                                  : held->holder == holder ? held->token
                                                           : held->token + 1;
      sqlite3_stmt* s = statement(q_lease_write);
      if (s == nullptr) return failure("acquire_log_lease");
      bind_text(s, 1, scope);
      bind_text(s, 2, holder);
      sqlite3_bind_int64(s, 3, static_cast<std::int64_t>(token));
      sqlite3_bind_int64(s, 4, now + duration.count());
      if (!step_done(s)) return failure("acquire_log_lease");
      return granted{token};
    });
  }

  /// Forgets now the claims of events created and first seen longer ago than
  /// `sqlite_store_options::retention` that are handled or free (never a claim
  /// whose lease runs), as the store does by itself every 4096 claims: how many
  /// it forgot. Their rows in the events table stay.
  [[nodiscard]] result<std::uint64_t> forget_old_claims() {
    return batched<std::uint64_t>("forget_old_claims", [&]() -> result<std::uint64_t> {
      if (!prune()) return failure("forget_old_claims");
      return static_cast<std::uint64_t>(sqlite3_changes(db_));
    });
  }

  /// Works when the store can take the database's write lock and reads the
  /// schema version it expects; otherwise an error saying why.
  [[nodiscard]] result<void> check() override {
    auto checked = guarded<settle_status>("check", [&]() -> result<settle_status> {
      return in_transaction<settle_status>(
          "check",
          [&]() -> result<settle_status> {
            auto version = read_version();
            if (!version) return version.error();
            if (*version != static_cast<std::int64_t>(detail::schema_version)) {
              return make_error(error_category::internal,
                                "sqlite store: the schema is now version " +
                                    std::to_string(*version) + ", this program reads version " +
                                    std::to_string(detail::schema_version),
                                "store");
            }
            return settle_status::done;
          },
          /*commit=*/false);
    });
    if (!checked) return checked.error();
    return {};
  }

  /// Handles `event` once, in one transaction on the store's connection:
  /// skips an event handled before or held by a live claim, else calls
  /// `work` (the integrator's writes), marks the event handled and writes its
  /// row, and commits all of it. When `work` returns false or throws, or any
  /// write fails, everything rolls back and the answer is an error: the
  /// event stays unhandled, for the next delivery or log read. `work` must not
  /// call the store, nor end the transaction.
  [[nodiscard]] result<handle_status> handle_once(const access_event& event, event_source source,
                                                  const work_function& work) {
    return guarded<handle_status>("handle_once", [&]() -> result<handle_status> {
      if (sqlite3_get_autocommit(db_) == 0) {
        return make_error(error_category::invalid_input,
                          "sqlite store: handle_once needs a connection outside any transaction",
                          "store");
      }
      const record_work run = [&](bool) { return work && work(db_); };
      return in_transaction<handle_status>("handle_once", [&]() -> result<handle_status> {
        return handle_in_transaction("handle_once", event, source, &run);
      });
    });
  }

  /// `record_once`: the mark and the event's row in one transaction, sharing
  /// its commit with the calls of other threads (no claim committed first).
  [[nodiscard]] result<handle_status> record_once(const access_event& event,
                                                  event_source source) override {
    return batched<handle_status>("record_once", [&]() -> result<handle_status> {
      return handle_in_transaction("record_once", event, source, nullptr);
    });
  }

  /// `record_once` with `work` run inside the transaction of the mark and the
  /// row, before them, sharing its commit with the calls of other threads: on
  /// whichever thread commits, with the store's write lock held (a call of the
  /// store from `work` is refused with an error). When `work` declines (returns
  /// false or throws), what it wrote on the connection (attached, or through
  /// `connection()`) is rolled back with the rest of its call, and the calls
  /// sharing its commit go on (run again alone, as below, if it wrote). When
  /// that shared commit fails, each call runs again alone, its `work` told
  /// `possibly_repeated` if it confirmed before; so is the work of an event
  /// whose claim (taken by `claim`) a stop left. A stop, or a call's own commit
  /// failing, leaves no trace: the next call runs the work again, not told.
  [[nodiscard]] result<handle_status> record_once(const access_event& event, event_source source,
                                                  const record_work& work) override {
    bool confirmed = false;  // in an earlier run of this call, whose commit then failed
    bool declined = false;   // in this run
    const record_work run = [&](bool in_doubt) {
      declined = true;  // until it returns true (it may throw)
      declined = !(work && work(in_doubt || confirmed));
      confirmed = confirmed || !declined;
      return !declined;
    };
    return batched<handle_status>("record_once", [&]() -> result<handle_status> {
      declined = false;
      const int changes = sqlite3_total_changes(db_);
      auto out = handle_in_transaction("record_once", event, source, &run);
      // A declined work ends the call before the store writes: any change is the
      // work's own. Having written nothing, it leaves the batch good; having written,
      // it fails the batch, which rolls back, and each call runs again alone.
      if (!out && declined && sqlite3_total_changes(db_) == changes) keep_batch_ = true;
      return out;
    });
  }

  /// The store's connection (its own, or the integrator's), for queries of the
  /// events table between calls of the store. On its own connection the store
  /// keeps a read transaction open between calls (ended by this call, and
  /// within about 0.2 s without calls): call this again to see what other
  /// connections committed since.
  [[nodiscard]] sqlite3* connection() noexcept {
    if (inside_work()) return db_;  // the work's own transaction: its view is current
    try {
      const std::lock_guard<std::mutex> lock(mutex_);
      release_hold();
    } catch (...) {  // the lock failed: the view may be older
    }
    return db_;
  }

 private:
  enum : int {
    q_begin,
    q_commit,
    q_rollback,
    q_claim_new,
    q_claim_take_over,
    q_claim_read,
    q_prune,
    q_mark,
    q_mark_insert,
    q_event_insert,
    q_release_delete,
    q_release_free,
    q_checkpoint,
    q_checkpoint_write,
    q_lease_read,
    q_lease_write,
    q_version,
    q_count,
  };

  static constexpr std::array<const char*, q_count> sql = {
      "BEGIN IMMEDIATE",
      "COMMIT",
      "ROLLBACK",
      // Takes a new claim; else takes over one that is free or past its lease (?4: now).
      "INSERT INTO unloc_claims (id, owner, lease_until_ms, created_ms, handled, in_doubt,"
      " seen_ms) VALUES (?1, ?2, ?3, ?4, 0, 0, ?5) ON CONFLICT (id) DO NOTHING",
      "UPDATE unloc_claims SET owner = ?2, lease_until_ms = ?3, in_doubt = 1"
      " WHERE id = ?1 AND handled = 0 AND (owner = 0 OR lease_until_ms <= ?4)",
      "SELECT handled, owner, lease_until_ms FROM unloc_claims WHERE id = ?1",
      "DELETE FROM unloc_claims WHERE created_ms < ?1 AND seen_ms < ?1"
      " AND (handled = 1 OR lease_until_ms <= ?2)",
      "UPDATE unloc_claims SET handled = 1, owner = 0"
      " WHERE id = ?1 AND owner = ?2 AND handled = 0",
      // Marks an event handled whatever its claim (handle_once, or a claim forgotten meanwhile).
      "INSERT INTO unloc_claims (id, created_ms, owner, lease_until_ms, handled, in_doubt, seen_ms)"
      " VALUES (?1, ?2, 0, 0, 1, 0, ?3) ON CONFLICT (id) DO UPDATE SET handled = 1, owner = 0",
      "INSERT INTO unloc_events (id, action, created, key_id, lock_id, lock_name, app_user_id,"
      " user_name, extra, source, received_at, lag_ms)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (id) DO NOTHING",
      "DELETE FROM unloc_claims WHERE id = ?1 AND owner = ?2 AND handled = 0 AND in_doubt = 0",
      "UPDATE unloc_claims SET owner = 0"
      " WHERE id = ?1 AND owner = ?2 AND handled = 0 AND in_doubt = 1",
      "SELECT read_to_ms FROM unloc_checkpoints WHERE scope = ?1",
      "INSERT INTO unloc_checkpoints (scope, read_to_ms) VALUES (?1, ?2)"
      " ON CONFLICT (scope) DO UPDATE SET read_to_ms = excluded.read_to_ms"
      " WHERE unloc_checkpoints.read_to_ms < excluded.read_to_ms",
      "SELECT holder, token, expires_ms FROM unloc_log_leases WHERE scope = ?1",
      "INSERT INTO unloc_log_leases (scope, holder, token, expires_ms) VALUES (?1, ?2, ?3, ?4)"
      " ON CONFLICT (scope) DO UPDATE SET holder = excluded.holder, token = excluded.token,"
      " expires_ms = excluded.expires_ms",
      "SELECT version FROM unloc_schema_version",
  };

  static constexpr unsigned prune_every = 4096;
  static constexpr std::chrono::milliseconds hold_tick{100};
  static constexpr std::chrono::seconds hold_pause{1};

  struct claim_row {
    bool found = false;
    bool handled = false;
    std::int64_t owner = 0;
    std::int64_t lease_until_ms = 0;
  };
  struct lease_row {
    bool found = false;
    std::string holder;
    std::uint64_t token = 0;
    std::int64_t expires_ms = 0;
  };

  sqlite_event_store(sqlite3* db, bool owned, sqlite_store_options options)
      : db_(db), owned_(owned), options_(std::move(options)) {
    // Tokens count up from a random start: unique among the stores sharing the database.
    std::uint64_t start = 0;
    if (!detail::random_bytes(&start, sizeof start)) {
      start =
          static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    }
    next_token_ = start;
  }

  static std::int64_t ms(timestamp t) noexcept { return t.time_since_epoch().count(); }
  std::int64_t clock_ms() const { return ms(options_.clock()); }

  // A token for a claim: positive as a signed 64-bit integer (a BIGINT column), never 0.
  claim_token next_token() noexcept {
    claim_token t = 0;
    while (t == 0) t = ++next_token_ & 0x7fff'ffff'ffff'ffffULL;
    return t;
  }

  // The statement q, prepared once and kept, reset and unbound for a new use; null on failure.
  sqlite3_stmt* statement(int q) {
    sqlite3_stmt*& s = statements_[static_cast<std::size_t>(q)];
    if (s == nullptr) {
      if (sqlite3_prepare_v3(db_, sql[static_cast<std::size_t>(q)], -1, SQLITE_PREPARE_PERSISTENT,
                             &s, nullptr) != SQLITE_OK) {
        s = nullptr;
        return nullptr;
      }
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
  }

  // Steps s to its end and resets it (its locks and any open read end here).
  bool step_done(sqlite3_stmt* s) {
    int rc = sqlite3_step(s);
    while (rc == SQLITE_ROW) rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE;
  }

  static void bind_text(sqlite3_stmt* s, int i, const std::string& text) {
    sqlite3_bind_text(s, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  static void bind_id(sqlite3_stmt* s, int i, const uuid& id) { bind_text(s, i, id.to_string()); }
  // `text` must outlive the statement's next step.
  static void bind_static(sqlite3_stmt* s, int i, std::string_view text) {
    sqlite3_bind_text(s, i, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  }

  error failure(const std::string& what) const {
    const int code = db_ == nullptr ? SQLITE_NOMEM : sqlite3_extended_errcode(db_);
    const int primary = code & 0xff;
    const auto category = primary == SQLITE_BUSY || primary == SQLITE_LOCKED
                              ? error_category::timeout
                              : error_category::internal;
    const char* why = db_ == nullptr ? "out of memory" : sqlite3_errmsg(db_);
    return make_error(category, "sqlite store: " + what + ": " + why, "store");
  }

  // The thread that holds the store's lock for calls (and runs their work), while it
  // does: a call from inside a work would wait for itself.
  struct working {
    explicit working(std::atomic<std::thread::id>& w) : worker(w) {
      worker.store(std::this_thread::get_id(), std::memory_order_relaxed);
    }
    ~working() { worker.store(std::thread::id(), std::memory_order_relaxed); }
    working(const working&) = delete;
    working& operator=(const working&) = delete;
    std::atomic<std::thread::id>& worker;
  };
  bool inside_work() const noexcept {
    return worker_.load(std::memory_order_relaxed) == std::this_thread::get_id();
  }
  static error called_inside_work(const char* what) {
    return make_error(error_category::invalid_input,
                      std::string("sqlite store: ") + what +
                          " called from inside the work of record_once or handle_once, which "
                          "holds the store",
                      "store");
  }

  // Runs body under the store's lock; anything thrown (out of memory) is an error.
  template <typename T, typename Body>
  result<T> guarded(const char* what, Body&& body) {
    if (inside_work()) return called_inside_work(what);
    try {
      const std::lock_guard<std::mutex> lock(mutex_);
      const working here(worker_);
      result<T> out = body();
      after_calls();
      return out;
    } catch (const std::exception& e) {
      return make_error(error_category::internal,
                        std::string("sqlite store: ") + what + " failed: " + e.what(), "store");
    } catch (...) {
      return make_error(error_category::internal, std::string("sqlite store: ") + what + " failed",
                        "store");
    }
  }

  // One call's statements, waiting for a batch. `run` executes them in the
  // batch's open transaction and keeps their answer; false when a statement
  // failed. `fail` replaces the answer with an error (the commit failed).
  struct job {
    std::function<bool()> run;
    std::function<void(error)> fail;
    const char* what = "";
    bool finished = false;
  };

  // Group commit: each write call is a job; whichever caller finds no batch
  // running commits every job queued meanwhile in one transaction, so that
  // concurrent deliveries share one commit (a commit costs more than the few
  // statements of a claim or a mark). A job's answer is returned only once
  // its batch committed. When a statement or the commit fails, the batch
  // rolls back and each job runs again alone, so that a failure (a full disk)
  // fails only the calls it belongs to.
  template <typename T, typename Body>
  result<T> batched(const char* what, Body&& body) {
    if (inside_work()) return called_inside_work(what);
    try {
      std::optional<result<T>> out;
      job j;
      j.run = [&]() -> bool {
        try {
          out = body();
        } catch (const std::exception& e) {
          out = make_error(error_category::internal,
                           std::string("sqlite store: ") + what + " failed: " + e.what(), "store");
        } catch (...) {
          out = make_error(error_category::internal,
                           std::string("sqlite store: ") + what + " failed", "store");
        }
        // A call whose work declined wrote nothing: the batch's other calls go on.
        return out->has_value() || std::exchange(keep_batch_, false);
      };
      j.fail = [&](error e) { out.emplace(std::move(e)); };
      j.what = what;
      std::unique_lock<std::mutex> lock(queue_mutex_);
      queue_.push_back(&j);
      while (!j.finished) {
        if (leading_) {
          queue_changed_.wait(lock);
          continue;
        }
        leading_ = true;
        std::vector<job*> batch;
        batch.swap(queue_);
        lock.unlock();
        run_batch(batch);
        lock.lock();
        for (job* done : batch) done->finished = true;
        leading_ = false;
        queue_changed_.notify_all();
      }
      if (!out) {  // its batch failed before it ran (out of memory)
        return make_error(error_category::internal,
                          std::string("sqlite store: ") + what + " failed", "store");
      }
      return std::move(*out);
    } catch (...) {  // out of memory, or the lock failed
      return make_error(error_category::internal, std::string("sqlite store: ") + what + " failed",
                        "store");
    }
  }

  void run_batch(const std::vector<job*>& batch) noexcept {
    try {
      const std::lock_guard<std::mutex> lock(mutex_);
      const working here(worker_);
      try {
        run_batch_locked(batch);
      } catch (...) {
        rollback();  // never leave the connection inside a transaction
      }
      after_calls();
    } catch (...) {  // the lock failed: the jobs without an answer fail
    }
  }

  void run_batch_locked(const std::vector<job*>& batch) {
    bool committed = false;
    if (batch.size() > 1) {
      if (!begin()) {
        // No call ran: alone, each would wait out the same lock again (a batch of k
        // calls held k + 1 busy timeouts behind another writer), so all fail with it.
        for (job* j : batch) j->fail(failure(j->what));
        return;
      }
      bool ran = true;
      // A failed statement may have ended the transaction (SQLite rolls back on
      // a full disk): stop there, lest later jobs run outside it.
      for (job* j : batch) {
        if (!(ran = j->run())) break;
      }
      sqlite3_stmt* end = ran ? statement(q_commit) : nullptr;
      committed = end != nullptr && step_done(end);
      if (!committed) rollback();
    }
    if (!committed) {
      for (job* j : batch) run_alone(*j);
    }
    if (claims_since_prune_ >= prune_every) {
      claims_since_prune_ = 0;
      // Forgetting old claims is housekeeping, in its own transaction: a failure fails no call.
      (void)prune();
    }
  }

  // Inside a write transaction: skips an event handled or held by a live claim, else
  // runs `work` (when given), marks the event handled and writes its row.
  result<handle_status> handle_in_transaction(const char* what, const access_event& event,
                                              event_source source, const record_work* work) {
    auto state = read_claim(event.id);
    if (!state) return state.error();
    if (state->found && state->handled) return handle_status::already_handled;
    if (state->found && state->owner != 0 && state->lease_until_ms > clock_ms()) {
      return handle_status::held_elsewhere;
    }
    if (work != nullptr) {
      // A claim not handled and not held: a stop or a lapsed lease left it, the work maybe done.
      auto confirmed = call_work(*work, state->found, event);
      if (!confirmed) return confirmed.error();
      if (sqlite3_get_autocommit(db_) != 0) {
        return make_error(error_category::invalid_input,
                          "sqlite store: the work of handle_once ended the transaction; event " +
                              event.id.to_string() + " is not marked",
                          "store");
      }
    }
    if (!state->found) ++claims_since_prune_;
    sqlite3_stmt* s = statement(q_mark_insert);
    if (s == nullptr) return failure(what);
    bind_id(s, 1, event.id);
    sqlite3_bind_int64(s, 2, ms(event.created));
    sqlite3_bind_int64(s, 3, clock_ms());
    if (!step_done(s) || !insert_event(event, source)) return failure(what);
    return handle_status::handled;
  }

  // Deletes the claims that forget_old_claims() forgets; false when the statement failed.
  bool prune() {
    const auto now = clock_ms();
    sqlite3_stmt* s = statement(q_prune);
    if (s == nullptr) return false;
    sqlite3_bind_int64(s, 1, now - options_.retention.count());
    sqlite3_bind_int64(s, 2, now);
    return step_done(s);
  }

  void run_alone(job& j) {
    if (!begin()) {
      j.fail(failure(j.what));
      return;
    }
    if (!j.run()) {
      rollback();
      return;
    }
    sqlite3_stmt* end = statement(q_commit);
    if (end == nullptr || !step_done(end)) {
      j.fail(failure(j.what));
      rollback();
    }
  }

  // Runs body in a BEGIN IMMEDIATE transaction (the write lock taken first, so
  // that its reads stay true until the commit); commits when body succeeded
  // and `commit` is set, else rolls back.
  template <typename T, typename Body>
  result<T> in_transaction(const char* what, Body&& body, bool commit = true) {
    if (!begin()) return failure(what);
    result<T> out = make_error(error_category::internal, "unreachable");
    try {
      out = body();
    } catch (...) {
      rollback();
      throw;
    }
    if (!out || !commit) {
      rollback();
      return out;
    }
    sqlite3_stmt* end = statement(q_commit);
    if (end == nullptr || !step_done(end)) {
      auto failed = failure(what);
      rollback();
      return failed;
    }
    return out;
  }

  void rollback() {
    if (sqlite3_get_autocommit(db_) == 0) {  // else SQLite ended it already (on a full disk)
      if (sqlite3_stmt* s = statement(q_rollback)) (void)step_done(s);
    }
    release_hold();  // whether a rollback kept the read transaction is SQLite's affair
  }

  // BEGIN IMMEDIATE. In the read transaction held between calls, SQLite neither
  // waits for another connection's write nor begins one on a snapshot older
  // than another's commit: it fails at once; then the hold goes, and BEGIN
  // waits (busy_timeout) and reads afresh as without it.
  bool begin() {
    sqlite3_stmt* s = statement(q_begin);
    if (s == nullptr) return false;
    if (step_done(s)) return true;
    if (!holding_ || (sqlite3_errcode(db_) & 0xff) != SQLITE_BUSY) return false;
    // Another connection writes to the file too: held read transactions there
    // and here would keep each other's WAL from ever starting over.
    release_hold();
    hold_paused_until_ = std::chrono::steady_clock::now() + hold_pause;
    s = statement(q_begin);
    return s != nullptr && step_done(s);
  }

  // The read transaction held between calls: a write transaction that begins
  // inside one takes only the write lock, not the read locks too (4 of the 6
  // file locks of a transaction, each a system call; measured ~12 -> ~4 a
  // delivery). It must not hold back checkpoints: it moves to the WAL's end
  // before each checkpoint, ends every 0.1 s (the checkpointer's tick), and
  // pauses while another connection writes to the file.
  void acquire_hold() noexcept {
    if (hold_ == nullptr || holding_) return;
    if (std::chrono::steady_clock::now() < hold_paused_until_) return;
    holding_ = sqlite3_step(hold_) == SQLITE_ROW;
    if (!holding_) sqlite3_reset(hold_);
  }
  void release_hold() noexcept {
    if (!holding_) return;
    sqlite3_reset(hold_);
    holding_ = false;
  }

  // After the calls' commits, under the store's lock: schedules a checkpoint,
  // and holds a read transaction until the next call.
  void after_calls() noexcept {
    const int pages = std::exchange(wal_pages_, 0);
    const int due = options_.checkpoint_pages;
    // Due by the frames written since the last checkpoint, not by the WAL's size:
    // the WAL starts over only now and then, and a checkpoint run at each commit
    // past the size copied a few frames each, the same hot pages again and again.
    // Held only after a call that committed: a read-only call (checkpoint(scope))
    // never meets another writer's lock, so its hold would never pause, and
    // calls of it alone would keep another store's WAL from starting over.
    if (pages == 0) return;
    const int copied = checkpointed_frames_.load(std::memory_order_relaxed);
    if (pages - (pages < copied ? 0 : copied) < due) return acquire_hold();
    try {
      std::unique_lock<std::mutex> lock(checkpoint_mutex_);
      if (pages / 10 < due) {
        if (!checkpoint_running_) {  // else its end tells what is left
          release_hold();            // so that the checkpoint may copy every frame written
          acquire_hold();
          checkpoint_due_ = true;
          lock.unlock();
          checkpoint_changed_.notify_all();
        }
        return acquire_hold();
      }
      // A WAL is written from its start again only by a commit that began with
      // every frame copied (and no read transaction in it). Under a steady load,
      // commits land while each of the thread's checkpoints runs, and the WAL
      // would grow without end: past 10 times the size, this call (which holds
      // back the store's others) waits for the thread's checkpoint, then copies
      // the few frames left itself.
      release_hold();
      checkpoint_changed_.wait(lock, [&] { return !checkpoint_running_; });
      checkpoint_alone(lock, db_);
    } catch (...) {  // a lock failed: a later commit checkpoints
    }
    acquire_hold();
  }

  result<claim_row> read_claim(const uuid& id) {
    sqlite3_stmt* s = statement(q_claim_read);
    if (s == nullptr) return failure("claim");
    bind_id(s, 1, id);
    const int rc = sqlite3_step(s);
    claim_row row;
    if (rc == SQLITE_ROW) {
      row.found = true;
      row.handled = sqlite3_column_int(s, 0) != 0;
      row.owner = sqlite3_column_int64(s, 1);
      row.lease_until_ms = sqlite3_column_int64(s, 2);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return failure("claim");
    if (!step_done(s)) return failure("claim");
    return row;
  }

  result<lease_row> read_lease(const std::string& scope) {
    sqlite3_stmt* s = statement(q_lease_read);
    if (s == nullptr) return failure("lease");
    bind_text(s, 1, scope);
    const int rc = sqlite3_step(s);
    lease_row row;
    if (rc == SQLITE_ROW) {
      row.found = true;
      const auto* holder = sqlite3_column_text(s, 0);
      if (holder != nullptr) {
        row.holder.assign(reinterpret_cast<const char*>(holder),
                          static_cast<std::size_t>(sqlite3_column_bytes(s, 0)));
      }
      row.token = static_cast<std::uint64_t>(sqlite3_column_int64(s, 1));
      row.expires_ms = sqlite3_column_int64(s, 2);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return failure("lease");
    if (!step_done(s)) return failure("lease");
    return row;
  }

  result<std::int64_t> read_version() {
    sqlite3_stmt* s = statement(q_version);
    if (s == nullptr) return failure("schema version");
    const int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return failure("schema version");
    const std::int64_t version = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    if (!step_done(s)) return failure("schema version");
    return version;
  }

  // Runs in the transaction of a batch (see batched).
  result<settle_status> mark(const uuid& id, claim_token token, const access_event* event,
                             event_source source) {
    sqlite3_stmt* s = statement(q_mark);
    if (s == nullptr) return failure("mark_handled");
    bind_id(s, 1, id);
    sqlite3_bind_int64(s, 2, static_cast<std::int64_t>(token));
    if (!step_done(s)) return failure("mark_handled");
    if (token == 0 || sqlite3_changes(db_) == 0) {
      auto state = read_claim(id);
      if (!state) return state.error();
      if (state->found && !state->handled) return settle_status::not_owner;
      if (!state->found) {  // forgotten while claimed: recorded all the same
        sqlite3_stmt* insert = statement(q_mark_insert);
        if (insert == nullptr) return failure("mark_handled");
        bind_id(insert, 1, id);
        sqlite3_bind_int64(insert, 2, event != nullptr ? ms(event->created) : clock_ms());
        sqlite3_bind_int64(insert, 3, clock_ms());
        if (!step_done(insert)) return failure("mark_handled");
      }
    }
    if (event != nullptr && !insert_event(*event, source)) return failure("mark_handled");
    return settle_status::done;
  }

  // Writes the event's row, unless it has one.
  bool insert_event(const access_event& event, event_source source) {
    sqlite3_stmt* s = statement(q_event_insert);
    if (s == nullptr) return false;
    const timestamp received = options_.clock();
    // Bound without a copy (SQLITE_STATIC): the texts live until the step is done.
    const std::string id = event.id.to_string();
    const std::string action =
        event.action_text.empty() ? std::string(to_string(event.action)) : event.action_text;
    const std::string created = format_timestamp(event.created);
    const std::string key_id = event.key_id.to_string();
    const std::string lock_id = event.lock_id.to_string();
    const std::string extra = extra_json(event);
    const std::string received_at = format_timestamp(received);
    bind_static(s, 1, id);
    bind_static(s, 2, action);
    bind_static(s, 3, created);
    bind_static(s, 4, key_id);
    bind_static(s, 5, lock_id);
    bind_static(s, 6, event.lock_name);
    if (event.app_user_id) bind_static(s, 7, *event.app_user_id);
    if (event.user_name) bind_static(s, 8, *event.user_name);
    bind_static(s, 9, extra);
    bind_static(s, 10, to_string(source));
    bind_static(s, 11, received_at);
    sqlite3_bind_int64(s, 12, ms(received) - ms(event.created));
    const bool done = step_done(s);
    sqlite3_clear_bindings(s);  // no pointer to the texts outlives them
    return done;
  }

  // The unknown members as one JSON object ("{}" when there are none).
  static std::string extra_json(const access_event& event) {
    std::string out = "{";
    for (const auto& member : event.extra) {
      if (out.size() > 1) out += ',';
      detail::append_json_string(out, member.name);
      out += ':';
      out += member.value;
    }
    out += '}';
    return out;
  }

  bool upsert_checkpoint(const std::string& scope, timestamp read_to) {
    sqlite3_stmt* s = statement(q_checkpoint_write);
    if (s == nullptr) return false;
    bind_text(s, 1, scope);
    sqlite3_bind_int64(s, 2, ms(read_to));
    return step_done(s);
  }

  result<void> call_work(const record_work& work, bool in_doubt, const access_event& event) {
    try {
      if (work(in_doubt)) return {};
    } catch (const std::exception& e) {
      return make_error(error_category::internal,
                        "the work failed on event " + event.id.to_string() + ": " + e.what(),
                        "handler");
    } catch (...) {
    }
    return make_error(error_category::internal,
                      "the work did not confirm event " + event.id.to_string(), "handler");
  }

  // Creates or migrates the schema, in one transaction with the version.
  result<void> migrate() {
    auto done = guarded<settle_status>("schema", [&]() -> result<settle_status> {
      return in_transaction<settle_status>("schema", [&]() -> result<settle_status> {
        if (sqlite3_exec(db_, detail::schema_version_table, nullptr, nullptr, nullptr) !=
            SQLITE_OK) {
          return failure("schema");
        }
        auto version = read_version();
        if (!version) return version.error();
        const auto known = static_cast<std::int64_t>(detail::schema_version);
        if (*version > known) {
          return make_error(error_category::invalid_input,
                            "sqlite store: the database has schema version " +
                                std::to_string(*version) +
                                ", written by a newer unloc-cpp; "
                                "this one reads up to version " +
                                std::to_string(known),
                            "store");
        }
        for (auto v = static_cast<std::size_t>(*version); v < detail::schema_version; ++v) {
          const std::string migration = detail::schema_sql(detail::schema_migrations[v], true);
          if (sqlite3_exec(db_, migration.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
            return failure("schema migration " + std::to_string(v + 1));
          }
        }
        const std::string write =
            *version == 0 ? "INSERT INTO unloc_schema_version (version) VALUES (" +
                                std::to_string(known) + ")"
                          : "UPDATE unloc_schema_version SET version = " + std::to_string(known);
        if (sqlite3_exec(db_, write.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
          return failure("schema");
        }
        return settle_status::done;
      });
    });
    if (!done) return done.error();
    return {};
  }

  // Moves checkpoints off the calls' path: a commit (the WAL hook, which
  // replaces SQLite's automatic checkpoint) wakes a thread of the store that
  // checkpoints on its own connection, PASSIVE (it never waits for, nor
  // blocks, a writer or a reader). Its connection opens the same file, so its
  // flushes hold no lock a delivery needs.
  result<void> start_checkpointer(const std::string& path) {
    const int opened =
        sqlite3_open_v2(path.c_str(), &checkpoint_db_, SQLITE_OPEN_READWRITE, nullptr);
    if (opened != SQLITE_OK) {
      const std::string why =
          checkpoint_db_ == nullptr ? "out of memory" : sqlite3_errmsg(checkpoint_db_);
      return make_error(error_category::internal,
                        "sqlite store: cannot open the checkpointer's connection: " + why, "store");
    }
    sqlite3_busy_timeout(checkpoint_db_, static_cast<int>(options_.busy_timeout.count()));
    // A connection sees the WAL once it has read the database; before, a checkpoint does nothing.
    if (sqlite3_exec(checkpoint_db_, "PRAGMA journal_mode", nullptr, nullptr, nullptr) !=
        SQLITE_OK) {
      return make_error(error_category::internal,
                        std::string("sqlite store: the checkpointer's connection: ") +
                            sqlite3_errmsg(checkpoint_db_),
                        "store");
    }
    try {
      checkpointer_ = std::thread([this] { run_checkpoints(); });
    } catch (const std::exception& e) {
      return make_error(error_category::internal,
                        std::string("sqlite store: cannot start the checkpointer: ") + e.what(),
                        "store");
    }
    sqlite3_wal_hook(db_, &on_commit, this);
    return {};
  }

  // Called by SQLite after each commit on db_ (under the store's lock), with
  // the WAL's size in pages; after_calls acts on it.
  static int on_commit(void* self, sqlite3*, const char*, int pages) {
    static_cast<sqlite_event_store*>(self)->wal_pages_ = pages;
    return SQLITE_OK;
  }

  void run_checkpoints() noexcept {
    try {
      auto next_tick = std::chrono::steady_clock::now() + hold_tick;
      std::unique_lock<std::mutex> lock(checkpoint_mutex_);
      for (;;) {
        checkpoint_changed_.wait_until(lock, next_tick, [&] {
          return (checkpoint_due_ && !checkpoint_running_) || checkpoint_stop_;
        });
        if (checkpoint_stop_) return;
        if (std::chrono::steady_clock::now() >= next_tick) {
          // The read transaction held between calls ends at each tick, lest it hold
          // back other connections' checkpoints, or the view of connection(), long.
          next_tick = std::chrono::steady_clock::now() + hold_tick;
          lock.unlock();
          {
            const std::lock_guard<std::mutex> store_lock(mutex_);
            release_hold();
          }
          lock.lock();
        }
        if (!checkpoint_due_ || checkpoint_running_) continue;
        checkpoint_due_ = false;
        checkpoint_alone(lock, checkpoint_db_);
      }
    } catch (...) {  // a lock failed: the commits past 10 times the size checkpoint
    }
  }

  // checkpoint(db) as the one running (checkpoint_running_), outside `lock`
  // (checkpoint_mutex_, held before and after); then wakes who waits for it.
  void checkpoint_alone(std::unique_lock<std::mutex>& lock, sqlite3* db) {
    checkpoint_running_ = true;
    lock.unlock();
    checkpoint(db);
    lock.lock();
    checkpoint_running_ = false;
    checkpoint_changed_.notify_all();
  }

  // A PASSIVE checkpoint on `db`, which remembers how far it copied. A failure
  // (busy, a full disk) leaves the frames in the WAL for the next one.
  void checkpoint(sqlite3* db) noexcept {
    int copied = 0;
    if (sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, &copied) ==
        SQLITE_OK) {
      checkpointed_frames_.store(copied, std::memory_order_relaxed);
    }
  }

  // A PRAGMA's answer, as text.
  result<std::string> pragma(const std::string& text) {
    sqlite3_stmt* s = nullptr;
    const std::string query = "PRAGMA " + text;
    if (sqlite3_prepare_v2(db_, query.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      return failure(query);
    }
    std::string answer;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_text(s, 0) != nullptr) {
      answer = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    while (rc == SQLITE_ROW) rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) return failure(query);
    return answer;
  }

  sqlite3* db_;
  bool owned_;
  sqlite_store_options options_;
  std::mutex mutex_;  // the connection's: one call, or one batch, at a time
  std::mutex queue_mutex_;
  std::condition_variable queue_changed_;
  std::vector<job*> queue_;  // jobs waiting for the next batch
  bool leading_ = false;     // a caller is running a batch
  std::array<sqlite3_stmt*, q_count> statements_{};
  claim_token next_token_ = 0;
  unsigned claims_since_prune_ = 0;
  sqlite3* checkpoint_db_ = nullptr;  // the checkpointer's connection
  std::mutex checkpoint_mutex_;
  std::condition_variable checkpoint_changed_;
  bool checkpoint_due_ = false;      // a commit found the WAL past checkpoint_pages
  bool checkpoint_running_ = false;  // the thread's checkpoint, or a commit's, runs
  bool checkpoint_stop_ = false;
  sqlite3_stmt* hold_ = nullptr;  // the read transaction held between calls; null: none
  bool holding_ = false;
  std::chrono::steady_clock::time_point hold_paused_until_{};  // see begin()
  int wal_pages_ = 0;  // the WAL's size at the last commit, 0 when after_calls took it
  bool keep_batch_ = false;  // the job that failed wrote nothing (its work declined)
  std::atomic<std::thread::id> worker_{};  // see working
  std::atomic<int> checkpointed_frames_{0};  // the WAL's frames the last checkpoint copied
  std::thread checkpointer_;
};

UNLOC_END_NAMESPACE

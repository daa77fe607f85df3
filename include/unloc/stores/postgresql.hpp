#pragma once

/// @file
/// An `unloc::event_store` in PostgreSQL (libpq), shared by every receiver and
/// reconciler that connects to the same database: target `unloc::postgresql`.
/// The tables (docs/stores.md) are created and migrated by the store itself.

#include <unloc/access_event.hpp>
#include <unloc/detail/text.hpp>
#include <unloc/error.hpp>
#include <unloc/event_store.hpp>
#include <unloc/stores/schema.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/uuid.hpp>
#include <unloc/version.hpp>

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE

/// How a `postgresql_event_store` connects and holds claims.
struct postgresql_store_options {
  /// Where: a URL (`postgresql://USER@HOST:PORT/DB`) or `key=value` pairs. Never
  /// the password: libpq reads it from `PGPASSWORD` or the `.pgpass` file
  /// (`PGPASSFILE`); `open` refuses a conninfo that holds one.
  std::string conninfo;
  /// Connections kept open, each serving one call at a time: the calls that may run at once.
  std::size_t connections = 4;
  /// How long a claim holds before the next claim of its event takes it over.
  std::chrono::milliseconds claim_lease = std::chrono::minutes(5);
  /// How long the claim of an event is kept after the event was created and after
  /// the store first saw it, whichever is later: a day past the access log's 30
  /// days (its row in `unloc_events` stays).
  std::chrono::milliseconds retention = std::chrono::hours(24 * 31);
  /// Bound on connecting (libpq's `connect_timeout`, whole seconds, at least 1).
  std::chrono::seconds connect_timeout = std::chrono::seconds(5);
  /// Bound on each statement (`statement_timeout`): a slow database is an error, not a hang.
  std::chrono::milliseconds statement_timeout = std::chrono::seconds(10);
  /// The clock of claim and log leases and of the time of receipt. Empty (the
  /// default): leases run on the database's clock, so that the processes sharing it
  /// need not agree on the time, and receipt on this process's. Set in tests.
  std::function<timestamp()> clock;
};

/// An `event_store` in PostgreSQL: claims, marks, checkpoints and log leases in
/// the `unloc_*` tables, and each event marked with `mark_handled(event, source,
/// token)` written to `unloc_events` in the same statement as its mark. Several
/// processes may share one database: a claim is one `INSERT … ON CONFLICT DO
/// UPDATE … WHERE` on the event's row, so of concurrent claims at most one is
/// `mine`; claim tokens come from a sequence; lease expiries use the database's
/// clock (unless `postgresql_store_options::clock` is set), never the callers'.
///
/// Durability: marks, checkpoints and leases commit as the server's
/// `synchronous_commit` says (on by default: durable once acknowledged). A
/// claim commits with `synchronous_commit = off`: a crash of the server may
/// forget a claim, never a mark, so an event is then claimable again (never
/// lost; its row still written once).
///
/// Failures: every call returns an error, never throws. A broken connection
/// (server restarted, network) is reopened by the next call, which retries its
/// statement once: each statement is safe to repeat (a repeated claim finds
/// its own claim held, a repeated mark finds the event marked). Success is
/// reported only after the server acknowledged the commit. Errors never hold
/// the password. Thread-safe: calls borrow one of `connections` connections.
class postgresql_event_store final : public event_store {
 public:
  using event_store::mark_handled;
  using event_store::record_once;
  using event_store::save_checkpoint;

  /// The integrator's work in `handle_once`: their statements on the connection
  /// given, inside the store's transaction. True confirms; false or a throw
  /// rolls back the work and the mark.
  using work_function = std::function<bool(PGconn*)>;

  /// Connects, creates or migrates the tables, and keeps up to
  /// `options.connections` connections. An error when the server cannot be
  /// reached, the conninfo holds a password, or the schema is newer than this SDK's.
  [[nodiscard]] static result<std::unique_ptr<postgresql_event_store>> open(
      postgresql_store_options options) {
    try {
      if (auto refused = refuse_password(options.conninfo); !refused) return refused.error();
      if (options.connections == 0) options.connections = 1;
      std::unique_ptr<postgresql_event_store> store(new postgresql_event_store(std::move(options)));
      auto conn = store->borrow();
      if (!conn) return conn.error();
      if (auto made = create_schema(conn->get()); !made) return made.error();
      return store;
    } catch (...) {
      return out_of_memory("open");
    }
  }

  /// A store over the integrator's own connection (not owned: never closed or
  /// reset here), for `handle_once` in their database. Creates or migrates the
  /// tables. The store's calls run one at a time on it; do not use `conn`
  /// from another thread meanwhile. A broken `conn` is not reopened: each call
  /// then returns an error.
  [[nodiscard]] static result<std::unique_ptr<postgresql_event_store>> attach(
      PGconn* conn, postgresql_store_options options = {}) {
    if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
      return make_error(error_category::invalid_input, "postgresql: the connection is not open");
    }
    try {
      // No SET here: the integrator's session settings stay theirs.
      if (auto made = create_schema(conn); !made) return made.error();
      options.connections = 1;  // theirs; options.conninfo is not used
      std::unique_ptr<postgresql_event_store> store(new postgresql_event_store(std::move(options)));
      store->pool_[0].conn = conn;
      store->pool_[0].owned = false;
      return store;
    } catch (...) {
      return out_of_memory("attach");
    }
  }

  /// Closes the connections it opened (never the integrator's).
  ~postgresql_event_store() override {
    for (auto& slot : pool_) {
      if (slot.owned && slot.conn != nullptr) PQfinish(slot.conn);
    }
  }
  postgresql_event_store(const postgresql_event_store&) = delete;
  postgresql_event_store& operator=(const postgresql_event_store&) = delete;

  [[nodiscard]] result<event_claim> claim(const uuid& id, timestamp created) override {
    try {
      count_claim();
      // Literals, not parameters: the simple protocol runs the two statements in one
      // transaction, so the SET LOCAL applies to the claim alone. Both values are ours
      // (a canonical UUID, integers), never text from outside.
      const std::string sql =
          "SET LOCAL synchronous_commit = off;"
          "WITH c AS (INSERT INTO unloc_claims AS c"
          " (id, created_ms, owner, lease_until_ms, handled, in_doubt, seen_ms)"
          " VALUES ('" +
          id.to_string() + "', " + std::to_string(millis(created)) +
          ", nextval('unloc_claim_tokens'), " + now_sql() + " + " +
          std::to_string(options_.claim_lease.count()) + ", 0, 0, " + now_sql() +
          ")"
          " ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner,"
          " lease_until_ms = EXCLUDED.lease_until_ms, in_doubt = 1"
          " WHERE c.handled = 0 AND (c.owner = 0 OR c.lease_until_ms <= " +
          now_sql() +
          ")"
          " RETURNING c.owner, c.in_doubt)"
          " SELECT 'm', owner, in_doubt FROM c"
          " UNION ALL SELECT CASE WHEN handled <> 0 THEN 'h' ELSE 'e' END, 0, 0 FROM unloc_claims"
          " WHERE id = '" +
          id.to_string() + "' AND NOT EXISTS (SELECT 1 FROM c)";
      auto rows = run("claim", sql, {});
      if (!rows) return rows.error();
      // No row: another claim inserted it after this statement's snapshot; it holds it.
      if (PQntuples(rows->get()) == 0) return event_claim{claim_status::held_elsewhere, false, 0};
      const std::string status = PQgetvalue(rows->get(), 0, 0);
      if (status == "h") return event_claim{claim_status::already_handled, false, 0};
      if (status == "e") return event_claim{claim_status::held_elsewhere, false, 0};
      return event_claim{claim_status::mine, text(rows->get(), 2) == "1",
                         std::strtoull(PQgetvalue(rows->get(), 0, 1), nullptr, 10)};
    } catch (...) {
      return out_of_memory("claim");
    }
  }

  [[nodiscard]] result<settle_status> mark_handled(const uuid& id, claim_token token) override {
    try {
      auto rows =
          run("mark_handled", "WITH m AS (" + mark_sql(now_sql()) + ") SELECT count(*) FROM m",
              {id.to_string(), std::to_string(token)});
      if (!rows) return rows.error();
      return text(rows->get(), 0) == "0" ? settle_status::not_owner : settle_status::done;
    } catch (...) {
      return out_of_memory("mark_handled");
    }
  }

  [[nodiscard]] result<settle_status> mark_handled(const access_event& event, event_source source,
                                                   claim_token token) override {
    try {
      parameters params{event.id.to_string(), std::to_string(token)};
      append_event_params(params, event, source, received_now());
      auto rows = run("mark_handled",
                      "WITH m AS (" + mark_sql(std::to_string(millis(event.created))) +
                          "), e AS (" + insert_event_sql(3) +
                          " WHERE EXISTS (SELECT 1 FROM m) ON CONFLICT (id) DO NOTHING)"
                          " SELECT count(*) FROM m",
                      params);
      if (!rows) return rows.error();
      return text(rows->get(), 0) == "0" ? settle_status::not_owner : settle_status::done;
    } catch (...) {
      return out_of_memory("mark_handled");
    }
  }

  /// `record_once`: the mark and the event's row in one statement, one commit
  /// (no claim committed first).
  [[nodiscard]] result<handle_status> record_once(const access_event& event,
                                                  event_source source) override {
    try {
      count_claim();
      parameters params{event.id.to_string(), std::to_string(millis(event.created))};
      append_event_params(params, event, source, received_now());
      // No row from m: handled before, or held by a live claim (or by one this
      // statement's snapshot predates: held too).
      auto rows =
          run("record_once",
              "WITH m AS (INSERT INTO unloc_claims AS c"
              " (id, created_ms, owner, lease_until_ms, handled, in_doubt, seen_ms)"
              " VALUES ($1, $2::bigint, 0, 0, 1, 0, " +
                  now_sql() +
                  ") ON CONFLICT (id) DO UPDATE SET handled = 1,"
                  " owner = 0 WHERE c.handled = 0 AND (c.owner = 0 OR c.lease_until_ms <= " +
                  now_sql() + ") RETURNING 1), e AS (" + insert_event_sql(3) +
                  " WHERE EXISTS (SELECT 1 FROM m) ON CONFLICT (id) DO NOTHING)"
                  " SELECT (SELECT count(*) FROM m),"
                  " coalesce((SELECT handled FROM unloc_claims WHERE id = $1), 0)",
              params);
      if (!rows) return rows.error();
      if (text(rows->get(), 0) != "0") return handle_status::handled;
      if (text(rows->get(), 1) != "0") return handle_status::already_handled;
      // A mark committed while this statement waited on the row is newer than its
      // snapshot: read again, in a statement of its own.
      auto again = run("record_once", "SELECT coalesce(max(handled), 0) FROM unloc_claims"
                       " WHERE id = $1", {event.id.to_string()});
      if (!again) return again.error();
      return text(again->get(), 0) != "0" ? handle_status::already_handled
                                          : handle_status::held_elsewhere;
    } catch (...) {
      return out_of_memory("record_once");
    }
  }

  /// Forgets now the claims of events created and first seen longer ago than
  /// `postgresql_store_options::retention` that are handled or free (never a
  /// claim whose lease runs), as the store does by itself every 10,000 claims:
  /// how many it forgot. Their rows in `unloc_events` stay.
  [[nodiscard]] result<std::uint64_t> forget_old_claims() {
    try {
      const std::string cutoff =
          "(" + now_sql() + " - " + std::to_string(options_.retention.count()) + ")";
      auto rows = run("forget_old_claims",
                      "DELETE FROM unloc_claims WHERE created_ms < " + cutoff + " AND seen_ms < " +
                          cutoff + " AND (handled <> 0 OR lease_until_ms <= " + now_sql() + ")",
                      {});
      if (!rows) return rows.error();
      return static_cast<std::uint64_t>(std::strtoull(PQcmdTuples(rows->get()), nullptr, 10));
    } catch (...) {
      return out_of_memory("forget_old_claims");
    }
  }

  [[nodiscard]] result<settle_status> release(const uuid& id, claim_token token) override {
    try {
      if (token == 0) return settle_status::not_owner;
      auto rows =
          run("release",
              "WITH d AS (DELETE FROM unloc_claims WHERE id = $1 AND owner = $2 AND handled = 0"
              " AND in_doubt = 0 RETURNING 1),"
              " u AS (UPDATE unloc_claims SET owner = 0 WHERE id = $1 AND owner = $2"
              " AND handled = 0 AND in_doubt <> 0 RETURNING 1)"
              " SELECT (SELECT count(*) FROM d) + (SELECT count(*) FROM u)",
              {id.to_string(), std::to_string(token)});
      if (!rows) return rows.error();
      return text(rows->get(), 0) == "0" ? settle_status::not_owner : settle_status::done;
    } catch (...) {
      return out_of_memory("release");
    }
  }

  [[nodiscard]] result<std::optional<timestamp>> checkpoint(const std::string& scope) override {
    try {
      auto rows =
          run("checkpoint", "SELECT read_to_ms FROM unloc_checkpoints WHERE scope = $1", {scope});
      if (!rows) return rows.error();
      if (PQntuples(rows->get()) == 0) return std::optional<timestamp>{};
      return std::optional<timestamp>{from_millis(text(rows->get(), 0))};
    } catch (...) {
      return out_of_memory("checkpoint");
    }
  }

  [[nodiscard]] result<void> save_checkpoint(const std::string& scope, timestamp read_to) override {
    try {
      auto rows =
          run("save_checkpoint", save_checkpoint_sql(), {scope, std::to_string(millis(read_to))});
      if (!rows) return rows.error();
      return {};
    } catch (...) {
      return out_of_memory("save_checkpoint");
    }
  }

  [[nodiscard]] result<std::optional<std::uint64_t>> acquire_log_lease(
      const std::string& scope, const std::string& holder,
      std::chrono::milliseconds duration) override {
    try {
      auto rows =
          run("acquire_log_lease",
              "INSERT INTO unloc_log_leases AS l (scope, holder, token, expires_ms)"
              " VALUES ($1, $2, 1, " +
                  now_sql() +
                  " + $3)"
                  " ON CONFLICT (scope) DO UPDATE SET holder = EXCLUDED.holder,"
                  " expires_ms = EXCLUDED.expires_ms,"
                  " token = CASE WHEN l.holder = EXCLUDED.holder THEN l.token ELSE l.token + 1 END"
                  " WHERE l.holder = EXCLUDED.holder OR l.expires_ms <= " +
                  now_sql() + " RETURNING token",
              {scope, holder, std::to_string(duration.count())});
      if (!rows) return rows.error();
      if (PQntuples(rows->get()) == 0) return std::optional<std::uint64_t>{};
      return std::optional<std::uint64_t>{
          std::strtoull(PQgetvalue(rows->get(), 0, 0), nullptr, 10)};
    } catch (...) {
      return out_of_memory("acquire_log_lease");
    }
  }

  [[nodiscard]] result<settle_status> save_checkpoint(const std::string& scope, timestamp read_to,
                                                      std::uint64_t lease) override {
    try {
      // FOR SHARE: a takeover of the lease waits until this checkpoint is committed.
      auto rows =
          run("save_checkpoint",
              "WITH l AS (SELECT 1 FROM unloc_log_leases WHERE scope = $1 AND token = $3"
              " FOR SHARE), s AS (" +
                  save_checkpoint_sql("EXISTS (SELECT 1 FROM l)") + ") SELECT count(*) FROM l",
              {scope, std::to_string(millis(read_to)), std::to_string(lease)});
      if (!rows) return rows.error();
      return text(rows->get(), 0) == "0" ? settle_status::not_owner : settle_status::done;
    } catch (...) {
      return out_of_memory("save_checkpoint");
    }
  }

  [[nodiscard]] result<void> check() override {
    try {
      auto rows = run("check", "SELECT 1", {});
      if (!rows) return rows.error();
      return {};
    } catch (...) {
      return out_of_memory("check");
    }
  }

  /// The integrator's path: handles `event` once, in one transaction on the
  /// store's connection (see `attach`): skips an event already handled, or
  /// claimed by another process now; else calls `work(conn)` (the caller's own
  /// statements), then marks the event and writes its row, and commits. When
  /// `work` returns false or throws, or any statement fails, everything rolls
  /// back (their statements too) and an error is returned: retry later.
  [[nodiscard]] result<handle_status> handle_once(const access_event& event, event_source source,
                                                  const work_function& work) {
    try {
      auto conn = borrow();
      if (!conn) return conn.error();
      PGconn* c = conn->get();
      if (PQstatus(c) != CONNECTION_OK) {  // an attached connection: the store cannot reopen it
        return make_error(error_category::network,
                          "postgresql: handle_once: the connection is broken (the server "
                          "restarted, or the network failed); reset it (PQreset), then call again");
      }
      if (PQtransactionStatus(c) != PQTRANS_IDLE) {
        return make_error(error_category::invalid_input,
                          "postgresql: handle_once runs its own transaction (one is open)");
      }
      if (auto begun = exec(c, "handle_once", "BEGIN", {}); !begun) return begun.error();
      auto outcome = [&]() -> result<handle_status> {
        const std::string id = event.id.to_string();
        auto added =
            exec(c, "handle_once",
                 "INSERT INTO unloc_claims (id, created_ms, owner, lease_until_ms, handled,"
                 " in_doubt, seen_ms) VALUES ($1, $2, 0, 0, 0, 0, " +
                     now_sql() + ") ON CONFLICT (id) DO NOTHING",
                 {id, std::to_string(millis(event.created))});
        if (!added) return added.error();
        auto row = exec(c, "handle_once",
                        "SELECT handled <> 0, owner <> 0 AND lease_until_ms > " + now_sql() +
                            " FROM unloc_claims WHERE id = $1 FOR UPDATE",
                        {id});
        if (!row) return row.error();
        if (text(row->get(), 0) == "t") return handle_status::already_handled;
        if (text(row->get(), 1) == "t") return handle_status::held_elsewhere;
        // Worded as the SQLite store words them; the caller's own exception text is kept.
        std::string failed;
        try {
          if (!work(c)) failed = "the work did not confirm event " + id;
        } catch (const std::exception& e) {
          failed = "the work failed on event " + id + ": " + e.what();
        } catch (...) {
          failed = "the work failed on event " + id;
        }
        if (!failed.empty()) {
          return make_error(error_category::internal, "postgresql: " + failed + "; rolled back",
                            "work");
        }
        // Their COMMIT or ROLLBACK would leave the mark to commit alone.
        if (PQtransactionStatus(c) != PQTRANS_INTRANS) {
          return make_error(error_category::invalid_input,
                            "postgresql: the work of handle_once ended or broke the transaction; "
                            "the event is not marked",
                            "work");
        }
        parameters params{id};
        append_event_params(params, event, source, received_now());
        auto marked =
            exec(c, "handle_once",
                 "WITH m AS (UPDATE unloc_claims SET handled = 1, owner = 0 WHERE id = $1)"
                 " " +
                     insert_event_sql(2) + " ON CONFLICT (id) DO NOTHING",
                 params);
        if (!marked) return marked.error();
        auto committed = exec(c, "handle_once", "COMMIT", {});
        if (!committed) return committed.error();
        // COMMIT of a transaction that failed answers ROLLBACK, not an error.
        if (std::string(PQcmdStatus(committed->get())) != "COMMIT") {
          return make_error(error_category::internal,
                            "postgresql: handle_once was rolled back by the server");
        }
        return handle_status::handled;
      }();
      if (!outcome || *outcome != handle_status::handled) {
        if (PQstatus(c) == CONNECTION_OK) (void)exec(c, "handle_once", "ROLLBACK", {});
      }
      return outcome;
    } catch (...) {
      return out_of_memory("handle_once");
    }
  }

 private:
  // What every public call returns instead of letting std::bad_alloc out.
  static error out_of_memory(const char* what) {
    return make_error(error_category::internal,
                      std::string("postgresql: ") + what + " failed (out of memory)");
  }

  // Statement parameters in text form; none is SQL NULL.
  using parameters = std::vector<std::optional<std::string>>;

  // The claim's lease and the log leases run on the database's clock: the
  // processes sharing it need not agree on the time.
  // Now in milliseconds since 1970, as SQL: the options' clock as a literal, or the database's.
  std::string now_sql() const {
    if (options_.clock) return std::to_string(millis(options_.clock()));
    return "(extract(epoch from clock_timestamp()) * 1000)::bigint";
  }

  // One more claim row written; every prune_every of them, old claims are forgotten
  // (housekeeping: a failure here fails no call).
  void count_claim() {
    if (++claims_since_prune_ % prune_every == 0) (void)forget_old_claims();
  }

  // Marks $1 handled for the token $2 (0 never owns); records an id not kept, created at
  // `created` and seen now (SQL expressions: their age decides when forget_old_claims
  // forgets the mark). A row when done.
  std::string mark_sql(const std::string& created) const {
    return "INSERT INTO unloc_claims AS c (id, created_ms, owner, lease_until_ms, handled,"
           " in_doubt, seen_ms) VALUES ($1, " +
           created + ", 0, 0, 1, 0, " + now_sql() +
           ") ON CONFLICT (id) DO UPDATE SET handled = 1, owner = 0"
           " WHERE c.handled <> 0 OR (c.owner = $2 AND $2 <> 0) RETURNING 1";
  }

  // Moves the checkpoint $1 to $2, never back, when `condition` holds.
  static std::string save_checkpoint_sql(const char* condition = "true") {
    return std::string(
               "INSERT INTO unloc_checkpoints AS k (scope, read_to_ms) SELECT $1, $2::bigint"
               " WHERE ") +
           condition +
           " ON CONFLICT (scope) DO UPDATE SET read_to_ms = GREATEST(k.read_to_ms, "
           "EXCLUDED.read_to_ms)";
  }

  // The events row: the id $1, and the parameters from $first on that append_event_params adds.
  static std::string insert_event_sql(int first) {
    std::string sql =
        "INSERT INTO unloc_events (id, action, created, key_id, lock_id, lock_name, app_user_id,"
        " user_name, extra, source, received_at, lag_ms) SELECT $1::text";
    for (int i = 0; i < 10; ++i) sql += ", $" + std::to_string(first + i) + "::text";
    sql += ", $" + std::to_string(first + 10) + "::bigint";
    return sql;
  }

  timestamp received_now() const {
    if (options_.clock) return options_.clock();
    return std::chrono::time_point_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now());
  }

  // action, created, key_id, lock_id, lock_name, app_user_id, user_name, extra, source,
  // received_at, lag_ms.
  static void append_event_params(parameters& params, const access_event& event,
                                  event_source source, timestamp now) {
    const auto optional_text = [](const std::optional<std::string>& text) {
      return text ? std::optional<std::string>(no_nul(*text)) : std::nullopt;
    };
    params.push_back(no_nul(event.action == access_action::unknown
                                ? event.action_text
                                : std::string(to_string(event.action))));
    params.push_back(format_timestamp(event.created));
    params.push_back(event.key_id.to_string());
    params.push_back(event.lock_id.to_string());
    params.push_back(no_nul(event.lock_name));
    params.push_back(optional_text(event.app_user_id));
    params.push_back(optional_text(event.user_name));
    std::string extra = "{";
    for (const auto& member : event.extra) {
      if (extra.size() > 1) extra += ',';
      detail::append_json_string(extra, member.name);
      extra += ':';
      extra += member.value;
    }
    extra += '}';
    params.push_back(no_nul(extra));
    params.push_back(to_string(source));
    params.push_back(format_timestamp(now));
    params.push_back(std::to_string(millis(now) - millis(event.created)));
  }

  // A text column holds no NUL byte: one (from a JSON \u0000) becomes U+FFFD.
  static std::string no_nul(std::string text) {
    for (std::size_t at = text.find('\0'); at != std::string::npos; at = text.find('\0', at)) {
      text.replace(at, 1, "\xEF\xBF\xBD");
    }
    return text;
  }

  static std::int64_t millis(timestamp t) noexcept { return t.time_since_epoch().count(); }
  static timestamp from_millis(const std::string& text) {
    return timestamp(std::chrono::milliseconds(std::strtoll(text.c_str(), nullptr, 10)));
  }

  // The text of column `column` of the first row ("" when there is none).
  static std::string text(const PGresult* rows, int column) {
    if (PQntuples(rows) == 0 || PQnfields(rows) <= column) return {};
    return PQgetvalue(rows, 0, column);
  }

  struct result_deleter {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
  };
  using pg_result = std::unique_ptr<PGresult, result_deleter>;

  struct pool_slot {
    PGconn* conn = nullptr;
    bool owned = true;
    bool busy = false;
  };

  // A connection lent to one call, given back by the destructor.
  class loan {
   public:
    loan(postgresql_event_store* store, pool_slot* s) : store_(store), slot_(s) {}
    loan(loan&& other) noexcept : store_(other.store_), slot_(other.slot_) {
      other.slot_ = nullptr;
    }
    loan(const loan&) = delete;
    loan& operator=(const loan&) = delete;
    loan& operator=(loan&&) = delete;
    ~loan() {
      if (slot_ != nullptr) store_->give_back(slot_);
    }
    [[nodiscard]] PGconn* get() const noexcept { return slot_->conn; }
    [[nodiscard]] pool_slot& owner() const noexcept { return *slot_; }

   private:
    postgresql_event_store* store_;
    pool_slot* slot_;
  };

  explicit postgresql_event_store(postgresql_store_options options)
      : options_(std::move(options)), pool_(options_.connections) {}

  static result<void> refuse_password(const std::string& conninfo) {
    char* message = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &message);
    if (parsed == nullptr) {
      // libpq's message quotes no value of the conninfo, only what it could not read.
      std::string why = message != nullptr ? message : "out of memory";
      PQfreemem(message);
      while (!why.empty() && why.back() == '\n') why.pop_back();
      return make_error(error_category::invalid_input, "postgresql: bad conninfo: " + why,
                        "conninfo");
    }
    bool has_password = false;
    for (const PQconninfoOption* o = parsed; o->keyword != nullptr; ++o) {
      if (std::string(o->keyword) == "password" && o->val != nullptr && *o->val != '\0') {
        has_password = true;
      }
    }
    PQconninfoFree(parsed);
    if (has_password) {
      return make_error(error_category::invalid_input,
                        "postgresql: the conninfo holds a password: put it in PGPASSWORD or a "
                        ".pgpass file instead",
                        "conninfo");
    }
    return {};
  }

  // A connection of the pool, opened (again) when it is not open.
  result<loan> borrow() {
    std::unique_lock<std::mutex> lock(mutex_);
    pool_slot* free = nullptr;
    available_.wait(lock, [&] {
      for (auto& s : pool_) {
        if (!s.busy) {
          free = &s;
          return true;
        }
      }
      return false;
    });
    free->busy = true;
    lock.unlock();
    loan lent(this, free);
    if (free->owned && (free->conn == nullptr || PQstatus(free->conn) != CONNECTION_OK)) {
      if (auto opened = reopen(*free); !opened) return opened.error();
    }
    return lent;
  }

  void give_back(pool_slot* s) {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      s->busy = false;
    }
    available_.notify_one();
  }

  result<void> reopen(pool_slot& s) {
    if (s.conn != nullptr) PQfinish(s.conn);
    const std::string timeout =
        std::to_string((std::max<std::int64_t>)(options_.connect_timeout.count(), 1));
    const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
    const char* values[] = {options_.conninfo.c_str(), timeout.c_str(), "unloc", nullptr};
    s.conn = PQconnectdbParams(keys, values, 1);
    if (s.conn == nullptr) {
      return make_error(error_category::network, "postgresql: cannot connect (out of memory)");
    }
    if (PQstatus(s.conn) != CONNECTION_OK) return failure(s.conn, "connect");
    // The server's notices (a table already there, a shutdown) are not the program's output.
    PQsetNoticeProcessor(
        s.conn, [](void*, const char*) {}, nullptr);
    const std::string setup =
        "SET statement_timeout = " + std::to_string(options_.statement_timeout.count());
    if (auto set = exec(s.conn, "connect", setup, {}); !set) return set.error();
    return {};
  }

  // Runs `sql` on a connection of the pool; once more on that connection
  // reopened when it broke (each statement of this store is safe to repeat).
  result<pg_result> run(const char* what, const std::string& sql, const parameters& params) {
    auto conn = borrow();
    if (!conn) return conn.error();
    if (!conn->owner().owned) return exec(conn->get(), what, sql, params);
    auto done = exec_within(conn->owner(), what, sql, params);
    if (done || conn->get() == nullptr || PQstatus(conn->get()) == CONNECTION_OK) return done;
    if (auto opened = reopen(conn->owner()); !opened) return opened.error();
    return exec_within(conn->owner(), what, sql, params);
  }

  // exec, bounded on this side too: a server that stopped answering (hung, or cut off
  // without a reset) must not hold the caller. The server's statement_timeout ends a
  // slow statement first; past it and a margin, the connection is closed (the next
  // call opens another) and the call fails with a timeout, never a success.
  result<pg_result> exec_within(pool_slot& s, const char* what, const std::string& sql,
                           const parameters& params) {
    PGconn* conn = s.conn;
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    const int sent = params.empty()
                         ? PQsendQuery(conn, sql.c_str())
                         : PQsendQueryParams(conn, sql.c_str(), static_cast<int>(values.size()),
                                             nullptr, values.data(), nullptr, nullptr, 0);
    if (sent == 0) return failure(conn, what);
    const auto deadline =
        std::chrono::steady_clock::now() + options_.statement_timeout + std::chrono::seconds(5);
    pg_result last;
    pg_result first_error;
    for (;;) {
      while (PQisBusy(conn) != 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd waiting{PQsocket(conn), POLLIN, 0};
        const int ready =
            left.count() > 0 ? ::poll(&waiting, 1, static_cast<int>(left.count())) : 0;
        if (ready == 0) {
          PQfinish(s.conn);
          s.conn = nullptr;
          return make_error(error_category::timeout,
                            std::string("postgresql: ") + what +
                                " got no answer in time: the connection was closed");
        }
        if ((ready < 0 && errno != EINTR) || (ready > 0 && PQconsumeInput(conn) == 0)) {
          return failure(conn, what);
        }
      }
      pg_result next(PQgetResult(conn));
      if (!next) break;
      const auto status = PQresultStatus(next.get());
      if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && !first_error) {
        first_error = std::move(next);
      } else {
        last = std::move(next);
      }
    }
    if (first_error) return failure(conn, what, first_error.get());
    if (!last) return failure(conn, what);
    return last;
  }

  // One statement (or, without parameters, a few in one implicit transaction).
  static result<pg_result> exec(PGconn* conn, const char* what, const std::string& sql,
                           const parameters& params) {
    PGresult* raw = nullptr;
    if (params.empty()) {
      raw = PQexec(conn, sql.c_str());
    } else {
      std::vector<const char*> values;
      values.reserve(params.size());
      for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
      raw = PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                         nullptr, nullptr, 0);
    }
    pg_result held(raw);
    const auto status = held ? PQresultStatus(held.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return held;
    return failure(conn, what, held.get());
  }

  // The server's or libpq's message: it names no password (libpq never echoes one).
  static error failure(PGconn* conn, const char* what, const PGresult* rows = nullptr) {
    std::string why = rows != nullptr ? PQresultErrorMessage(rows) : "";
    if (why.empty()) why = PQerrorMessage(conn);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    const bool broken = PQstatus(conn) != CONNECTION_OK;
    const char* state = rows != nullptr ? PQresultErrorField(rows, PG_DIAG_SQLSTATE) : nullptr;
    const bool timed_out = state != nullptr && std::string(state) == "57014";
    return make_error(broken      ? error_category::network
                      : timed_out ? error_category::timeout
                                  : error_category::internal,
                      std::string("postgresql: ") + what + " failed: " + why);
  }

  // Creates or migrates the shared schema (<unloc/stores/schema.hpp>) in one transaction,
  // and the sequence of claim tokens (PostgreSQL only: SQLite needs none).
  static result<void> create_schema(PGconn* conn) {
    const auto fail = [conn](error e) -> result<void> {
      (void)exec(conn, "create the schema", "ROLLBACK", {});
      return e;
    };
    // One migration at a time, however many processes start at once.
    auto locked = exec(conn, "create the schema",
                       std::string("BEGIN; SET LOCAL client_min_messages = warning;"
                                   "SELECT pg_advisory_xact_lock(7138466238413049681);") +
                           detail::schema_version_table +
                           ";"
                           "CREATE SEQUENCE IF NOT EXISTS unloc_claim_tokens;"
                           "SELECT max(version) FROM unloc_schema_version",
                       {});
    if (!locked) return fail(locked.error());
    const std::size_t version =
        static_cast<std::size_t>(std::strtoull(text(locked->get(), 0).c_str(), nullptr, 10));
    if (version > detail::schema_version) {
      return fail(make_error(error_category::internal,
                             "postgresql: the schema is version " + std::to_string(version) +
                                 ", newer than this SDK's " +
                                 std::to_string(detail::schema_version) + ": upgrade the SDK"));
    }
    for (std::size_t n = version; n < detail::schema_version; ++n) {
      const std::string migration = detail::schema_sql(detail::schema_migrations[n], false);
      if (auto migrated = exec(conn, "migrate the schema", migration, {}); !migrated) {
        return fail(migrated.error());
      }
    }
    if (version < detail::schema_version) {
      auto written = exec(conn, "migrate the schema",
                          "DELETE FROM unloc_schema_version; INSERT INTO unloc_schema_version "
                          "VALUES (" +
                              std::to_string(detail::schema_version) + ")",
                          {});
      if (!written) return fail(written.error());
    }
    if (auto committed = exec(conn, "create the schema", "COMMIT", {}); !committed) {
      return fail(committed.error());
    }
    return {};
  }

  static constexpr std::uint64_t prune_every = 10'000;  // claims between two prunes

  postgresql_store_options options_;
  std::atomic<std::uint64_t> claims_since_prune_{0};
  std::mutex mutex_;  // only around the slots' busy flags
  std::condition_variable available_;
  std::vector<pool_slot> pool_;
};

UNLOC_END_NAMESPACE

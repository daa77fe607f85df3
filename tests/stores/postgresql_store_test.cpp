// unloc::postgresql_event_store against a real PostgreSQL: a throwaway cluster
// started by this test program (tests/support/pg_cluster.sh), on loopback.
#include <unloc/stores/postgresql.hpp>

#include "catch.hpp"
#include "store_contract.hpp"
#include <signal.h>  // NOLINT(modernize-deprecated-headers): POSIX kill(), which <csignal> need not declare
#include <support/pg_cluster.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using unloc::claim_status;
using unloc::postgresql_event_store;
using unloc::settle_status;

// One cluster for the whole program (initdb costs seconds); removed at exit.
unloc_test::pg_cluster& cluster() {
  static unloc_test::pg_cluster c;
  return c;
}

unloc::postgresql_store_options options(std::chrono::milliseconds claim_lease = 5min) {
  unloc::postgresql_store_options o;
  o.conninfo = cluster().url();
  o.claim_lease = claim_lease;  // connect_timeout: the store's 5 s, room for a loaded machine
  return o;
}

std::unique_ptr<postgresql_event_store> open_store(std::chrono::milliseconds claim_lease = 5min) {
  auto store = postgresql_event_store::open(options(claim_lease));
  if (!store) FAIL(unloc::to_string(store.error()));
  return std::move(*store);
}

// A connection of the test's own, as an integrator holds one.
struct connection {
  PGconn* conn;
  explicit connection(const std::string& url = cluster().url()) : conn(PQconnectdb(url.c_str())) {
    REQUIRE(PQstatus(conn) == CONNECTION_OK);
    PQsetNoticeProcessor(
        conn, [](void*, const char*) {}, nullptr);
  }
  ~connection() { PQfinish(conn); }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // The first column of the first row of `sql` ("" when no row), failing the test on an error.
  std::string value(const std::string& sql) const {
    PGresult* r = PQexec(conn, sql.c_str());
    const auto status = PQresultStatus(r);
    std::string out = status == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    std::string why = PQresultErrorMessage(r);
    PQclear(r);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) FAIL(sql << ": " << why);
    return out;
  }
};

// A fresh random id: the tests share one database.
unloc::uuid fresh_id() {
  static std::mt19937_64 random{std::random_device{}()};
  static std::mutex mutex;
  const std::lock_guard<std::mutex> lock(mutex);
  std::string text;
  static constexpr char hex[] = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) text += '-';
    text += hex[random() % 16];
  }
  text[14] = '4';
  return unloc::uuid::parse(text).value();
}

const unloc::timestamp created = unloc::parse_timestamp("2026-12-01T10:35:24.083Z").value();

unloc::access_event event_with(unloc::uuid id) {
  unloc::access_event e;
  e.id = id;
  e.action = unloc::access_action::unlocked;
  e.created = created;
  e.key_id = fresh_id();
  e.lock_id = fresh_id();
  e.lock_name = "Front door";
  e.user_name = "Ola";
  return e;
}

std::string sql_text(const unloc::uuid& id) { return "'" + id.to_string() + "'"; }

// A fresh database in the cluster for each run of the contract (each SECTION), dropped after.
class postgresql_engine final : public store_contract::engine {
 public:
  postgresql_engine() {
    connection admin;
    admin.value("CREATE DATABASE " + name_);
    const std::string& base = cluster().url();
    url_ = base.substr(0, base.rfind('/') + 1) + name_;
  }
  ~postgresql_engine() override {
    connection admin;
    admin.value("DROP DATABASE " + name_ + " WITH (FORCE)");
  }
  postgresql_engine(const postgresql_engine&) = delete;
  postgresql_engine& operator=(const postgresql_engine&) = delete;

  std::shared_ptr<unloc::event_store> open(std::chrono::milliseconds claim_lease) override {
    auto o = options(claim_lease);
    o.conninfo = url_;
    o.clock = [this] { return now(); };
    return postgresql_event_store::open(o).value();
  }
  std::vector<store_contract::event_row> events() override {
    connection db(url_);
    PGresult* r = PQexec(db.conn,
                         "SELECT id, action, created, key_id, lock_id, lock_name, app_user_id,"
                         " user_name, extra, source, received_at, lag_ms FROM unloc_events"
                         " ORDER BY id");
    REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK);
    const auto column = [r](int row, int i) -> std::optional<std::string> {
      if (PQgetisnull(r, row, i) != 0) return std::nullopt;
      return std::string(PQgetvalue(r, row, i));
    };
    std::vector<store_contract::event_row> rows;
    for (int i = 0; i < PQntuples(r); ++i) {
      store_contract::event_row row;
      row.id = *column(i, 0);
      row.action = *column(i, 1);
      row.created = *column(i, 2);
      row.key_id = *column(i, 3);
      row.lock_id = *column(i, 4);
      row.lock_name = *column(i, 5);
      row.app_user_id = column(i, 6);
      row.user_name = column(i, 7);
      row.extra = *column(i, 8);
      row.source = *column(i, 9);
      row.received_at = *column(i, 10);
      row.lag_ms = std::strtoll(PQgetvalue(r, i, 11), nullptr, 10);
      rows.push_back(row);
    }
    PQclear(r);
    return rows;
  }
  void advance(std::chrono::milliseconds d) override { now_ms_ += d.count(); }
  unloc::timestamp now() override {
    return unloc::timestamp(std::chrono::milliseconds(now_ms_.load()));
  }
  unloc::result<std::uint64_t> forget_old_claims(unloc::event_store& store) override {
    return static_cast<postgresql_event_store&>(store).forget_old_claims();
  }
  void delete_events() override { (void)connection(url_).value("DELETE FROM unloc_events"); }
  [[nodiscard]] const std::string& url() const { return url_; }

 private:
  std::string name_ = "contract_" + fresh_id().to_string().substr(0, 8);
  std::string url_;
  std::atomic<std::int64_t> now_ms_{
      unloc::parse_timestamp("2026-12-01T12:00:00.000Z").value().time_since_epoch().count()};
};

}  // namespace

TEST_CASE("postgresql: a database of schema version 1 is migrated, its claims kept as they were") {
  postgresql_engine engine;
  const auto id = fresh_id();
  {
    connection v1(engine.url());
    v1.value(unloc::detail::schema_version_table);
    v1.value("CREATE SEQUENCE IF NOT EXISTS unloc_claim_tokens");
    v1.value(unloc::detail::schema_sql(unloc::detail::schema_migrations[0], false));
    v1.value("INSERT INTO unloc_schema_version (version) VALUES (1)");
    v1.value(
        "INSERT INTO unloc_claims (id, created_ms, owner, lease_until_ms, handled, in_doubt)"
        " VALUES (" +
        sql_text(id) + ", 1, 0, 0, 1, 0)");
  }
  auto store = engine.open(5min);
  CHECK(store->claim(id, created).value().status == unloc::claim_status::already_handled);
  connection after(engine.url());
  CHECK(after.value("SELECT version FROM unloc_schema_version") ==
        std::to_string(unloc::detail::schema_version));
  CHECK(after.value("SELECT seen_ms FROM unloc_claims") ==
        "0");  // forgotten by creation, as before
  CHECK(engine.forget_old_claims(*store).value() == 1);
}

TEST_CASE("postgresql: the store keeps the store contract") {
  postgresql_engine engine;
  store_contract::check_store_contract(engine);
}

TEST_CASE("postgresql: the schema is made once by concurrent opens, and a newer one is refused") {
  std::vector<std::thread> openers;
  std::atomic<int> opened{0};
  openers.reserve(4);
  for (int i = 0; i < 4; ++i) {
    openers.emplace_back([&] {
      if (postgresql_event_store::open(options())) ++opened;
    });
  }
  for (auto& t : openers) t.join();
  CHECK(opened == 4);
  connection db;
  CHECK(db.value("SELECT count(*) FROM unloc_schema_version") == "1");
  db.value("UPDATE unloc_schema_version SET version = 99");
  auto refused = postgresql_event_store::open(options());
  const std::string current = std::to_string(unloc::detail::schema_version);
  db.value("UPDATE unloc_schema_version SET version = " + current);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("version 99, newer than this SDK's " + current) !=
        std::string::npos);
}

TEST_CASE(
    "postgresql: a password is taken from PGPASSFILE, refused in the conninfo, never echoed") {
  const std::string secret = "s3cret-Pa55";
  auto with_password = options();
  with_password.conninfo = "postgresql://unloc:" + secret + "@127.0.0.1:1/unloc";
  auto refused = postgresql_event_store::open(with_password);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("PGPASSWORD or a .pgpass") != std::string::npos);
  CHECK(unloc::to_string(refused.error()).find(secret) == std::string::npos);

  // A wrong password from the environment: the server's refusal names no password.
  ::setenv("PGPASSWORD", secret.c_str(), 1);
  const std::string pgpass = cluster().pgpass_file();
  ::setenv("PGPASSFILE", "/nonexistent", 1);
  auto wrong = postgresql_event_store::open(options());
  ::setenv("PGPASSFILE", pgpass.c_str(), 1);
  ::unsetenv("PGPASSWORD");
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error().category == unloc::error_category::network);
  CHECK(wrong.error().message.find("password authentication failed") != std::string::npos);
  CHECK(unloc::to_string(wrong.error()).find(secret) == std::string::npos);
  CHECK(postgresql_event_store::open(options()));
}

TEST_CASE("postgresql: of concurrent claims from two stores, exactly one is mine per event") {
  auto a = open_store();
  auto b = open_store();
  std::vector<unloc::uuid> ids;
  ids.reserve(50);
  for (int i = 0; i < 50; ++i) ids.push_back(fresh_id());
  std::vector<std::atomic<int>> mine(ids.size());
  std::atomic<int> failures{0};  // Catch's assertions are for the test's own thread
  std::vector<std::thread> claimers;
  claimers.reserve(6);
  for (int t = 0; t < 6; ++t) {
    claimers.emplace_back([&, t] {
      auto& store = t % 2 == 0 ? *a : *b;
      for (std::size_t i = 0; i < ids.size(); ++i) {
        auto c = store.claim(ids[i], created);
        if (!c) {
          ++failures;
        } else if (c->mine()) {
          ++mine[i];
          auto marked =
              store.mark_handled(event_with(ids[i]), unloc::event_source::webhook, c->token);
          if (!marked || *marked != settle_status::done) ++failures;
        }
      }
    });
  }
  for (auto& t : claimers) t.join();
  CHECK(failures == 0);
  connection db;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    CHECK(mine[i] == 1);
    CHECK(a->claim(ids[i], created).value().status == claim_status::already_handled);
    CHECK(db.value("SELECT count(*) FROM unloc_events WHERE id = " + sql_text(ids[i])) == "1");
  }
}

TEST_CASE("postgresql: the events row holds the event's fields, its source and lag") {
  auto store = open_store();
  auto event = event_with(fresh_id());
  event.action = unloc::access_action::unknown;
  event.action_text = "teleported";
  event.lock_name = std::string("Robert'); DROP TABLE unloc_events;--\0x", 38);
  event.app_user_id.reset();
  event.extra = {{"battery", "87"}, {"pos", "{\"lat\":59.91}"}};
  const auto c = store->claim(event.id, event.created).value();
  REQUIRE(c.mine());
  REQUIRE(store->mark_handled(event, unloc::event_source::access_log, c.token).value() ==
          settle_status::done);
  connection db;
  const std::string where = " FROM unloc_events WHERE id = " + sql_text(event.id);
  CHECK(db.value("SELECT action" + where) == "teleported");
  CHECK(db.value("SELECT created" + where) == "2026-12-01T10:35:24.083Z");
  CHECK(db.value("SELECT lock_id" + where) == event.lock_id.to_string());
  CHECK(db.value("SELECT lock_name" + where) ==
        "Robert'); DROP TABLE unloc_events;--\xEF\xBF\xBDx");
  CHECK(db.value("SELECT app_user_id IS NULL" + where) == "t");
  CHECK(db.value("SELECT user_name" + where) == "Ola");
  CHECK(db.value("SELECT extra::jsonb -> 'pos' ->> 'lat'" + where) == "59.91");
  CHECK(db.value("SELECT source" + where) == "access_log");
  CHECK(db.value("SELECT received_at > created AND lag_ms > 0" + where) == "t");
  CHECK(db.value("SELECT abs(lag_ms - (extract(epoch from received_at::timestamptz) -"
                 " extract(epoch from created::timestamptz)) * 1000) < 1" +
                 where) == "t");
  // Marked again (a retry): done, and still one row.
  CHECK(store->mark_handled(event, unloc::event_source::webhook, c.token).value() ==
        settle_status::done);
  CHECK(db.value("SELECT count(*)" + where) == "1");
}

TEST_CASE(
    "postgresql: a claim past its lease is taken over in doubt; the old holder is not_owner") {
  auto a = open_store(300ms);
  auto b = open_store(300ms);
  const auto id = fresh_id();
  const auto first = a->claim(id, created).value();
  REQUIRE(first.mine());
  CHECK_FALSE(first.in_doubt);
  CHECK(b->claim(id, created).value().status == claim_status::held_elsewhere);
  unloc::event_claim second;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  do {
    std::this_thread::sleep_for(50ms);
    second = b->claim(id, created).value();
  } while (!second.mine() && std::chrono::steady_clock::now() < deadline);
  REQUIRE(second.mine());
  CHECK(second.in_doubt);
  CHECK(second.token != first.token);
  CHECK(a->mark_handled(id, first.token).value() == settle_status::not_owner);
  CHECK(a->release(id, first.token).value() == settle_status::not_owner);
  CHECK(b->release(id, second.token).value() == settle_status::done);
  // Released while in doubt: free, and the next claim is in doubt too.
  const auto third = a->claim(id, created).value();
  CHECK(third.mine());
  CHECK(third.in_doubt);
  CHECK(a->mark_handled(id, 0).value() == settle_status::not_owner);
  CHECK(a->mark_handled(id, third.token).value() == settle_status::done);
  CHECK(b->claim(id, created).value().status == claim_status::already_handled);
}

TEST_CASE("postgresql: a released claim is free again, not in doubt; checkpoints never go back") {
  auto store = open_store();
  const auto id = fresh_id();
  const auto c = store->claim(id, created).value();
  REQUIRE(store->release(id, c.token).value() == settle_status::done);
  const auto again = store->claim(id, created).value();
  CHECK(again.mine());
  CHECK_FALSE(again.in_doubt);
  CHECK(store->release(id, c.token).value() == settle_status::not_owner);

  const std::string scope = "lock-" + fresh_id().to_string();
  CHECK_FALSE(store->checkpoint(scope).value());
  REQUIRE(store->save_checkpoint(scope, created));
  REQUIRE(store->save_checkpoint(scope, created - 1h));
  CHECK(store->checkpoint(scope).value() == created);
}

TEST_CASE("postgresql: the log lease goes to one holder; a stale token moves no checkpoint") {
  auto a = open_store();
  auto b = open_store();
  const std::string scope = "lock-" + fresh_id().to_string();
  const auto first = a->acquire_log_lease(scope, "a", 300ms).value();
  REQUIRE(first);
  CHECK(a->acquire_log_lease(scope, "a", 300ms).value() == first);  // renewed, same token
  CHECK_FALSE(b->acquire_log_lease(scope, "b", 300ms).value());
  std::optional<std::uint64_t> second;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!second && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    second = b->acquire_log_lease(scope, "b", 1min).value();
  }
  REQUIRE(second);
  CHECK(*second > *first);
  CHECK(a->save_checkpoint(scope, created, *first).value() == settle_status::not_owner);
  CHECK_FALSE(a->checkpoint(scope).value());
  CHECK(b->save_checkpoint(scope, created, *second).value() == settle_status::done);
  CHECK(a->checkpoint(scope).value() == created);
  CHECK_FALSE(a->acquire_log_lease(scope, "a", 300ms).value());
}

TEST_CASE("postgresql: when the lease holder is killed, another takes over within the lease") {
  const std::string scope = "lock-" + fresh_id().to_string();
  // Long enough that the check below (the lease still held) holds on a loaded machine.
  constexpr auto lease = 5s;
  auto store = open_store();  // before the child's lease starts: opening may be slow
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t holder = ::fork();
  REQUIRE(holder >= 0);
  if (holder == 0) {
    // The child: takes the lease, says so (or why not), and waits to be killed.
    auto child_store = postgresql_event_store::open(options());
    std::string reply = "y";
    if (!child_store) {
      reply = "open: " + unloc::to_string(child_store.error());
    } else if (auto taken = (*child_store)->acquire_log_lease(scope, "child", lease); !taken) {
      reply = "acquire: " + unloc::to_string(taken.error());
    } else if (!*taken) {
      reply = "acquire: held by another";
    }
    (void)!::write(ready[1], reply.data(), (std::min)(reply.size(), std::size_t{500}));
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char buffer[512];
  const auto got = ::read(ready[0], buffer, sizeof buffer);
  ::close(ready[0]);
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  const std::string reply(buffer, got > 0 ? static_cast<std::size_t>(got) : 0);
  INFO("the child: " << reply);
  REQUIRE(reply == "y");
  const auto killed_at = std::chrono::steady_clock::now();

  CHECK_FALSE(store->acquire_log_lease(scope, "successor", lease).value());
  std::optional<std::uint64_t> taken;
  while (!taken && std::chrono::steady_clock::now() - killed_at < lease + 10s) {
    std::this_thread::sleep_for(100ms);
    taken = store->acquire_log_lease(scope, "successor", lease).value();
  }
  REQUIRE(taken);
  // The dead holder's token (the one before) moves nothing.
  CHECK(store->save_checkpoint(scope, created, *taken - 1).value() == settle_status::not_owner);
  CHECK(store->save_checkpoint(scope, created, *taken).value() == settle_status::done);
}

TEST_CASE("postgresql: the integrator's insert and the mark commit together or not at all") {
  connection db;
  db.value("CREATE TABLE IF NOT EXISTS door_log (event_id text PRIMARY KEY, note text)");
  auto attached = postgresql_event_store::attach(db.conn);
  REQUIRE(attached);
  auto& store = **attached;
  const auto event = event_with(fresh_id());
  const std::string theirs = "SELECT count(*) FROM door_log WHERE event_id = " + sql_text(event.id);
  const std::string ours = "SELECT count(*) FROM unloc_events WHERE id = " + sql_text(event.id);
  const std::string id = event.id.to_string();
  const auto insert = [&](PGconn* conn) {
    const char* values[] = {id.c_str()};
    PGresult* r = PQexecParams(conn, "INSERT INTO door_log VALUES ($1, 'opened')", 1, nullptr,
                               values, nullptr, nullptr, 0);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
  };

  SECTION("their work fails after their insert: both roll back, then a retry commits both once") {
    auto failed = store.handle_once(event, unloc::event_source::webhook,
                                    [&](PGconn* conn) { return insert(conn) && false; });
    REQUIRE_FALSE(failed);
    CHECK(failed.error().message.find("did not confirm event " + id) != std::string::npos);
    auto threw = store.handle_once(event, unloc::event_source::webhook, [&](PGconn* conn) -> bool {
      insert(conn);
      throw std::runtime_error("their bug");
    });
    REQUIRE_FALSE(threw);
    CHECK(threw.error().message.find("their bug") != std::string::npos);
  }
  SECTION("their connection broken (the server restarted): an error that says to reset it") {
    connection other;
    other.value("SELECT pg_terminate_backend(" + std::to_string(PQbackendPID(db.conn)) + ")");
    CHECK_FALSE(store.handle_once(event, unloc::event_source::webhook, insert));  // finds out
    auto broken = store.handle_once(event, unloc::event_source::webhook, insert);
    REQUIRE_FALSE(broken);
    CHECK(broken.error().category == unloc::error_category::network);
    CHECK(broken.error().message.find("reset it (PQreset)") != std::string::npos);
    PQreset(db.conn);
    REQUIRE(PQstatus(db.conn) == CONNECTION_OK);
  }
  SECTION("their work breaks the transaction after their insert: nothing is marked or kept") {
    auto broken = store.handle_once(event, unloc::event_source::webhook, [&](PGconn* conn) {
      const bool inserted = insert(conn);
      PQclear(PQexec(conn, "SELECT 1/0"));  // aborts the transaction
      return inserted;
    });
    REQUIRE_FALSE(broken);
    CHECK(broken.error().message.find("ended or broke the transaction") != std::string::npos);
  }
  SECTION("the mark itself fails after their insert: both roll back") {
    auto failed = store.handle_once(event, unloc::event_source::webhook, [&](PGconn* conn) {
      // A trigger that fails the store's INSERT into unloc_events, made inside this
      // transaction (PostgreSQL's DDL is transactional): it goes with the rollback.
      PQclear(PQexec(conn,
                     "CREATE FUNCTION unloc_test_fail() RETURNS trigger LANGUAGE plpgsql AS"
                     " $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;"
                     "CREATE TRIGGER unloc_test_fail BEFORE INSERT ON unloc_events"
                     " FOR EACH ROW EXECUTE FUNCTION unloc_test_fail()"));
      return insert(conn);
    });
    REQUIRE_FALSE(failed);
    CHECK(failed.error().message.find("injected failure") != std::string::npos);
    CHECK(db.value("SELECT count(*) FROM pg_trigger WHERE tgname = 'unloc_test_fail'") == "0");
  }
  CHECK(db.value(theirs) == "0");
  CHECK(db.value(ours) == "0");
  CHECK(PQtransactionStatus(db.conn) == PQTRANS_IDLE);

  auto handled = store.handle_once(event, unloc::event_source::webhook, insert);
  REQUIRE(handled);
  CHECK(*handled == unloc::handle_status::handled);
  int calls = 0;
  auto again = store.handle_once(event, unloc::event_source::access_log, [&](PGconn*) {
    ++calls;
    return true;
  });
  CHECK(again.value() == unloc::handle_status::already_handled);
  CHECK(calls == 0);
  CHECK(db.value(theirs) == "1");
  CHECK(db.value(ours) == "1");
  // A claim by a receiver's store of the same database sees it handled.
  CHECK(open_store()->claim(event.id, created).value().status == claim_status::already_handled);
}

TEST_CASE("postgresql: a store outage is an error, then the store reconnects and loses nothing") {
  auto store = open_store();
  const auto before = event_with(fresh_id());
  const auto c = store->claim(before.id, created).value();
  REQUIRE(store->mark_handled(before, unloc::event_source::webhook, c.token).value() ==
          settle_status::done);
  const auto pending = fresh_id();
  const auto held = store->claim(pending, created).value();
  REQUIRE(held.mine());

  cluster().stop();
  const auto down = store->claim(fresh_id(), created);
  REQUIRE_FALSE(down);
  CHECK(down.error().category == unloc::error_category::network);
  CHECK_FALSE(store->check());
  CHECK_FALSE(store->mark_handled(pending, held.token));
  cluster().start();

  // The same store, no reopen by the caller: the first call after the outage works.
  REQUIRE(store->check());
  CHECK(store->claim(before.id, created).value().status == claim_status::already_handled);
  CHECK(store->mark_handled(pending, held.token).value() == settle_status::done);

  // A crash (-m immediate) forgets no acknowledged mark.
  const auto last = event_with(fresh_id());
  const auto lc = store->claim(last.id, created).value();
  REQUIRE(store->mark_handled(last, unloc::event_source::webhook, lc.token).value() ==
          settle_status::done);
  cluster().restart_immediate();
  for (const auto& id : {before.id, pending, last.id}) {
    const auto after = store->claim(id, created);
    REQUIRE(after);
    CHECK(after->status == claim_status::already_handled);
  }
  connection db;
  CHECK(db.value("SELECT count(*) FROM unloc_events WHERE id IN (" + sql_text(before.id) + ", " +
                 sql_text(last.id) + ")") == "2");
}

TEST_CASE("postgresql: a slow store is a timeout error, and the next call works") {
  auto slow = options();
  slow.statement_timeout = 300ms;
  auto opened = postgresql_event_store::open(slow);
  REQUIRE(opened);
  auto& store = **opened;
  const auto id = fresh_id();
  REQUIRE(store.claim(id, created).value().mine());
  connection db;
  // Another transaction holds the event's row: the store's mark waits for it past its timeout.
  db.value("BEGIN");
  db.value("SELECT 1 FROM unloc_claims WHERE id = " + sql_text(id) + " FOR UPDATE");
  const auto waited = store.mark_handled(id, 0);
  db.value("ROLLBACK");
  REQUIRE_FALSE(waited);
  CHECK(waited.error().category == unloc::error_category::timeout);
  CHECK(store.claim(id, created).value().status == claim_status::held_elsewhere);
}

TEST_CASE("postgresql: a server that stops answering fails the call in bounded time") {
  auto hung = options();
  hung.statement_timeout = 300ms;
  hung.connect_timeout = 1s;
  auto opened = postgresql_event_store::open(hung);
  REQUIRE(opened);
  auto& store = **opened;
  REQUIRE(store.check());
  // Every process of the cluster, by pid: the postmaster (postmaster.pid) and its children.
  std::vector<pid_t> pids;
  {
    std::FILE* f = std::fopen((cluster().dir() + "/data/postmaster.pid").c_str(), "r");
    REQUIRE(f != nullptr);
    long postmaster = 0;
    REQUIRE(std::fscanf(f, "%ld", &postmaster) == 1);
    std::fclose(f);
    pids.push_back(static_cast<pid_t>(postmaster));
    std::FILE* children = ::popen(("pgrep -P " + std::to_string(postmaster)).c_str(), "r");
    REQUIRE(children != nullptr);
    long child = 0;
    while (std::fscanf(children, "%ld", &child) == 1) pids.push_back(static_cast<pid_t>(child));
    ::pclose(children);
  }
  for (pid_t pid : pids) ::kill(pid, SIGSTOP);
  const auto began = std::chrono::steady_clock::now();
  const auto stuck = store.claim(fresh_id(), created);
  const auto took = std::chrono::steady_clock::now() - began;
  for (pid_t pid : pids) ::kill(pid, SIGCONT);
  REQUIRE_FALSE(stuck);
  CHECK(stuck.error().category == unloc::error_category::timeout);
  CHECK(took < 30s);  // the bound is 0.3 s + 5 s; generous for sanitizer builds
  CHECK(store.check());
}

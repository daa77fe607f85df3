// The SQLite store on a real SQLite, in a temporary directory: the store
// contract, then what only SQLite has (WAL and durability, the integrator's own
// connection, several processes on one file, a full disk, a lock held too long).

#include <unloc/reconciler.hpp>
#include <unloc/stores/sqlite.hpp>

#include "../unit/allocation_failure.hpp"
#include "catch.hpp"
#include "store_contract.hpp"
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using unloc::sqlite_event_store;

// A fresh directory, removed with everything in it.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::random_device entropy;
    for (int attempt = 0; attempt < 100 && path.empty(); ++attempt) {
      const auto candidate =
          std::filesystem::temp_directory_path() / ("unloc-sqlite-" + std::to_string(entropy()));
      if (std::filesystem::create_directory(candidate)) path = candidate;
    }
    REQUIRE(!path.empty());
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  [[nodiscard]] std::string file(const char* name) const { return (path / name).string(); }
};

// A connection of the test's own, closed at the end.
struct connection {
  sqlite3* db = nullptr;
  explicit connection(const std::string& path, const char* vfs = nullptr) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
                            vfs) == SQLITE_OK);
    sqlite3_busy_timeout(db, 10'000);
  }
  ~connection() { sqlite3_close(db); }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  void exec(const std::string& sql) const {
    char* message = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
    const std::string why = message != nullptr ? message : "";
    sqlite3_free(message);
    INFO(sql << ": " << why);
    REQUIRE(rc == SQLITE_OK);
  }
  // Runs `sql` that may fail: SQLite's code.
  int attempt(const char* sql) const { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }
  // The first column of the first row, as text (empty without a row).
  [[nodiscard]] std::string text(const std::string& sql) const {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    std::string out;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    return out;
  }
  [[nodiscard]] long long number(const std::string& sql) const { return std::stoll(text(sql)); }
};

std::optional<std::string> column(sqlite3_stmt* s, int i) {
  const auto* text = sqlite3_column_text(s, i);
  if (text == nullptr) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(text));
}

// SQLite in a temporary directory, for the store contract.
class sqlite_engine final : public store_contract::engine {
 public:
  std::shared_ptr<unloc::event_store> open(std::chrono::milliseconds claim_lease) override {
    unloc::sqlite_store_options options;
    options.claim_lease = claim_lease;
    options.clock = [this] { return unloc::timestamp(std::chrono::milliseconds(now_ms_.load())); };
    return sqlite_event_store::open(path_, options).value();
  }
  std::vector<store_contract::event_row> events() override {
    connection c(path_);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(c.db,
                               "SELECT id, action, created, key_id, lock_id, lock_name, "
                               "app_user_id, user_name, extra, source, received_at, lag_ms "
                               "FROM unloc_events ORDER BY id",
                               -1, &s, nullptr) == SQLITE_OK);
    std::vector<store_contract::event_row> rows;
    while (sqlite3_step(s) == SQLITE_ROW) {
      store_contract::event_row r;
      r.id = *column(s, 0);
      r.action = *column(s, 1);
      r.created = *column(s, 2);
      r.key_id = *column(s, 3);
      r.lock_id = *column(s, 4);
      r.lock_name = *column(s, 5);
      r.app_user_id = column(s, 6);
      r.user_name = column(s, 7);
      r.extra = *column(s, 8);
      r.source = *column(s, 9);
      r.received_at = *column(s, 10);
      r.lag_ms = sqlite3_column_int64(s, 11);
      rows.push_back(r);
    }
    sqlite3_finalize(s);
    return rows;
  }
  void advance(std::chrono::milliseconds d) override { now_ms_ += d.count(); }
  unloc::timestamp now() override {
    return unloc::timestamp(std::chrono::milliseconds(now_ms_.load()));
  }
  unloc::result<std::uint64_t> forget_old_claims(unloc::event_store& store) override {
    return static_cast<sqlite_event_store&>(store).forget_old_claims();
  }
  void delete_events() override { connection(path_).exec("DELETE FROM unloc_events"); }

 private:
  temp_dir dir_;
  std::string path_ = dir_.file("events.db");
  std::atomic<std::int64_t> now_ms_{
      unloc::parse_timestamp("2026-12-01T12:00:00.000Z").value().time_since_epoch().count()};
};

const auto sample = unloc::testing::sample_access_event();

// The rows of `table`, read on `db`.
long long connection_count(sqlite3* db, const std::string& table) {
  sqlite3_stmt* s = nullptr;
  const std::string sql = "SELECT count(*) FROM " + table;
  long long n = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW) {
    n = sqlite3_column_int64(s, 0);
  }
  sqlite3_finalize(s);
  return n;
}

// The integrator's work: a row in their own table `doors`.
bool open_door(sqlite3* db, const unloc::access_event& event) {
  const std::string sql = "INSERT INTO doors (event_id, pid) VALUES ('" + event.id.to_string() +
                          "', " + std::to_string(::getpid()) + ")";
  return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
}

}  // namespace

TEST_CASE("the SQLite store keeps the store contract", "[sqlite]") {
  sqlite_engine engine;
  store_contract::check_store_contract(engine);
}

TEST_CASE("the SQLite store opens in WAL mode, with the durability asked for and a busy timeout",
          "[sqlite]") {
  temp_dir dir;
  {
    auto store = sqlite_event_store::open(dir.file("a.db")).value();
    connection c(dir.file("a.db"));
    CHECK(c.text("PRAGMA journal_mode") == "wal");
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(store->connection(), "PRAGMA synchronous", -1, &s, nullptr) ==
            SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    CHECK(sqlite3_column_int(s, 0) == 1);  // NORMAL
    sqlite3_finalize(s);
    REQUIRE(sqlite3_prepare_v2(store->connection(), "PRAGMA busy_timeout", -1, &s, nullptr) ==
            SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    CHECK(sqlite3_column_int(s, 0) == 5000);
    sqlite3_finalize(s);
  }
  unloc::sqlite_store_options full;
  full.durability = unloc::sqlite_durability::full;
  auto store = sqlite_event_store::open(dir.file("a.db"), full).value();
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(store->connection(), "PRAGMA synchronous", -1, &s, nullptr) ==
          SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  CHECK(sqlite3_column_int(s, 0) == 2);  // FULL
  sqlite3_finalize(s);
}

TEST_CASE("on the integrator's connection, their insert and the mark commit together or not at all",
          "[sqlite]") {
  temp_dir dir;
  connection own(dir.file("app.db"));
  own.exec("PRAGMA user_version = 7; CREATE TABLE doors (event_id TEXT, pid INTEGER)");
  auto store = sqlite_event_store::attach(own.db).value();
  CHECK(own.number("PRAGMA user_version") == 7);  // theirs: the schema version is in a table
  int calls = 0;
  const auto work = [&](sqlite3* db) {
    ++calls;
    return open_door(db, sample);
  };

  SECTION("a failure injected between their insert and the mark rolls back both") {
    own.exec(
        "CREATE TEMP TRIGGER fail_mark BEFORE INSERT ON unloc_events "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
    auto failed = store->handle_once(sample, unloc::event_source::webhook, work);
    REQUIRE_FALSE(failed);
    CHECK(failed.error().message.find("injected failure") != std::string::npos);
    CHECK(calls == 1);
    CHECK(own.number("SELECT count(*) FROM doors") == 0);
    CHECK(own.number("SELECT count(*) FROM unloc_events") == 0);
    CHECK(own.number("SELECT count(*) FROM unloc_claims") == 0);
    CHECK(sqlite3_get_autocommit(own.db) != 0);  // no transaction left open
    own.exec("DROP TRIGGER fail_mark");
  }
  SECTION("work that does not confirm, or throws, rolls back its insert") {
    auto refused = store->handle_once(sample, unloc::event_source::webhook, [&](sqlite3* db) {
      REQUIRE(open_door(db, sample));
      return false;
    });
    REQUIRE_FALSE(refused);
    auto thrown =
        store->handle_once(sample, unloc::event_source::webhook, [&](sqlite3* db) -> bool {
          REQUIRE(open_door(db, sample));
          throw std::runtime_error("printer on fire");
        });
    REQUIRE_FALSE(thrown);
    CHECK(thrown.error().message.find("printer on fire") != std::string::npos);
    CHECK(own.number("SELECT count(*) FROM doors") == 0);
  }
  SECTION("the process killed between their insert and the mark leaves nothing") {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      // A connection of its own: an SQLite connection must not cross a fork.
      sqlite3* db = nullptr;
      if (sqlite3_open(dir.file("app.db").c_str(), &db) != SQLITE_OK) ::_exit(2);
      auto in_child = sqlite_event_store::attach(db);
      if (!in_child) ::_exit(3);
      (void)(*in_child)->handle_once(sample, unloc::event_source::webhook, [](sqlite3* c) {
        if (!open_door(c, sample)) ::_exit(4);
        ::_exit(0);  // killed before the mark
        return true;
      });
      ::_exit(5);
    }
    int wstatus = 0;
    REQUIRE(::waitpid(child, &wstatus, 0) == child);
    REQUIRE(WIFEXITED(wstatus));
    REQUIRE(WEXITSTATUS(wstatus) == 0);
    CHECK(own.number("SELECT count(*) FROM doors") == 0);
  }

  // After any of those, the next delivery does it, once.
  CHECK(store->handle_once(sample, unloc::event_source::webhook, work).value() ==
        unloc::handle_status::handled);
  const int before = calls;
  CHECK(store->handle_once(sample, unloc::event_source::access_log, work).value() ==
        unloc::handle_status::already_handled);
  CHECK(calls == before);  // not called again
  CHECK(own.number("SELECT count(*) FROM doors") == 1);
  CHECK(own.text("SELECT source FROM unloc_events") == "webhook");
  CHECK(store->claim(sample.id, sample.created).value().status ==
        unloc::claim_status::already_handled);
}

TEST_CASE("handle_once skips an event a live claim holds, and refuses a connection mid-transaction",
          "[sqlite]") {
  temp_dir dir;
  connection own(dir.file("app.db"));
  own.exec("CREATE TABLE doors (event_id TEXT, pid INTEGER)");
  auto store = sqlite_event_store::attach(own.db).value();
  const auto work = [](sqlite3* db) { return open_door(db, sample); };
  const auto claim = store->claim(sample.id, sample.created).value();
  REQUIRE(claim.mine());
  CHECK(store->handle_once(sample, unloc::event_source::webhook, work).value() ==
        unloc::handle_status::held_elsewhere);
  REQUIRE(store->release(sample.id, claim.token).value() == unloc::settle_status::done);
  own.exec("BEGIN");
  auto nested = store->handle_once(sample, unloc::event_source::webhook, work);
  REQUIRE_FALSE(nested);
  CHECK(nested.error().message.find("outside any transaction") != std::string::npos);
  own.exec("ROLLBACK");
  CHECK(store->handle_once(sample, unloc::event_source::webhook, work).value() ==
        unloc::handle_status::handled);
}

TEST_CASE("two processes on one database file handle each event exactly once", "[sqlite]") {
  temp_dir dir;
  const std::string path = dir.file("shared.db");
  {
    auto store = sqlite_event_store::open(path).value();
    connection c(path);
    c.exec("CREATE TABLE doors (event_id TEXT, pid INTEGER)");
  }
  constexpr std::uint32_t events = 300;
  std::vector<pid_t> children;
  for (int p = 0; p < 2; ++p) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      auto store = sqlite_event_store::open(path);
      if (!store) ::_exit(2);
      for (std::uint32_t i = 0; i < events; ++i) {
        const std::uint32_t n = p == 0 ? i : events - 1 - i;  // they meet in the middle
        const auto event = store_contract::numbered_event(n, sample.created);
        if (n % 2 == 0) {  // the integrator's path
          auto done = (*store)->handle_once(event, unloc::event_source::webhook,
                                            [&](sqlite3* db) { return open_door(db, event); });
          if (!done) ::_exit(3);
          continue;
        }
        // The claim protocol, the work on the store's connection between claim and mark.
        auto claimed = (*store)->claim(event.id, event.created);
        if (!claimed) ::_exit(4);
        if (!claimed->mine()) continue;
        if (!open_door((*store)->connection(), event)) ::_exit(5);
        auto marked = (*store)->mark_handled(event, unloc::event_source::webhook, claimed->token);
        if (!marked || *marked != unloc::settle_status::done) ::_exit(6);
      }
      ::_exit(0);
    }
    children.push_back(child);
  }
  for (const pid_t child : children) {
    int wstatus = 0;
    REQUIRE(::waitpid(child, &wstatus, 0) == child);
    REQUIRE(WIFEXITED(wstatus));
    CHECK(WEXITSTATUS(wstatus) == 0);
  }
  connection c(path);
  CHECK(c.number("SELECT count(*) FROM doors") == events);
  CHECK(c.number("SELECT count(DISTINCT event_id) FROM doors") == events);
  CHECK(c.number("SELECT count(*) FROM unloc_events") == events);
  CHECK(c.number("SELECT count(*) FROM unloc_claims WHERE handled = 1") == events);
}

// What the store returned committed is in the WAL file for every other
// connection, and for the next process after a kill; also a transaction larger
// than the page cache, whose pages SQLite writes to the WAL before the commit
// and again, in place, when they change once more.
TEST_CASE("a commit is in the WAL file when it returns: other connections read it, a kill keeps it",
          "[sqlite]") {
  temp_dir dir;
  const std::string path = dir.file("wal.db");
  constexpr int rows = 400;
  constexpr std::uint32_t events = 50;
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // A connection must not cross a fork: everything SQLite here is the child's own.
    unloc::sqlite_store_options options;
    options.checkpoint_pages = 1'000'000;  // everything stays in the WAL: a kill leaves only it
    auto store = sqlite_event_store::open(path, options);
    if (!store) ::_exit(2);
    sqlite3* db = (*store)->connection();
    if (sqlite3_exec(db,
                     "PRAGMA cache_size = 8; CREATE TABLE big (n INTEGER PRIMARY KEY, pad TEXT)",
                     nullptr, nullptr, nullptr) != SQLITE_OK) {
      ::_exit(3);
    }
    sqlite3* reader = nullptr;
    if (sqlite3_open(path.c_str(), &reader) != SQLITE_OK) ::_exit(4);
    const auto count = [&](const char* sql) {
      sqlite3_stmt* s = nullptr;
      long long n = -1;
      if (sqlite3_prepare_v2(reader, sql, -1, &s, nullptr) == SQLITE_OK &&
          sqlite3_step(s) == SQLITE_ROW) {
        n = sqlite3_column_int64(s, 0);
      }
      sqlite3_finalize(s);
      return n;
    };
    const std::string fill =
        "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < " +
        std::to_string(rows) +
        ") INSERT INTO big (n, pad) SELECT n, replace(hex(zeroblob(500)), '0', 'x') FROM s";
    auto big = (*store)->handle_once(sample, unloc::event_source::webhook, [&](sqlite3* c) {
      return sqlite3_exec(c, fill.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK &&
             sqlite3_exec(c, "UPDATE big SET pad = upper(pad)", nullptr, nullptr, nullptr) ==
                 SQLITE_OK;
    });
    if (!big || *big != unloc::handle_status::handled) ::_exit(5);
    if (count("SELECT count(*) FROM big WHERE pad LIKE 'X%'") != rows) ::_exit(6);
    for (std::uint32_t n = 0; n < events; ++n) {
      const auto event = store_contract::numbered_event(n, sample.created);
      auto claimed = (*store)->claim(event.id, event.created);
      if (!claimed || !claimed->mine()) ::_exit(7);
      auto marked = (*store)->mark_handled(event, unloc::event_source::webhook, claimed->token);
      if (!marked || *marked != unloc::settle_status::done) ::_exit(7);
      if (count("SELECT count(*) FROM unloc_events") != n + 2) ::_exit(8);
    }
    ::kill(::getpid(), SIGKILL);
    ::_exit(9);
  }
  int wstatus = 0;
  REQUIRE(::waitpid(child, &wstatus, 0) == child);
  INFO("the child's exit status (0 when killed): " << (WIFEXITED(wstatus) ? WEXITSTATUS(wstatus)
                                                                          : 0));
  REQUIRE(WIFSIGNALED(wstatus));
  CHECK(WTERMSIG(wstatus) == SIGKILL);
  connection c(path);  // recovers the WAL: a frame with a wrong checksum would end it there
  CHECK(c.text("PRAGMA integrity_check") == "ok");
  CHECK(c.number("SELECT count(*) FROM big WHERE pad LIKE 'X%'") == rows);
  CHECK(c.number("SELECT count(*) FROM unloc_events") == events + 1);
  CHECK(c.number("SELECT count(*) FROM unloc_claims WHERE handled = 1") == events + 1);
}

// Between calls the store holds a read transaction on its own connection, so
// that a write transaction takes only the write lock (detail in
// sqlite_event_store::acquire_hold): it must not hide other connections'
// commits from the store's next call, nor keep another writer from waiting
// its turn, nor hold back other connections' checkpoints once idle.
TEST_CASE("the read transaction held between calls hides no commit and blocks no checkpoint",
          "[sqlite]") {
  temp_dir dir;
  const std::string path = dir.file("hold.db");
  auto store = sqlite_event_store::open(path).value();
  connection other(path);
  const auto first = store_contract::numbered_event(1, sample.created);
  const auto token = store_contract::mine(*store, first.id, first.created);
  REQUIRE(store->mark_handled(first, unloc::event_source::webhook, token).value() ==
          unloc::settle_status::done);

  // Another connection's commit since the store's last call: its next call sees it.
  const auto second = store_contract::numbered_event(2, sample.created);
  other.exec(
      "INSERT INTO unloc_claims (id, created_ms, owner, lease_until_ms, handled, in_doubt)"
      " VALUES ('" +
      second.id.to_string() + "', 0, 0, 0, 1, 0)");
  CHECK(store->claim(second.id, second.created).value().status ==
        unloc::claim_status::already_handled);
  other.exec("INSERT INTO unloc_checkpoints (scope, read_to_ms) VALUES ('project', 1234)");
  CHECK(store->checkpoint("project").value() == unloc::timestamp(std::chrono::milliseconds(1234)));
  other.exec("INSERT INTO unloc_checkpoints (scope, read_to_ms) VALUES ('lock', 5)");
  CHECK(connection_count(store->connection(), "unloc_checkpoints") == 2);

  // A TRUNCATE checkpoint is busy while the store holds its read (a connection
  // without a busy timeout: with one, it would wait for the read to end).
  const auto truncate_busy = [&] {
    sqlite3* probe = nullptr;
    sqlite3_stmt* s = nullptr;
    int busy = -1;
    if (sqlite3_open(path.c_str(), &probe) == SQLITE_OK &&
        sqlite3_prepare_v2(probe, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &s, nullptr) ==
            SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      busy = sqlite3_column_int(s, 0);
    }
    sqlite3_finalize(s);
    sqlite3_close(probe);
    return busy;
  };
  // A call that commits does: it ends at the checkpoint thread's next tick (0.1 s),
  // and pauses for a second after the store met another connection's commit (the
  // claims above).
  bool held = false;
  for (int i = 0; i < 50 && !held; ++i) {
    REQUIRE(store->save_checkpoint("hold", unloc::timestamp(std::chrono::milliseconds(i + 1))));
    held = truncate_busy() == 1;
    if (!held) std::this_thread::sleep_for(100ms);
  }
  CHECK(held);
  // A read-only call ends it and takes none: that hold would never pause for
  // another writer, and would keep frames it wrote from being reset.
  other.exec("INSERT INTO unloc_checkpoints (scope, read_to_ms) VALUES ('other', 7)");
  REQUIRE(store->checkpoint("project"));
  CHECK(truncate_busy() == 0);

  // Another writer's transaction while the store holds its read (a call that
  // committed just before): the store's call waits for it, as without the hold.
  const auto third = store_contract::numbered_event(3, sample.created);
  REQUIRE(store->save_checkpoint("hold", unloc::timestamp(std::chrono::milliseconds(100))));
  other.exec("BEGIN IMMEDIATE");
  std::thread writer([&] {
    std::this_thread::sleep_for(300ms);
    other.exec("COMMIT");
  });
  auto claimed = store->claim(third.id, third.created);
  writer.join();
  REQUIRE(claimed);
  CHECK(claimed->mine());

  // Idle, the store holds back no checkpoint: another connection copies the
  // whole WAL and empties it (TRUNCATE needs every reader gone).
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  std::string result;
  while (std::chrono::steady_clock::now() < deadline) {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(other.db, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &s, nullptr) ==
            SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    result = std::to_string(sqlite3_column_int(s, 0)) + " " +
             std::to_string(sqlite3_column_int(s, 1)) + " " +
             std::to_string(sqlite3_column_int(s, 2));
    sqlite3_finalize(s);
    if (result == "0 0 0") break;
    std::this_thread::sleep_for(20ms);
  }
  CHECK(result == "0 0 0");
  CHECK(std::filesystem::file_size(path + "-wal") == 0);
  CHECK(store->release(third.id, claimed->token).value() == unloc::settle_status::done);
}

// A transaction larger than the page cache writes frames to the WAL before its
// commit; rolled back, those frames are dead, and another connection's commit
// writes over them. Nothing of the dead transaction may reach the file after
// that (a VFS that held writes back would write them over the other commit).
TEST_CASE("a rolled-back transaction larger than the cache leaves the file whole for others",
          "[sqlite]") {
  temp_dir dir;
  const std::string path = dir.file("rollback.db");
  auto store = sqlite_event_store::open(path).value();
  connection other(path);
  other.exec("CREATE TABLE doors (n INTEGER PRIMARY KEY, pad TEXT)");
  // Every page in the database file, none in the WAL (the store's read hold ends within 0.1 s).
  std::string truncated;
  for (int i = 0; i < 100 && (truncated = other.text("PRAGMA wal_checkpoint(TRUNCATE)")) != "0";
       ++i) {
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE(truncated == "0");
  REQUIRE(sqlite3_exec(store->connection(), "PRAGMA cache_size = 5", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  const auto declined = store->handle_once(sample, unloc::event_source::webhook, [](sqlite3* db) {
    (void)sqlite3_exec(db,
                       "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 60)"
                       " INSERT INTO doors (n, pad) SELECT n, hex(randomblob(900)) FROM s",
                       nullptr, nullptr, nullptr);
    return false;  // the integrator declines: everything rolls back
  });
  CHECK_FALSE(declined);
  other.exec("BEGIN IMMEDIATE");
  for (int i = 0; i < 40; ++i) other.exec("INSERT INTO doors (pad) VALUES (hex(randomblob(900)))");
  other.exec("COMMIT");
  const auto next = store_contract::numbered_event(9, sample.created);
  auto claimed = store->claim(next.id, next.created);
  REQUIRE(claimed);
  CHECK(claimed->mine());
  store.reset();
  connection after(path);
  CHECK(after.text("PRAGMA integrity_check") == "ok");
  CHECK(after.number("SELECT count(*) FROM doors") == 40);
  CHECK(after.number("SELECT count(*) FROM unloc_events") == 0);
}

// SQLite's default VFS, whose WAL files count their writes and can fail them
// (a full disk): below the store's VFS (detail::sqlite_wal_vfs) in its tests.
struct wal_spy {
  static inline const sqlite3_io_methods* original = nullptr;  // the default VFS's file methods
  static inline sqlite3_io_methods patched{};
  static inline std::atomic<int> writes{0};
  static inline std::atomic<bool> full{false};
  static inline std::atomic<int> fail_over{-1};  // >= 0: the next write of more bytes fails

  static int write(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
    ++writes;
    if (const int limit = fail_over.load(); limit >= 0 && amount > limit) {
      fail_over = -1;
      return SQLITE_FULL;
    }
    return full ? SQLITE_FULL : original->xWrite(f, data, amount, offset);
  }
  static int open(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags, int* out) {
    auto* below = static_cast<sqlite3_vfs*>(vfs->pAppData);
    const int rc = below->xOpen(below, name, f, flags, out);
    if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) != 0 && f->pMethods != nullptr) {
      if (original == nullptr) {  // the default VFS has one set of methods for all its files
        original = f->pMethods;
        patched = *original;
        patched.xWrite = &write;
      }
      f->pMethods = &patched;
    }
    return rc;
  }
  // Registers the spy ("wal-spy") and the store's VFS over it; the latter's name.
  static const char* install() {
    static sqlite3_vfs spy = [] {
      sqlite3_vfs* below = sqlite3_vfs_find(nullptr);
      sqlite3_vfs v = *below;
      v.zName = "wal-spy";
      v.pAppData = below;
      v.xOpen = &open;
      return v;
    }();
    if (sqlite3_vfs_find("wal-spy") == nullptr) REQUIRE(sqlite3_vfs_register(&spy, 0) == SQLITE_OK);
    const char* name = unloc::detail::sqlite_wal_vfs::install("unloc-wal-batch-over-spy", &spy);
    REQUIRE(name != nullptr);
    return name;
  }
};

TEST_CASE("the store's VFS writes a commit's WAL frames at once, before readers see them",
          "[sqlite]") {
  temp_dir dir;
  const std::string path = dir.file("frames.db");
  const char* vfs = wal_spy::install();
  connection writer(path, vfs);
  writer.exec("PRAGMA journal_mode=WAL");
  writer.exec("PRAGMA synchronous=NORMAL");
  writer.exec("CREATE TABLE doors (n INTEGER PRIMARY KEY, pad TEXT UNIQUE)");
  connection reader(path);
  // Each commit writes 3 pages (the table, its index, the first page): 6 writes
  // below SQLite's own VFS, one below the store's.
  for (const char* name : {"wal-spy", vfs}) {
    connection c(path, name);
    wal_spy::writes = 0;
    const auto before = reader.number("SELECT count(*) FROM doors");
    for (int i = 0; i < 20; ++i) {
      c.exec("INSERT INTO doors (pad) VALUES (hex(randomblob(16)))");
      CHECK(reader.number("SELECT count(*) FROM doors") == before + i + 1);
    }
    INFO(name);
    if (name == vfs) {
      CHECK(wal_spy::writes == 20);
    } else {
      CHECK(wal_spy::writes >= 40);
    }
  }
  // A commit larger than what is gathered (100 pages), then a rewrite of a
  // page within one transaction: the frames stay whole.
  writer.exec("PRAGMA cache_size = 5");
  writer.exec("BEGIN");
  writer.exec(
      "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 100)"
      " INSERT INTO doors (pad) SELECT hex(randomblob(900)) FROM s");
  writer.exec("UPDATE doors SET pad = hex(randomblob(900)) WHERE n % 3 = 0");
  writer.exec("COMMIT");
  CHECK(reader.number("SELECT count(*) FROM doors") == 140);
  CHECK(reader.text("PRAGMA integrity_check") == "ok");
}

TEST_CASE("a write of gathered WAL frames that fails fails its commit; the file stays whole",
          "[sqlite]") {
  temp_dir dir;
  const std::string path = dir.file("failing.db");
  const char* vfs = wal_spy::install();
  connection writer(path, vfs);
  writer.exec("PRAGMA journal_mode=WAL");
  writer.exec("CREATE TABLE doors (n INTEGER PRIMARY KEY, pad TEXT)");
  writer.exec("INSERT INTO doors (pad) VALUES ('first')");
  connection reader(path);
  wal_spy::full = true;
  const int failed = writer.attempt("INSERT INTO doors (pad) VALUES ('lost')");
  wal_spy::full = false;
  CHECK(failed == SQLITE_FULL);
  CHECK(sqlite3_get_autocommit(writer.db) != 0);
  CHECK(reader.number("SELECT count(*) FROM doors") == 1);
  writer.exec("INSERT INTO doors (pad) VALUES ('second')");
  CHECK(reader.text("SELECT group_concat(pad) FROM doors") == "first,second");
  reader.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  CHECK(reader.text("PRAGMA integrity_check") == "ok");
}

// Frames of a transaction larger than the cache wait, gathered, for more; a read of
// them writes them out first. That write failing, SQLite would fail the statement
// only, and commit the transaction without them: the file then fails every call
// until the transaction ends, so that it cannot commit.
TEST_CASE("a failed write of gathered frames mid-transaction fails the whole transaction",
          "[sqlite]") {
  temp_dir dir;
  const std::string path = dir.file("spill.db");
  connection writer(path, wal_spy::install());
  writer.exec("PRAGMA journal_mode=WAL");
  writer.exec("PRAGMA cache_size = 20");
  writer.exec("CREATE TABLE doors (n INTEGER PRIMARY KEY, pad BLOB)");
  writer.exec("CREATE TABLE copies (n UNIQUE)");
  writer.exec("BEGIN");
  writer.exec(
      "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 400)"
      " INSERT INTO doors (pad) SELECT randomblob(1000) FROM s");
  wal_spy::fail_over = 4200;  // the next write of more than one frame: the gathered ones
  const int statement = writer.attempt("INSERT INTO copies SELECT n FROM doors");
  wal_spy::fail_over = -1;
  CHECK(statement != SQLITE_OK);
  if (sqlite3_get_autocommit(writer.db) == 0) {
    CHECK(writer.attempt("COMMIT") != SQLITE_OK);
    (void)writer.attempt("ROLLBACK");
  }
  connection reader(path);
  CHECK(reader.text("PRAGMA integrity_check") == "ok");
  CHECK(reader.number("SELECT count(*) FROM doors") == 0);
  writer.exec("INSERT INTO doors (pad) VALUES (randomblob(10))");  // and it works again
  CHECK(reader.number("SELECT count(*) FROM doors") == 1);
  CHECK(reader.text("PRAGMA integrity_check") == "ok");
}

// Without power-safe overwrite (psow=0), a synchronous commit is padded to a
// sector and a frame's write split at the sync: nothing is gathered there, and
// every commit reaches the file whole.
TEST_CASE("with synchronous=FULL and no power-safe overwrite, every padded commit is whole",
          "[sqlite]") {
  temp_dir dir;
  const std::string path = dir.file("padded.db");
  connection writer("file:" + path + "?psow=0", unloc::detail::sqlite_wal_vfs::install());
  writer.exec("PRAGMA page_size = 1024");
  writer.exec("PRAGMA journal_mode=WAL");
  writer.exec("PRAGMA synchronous=FULL");
  writer.exec("PRAGMA wal_autocheckpoint = 0");
  writer.exec("CREATE TABLE doors (n INTEGER PRIMARY KEY, pad BLOB)");
  connection reader(path);
  for (int i = 0; i < 200; ++i) {
    writer.exec("INSERT INTO doors (pad) VALUES (randomblob(" + std::to_string(50 + i * 37 % 700) +
                "))");
    REQUIRE(reader.number("SELECT count(*) FROM doors") == i + 1);
  }
  CHECK(reader.text("PRAGMA integrity_check") == "ok");
  // What a restart after a crash reads: the database file and the WAL as they are.
  std::filesystem::copy_file(path, dir.file("copy.db"));
  std::filesystem::copy_file(path + "-wal", dir.file("copy.db-wal"));
  connection recovered(dir.file("copy.db"));
  CHECK(recovered.text("PRAGMA integrity_check") == "ok");
  CHECK(recovered.number("SELECT count(*) FROM doors") == 200);
}

// Four offers in one shared commit (the first one's handler, slow, holds the
// batch before them): one declines, one was left in doubt, one's row cannot be
// written. The commit fails, each runs again alone: the handler is told a run
// is possibly repeated only where it confirmed before, and the count is per event.
TEST_CASE("a handler inside a shared commit that fails: each event runs again, counted once",
          "[sqlite]") {
  temp_dir dir;
  std::atomic<std::int64_t> skew_ms{0};
  unloc::sqlite_store_options options;
  options.claim_lease = 1min;
  options.clock = [&] {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now()) +
           std::chrono::milliseconds(skew_ms.load());
  };
  std::shared_ptr<sqlite_event_store> store =
      sqlite_event_store::open(dir.file("batch.db"), options).value();
  const auto slow = store_contract::numbered_event(10, sample.created);
  const auto doubtful = store_contract::numbered_event(12, sample.created);
  const auto unwritable = store_contract::numbered_event(13, sample.created);
  const auto declined = store_contract::numbered_event(14, sample.created);
  REQUIRE(store->claim(doubtful.id, doubtful.created).value().mine());
  skew_ms = 120'000;  // that claim's lease ran out: a stop left it
  REQUIRE(sqlite3_exec(store->connection(),
                       ("CREATE TEMP TRIGGER unwritable BEFORE INSERT ON unloc_events WHEN NEW.id = '" +
                        unwritable.id.to_string() + "' BEGIN SELECT RAISE(ABORT, 'injected'); END")
                           .c_str(),
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  std::mutex mutex;
  std::vector<std::pair<unloc::uuid, bool>> runs;
  unloc::reconciler_options settings;
  settings.handler_in_store_transaction = true;
  unloc::reconciler rec(
      store,
      [&](const unloc::access_event& e, const unloc::handover& how) {
        {
          const std::lock_guard<std::mutex> lock(mutex);
          runs.emplace_back(e.id, how.possibly_repeated);
        }
        if (e.id == slow.id) std::this_thread::sleep_for(400ms);
        return e.id != declined.id;
      },
      settings);
  std::vector<std::thread> offers;
  std::array<bool, 4> ok{};
  const std::array<unloc::access_event, 4> events{slow, declined, doubtful, unwritable};
  for (std::size_t i = 0; i < events.size(); ++i) {
    offers.emplace_back([&, i] { ok[i] = rec.offer(events[i]).has_value(); });
    std::this_thread::sleep_for(i == 0 ? 100ms : 30ms);
  }
  for (auto& t : offers) t.join();
  CHECK(ok == std::array<bool, 4>{true, false, true, false});
  for (const auto& [id, repeated] : runs) {
    INFO(id.to_string() << " possibly repeated " << repeated);
    if (id == declined.id || id == slow.id) CHECK_FALSE(repeated);
    if (id == doubtful.id) CHECK(repeated);
  }
  CHECK(std::count_if(runs.begin(), runs.end(), [&](const auto& r) {
          return r.first == unwritable.id && r.second;
        }) == 1);  // its line was printed before its row failed: the rerun is told
  const auto counts = rec.counts();
  CHECK(counts.from_webhook == 2);
  CHECK(counts.possibly_repeated == 2);  // the doubtful event and the unwritable one, once each
  CHECK(counts.handler_failures == 1);
}

TEST_CASE("record_once's work that wrote on the connection and declined leaves nothing of its own",
          "[sqlite]") {
  temp_dir dir;
  connection own(dir.file("app.db"));
  own.exec("CREATE TABLE doors (event_id TEXT, pid INTEGER)");
  std::shared_ptr<sqlite_event_store> store = sqlite_event_store::attach(own.db).value();
  const auto write_then = [&](const unloc::access_event& e, bool confirm) {
    return [&own, e, confirm](bool) {
      if (!open_door(own.db, e)) throw std::runtime_error("cannot write");
      return confirm;
    };
  };
  SECTION("alone") {
    REQUIRE_FALSE(
        store->record_once(sample, unloc::event_source::webhook, write_then(sample, false)));
    CHECK(own.number("SELECT count(*) FROM doors") == 0);
  }
  SECTION("in a commit shared with other calls, which still commit") {
    const auto slow = store_contract::numbered_event(20, sample.created);
    const auto declining = store_contract::numbered_event(21, sample.created);
    const auto confirming = store_contract::numbered_event(22, sample.created);
    std::vector<std::thread> calls;
    std::array<bool, 3> ok{};
    calls.emplace_back([&] {  // leads a batch while the other two queue for the next
      ok[0] = store
                  ->record_once(slow, unloc::event_source::webhook,
                                [&](bool) {
                                  std::this_thread::sleep_for(300ms);
                                  return open_door(own.db, slow);
                                })
                  .has_value();
    });
    std::this_thread::sleep_for(100ms);
    calls.emplace_back([&] {
      ok[1] =
          store->record_once(declining, unloc::event_source::webhook, write_then(declining, false))
              .has_value();
    });
    calls.emplace_back([&] {
      ok[2] =
          store->record_once(confirming, unloc::event_source::webhook, write_then(confirming, true))
              .has_value();
    });
    for (auto& t : calls) t.join();
    CHECK(ok == std::array<bool, 3>{true, false, true});
    CHECK(own.number("SELECT count(*) FROM doors WHERE event_id = '" + declining.id.to_string() +
                     "'") == 0);
    CHECK(own.number("SELECT count(*) FROM doors") == 2);
    CHECK(own.number("SELECT count(*) FROM unloc_events") == 2);
  }
  CHECK(sqlite3_get_autocommit(own.db) != 0);
}

TEST_CASE("a call of the store from inside the work of record_once is refused, never a hang",
          "[sqlite]") {
  temp_dir dir;
  std::shared_ptr<sqlite_event_store> store =
      sqlite_event_store::open(dir.file("inside.db")).value();
  unloc::reconciler_options settings;
  settings.handler_in_store_transaction = true;
  std::unique_ptr<unloc::reconciler> rec;
  std::optional<unloc::error> inner;
  rec = std::make_unique<unloc::reconciler>(
      store,
      [&](const unloc::access_event& e, const unloc::handover&) {
        (void)rec->counts();  // allowed
        if (e.id == store_contract::numbered(1)) {
          auto offered = rec->offer(store_contract::numbered_event(2, sample.created));
          if (!offered) inner = offered.error();
          CHECK_FALSE(store->checkpoint("project"));
        }
        return true;
      },
      settings);
  CHECK(rec->offer(store_contract::numbered_event(1, sample.created)).value() ==
        unloc::offer_outcome::handed_over);
  REQUIRE(inner.has_value());
  CHECK(inner->message.find("called from inside the work of record_once") != std::string::npos);
  CHECK(rec->offer(store_contract::numbered_event(2, sample.created)).value() ==
        unloc::offer_outcome::handed_over);
}

TEST_CASE("a database of schema version 1 is migrated, its claims kept as they were", "[sqlite]") {
  temp_dir dir;
  const std::string path = dir.file("v1.db");
  {
    connection v1(path);
    v1.exec(unloc::detail::schema_version_table);
    v1.exec(unloc::detail::schema_sql(unloc::detail::schema_migrations[0], true));
    v1.exec("INSERT INTO unloc_schema_version (version) VALUES (1)");
    v1.exec(
        "INSERT INTO unloc_claims (id, created_ms, owner, lease_until_ms, handled, in_doubt)"
        " VALUES ('" +
        sample.id.to_string() + "', 1, 0, 0, 1, 0)");
  }
  auto store = sqlite_event_store::open(path).value();
  CHECK(store->claim(sample.id, sample.created).value().status ==
        unloc::claim_status::already_handled);
  connection after(path);
  CHECK(after.number("SELECT version FROM unloc_schema_version") ==
        static_cast<long long>(unloc::detail::schema_version));
  CHECK(after.number("SELECT seen_ms FROM unloc_claims") == 0);  // forgotten by creation, as before
  CHECK(store->forget_old_claims().value() == 1);
}

TEST_CASE("a database of a newer schema is refused, with a message that says so", "[sqlite]") {
  temp_dir dir;
  const std::string path = dir.file("newer.db");
  auto store = sqlite_event_store::open(path).value();
  REQUIRE(store->check());
  connection(path).exec("UPDATE unloc_schema_version SET version = 99");
  auto refused = sqlite_event_store::open(path);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("schema version 99, written by a newer unloc-cpp") !=
        std::string::npos);
  auto health = store->check();  // the running store notices too
  REQUIRE_FALSE(health);
  CHECK(health.error().message.find("version 99") != std::string::npos);
}

TEST_CASE(
    "a full disk is an error, never a throw or a half-written mark; with room, it works again",
    "[sqlite]") {
  temp_dir dir;
  auto store = sqlite_event_store::open(dir.file("full.db")).value();
  connection c(dir.file("full.db"));
  // The database may not grow: the next new page is a full disk to SQLite.
  c.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const auto pages = c.number("PRAGMA page_count");
  sqlite3_exec(store->connection(), ("PRAGMA max_page_count = " + std::to_string(pages)).c_str(),
               nullptr, nullptr, nullptr);
  std::optional<unloc::error> failed;
  std::uint32_t n = 0;
  std::vector<unloc::event_claim> held;
  for (; n < 5000 && !failed; ++n) {
    auto event = store_contract::numbered_event(n, sample.created);
    event.lock_name = std::string(400, 'x');  // fill pages fast
    auto claimed = store->claim(event.id, event.created);
    if (!claimed) {
      failed = claimed.error();
      break;
    }
    auto marked = store->mark_handled(event, unloc::event_source::webhook, claimed->token);
    if (!marked) {
      failed = marked.error();
      held.push_back(*claimed);
    }
  }
  REQUIRE(failed.has_value());
  CHECK(failed->message.find("full") != std::string::npos);
  CHECK(sqlite3_get_autocommit(store->connection()) != 0);
  sqlite3_exec(store->connection(), "PRAGMA max_page_count = 1073741823", nullptr, nullptr,
               nullptr);
  const auto event = store_contract::numbered_event(n, sample.created);
  if (!held.empty()) {  // the mark failed whole: the claim still holds, nothing was marked
    CHECK(store->mark_handled(event, unloc::event_source::webhook, held[0].token).value() ==
          unloc::settle_status::done);
  } else {
    CHECK(store->claim(event.id, event.created).value().mine());
  }
  CHECK(c.number("SELECT count(*) FROM unloc_events") ==
        c.number("SELECT count(*) FROM unloc_claims WHERE handled = 1"));
  CHECK(store->check());
}

// Calls that share a commit and meet the lock fail together after one busy
// timeout: each run again alone would wait it out again (a receiver's deliveries
// held for the batch's size times the timeout behind a stuck writer).
TEST_CASE("a lock held by another writer past the busy timeout is an error, not a hang",
          "[sqlite]") {
  temp_dir dir;
  unloc::sqlite_store_options options;
  options.busy_timeout = 400ms;
  auto store = sqlite_event_store::open(dir.file("locked.db"), options).value();
  connection other(dir.file("locked.db"));
  other.exec("BEGIN IMMEDIATE");
  auto claimed = store->claim(sample.id, sample.created);
  REQUIRE_FALSE(claimed);
  CHECK(claimed.error().category == unloc::error_category::timeout);
  CHECK(claimed.error().message.find("locked") != std::string::npos);
  auto health = store->check();
  CHECK_FALSE(health);

  constexpr int callers = 4;
  std::array<std::chrono::steady_clock::duration, callers> waited{};
  std::array<bool, callers> failed{};
  std::vector<std::thread> threads;
  for (int i = 0; i < callers; ++i) {
    threads.emplace_back([&, i] {
      const auto event =
          store_contract::numbered_event(static_cast<std::uint32_t>(i + 1), sample.created);
      const auto began = std::chrono::steady_clock::now();
      const auto recorded = store->record_once(event, unloc::event_source::webhook);
      waited[static_cast<std::size_t>(i)] = std::chrono::steady_clock::now() - began;
      failed[static_cast<std::size_t>(i)] =
          !recorded && recorded.error().category == unloc::error_category::timeout;
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < callers; ++i) {
    CHECK(failed[static_cast<std::size_t>(i)]);
    // The batch before its own, then its own: 2 timeouts (0.8 s); alone, 3 of them took 2 s.
    CHECK(std::chrono::duration_cast<std::chrono::milliseconds>(waited[static_cast<std::size_t>(i)])
              .count() < 1500);
  }

  other.exec("ROLLBACK");
  CHECK(store->claim(sample.id, sample.created).value().mine());
  CHECK(store->check());
}

TEST_CASE("the store's thread checkpoints the WAL off the calls' path, and the WAL stays bounded",
          "[sqlite]") {
  temp_dir dir;
  const auto path = dir.file("c.db");
  unloc::sqlite_store_options options;
  options.checkpoint_pages = 16;  // the committing call checkpoints itself only past 160 pages
  auto store = sqlite_event_store::open(path, options).value();
  const auto created = unloc::timestamp(std::chrono::milliseconds(1'700'000'000'000));
  // Pages reach the database file only by a checkpoint: SQLite's automatic one is off.
  const auto empty = std::filesystem::file_size(path);
  std::uint32_t n = 0;
  auto handle = [&](std::uint32_t count) {
    for (const auto end = n + count; n < end; ++n) {
      const auto event = store_contract::numbered_event(n, created);
      const auto token = store_contract::mine(*store, event.id, created);
      REQUIRE(store->mark_handled(event, unloc::event_source::webhook, token).value() ==
              unloc::settle_status::done);
    }
  };
  handle(8);  // a few frames a call: past 16 pages, well short of 160
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::filesystem::file_size(path) == empty && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(std::filesystem::file_size(path) > empty);

  handle(3000);  // unbounded, some 20,000 frames: 80 MB of WAL
  const auto frame = 24 + std::stoll(connection(path).text("PRAGMA page_size"));
  CHECK(static_cast<long long>(std::filesystem::file_size(path + "-wal")) < 1000 * frame);
  connection c(path);
  CHECK(c.number("SELECT count(*) FROM unloc_events") == 3008);
}

// Two stores on one file, each holding a read transaction between calls,
// would keep each other's WAL from starting over: a store lets go of its
// while another writes.
TEST_CASE("two stores writing to one file keep the WAL bounded", "[sqlite]") {
  temp_dir dir;
  const auto path = dir.file("two.db");
  unloc::sqlite_store_options options;
  options.checkpoint_pages = 16;
  auto one = sqlite_event_store::open(path, options).value();
  auto two = sqlite_event_store::open(path, options).value();
  const auto created = unloc::timestamp(std::chrono::milliseconds(1'700'000'000'000));
  const auto frame = 24 + std::stoll(connection(path).text("PRAGMA page_size"));
  for (std::uint32_t n = 0; n < 3000; ++n) {
    auto& store = n % 2 == 0 ? *one : *two;
    const auto event = store_contract::numbered_event(n, created);
    const auto token = store_contract::mine(store, event.id, created);
    REQUIRE(store.mark_handled(event, unloc::event_source::webhook, token).value() ==
            unloc::settle_status::done);
  }
  // Some 20,000 frames were written; without a restart the WAL would hold them all.
  CHECK(static_cast<long long>(std::filesystem::file_size(path + "-wal")) < 2000 * frame);
  CHECK(connection(path).number("SELECT count(*) FROM unloc_events") == 3000);
}

TEST_CASE("a database that cannot be opened is an error naming it", "[sqlite]") {
  temp_dir dir;
  auto missing = sqlite_event_store::open(dir.file("no-such-dir") + "/events.db");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("no-such-dir") != std::string::npos);
  {
    std::FILE* f = std::fopen(dir.file("not-a-db").c_str(), "wb");
    REQUIRE(f != nullptr);
    const std::string text(8192, 'z');
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  auto not_db = sqlite_event_store::open(dir.file("not-a-db"));
  REQUIRE_FALSE(not_db);
  CHECK(not_db.error().message.find("not a database") != std::string::npos);
  CHECK(sqlite_event_store::attach(nullptr).error().category ==
        unloc::error_category::invalid_input);
}

// Concurrent calls share one commit (group commit): a statement that fails in
// one of them must fail that call only, and leave the others committed.
TEST_CASE("a write that fails among concurrent ones fails alone; the others are committed",
          "[sqlite]") {
  temp_dir dir;
  auto store = sqlite_event_store::open(dir.file("batch.db")).value();
  connection(dir.file("batch.db"))
      .exec(
          "CREATE TRIGGER poison BEFORE INSERT ON unloc_events WHEN NEW.lock_name = 'poison' "
          "BEGIN SELECT RAISE(ABORT, 'poisoned event'); END");
  constexpr std::uint32_t per_thread = 100;
  constexpr std::uint32_t threads = 8;
  std::atomic<int> wrong{0};
  std::atomic<int> poisoned{0};
  std::vector<std::thread> workers;
  for (std::uint32_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (std::uint32_t i = 0; i < per_thread; ++i) {
        auto event = store_contract::numbered_event(t * per_thread + i, sample.created);
        const bool poison = i % 10 == 3;
        if (poison) event.lock_name = "poison";
        auto claimed = store->claim(event.id, event.created);
        if (!claimed || !claimed->mine()) {
          ++wrong;
          continue;
        }
        auto marked = store->mark_handled(event, unloc::event_source::webhook, claimed->token);
        if (poison) {
          if (marked || marked.error().message.find("poisoned event") == std::string::npos) {
            ++wrong;
          }
          ++poisoned;
        } else if (!marked || *marked != unloc::settle_status::done) {
          ++wrong;
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  CHECK(wrong == 0);
  connection c(dir.file("batch.db"));
  const auto good = threads * per_thread - static_cast<std::uint32_t>(poisoned.load());
  CHECK(c.number("SELECT count(*) FROM unloc_events") == good);
  CHECK(c.number("SELECT count(*) FROM unloc_claims WHERE handled = 1") == good);
  // The poisoned ones are still claimed, unmarked: their next claim waits for the lease.
  CHECK(c.number("SELECT count(*) FROM unloc_claims WHERE handled = 0 AND owner <> 0") == poisoned);
}

TEST_CASE(
    "out of memory at any allocation of a call: an error, never a throw; the store works "
    "after",
    "[sqlite]") {
  temp_dir dir;
  connection own(dir.file("oom.db"));
  own.exec(
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
      "CREATE TABLE doors (event_id TEXT, pid INTEGER)");
  auto store = sqlite_event_store::attach(own.db).value();
  std::uint32_t n = 0;
  // Until the calls no longer reach the failing allocation (they make a few dozen).
  bool reached = true;
  for (long allowed = 0; reached && allowed < 1000; ++allowed) {
    const auto event = store_contract::numbered_event(n++, sample.created);
    const auto other = store_contract::numbered_event(n++, sample.created);
    bool threw = false;
    unloc_test::fail_once = true;
    try {
      // Each call may meet the one failing allocation; whichever does answers an error.
      unloc_test::allocations_left = allowed;
      auto claimed = store->claim(event.id, event.created);
      if (claimed && claimed->mine()) {
        (void)store->mark_handled(event, unloc::event_source::webhook, claimed->token);
      }
      (void)store->acquire_log_lease("project", "a", 1min);
      (void)store->save_checkpoint("project", sample.created, 1);
      (void)store->checkpoint("project");
      (void)store->handle_once(other, unloc::event_source::webhook,
                               [&](sqlite3* db) { return open_door(db, other); });
      (void)store->check();
    } catch (...) {
      threw = true;
    }
    reached = unloc_test::allocations_left == -1;  // the failure happened (fail_once)
    unloc_test::allocations_left = -1;
    unloc_test::fail_once = false;
    INFO("allocations allowed: " << allowed);
    CHECK_FALSE(threw);
    CHECK(sqlite3_get_autocommit(own.db) != 0);  // no transaction left open
    const auto fresh = store_contract::numbered_event(1'000'000 + n, sample.created);
    const auto claimed = store->claim(fresh.id, fresh.created);
    REQUIRE(claimed);
    REQUIRE(claimed->mine());
    CHECK(store->mark_handled(fresh, unloc::event_source::webhook, claimed->token).value() ==
          unloc::settle_status::done);
  }
  CHECK_FALSE(reached);
  // Every door opened was marked with it, and every event marked was recorded.
  CHECK(own.number("SELECT count(*) FROM doors WHERE event_id NOT IN "
                   "(SELECT id FROM unloc_claims WHERE handled = 1)") == 0);
  CHECK(own.number("SELECT count(*) FROM unloc_claims WHERE handled = 1 AND id NOT IN "
                   "(SELECT id FROM unloc_events)") == 0);
}

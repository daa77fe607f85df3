// unloc-webhook-receiver --store sqlite:PATH: each new event a row of the
// events table, duplicates kept out across restarts, --no-print, a store that
// cannot write answered 503 (never 204 without a row), the retired
// file journal imported once, and the usage errors of the store options.

#include "receiver_harness.hpp"
#include <sqlite3.h>

#include <chrono>
#include <fstream>
#include <future>
#include <set>
#include <thread>
#include <vector>

using namespace receiver_test;

namespace {

// A fresh database path in the test's temporary directory.
std::string database(const char* name) {
  std::string path = unloc_test::test_tls_files().dir + "/" + name + ".db";
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
  return path;
}

// The ids of the events table, read with SQLite itself (as an integrator would).
std::multiset<std::string> rows(const std::string& path) {
  std::multiset<std::string> ids;
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* select = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT id FROM unloc_events", -1, &select, nullptr) == SQLITE_OK);
  while (sqlite3_step(select) == SQLITE_ROW) {
    ids.insert(reinterpret_cast<const char*>(sqlite3_column_text(select, 0)));
  }
  sqlite3_finalize(select);
  sqlite3_close(db);
  return ids;
}

int post(const receiver_process& r, const std::string& id) {
  const auto res = r.client()->Post("/accessEvents", auth_headers(), event_body(id),
                                    "application/json");
  return res ? res->status : 0;
}

std::set<std::string> printed_ids(const receiver_process& r) {
  std::set<std::string> ids;
  for (const auto& line : lines_of(r.out())) {
    ids.insert(nlohmann::json::parse(line).at("id").get<std::string>());
  }
  return ids;
}

}  // namespace

TEST_CASE("--store sqlite: writes each new event once, and a restart keeps duplicates out",
          "[receiver][store]") {
  const std::string db = database("restart");
  const launch how{{"--store", "sqlite:" + db}};
  {
    receiver_process r(how);
    REQUIRE(r.exit_status() == -1);
    for (int i = 1; i <= 3; ++i) CHECK(post(r, event_id(40, i)) == 204);
    CHECK(post(r, event_id(40, 1)) == 204);  // delivered again: acknowledged only
    CHECK(r.stop(SIGTERM) == 0);
    CHECK(lines_of(r.out()).size() == 3);
  }
  receiver_process again(how);
  for (int i = 1; i <= 4; ++i) CHECK(post(again, event_id(40, i)) == 204);
  CHECK(again.stop(SIGTERM) == 0);
  CHECK(printed_ids(again) == std::set<std::string>{event_id(40, 4)});
  CHECK(rows(db) == std::multiset<std::string>{event_id(40, 1), event_id(40, 2), event_id(40, 3),
                                               event_id(40, 4)});
}

TEST_CASE("--no-print keeps stdout empty and writes the events table", "[receiver][store]") {
  const std::string db = database("no-print");
  receiver_process r(launch{{"--store", "sqlite:" + db, "--no-print"}});
  CHECK(post(r, event_id(41, 1)) == 204);
  CHECK(post(r, event_id(41, 2)) == 204);
  CHECK(r.stop(SIGTERM) == 0);
  CHECK(r.out().empty());
  CHECK(rows(db) == std::multiset<std::string>{event_id(41, 1), event_id(41, 2)});
}

TEST_CASE("a store that cannot write is answered 503, never 204 without a row; then it recovers",
          "[receiver][store]") {
  const std::string db = database("locked");
  receiver_process r(launch{{"--store", "sqlite:" + db}});
  REQUIRE(post(r, event_id(42, 1)) == 204);
  // Another process holds the database's write lock: every write of the receiver waits
  // out its busy timeout, then fails.
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  CHECK(post(r, event_id(42, 2)) == 503);
  CHECK(lines_of(r.out()).size() == 1);  // not printed: the claim was never taken
  REQUIRE(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(other);
  // The platform's retry.
  CHECK(post(r, event_id(42, 2)) == 204);
  CHECK(r.stop(SIGTERM) == 0);
  CHECK(printed_ids(r) == std::set<std::string>{event_id(42, 1), event_id(42, 2)});
  CHECK(rows(db) == std::multiset<std::string>{event_id(42, 1), event_id(42, 2)});
  CHECK(r.err().find("answered 503") != std::string::npos);
}

// Events are handed over on the I/O thread that read them, but a store that stalls
// must not hold every I/O thread: once a hand-over has taken 100 ms, the last free
// thread hands its deliveries to the pool and goes on serving its connections.
TEST_CASE("a stalled store holds one I/O thread of two; the other goes on serving",
          "[receiver][store]") {
  const std::string db = database("stalled-store");
  receiver_process r(launch{{"--store", "sqlite:" + db, "--threads", "2"}});
  REQUIRE(post(r, event_id(43, 1)) == 204);
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  // One connection after another, so that both I/O threads (given connections in
  // turn) get deliveries that wait on the store.
  std::vector<std::future<int>> waiting;
  for (int n = 2; n <= 5; ++n) {
    waiting.push_back(std::async(std::launch::async, [&r, n] { return post(r, event_id(43, n)); }));
    std::this_thread::sleep_for(std::chrono::milliseconds(400));  // hand-overs slow by then
  }
  int answered = 0;
  for (int n = 0; n < 4; ++n) {  // on both threads in turn
    auto c = r.client();
    c->set_connection_timeout(1, 0);  // the TLS handshake's bound too
    c->set_read_timeout(1, 0);
    if (const auto health = c->Get("/healthz")) ++answered;
  }
  CHECK(answered >= 2);  // every one on the free thread
  REQUIRE(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(other);
  std::size_t accepted = 1;
  for (auto& w : waiting) {
    const int status = w.get();
    CHECK((status == 204 || status == 503));
    accepted += status == 204 ? 1 : 0;
  }
  CHECK(r.stop(SIGTERM) == 0);
  CHECK(rows(db).size() == accepted);
}

namespace {

// Deliveries until one is refused (at most 100): each answered 204 or 503, never
// left unanswered (0: nothing within 10 s). The ids answered 204.
std::multiset<std::string> post_until_refused(const receiver_process& r, int series) {
  std::multiset<std::string> accepted;
  for (int n = 1; n <= 100; ++n) {
    const std::string id = event_id(series, n);
    const int status = post(r, id);
    REQUIRE((status == 204 || status == 503));
    if (status == 503) return accepted;
    accepted.insert(id);
  }
  FAIL("100 deliveries taken: stdout never filled");
  return accepted;
}

// Whether another writer of the SQLite file takes its write lock (waiting up to 3 s).
bool write_lock_free(const std::string& db) {
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &other) == SQLITE_OK);
  sqlite3_busy_timeout(other, 3000);
  const int rc = sqlite3_exec(other, "BEGIN IMMEDIATE; COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  return rc == SQLITE_OK;
}

}  // namespace

// With --store sqlite: the line is printed inside the store's write transaction. A
// stdout that takes nothing must not hold that transaction, and every other writer of
// the file, for ever: past its bound the delivery is answered 503 and the lock let go;
// while it stays stalled, the next ones are refused without waiting, said once.
TEST_CASE("a stdout that takes nothing: deliveries answered 503, the file not held",
          "[receiver][store]") {
  const std::string db = database("stalled");
  launch how{{"--store", "sqlite:" + db}};
  how.stdout_stalled = true;
  receiver_process r(how);
  REQUIRE(r.exit_status() == -1);
  const auto accepted = post_until_refused(r, 61);
  CHECK_FALSE(accepted.empty());
  for (int n = 1; n <= 3; ++n) CHECK(post(r, event_id(62, n)) == 503);
  CHECK(write_lock_free(db));
  CHECK(rows(db) == accepted);
  REQUIRE(wait_for_err(r, "stdout took nothing"));
  const std::string err = r.err();
  CHECK(err.find("stdout took nothing") == err.rfind("stdout took nothing"));  // said once
}

// The same bound with the memory store: the I/O thread that prints an event serves
// other connections too, which a stdout that takes nothing must not hold for ever.
TEST_CASE("without --store a stdout that takes nothing gets 503s and other connections served",
          "[receiver]") {
  launch how;
  how.stdout_stalled = true;
  receiver_process r(how);
  REQUIRE(r.exit_status() == -1);
  CHECK_FALSE(post_until_refused(r, 64).empty());
  for (int n = 1; n <= 3; ++n) CHECK(post(r, event_id(65, n)) == 503);
  const auto health = r.client()->Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 503);  // a refused hand-over: unhealthy until one goes through
  REQUIRE(wait_for_err(r, "stdout took nothing"));
}

// As `2>&1` into a full pipe whose reader stopped: the diagnostics cannot be written
// either, and still neither the deliveries nor the file are held.
TEST_CASE("stdout and stderr both taking nothing: deliveries answered, the file not held",
          "[receiver][store]") {
  const std::string db = database("stalled-both");
  launch how{{"--store", "sqlite:" + db}};
  how.stdout_full = true;
  how.stderr_to_stdout = true;
  receiver_process r(how);
  REQUIRE(r.exit_status() == -1);
  for (int n = 1; n <= 3; ++n) CHECK(post(r, event_id(63, n)) == 503);
  CHECK(write_lock_free(db));
  CHECK(rows(db).empty());
  const auto health = r.client()->Get("/healthz");  // the I/O threads are not held either
  REQUIRE(health);
  CHECK(health->status == 503);
}

TEST_CASE("--import-state carries the file journal's state into the store once",
          "[receiver][store]") {
  const std::string dir = unloc_test::test_tls_files().dir;
  const std::string state = dir + "/old-state";
  for (const char* suffix : {"", ".journal", ".imported", ".journal.imported"}) {
    std::remove((state + suffix).c_str());
  }
  const std::string handled = event_id(44, 1), glued = event_id(44, 2), pending = event_id(44, 3);
  std::ofstream(state) << "unloc-reconciliation-state 1\n"
                       << "h " << handled << " 1700000000000\n"
                       << "c 1700000000000 project\n";
  // A short write on a full disk glued two records: that line is skipped, never fatal.
  std::ofstream(state + ".journal") << "h " << glued << " 17000h " << event_id(44, 9) << " 1\n"
                                    << "p " << pending << " 1700000000001\n";
  const std::string db = database("import");
  const launch how{{"--store", "sqlite:" + db, "--import-state", state}};
  {
    receiver_process r(how);
    REQUIRE(r.exit_status() == -1);
    CHECK(post(r, handled) == 204);  // handled under the file journal: not again
    CHECK(post(r, pending) == 204);  // in doubt there: taken again
    CHECK(post(r, glued) == 204);    // unreadable there: taken again
    CHECK(r.stop(SIGTERM) == 0);
    CHECK(printed_ids(r) == std::set<std::string>{pending, glued});
    CHECK(r.err().find("1 events handled and 1 access log checkpoints carried into the store; 1 "
                       "unreadable lines skipped") != std::string::npos);
    CHECK(r.err().find("event " + pending + " was being printed") != std::string::npos);
  }
  CHECK(std::ifstream(state + ".imported").good());
  CHECK(std::ifstream(state + ".journal.imported").good());
  CHECK_FALSE(std::ifstream(state).good());
  receiver_process again(how);  // the same command again (a service restarted): a note, no error
  REQUIRE(again.exit_status() == -1);
  CHECK(again.err().find("was imported before") != std::string::npos);
  CHECK(post(again, handled) == 204);
  CHECK(again.stop(SIGTERM) == 0);
  CHECK(again.out().empty());
}

TEST_CASE("--import-state refuses a file that is not a state file", "[receiver][store]") {
  const std::string file = unloc_test::test_tls_files().dir + "/not-a-state";
  std::ofstream(file) << "hello\n";
  receiver_process r(launch{{"--store", "sqlite:" + database("refuse"), "--import-state", file}});
  CHECK(r.exit_status() == 1);
  CHECK(r.err().find("is not a state file") != std::string::npos);
  CHECK(std::ifstream(file).good());  // left as it was
}

TEST_CASE("the store options refuse bad usage with status 2, never echoing a password",
          "[receiver][store]") {
  struct usage {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<usage> cases = {
      {{"--reconcile", "old-state"}, "--store sqlite:PATH --import-state"},
      {{"--reconcile=old-state"}, "--import-state"},
      {{"--reconcile"}, "--reconcile goes with --store"},
      {{"--no-print"}, "--no-print goes with --store"},
      {{"--import-state", "x"}, "--import-state goes with --store"},
      {{"--store", "sqlite:"}, "needs a file name"},
      {{"--store", "mysql://u:hunter2@h/db"}, "not 'mysql'"},
      {{"--store", "postgresql://u:hunter2@h:5432/db"}, "PGPASSWORD"},
      {{"--store", "postgresql://u@h/db?password=hunter2"}, "PGPASSWORD"},
  };
  for (const auto& c : cases) {
    INFO(c.args.front());
    receiver_process r(launch{c.args});
    CHECK(r.exit_status() == 2);
    CHECK(r.err().find(c.says) != std::string::npos);
    CHECK(r.err().find("hunter2") == std::string::npos);
  }
}

TEST_CASE("a store that cannot be opened stops it with status 1", "[receiver][store]") {
  receiver_process r(launch{{"--store", "sqlite:/nonexistent-unloc-dir/state.db"}});
  CHECK(r.exit_status() == 1);
  CHECK(r.err().find("--store") != std::string::npos);
}

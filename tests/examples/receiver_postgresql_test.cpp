// unloc-webhook-receiver --store postgresql://… against a throwaway cluster:
// a database outage is answered 503 (never 204 without a row) and seen by
// /healthz; once the database is back the receiver recovers by itself and the
// platform's retry writes the event once. The password never leaves .pgpass.

#include "receiver_harness.hpp"
#include "support/pg_cluster.hpp"

#include <libpq-fe.h>

#include <set>

using namespace receiver_test;

namespace {

std::set<std::string> rows(const std::string& url) {
  std::set<std::string> ids;
  PGconn* conn = PQconnectdb(url.c_str());
  REQUIRE(PQstatus(conn) == CONNECTION_OK);
  PGresult* result = PQexec(conn, "SELECT id FROM unloc_events");
  REQUIRE(PQresultStatus(result) == PGRES_TUPLES_OK);
  for (int i = 0; i < PQntuples(result); ++i) ids.insert(PQgetvalue(result, i, 0));
  PQclear(result);
  PQfinish(conn);
  return ids;
}

int post(const receiver_process& r, const std::string& id) {
  const auto res =
      r.client()->Post("/accessEvents", auth_headers(), event_body(id), "application/json");
  return res ? res->status : 0;
}

int healthz(const receiver_process& r) {
  const auto res = r.client()->Get("/healthz");
  return res ? res->status : 0;
}

// Polls /healthz until it answers `status`; false after 30 s (checks run every second).
bool healthz_becomes(const receiver_process& r, int status) {
  const auto deadline = steady::now() + 30s;
  while (healthz(r) != status) {
    if (steady::now() > deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
  return true;
}

}  // namespace

TEST_CASE("a PostgreSQL outage: 503s and /healthz 503, then recovery by itself, nothing lost",
          "[receiver][store]") {
  unloc_test::pg_cluster database;
  receiver_process r(launch{{"--store", database.url()}});
  REQUIRE(r.exit_status() == -1);
  CHECK(post(r, event_id(50, 1)) == 204);
  CHECK(healthz(r) == 200);

  database.stop();
  CHECK(healthz_becomes(r, 503));
  CHECK(post(r, event_id(50, 2)) == 503);

  database.start();
  CHECK(healthz_becomes(r, 200));
  CHECK(post(r, event_id(50, 2)) == 204);  // the platform's retry
  CHECK(post(r, event_id(50, 2)) == 204);  // and a repeated delivery: acknowledged only
  CHECK(r.stop(SIGTERM) == 0);

  CHECK(rows(database.url()) == std::set<std::string>{event_id(50, 1), event_id(50, 2)});
  CHECK(lines_of(r.out()).size() == 2);
  CHECK(r.err().find("the store works again") != std::string::npos);
  std::string line = read_text(database.pgpass_file());  // host:port:db:user:password
  line = line.substr(0, line.find('\n'));
  const std::string password = line.substr(line.rfind(':') + 1);
  REQUIRE(password.size() >= 8);
  CHECK(r.err().find(password) == std::string::npos);
}

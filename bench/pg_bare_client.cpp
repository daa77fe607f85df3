// unloc_bench_pg_bare_client: the baseline of store_postgresql, PostgreSQL's own limit
// for the work the receiver's store does per new event, with no receiver and no SDK
// in the loop: CONNECTIONS threads, each on its own libpq connection, each event two
// INSERT ... ON CONFLICT transactions, as postgresql_event_store sends them:
//   - the claim (synchronous_commit off, as the store's claim);
//   - the mark and the event row, in one statement (the server's synchronous_commit,
//     on by default: durable when acknowledged, as the store's mark).
// The schema is made first by the store itself (not timed).
//
//   unloc_bench_pg_bare_client CONNINFO CONNECTIONS SECONDS
//
// Prints `rate EVENTS_PER_SECOND` on stdout. The password comes from PGPASSWORD or
// .pgpass (PGPASSFILE), as for the receiver.

#include <unloc/stores/postgresql.hpp>

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string random_uuid(std::mt19937_64& random) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string text;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) text += '-';
    text += hex[random() % 16];
  }
  text[14] = '4';
  return text;
}

bool ok(PGresult* r) {
  const auto status = PQresultStatus(r);
  const bool good = status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK;
  if (!good) std::fprintf(stderr, "pg_bare_client: %s", PQresultErrorMessage(r));
  PQclear(r);
  return good;
}

// One event: the claim, then the mark with the event row. False on an error.
bool one_event(PGconn* conn, std::mt19937_64& random) {
  const std::string id = random_uuid(random);
  const std::string claim =
      "SET LOCAL synchronous_commit = off;"
      "INSERT INTO unloc_claims AS c (id, created_ms, owner, lease_until_ms, handled, in_doubt)"
      " VALUES ('" +
      id +
      "', 1764585324083, nextval('unloc_claim_tokens'),"
      " (extract(epoch from clock_timestamp()) * 1000)::bigint + 300000, 0, 0)"
      " ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, in_doubt = 1"
      " WHERE c.handled = 0 RETURNING owner";
  PGresult* claimed = PQexec(conn, claim.c_str());
  if (PQresultStatus(claimed) != PGRES_TUPLES_OK || PQntuples(claimed) != 1) return ok(claimed);
  const std::string owner = PQgetvalue(claimed, 0, 0);
  PQclear(claimed);
  const std::string key = random_uuid(random);
  const std::string lock = random_uuid(random);
  const char* values[] = {id.c_str(), owner.c_str(), key.c_str(), lock.c_str()};
  return ok(PQexecParams(
      conn,
      "WITH m AS (INSERT INTO unloc_claims AS c (id, created_ms, owner, lease_until_ms, handled,"
      " in_doubt) VALUES ($1, 0, 0, 0, 1, 0) ON CONFLICT (id) DO UPDATE SET handled = 1,"
      " owner = 0 WHERE c.handled <> 0 OR c.owner = $2::bigint RETURNING 1),"
      " e AS (INSERT INTO unloc_events (id, action, created, key_id, lock_id, lock_name,"
      " app_user_id, user_name, extra, source, received_at, lag_ms) SELECT $1, 'unlocked',"
      " '2025-12-01T10:35:24.083Z', $3, $4, 'Front door', '+4791234567', 'Ola', '{}',"
      " 'webhook', '2025-12-01T10:35:24.583Z', 500 WHERE EXISTS (SELECT 1 FROM m)"
      " ON CONFLICT (id) DO NOTHING) SELECT count(*) FROM m",
      4, nullptr, values, nullptr, nullptr, 0));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s CONNINFO CONNECTIONS SECONDS\n", argv[0]);
    return 2;
  }
  const std::string conninfo = argv[1];
  const int connections = std::atoi(argv[2]);
  const auto seconds = std::chrono::duration<double>(std::atof(argv[3]));
  if (connections < 1 || seconds.count() <= 0) {
    std::fprintf(stderr, "pg_bare_client: CONNECTIONS and SECONDS must be positive\n");
    return 2;
  }
  unloc::postgresql_store_options options;
  options.conninfo = conninfo;
  options.connections = 1;
  if (auto store = unloc::postgresql_event_store::open(options); !store) {
    std::fprintf(stderr, "pg_bare_client: %s\n", unloc::to_string(store.error()).c_str());
    return 1;
  }

  std::atomic<long> events{0};
  std::atomic<bool> failed{false};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < connections; ++i) {
    workers.emplace_back([&, i] {
      PGconn* conn = PQconnectdb(conninfo.c_str());
      if (PQstatus(conn) != CONNECTION_OK) {
        std::fprintf(stderr, "pg_bare_client: %s", PQerrorMessage(conn));
        failed = true;
      }
      std::mt19937_64 random(std::random_device{}() + static_cast<unsigned>(i));
      while (!failed && !stop) {
        if (!one_event(conn, random)) {
          failed = true;
          break;
        }
        ++events;
      }
      PQfinish(conn);
    });
  }
  while (!failed && std::chrono::steady_clock::now() - start < seconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop = true;
  for (auto& w : workers) w.join();
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  if (failed) return 1;
  std::printf("rate %.1f\n", static_cast<double>(events) / elapsed.count());
  return 0;
}

// unloc_bench_pg_bare_client: the baseline of store_postgresql, the engine's own
// limit. CONNECTIONS threads, each on its own libpq connection, for SECONDS: for each
// new event, the two transactions postgresql_event_store runs when the receiver takes
// one (its claim, committed with synchronous_commit off; its mark with the events row,
// committed as the server's synchronous_commit says), their SQL written out here and
// sent as the store sends it (the claim as a simple query, the mark with parameters).
// No HTTP, no TLS, no validation: what is left is the database's work.
//
//   unloc_bench_pg_bare_client CONNINFO CONNECTIONS SECONDS ROUND
//
// The unloc_* tables must exist (bench/run.sh starts the receiver, which creates them,
// first). The password comes from PGPASSFILE or PGPASSWORD, as libpq reads them.
// ROUND and the thread's number in the ids keep every run's events new.

#include "common.hpp"

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

// As postgresql_event_store: the database's clock, a claim lease of 5 minutes.
constexpr const char* now_ms = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

std::string claim_sql(const std::string& id, std::int64_t created_ms) {
  return std::string("SET LOCAL synchronous_commit = off;") +
         "WITH c AS (INSERT INTO unloc_claims AS c (id, created_ms, owner, lease_until_ms, "
         "handled, in_doubt, seen_ms) VALUES ('" +
         id + "', " + std::to_string(created_ms) + ", nextval('unloc_claim_tokens'), " + now_ms +
         " + 300000, 0, 0, " + now_ms +
         ")"
         " ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, lease_until_ms = "
         "EXCLUDED.lease_until_ms, in_doubt = 1 WHERE c.handled = 0 AND (c.owner = 0 OR "
         "c.lease_until_ms <= " +
         now_ms +
         ") RETURNING c.owner, c.in_doubt)"
         " SELECT 'm', owner, in_doubt FROM c"
         " UNION ALL SELECT CASE WHEN handled <> 0 THEN 'h' ELSE 'e' END, 0, 0 FROM unloc_claims"
         " WHERE id = '" +
         id + "' AND NOT EXISTS (SELECT 1 FROM c)";
}

// The mark and the event's row: $1 id, $2 token, $3..$12 the row's text columns, $13 lag_ms.
const std::string mark_sql =
    std::string(
        "WITH m AS (INSERT INTO unloc_claims AS c (id, created_ms, owner, lease_until_ms,"
        " handled, in_doubt, seen_ms) VALUES ($1, 0, 0, 0, 1, 0, ") +
    now_ms +
    ") ON CONFLICT (id) DO UPDATE SET handled = 1, owner = 0"
    " WHERE c.handled <> 0 OR (c.owner = $2 AND $2 <> 0) RETURNING 1),"
    " e AS (INSERT INTO unloc_events (id, action, created, key_id, lock_id, lock_name,"
    " app_user_id, user_name, extra, source, received_at, lag_ms) SELECT $1::text, $3::text,"
    " $4::text, $5::text, $6::text, $7::text, $8::text, $9::text, $10::text, $11::text,"
    " $12::text, $13::bigint WHERE EXISTS (SELECT 1 FROM m) ON CONFLICT (id) DO NOTHING)"
    " SELECT count(*) FROM m";

struct result_deleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using result_ptr = std::unique_ptr<PGresult, result_deleter>;

struct connection_deleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using connection_ptr = std::unique_ptr<PGconn, connection_deleter>;

// The first field of the single row `r` holds, checked: the figure means nothing otherwise.
std::string single_value(PGconn* conn, const result_ptr& r, const char* what) {
  if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) {
    bench::fail(std::string(what) + " failed: " + PQerrorMessage(conn));
  }
  return PQgetvalue(r.get(), 0, 0);
}

// One connection's deliveries until `until`; their number.
std::uint64_t deliver(PGconn* conn, unsigned thread, unsigned round, bench::clock::time_point until) {
  // The event of bench/deliveries.lua, created now.
  const std::int64_t created_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
  // The row's text columns as the store writes them (timestamps in the API's form).
  const char* fixed[] = {"unlocked", "2026-12-06T12:00:00.000Z",
                         "3f97fafb-1b6a-42d0-85fa-ae2ef338cc45",
                         "c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef", "Reference lock",
                         "+12125552390", "", "{}", "webhook", "2026-12-06T12:00:00.010Z", "10"};
  std::uint64_t done = 0;
  char id[40];
  while (bench::clock::now() < until) {
    // Variant 9, not deliveries.lua's 8: never one of the receiver's ids.
    std::snprintf(id, sizeof id, "%08x-%04x-4000-9000-%012llx", thread, round,
                  static_cast<unsigned long long>(done));
    const result_ptr claimed(PQexec(conn, claim_sql(id, created_ms).c_str()));
    if (single_value(conn, claimed, "the claim") != "m") bench::fail("a new event was not claimed");
    const std::string token = PQgetvalue(claimed.get(), 0, 1);
    const char* values[13] = {id, token.c_str()};
    for (int i = 0; i < 11; ++i) values[2 + i] = fixed[i];
    const result_ptr marked(
        PQexecParams(conn, mark_sql.c_str(), 13, nullptr, values, nullptr, nullptr, 0));
    if (single_value(conn, marked, "the mark") != "1") bench::fail("a claimed event was not marked");
    ++done;
  }
  return done;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s CONNINFO CONNECTIONS SECONDS ROUND\n", argv[0]);
    return 2;
  }
  const int connections = std::atoi(argv[2]);
  const double seconds = std::atof(argv[3]);
  const int round = std::atoi(argv[4]);
  if (connections < 1 || connections > 64 || seconds <= 0 || round < 0 || round > 0xffff) {
    std::fprintf(stderr, "usage: %s CONNINFO CONNECTIONS(1-64) SECONDS ROUND(0-65535)\n", argv[0]);
    return 2;
  }
  std::vector<connection_ptr> pool;
  for (int i = 0; i < connections; ++i) {
    pool.emplace_back(PQconnectdb(argv[1]));
    if (PQstatus(pool.back().get()) != CONNECTION_OK) {
      bench::fail(std::string("cannot connect: ") + PQerrorMessage(pool.back().get()));
    }
  }
  // Connected first, then every thread starts on the same clock.
  const auto start = bench::clock::now();
  const auto until = start + std::chrono::duration_cast<bench::clock::duration>(
                                 std::chrono::duration<double>(seconds));
  std::vector<std::uint64_t> counts(pool.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < pool.size(); ++i) {
    threads.emplace_back([&, i] {
      counts[i] = deliver(pool[i].get(), static_cast<unsigned>(i + 1),
                          static_cast<unsigned>(round), until);
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed = bench::seconds_since(start);
  std::uint64_t total = 0;
  for (const auto n : counts) total += n;
  std::printf("info bare libpq: %llu events in %.2f s on %d connections\n",
              static_cast<unsigned long long>(total), elapsed, connections);
  bench::sample("store_postgresql", "baseline", static_cast<double>(total) / elapsed);
  return 0;
}

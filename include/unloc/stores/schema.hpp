#pragma once

/// @file
/// The schema of the database stores (`<unloc/stores/sqlite.hpp>`,
/// `<unloc/stores/postgresql.hpp>`): one SQL text both engines run, created
/// and migrated by the store itself. docs/stores.md describes every column.

#include <unloc/version.hpp>

#include <array>
#include <cstddef>
#include <string>

UNLOC_BEGIN_NAMESPACE
namespace detail {

// Every table is named unloc_*: the stores may live in the integrator's own
// database, beside their tables. The version is kept in a table, not in
// SQLite's PRAGMA user_version, which belongs to the integrator's database.
//
// Times an integrator queries are text, ISO 8601 in UTC with milliseconds
// ("2022-01-01T10:35:24.083Z", which sorts as time does, and both engines
// read); times only the store reads are BIGINT milliseconds since 1970.
//
// The version table, created before anything else; it holds one row.
inline constexpr const char* schema_version_table =
    "CREATE TABLE IF NOT EXISTS unloc_schema_version (version INTEGER NOT NULL)";

// The one difference between the engines: a table keyed by a text id is one
// B-tree in SQLite only WITHOUT ROWID (else a rowid table plus an index of the
// key); PostgreSQL has no such clause. The marker is an SQL comment, which
// schema_sql makes the clause for SQLite. unloc_claims has it (small rows: one
// tree a page less to write). unloc_events has not: its rows (~350 bytes) go
// to the end of the rowid table, one page shared by the rows of a commit, and
// only the index's small entries land at random; as one tree keyed by the
// random id, each row rewrote a page of 10 rows at random, and a store call of
// a new event took 49 us instead of 34 (100,000 events, one thread).
inline constexpr const char* without_rowid = "/*WITHOUT ROWID*/";

// migrations[n] takes the schema from version n to n + 1, in the transaction
// that also writes the version. Never edit one that shipped: add the next.
inline constexpr std::array<const char*, 2> schema_migrations = {
    // 1: events, claims, checkpoints, log leases.
    "CREATE TABLE unloc_events ("
    " id TEXT PRIMARY KEY,"
    " action TEXT NOT NULL,"
    " created TEXT NOT NULL,"
    " key_id TEXT NOT NULL,"
    " lock_id TEXT NOT NULL,"
    " lock_name TEXT NOT NULL,"
    " app_user_id TEXT,"
    " user_name TEXT,"
    " extra TEXT NOT NULL,"
    " source TEXT NOT NULL,"
    " received_at TEXT NOT NULL,"
    " lag_ms BIGINT NOT NULL);"
    "CREATE INDEX unloc_events_by_lock ON unloc_events (lock_id, created);"
    "CREATE TABLE unloc_claims ("
    " id TEXT PRIMARY KEY,"
    " created_ms BIGINT NOT NULL,"
    " owner BIGINT NOT NULL,"
    " lease_until_ms BIGINT NOT NULL,"
    " handled INTEGER NOT NULL,"
    " in_doubt INTEGER NOT NULL) /*WITHOUT ROWID*/;"
    "CREATE INDEX unloc_claims_by_created ON unloc_claims (created_ms);"
    "CREATE TABLE unloc_checkpoints ("
    " scope TEXT PRIMARY KEY,"
    " read_to_ms BIGINT NOT NULL);"
    "CREATE TABLE unloc_log_leases ("
    " scope TEXT PRIMARY KEY,"
    " holder TEXT NOT NULL,"
    " token BIGINT NOT NULL,"
    " expires_ms BIGINT NOT NULL)",
    // 2: when the store first saw each claimed event. A claim is forgotten once its
    // event was created and first seen more than the retention ago: an event reported
    // late (a phone offline for weeks) is kept as long as one reported at once, not
    // forgotten at the next prune while its delivery may still be repeated. Claims
    // from before have 0: forgotten by their event's creation, as they were.
    "ALTER TABLE unloc_claims ADD COLUMN seen_ms BIGINT NOT NULL DEFAULT 0",
};

// Migration `sql` as `sqlite` (true) or PostgreSQL (false) runs it.
inline std::string schema_sql(const char* sql, bool sqlite) {
  std::string text(sql);
  if (!sqlite) return text;
  const std::string marker(without_rowid);
  for (auto at = text.find(marker); at != std::string::npos; at = text.find(marker, at)) {
    text.replace(at, marker.size(), "WITHOUT ROWID");
  }
  return text;
}

// The version this SDK writes and reads: a database of a later version was
// written by a newer SDK, and is refused rather than misread.
inline constexpr std::size_t schema_version = schema_migrations.size();

}  // namespace detail
UNLOC_END_NAMESPACE

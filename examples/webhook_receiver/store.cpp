#include "store.hpp"

#if defined(UNLOC_RECEIVER_WITH_SQLITE)
#include <unloc/stores/sqlite.hpp>
#endif
#if defined(UNLOC_RECEIVER_WITH_POSTGRESQL)
#include <unloc/stores/postgresql.hpp>
#endif

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

namespace receiver {
namespace {

unloc::error store_error(std::string message) {
  return unloc::make_error(unloc::error_category::internal, std::move(message));
}

bool exists(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f != nullptr) std::fclose(f);
  return f != nullptr;
}

// The whole file; empty when it does not exist; nullopt when it cannot be read.
std::optional<std::string> read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return exists(path) ? std::nullopt : std::optional<std::string>(std::string());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return text.str();
}

std::optional<std::int64_t> parse_ms(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  std::int64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

// The state the journal's records leave, applied in order (the state file's, then the journal's).
struct journal_state {
  std::map<unloc::uuid, unloc::timestamp> handled;
  std::set<unloc::uuid> pending;
  std::map<std::string, unloc::timestamp> checkpoints;
  std::size_t unreadable = 0;

  // `h|p|r <id> <ms>` or `c <ms> <scope>`; false when the line is none of them.
  bool apply(std::string_view line) {
    if (line.size() < 4 || line[1] != ' ') return false;
    const auto space = line.find(' ', 2);
    if (space == std::string_view::npos) return false;
    const auto first = line.substr(2, space - 2);
    const auto second = line.substr(space + 1);
    if (line[0] == 'h' || line[0] == 'p' || line[0] == 'r') {
      const auto id = unloc::uuid::parse(first);
      const auto ms = parse_ms(second);
      if (!id || !ms) return false;
      if (line[0] == 'p') {
        if (handled.count(*id) == 0) pending.insert(*id);
      } else {
        pending.erase(*id);
        if (line[0] == 'h') handled.emplace(*id, unloc::timestamp(std::chrono::milliseconds(*ms)));
      }
      return true;
    }
    if (line[0] == 'c') {
      const auto ms = parse_ms(first);
      if (!ms || second.empty() || second.find(' ') != std::string_view::npos) return false;
      auto& saved = checkpoints[std::string(second)];
      saved = (std::max)(saved, unloc::timestamp(std::chrono::milliseconds(*ms)));
      return true;
    }
    return false;
  }

  void apply_all(std::string_view text) {
    while (!text.empty()) {
      const auto end = text.find('\n');
      const auto line = text.substr(0, end);
      // An unterminated last line was torn by a kill: that record was never relied on.
      if (end != std::string_view::npos && !apply(line)) ++unreadable;
      text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    }
  }
};

constexpr std::string_view state_header = "unloc-reconciliation-state 1\n";

bool is_sqlite(const std::string& url) { return url.rfind("sqlite:", 0) == 0; }

}  // namespace

bool handles_inside_transaction(const options& opts) { return is_sqlite(opts.store); }

unloc::result<std::shared_ptr<unloc::event_store>> open_store(const options& opts) {
  const std::string& url = opts.store;
  if (url.empty())
    return std::shared_ptr<unloc::event_store>(std::make_shared<unloc::memory_event_store>());
  if (is_sqlite(url)) {
#if defined(UNLOC_RECEIVER_WITH_SQLITE)
    unloc::sqlite_store_options settings;
    settings.claim_lease = opts.claim_lease;
    auto store = unloc::sqlite_event_store::open(url.substr(7), settings);
    if (!store) return store.error();
    return std::shared_ptr<unloc::event_store>(std::move(*store));
#else
    return store_error("--store sqlite: this build has no SQLite store (built without libsqlite3)");
#endif
  }
#if defined(UNLOC_RECEIVER_WITH_POSTGRESQL)
  unloc::postgresql_store_options settings;
  settings.conninfo = url;
  settings.claim_lease = opts.claim_lease;
  // One connection for each thread that may call at once: the I/O threads, the
  // hand-over pool, the log reader and the health check; at most 32, since
  // several receivers share one server (max_connections is 100 by default).
  settings.connections =
      static_cast<std::size_t>((std::min)(io_threads(opts) + hand_over_pool_threads(opts) + 2, 32));
  auto store = unloc::postgresql_event_store::open(std::move(settings));
  if (!store) return store.error();
  return std::shared_ptr<unloc::event_store>(std::move(*store));
#else
  return store_error(
      "--store postgresql: this build has no PostgreSQL store (built without libpq)");
#endif
}

unloc::result<import_report> import_file_journal(const std::string& file,
                                                 unloc::event_store& store) {
  import_report report;
  const std::string journal = file + ".journal";
  if (!exists(file) && !exists(journal)) {
    if (exists(file + ".imported")) {
      report.already_imported = true;
      return report;
    }
    return store_error("--import-state: no state file " + file + " (nor " + journal + ")");
  }
  const auto state_text = read_whole(file);
  const auto journal_text = read_whole(journal);
  if (!state_text || !journal_text) {
    return store_error("--import-state: cannot read " + (state_text ? journal : file) + ": " +
                       std::strerror(errno));
  }
  std::string_view records(*state_text);
  if (!records.empty()) {
    if (records.substr(0, state_header.size()) != state_header) {
      return store_error("--import-state: " + file +
                         " is not a state file of the file journal (it starts with no "
                         "\"unloc-reconciliation-state 1\" line)");
    }
    records.remove_prefix(state_header.size());
  }
  journal_state state;
  state.apply_all(records);
  state.apply_all(*journal_text);

  for (const auto& [id, when] : state.handled) {
    auto claim = store.claim(id, when);
    if (!claim) return claim.error();
    if (claim->status != unloc::claim_status::mine) continue;  // handled already (a rerun)
    auto marked = store.mark_handled(id, claim->token);
    if (!marked) return marked.error();
    ++report.handled;
  }
  for (const auto& [scope, at] : state.checkpoints) {
    if (auto saved = store.save_checkpoint(scope, at); !saved) return saved.error();
    ++report.checkpoints;
  }
  report.in_doubt.assign(state.pending.begin(), state.pending.end());
  report.unreadable = state.unreadable;
  // Renamed only once everything is in the store: a failure before leaves the files to retry.
  for (const std::string& path : {file, journal}) {
    if (exists(path) && std::rename(path.c_str(), (path + ".imported").c_str()) != 0) {
      std::string why = "--import-state: imported, but cannot rename ";
      why.append(path).append(" to ").append(path).append(".imported: ");
      return store_error(why.append(std::strerror(errno)));
    }
  }
  return report;
}

}  // namespace receiver

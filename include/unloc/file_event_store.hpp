#pragma once

/// @file
/// An `unloc::event_store` in a local file that survives restarts and
/// `kill -9`: the store of `unloc-webhook-receiver --reconcile`.

#include <unloc/error.hpp>
#include <unloc/event_store.hpp>
#include <unloc/detail/os.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/uuid.hpp>
#include <unloc/version.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE

/// How a `file_event_store` keeps its file.
struct file_store_options {
  /// How long a handled id is remembered: a day past the access log's 30
  /// days (an older event is in neither the log nor a redelivery).
  std::chrono::milliseconds retention = std::chrono::hours(24 * 31);
  /// `fsync` after every claim, mark and release, not only at checkpoints.
  /// Without it a killed process loses nothing (the kernel holds the data); a
  /// power cut may hand the last seconds' events over again (never lose them).
  bool sync_each_event = false;
  /// Rewrites the state file once the journal holds this many records, or as
  /// many as the state file when that is more.
  std::size_t compact_after = 50'000;
  /// How long a claim holds before the next claim of its event takes it over.
  std::chrono::milliseconds claim_lease = std::chrono::minutes(5);
};

/// An `event_store` in one state file, rewritten atomically (temporary file,
/// fsync, rename), and a journal beside it (`PATH.journal`) that each claim,
/// mark, release and checkpoint is appended to, folded into the state file
/// now and then. A claim is journaled before the caller works on the event:
/// when the process is killed while holding it, the event is claimable after
/// the restart, flagged `in_doubt`. Memory: the ids of the last `retention`
/// (about 60 bytes each). One process at a time may use a file; its threads
/// may call it at once (each call holds a lock for one journal write).
///
/// The files are text, one record a line: `p <event id> <ms since 1970>`
/// (claimed), `h <event id> <ms>` (handled), `r <event id> <ms>` (released)
/// and `c <ms> <scope>` (checkpoint); the state file starts with
/// `unloc-reconciliation-state 1`.
class file_event_store final : public event_store {
 public:
  /// The store's wall clock, replaceable in tests.
  using clock_function = std::function<timestamp()>;

  /// Loads the state at `path` (none yet is an empty state) and its journal,
  /// then folds the journal in. An error when a file cannot be read or written,
  /// or holds something other than records (a torn last journal line, left by
  /// a crash, is ignored).
  [[nodiscard]] static result<std::unique_ptr<file_event_store>> open(
      std::string path, file_store_options options = {}, clock_function clock = [] {
        return std::chrono::time_point_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now());
      }) {
    std::unique_ptr<file_event_store> store(
        new file_event_store(std::move(path), options, std::move(clock)));
    if (auto loaded = store->load(); !loaded) return loaded.error();
    if (auto compacted = store->compact(); !compacted) return compacted.error();
    if (!store->journal_.open_append(store->journal_path())) {
      return store->failure("cannot open", store->journal_path());
    }
    return store;
  }

  [[nodiscard]] result<event_claim> claim(const uuid& id, timestamp /*created*/) override {
    return guarded([&]() -> result<event_claim> {
      const auto now = clock_();
      expire(now);
      if (handled_.count(id) != 0) return event_claim{claim_status::already_handled, false, 0};
      const claim_token token = next_token_;
      const auto [held, added] = pending_.try_emplace(id, claim_state{now, token, false});
      if (added) {
        if (auto saved = append(record('p', id, now), options_.sync_each_event); !saved) {
          pending_.erase(id);
          return saved.error();
        }
        ++next_token_;
        return event_claim{claim_status::mine, false, token};
      }
      // Left by a process that stopped, or held here past its lease: taken over.
      // Its `p` record stands: a kill now leaves it in doubt again.
      claim_state& state = held->second;
      if (state.owner == 0 || now - state.since >= options_.claim_lease) {
        ++next_token_;
        state = claim_state{now, token, true};
        return event_claim{claim_status::mine, true, token};
      }
      return event_claim{claim_status::held_elsewhere, false, 0};
    });
  }

  [[nodiscard]] result<settle_status> mark_handled(const uuid& id, claim_token token) override {
    return guarded([&]() -> result<settle_status> {
      const auto now = clock_();
      expire(now);
      if (handled_.count(id) != 0) return settle_status::done;
      const auto held = pending_.find(id);
      // Not kept (forgotten after `retention`): nobody holds it, so it is recorded.
      if (held != pending_.end()) {
        if (held->second.owner != token) return settle_status::not_owner;
        pending_.erase(held);
      }
      remember(id, now);
      if (auto saved = append(record('h', id, now), options_.sync_each_event); !saved) {
        return saved.error();
      }
      return settle_status::done;
    });
  }

  [[nodiscard]] result<settle_status> release(const uuid& id, claim_token token) override {
    return guarded([&]() -> result<settle_status> {
      const auto held = pending_.find(id);
      if (held == pending_.end() || held->second.owner != token) return settle_status::not_owner;
      if (held->second.taken_over) {
        held->second.owner = 0;  // free, still in doubt; its `p` record stands for a restart
        return settle_status::done;
      }
      pending_.erase(held);
      if (auto saved = append(record('r', id, clock_()), options_.sync_each_event); !saved) {
        return saved.error();
      }
      return settle_status::done;
    });
  }

  [[nodiscard]] result<std::optional<timestamp>> checkpoint(const std::string& scope) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = checkpoints_.find(scope);
    if (it == checkpoints_.end()) return std::optional<timestamp>{};
    return std::optional<timestamp>{it->second};
  }

  [[nodiscard]] result<void> save_checkpoint(const std::string& scope, timestamp read_to) override {
    if (scope.empty() || scope.find_first_of(" \r\n") != std::string::npos) {
      return make_error(error_category::invalid_input, "a scope must be one word", "scope");
    }
    return guarded([&]() -> result<void> {
      auto& saved = checkpoints_[scope];
      saved = (std::max)(saved, read_to);
      // Synced, always: the checkpoint must not outlive the ids it vouches for,
      // which are in the journal before it.
      return append(checkpoint_record(scope, saved), true);
    });
  }

  /// The events in doubt and not claimed now: claimed by a process that
  /// stopped before marking or releasing them (their next claim is `in_doubt`).
  [[nodiscard]] std::vector<uuid> in_doubt() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    std::vector<uuid> ids;
    for (const auto& [id, state] : pending_) {
      if (state.owner == 0) ids.push_back(id);
    }
    return ids;
  }

  /// Why the last rewrite of the state file failed, until one succeeds. The
  /// records it would have folded in stay in the journal, which grows until
  /// then; claims, marks and releases go on (each is written before it returns).
  [[nodiscard]] std::optional<error> compaction_failure() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return compaction_failure_;
  }

  /// How many handled ids are remembered.
  [[nodiscard]] std::size_t size() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return handled_.size();
  }
  /// The state file's path.
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  file_event_store(std::string path, file_store_options options, clock_function clock)
      : path_(std::move(path)), options_(options), clock_(std::move(clock)) {}

  static constexpr std::string_view header = "unloc-reconciliation-state 1\n";

  // Runs `body` under the lock; an exception (out of memory, a throwing clock) becomes an error.
  template <typename Body>
  auto guarded(Body&& body) -> decltype(body()) {
    try {
      const std::lock_guard<std::mutex> lock(mutex_);
      return body();
    } catch (...) {
      return make_error(error_category::internal, "the event store " + path_ + " failed");
    }
  }

  [[nodiscard]] std::string journal_path() const { return path_ + ".journal"; }

  [[nodiscard]] error failure(const char* what, const std::string& file) const {
    return make_error(error_category::internal, std::string(what) + " the reconciliation state " +
                                                    file + ": " + std::strerror(errno));
  }

  static std::string record(char kind, const uuid& id, timestamp when) {
    return std::string{kind, ' '} + id.to_string() + " " +
           std::to_string(when.time_since_epoch().count()) + "\n";
  }

  // One record, in one write: a killed process leaves it whole or torn at the end.
  // An error only when the record was not written: a failed compaction is kept
  // apart (`compaction_failure`), as the record is in the journal all the same.
  result<void> append(const std::string& line, bool sync) {
    if (!journal_.write_all(line) || (sync && !journal_.sync())) {
      return failure("cannot write", journal_path());
    }
    ++journal_records_;
    if (journal_records_ >= compact_at_) {
      if (auto compacted = compact(); !compacted) {
        compaction_failure_ = compacted.error();
        // Tried again after as many records more: not a rewrite at every call.
        compact_at_ = journal_records_ + (std::max)(options_.compact_after, state_records_);
      }
    }
    return {};
  }
  static std::string checkpoint_record(const std::string& scope, timestamp at) {
    return "c " + std::to_string(at.time_since_epoch().count()) + " " + scope + "\n";
  }

  // False when `id` was remembered already.
  bool remember(const uuid& id, timestamp when) {
    if (!handled_.emplace(id, when).second) return false;
    order_.emplace_back(when, id);
    return true;
  }

  // Ids are forgotten in the order they were handled (`when` only grows,
  // give or take a clock step back, which keeps an id a little longer).
  void expire(timestamp now) {
    while (!order_.empty() && now - order_.front().first >= options_.retention) {
      const auto it = handled_.find(order_.front().second);
      if (it != handled_.end() && it->second == order_.front().first) handled_.erase(it);
      order_.pop_front();
    }
  }

  static std::optional<std::int64_t> parse_ms(std::string_view text) {
    if (text.empty() || text.size() > 18) return std::nullopt;
    std::int64_t value = 0;
    for (const char c : text) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + (c - '0');
    }
    return value;
  }

  // One record; false when the line is not one.
  bool apply(std::string_view line) {
    if (line.size() < 4 || line[1] != ' ') return false;
    const auto space = line.find(' ', 2);
    if (space == std::string_view::npos) return false;
    const auto first = line.substr(2, space - 2);
    const auto second = line.substr(space + 1);
    if (line[0] == 'h' || line[0] == 'p' || line[0] == 'r') {
      auto id = uuid::parse(first);
      const auto ms = parse_ms(second);
      if (!id || !ms) return false;
      const timestamp when{std::chrono::milliseconds(*ms)};
      if (line[0] == 'p') {
        pending_.emplace(*id, claim_state{when, 0, false});
      } else {
        pending_.erase(*id);
        if (line[0] == 'h') remember(*id, when);
      }
      return true;
    }
    if (line[0] == 'c') {
      const auto ms = parse_ms(first);
      if (!ms || second.empty() || second.find(' ') != std::string_view::npos) return false;
      auto& saved = checkpoints_[std::string(second)];
      saved = (std::max)(saved, timestamp(std::chrono::milliseconds(*ms)));
      return true;
    }
    return false;
  }

  // Reads one file's records; `journal`: a torn last line is a crash's, not corruption.
  result<std::size_t> read_records(const std::string& file, bool journal) {
    std::FILE* in = std::fopen(file.c_str(), "rb");
    if (in == nullptr) {
      if (errno == ENOENT) return std::size_t{0};
      return failure("cannot read", file);
    }
    std::string text;
    char buffer[65536];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, in)) > 0;) text.append(buffer, n);
    const bool read_error = std::ferror(in) != 0;
    std::fclose(in);
    if (read_error) return failure("cannot read", file);
    std::string_view rest(text);
    if (!journal) {
      if (rest.substr(0, header.size()) != header) {
        return make_error(error_category::internal,
                          "the reconciliation state " + file + " is not a state file");
      }
      rest.remove_prefix(header.size());
    }
    std::size_t records = 0;
    for (std::size_t number = journal ? 1 : 2; !rest.empty(); ++number) {
      const auto end = rest.find('\n');
      if (end == std::string_view::npos && journal) break;  // torn by a crash
      const auto line = rest.substr(0, end);
      if (!apply(line)) {
        return make_error(
            error_category::internal,
            "the reconciliation state " + file + " is corrupt at line " + std::to_string(number));
      }
      ++records;
      rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    }
    return records;
  }

  result<void> load() {
    auto state = read_records(path_, false);
    if (!state) return state.error();
    auto journal = read_records(journal_path(), true);
    if (!journal) return journal.error();
    expire(clock_());
    return {};
  }

  // The state file gets everything, then the journal is emptied. A crash in
  // between leaves records in both, which loading the two again merges.
  result<void> compact() {
    expire(clock_());
    std::string text(header);
    text.reserve(header.size() + handled_.size() * 56 + checkpoints_.size() * 64);
    for (const auto& [when, id] : order_) {
      const auto it = handled_.find(id);
      if (it != handled_.end() && it->second == when) text += record('h', id, when);
    }
    for (auto it = pending_.begin(); it != pending_.end();) {  // forgotten like handled ids
      if (clock_() - it->second.since >= options_.retention) {
        it = pending_.erase(it);
        continue;
      }
      text += record('p', it->first, it->second.since);
      ++it;
    }
    state_records_ = handled_.size() + pending_.size() + checkpoints_.size();
    for (const auto& [scope, at] : checkpoints_) text += checkpoint_record(scope, at);
    if (!detail::state_file::replace(path_, text)) return failure("cannot write", path_);
    detail::state_file journal;
    if (!journal.open_append(journal_path()) || !journal.truncate()) {
      return failure("cannot empty", journal_path());
    }
    journal_records_ = 0;
    // The journal may grow as large as the state file: rewrites stay amortized O(1) a record.
    compact_at_ = (std::max)(options_.compact_after, state_records_);
    compaction_failure_.reset();
    return {};
  }

  std::string path_;
  file_store_options options_;
  clock_function clock_;
  mutable std::mutex mutex_;  // everything below
  detail::state_file journal_;
  std::size_t journal_records_ = 0;  // records appended since the state file was written
  std::size_t state_records_ = 0;    // records in the state file
  std::unordered_map<uuid, timestamp> handled_;
  struct claim_state {
    timestamp since;    // of its claim (or its `p` record, loaded)
    claim_token owner;  // the claim holding it; 0: none, free and in doubt
    bool taken_over;    // its claim was taken over: released, it stays in doubt
  };
  std::unordered_map<uuid, claim_state> pending_;  // claimed, neither handled nor released
  claim_token next_token_ = 1;                     // 0 is no claim
  std::size_t compact_at_ = 0;                     // journal records due for a compaction
  std::optional<error> compaction_failure_;
  std::deque<std::pair<timestamp, uuid>> order_;  // oldest first
  std::map<std::string, timestamp> checkpoints_;
};

UNLOC_END_NAMESPACE

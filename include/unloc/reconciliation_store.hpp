#pragma once

/// @file
/// What `unloc::reconciler` must remember across restarts: which Access
/// Events were handed over, and how far each access log has been read.

#include <unloc/detail/os.hpp>
#include <unloc/error.hpp>
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
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE

/// Where an event stands with the reconciler.
enum class handover_state {
  unseen,    ///< Never handed over.
  in_doubt,  ///< Being handed over when the process stopped: the handler may have confirmed it.
  handled,   ///< Handed over and confirmed.
};

/// The reconciler's memory. The reconciler calls one store from one thread at
/// a time, and a call returns only once what it records is saved (a killed
/// process must not lose it). To run several receivers on several machines,
/// implement it over a shared database, with `mark_handled` in the same
/// transaction as the handler's own write: then no event is ever in doubt.
class reconciliation_store {
 public:
  virtual ~reconciliation_store() = default;
  /// Where the event `id` stands.
  [[nodiscard]] virtual result<handover_state> state_of(const uuid& id) = 0;
  /// Records that the event `id` is about to be handed over (at `when`): if the
  /// process stops before `mark_handled`, the event is `in_doubt` afterwards.
  virtual result<void> mark_pending(const uuid& id, timestamp when) = 0;
  /// Records that the event `id` was handed over and confirmed at `when`.
  virtual result<void> mark_handled(const uuid& id, timestamp when) = 0;
  /// How far the access log of `scope` has been read: every event it held
  /// that was created before the checkpoint has been handed over. Empty when
  /// the log was never read.
  [[nodiscard]] virtual result<std::optional<timestamp>> checkpoint(const std::string& scope) = 0;
  /// Moves the checkpoint of `scope` to `read_to` (never backwards). Called only
  /// after every event read up to it was handed over.
  virtual result<void> save_checkpoint(const std::string& scope, timestamp read_to) = 0;
};

/// How a `file_reconciliation_store` keeps its file.
struct file_store_options {
  /// How long a handed-over id is remembered: a day past the access log's 30
  /// days (an older event is in neither the log nor a redelivery).
  std::chrono::milliseconds retention = std::chrono::hours(24 * 31);
  /// `fsync` after every handed-over id, not only at checkpoints. Without it a
  /// killed process loses nothing (the kernel holds the data); a power cut may
  /// hand the last seconds' events over again (never lose them).
  bool sync_each_event = false;
  /// Rewrites the state file once the journal holds this many records, or as
  /// many as the state file when that is more.
  std::size_t compact_after = 50'000;
};

/// The default `reconciliation_store`: one state file, rewritten atomically
/// (temporary file, fsync, rename), and a journal beside it (`PATH.journal`)
/// that each handed-over id and checkpoint is appended to, folded into the
/// state file now and then. Memory: the ids of the last `retention` (about 60
/// bytes each). One process at a time may use a file.
///
/// The files are text, one record a line: `p <event id> <ms since 1970>`
/// (about to be handed over), `h <event id> <ms since 1970>` (handed over) and
/// `c <ms since 1970> <scope>` (checkpoint); the state file starts with
/// `unloc-reconciliation-state 1`.
class file_reconciliation_store final : public reconciliation_store {
 public:
  /// The store's wall clock, replaceable in tests.
  using clock_function = std::function<timestamp()>;

  /// Loads the state at `path` (none yet is an empty state) and its journal,
  /// then folds the journal in. An error when a file cannot be read or written,
  /// or holds something other than records (a torn last journal line, left by
  /// a crash, is ignored).
  [[nodiscard]] static result<std::unique_ptr<file_reconciliation_store>> open(
      std::string path, file_store_options options = {},
      clock_function clock = [] {
        return std::chrono::time_point_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now());
      }) {
    std::unique_ptr<file_reconciliation_store> store(
        new file_reconciliation_store(std::move(path), options, std::move(clock)));
    if (auto loaded = store->load(); !loaded) return loaded.error();
    if (auto compacted = store->compact(); !compacted) return compacted.error();
    if (!store->journal_.open_append(store->journal_path())) {
      return store->failure("cannot open", store->journal_path());
    }
    return store;
  }

  [[nodiscard]] result<handover_state> state_of(const uuid& id) override {
    expire(clock_());
    if (handled_.count(id) != 0) return handover_state::handled;
    return doubt_.count(id) != 0 ? handover_state::in_doubt : handover_state::unseen;
  }

  result<void> mark_pending(const uuid& id, timestamp when) override {
    if (!pending_.emplace(id, when).second) return {};
    return append(record('p', id, when), options_.sync_each_event);
  }

  result<void> mark_handled(const uuid& id, timestamp when) override {
    expire(clock_());
    pending_.erase(id);
    doubt_.erase(id);
    if (!remember(id, when)) return {};
    return append(record('h', id, when), options_.sync_each_event);
  }

  /// The events that were being handed over when the process last stopped.
  [[nodiscard]] std::vector<uuid> in_doubt() const {
    return std::vector<uuid>(doubt_.begin(), doubt_.end());
  }

  [[nodiscard]] result<std::optional<timestamp>> checkpoint(const std::string& scope) override {
    const auto it = checkpoints_.find(scope);
    if (it == checkpoints_.end()) return std::optional<timestamp>{};
    return std::optional<timestamp>{it->second};
  }

  result<void> save_checkpoint(const std::string& scope, timestamp read_to) override {
    if (scope.empty() || scope.find_first_of(" \r\n") != std::string::npos) {
      return make_error(error_category::invalid_input, "a scope must be one word", "scope");
    }
    auto& saved = checkpoints_[scope];
    saved = (std::max)(saved, read_to);
    // Synced, always: the checkpoint must not outlive the ids it vouches for,
    // which are in the journal before it.
    return append(checkpoint_record(scope, saved), true);
  }

  /// How many ids are remembered.
  [[nodiscard]] std::size_t size() const noexcept { return handled_.size(); }
  /// The state file's path.
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  file_reconciliation_store(std::string path, file_store_options options, clock_function clock)
      : path_(std::move(path)), options_(options), clock_(std::move(clock)) {}

  static constexpr std::string_view header = "unloc-reconciliation-state 1\n";

  [[nodiscard]] std::string journal_path() const { return path_ + ".journal"; }

  [[nodiscard]] error failure(const char* what, const std::string& file) const {
    return make_error(error_category::internal,
                      std::string(what) + " the reconciliation state " + file + ": " +
                          std::strerror(errno));
  }

  static std::string record(char kind, const uuid& id, timestamp when) {
    return std::string{kind, ' '} + id.to_string() + " " +
           std::to_string(when.time_since_epoch().count()) + "\n";
  }

  // One record, in one write: a killed process leaves it whole or torn at the end.
  result<void> append(const std::string& line, bool sync) {
    if (!journal_.write_all(line) || (sync && !journal_.sync())) {
      return failure("cannot write", journal_path());
    }
    ++journal_records_;
    return compact_if_due();
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

  // Ids are forgotten in the order they were handed over (`when` only grows,
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
    if (line[0] == 'h' || line[0] == 'p') {
      auto id = uuid::parse(first);
      const auto ms = parse_ms(second);
      if (!id || !ms) return false;
      const timestamp when{std::chrono::milliseconds(*ms)};
      if (line[0] == 'p') {
        pending_.emplace(*id, when);
      } else {
        pending_.erase(*id);
        remember(*id, when);
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
        return make_error(error_category::internal, "the reconciliation state " + file +
                                                        " is corrupt at line " +
                                                        std::to_string(number));
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
    for (const auto& entry : pending_) doubt_.insert(entry.first);
    expire(clock_());
    return {};
  }

  result<void> compact_if_due() {
    // The journal may grow as large as the state file: rewrites stay amortized O(1) a record.
    if (journal_records_ < (std::max)(options_.compact_after, state_records_)) return {};
    return compact();
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
      if (clock_() - it->second >= options_.retention) {
        doubt_.erase(it->first);
        it = pending_.erase(it);
        continue;
      }
      text += record('p', it->first, it->second);
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
    return {};
  }

  std::string path_;
  file_store_options options_;
  clock_function clock_;
  detail::state_file journal_;
  std::size_t journal_records_ = 0;  // records appended since the state file was written
  std::size_t state_records_ = 0;    // records in the state file
  std::unordered_map<uuid, timestamp> handled_;
  std::unordered_map<uuid, timestamp> pending_;  // marked pending, not (yet) handled
  std::unordered_set<uuid> doubt_;               // of those, the ones a past process left
  std::deque<std::pair<timestamp, uuid>> order_;  // oldest first
  std::map<std::string, timestamp> checkpoints_;
};

UNLOC_END_NAMESPACE

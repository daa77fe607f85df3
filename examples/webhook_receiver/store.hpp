#pragma once

// --store: the event store the receiver keeps its state in (what it handled,
// the access log's checkpoints and lease, and with a database each new event),
// opened from its URL; and --import-state, the retired file journal's state
// carried over into it once.

#include "options.hpp"

#include <unloc/event_store.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace receiver {

/// The store --store names: SQLite, PostgreSQL, or (no --store) memory. An
/// error naming why it cannot be opened (never a password).
unloc::result<std::shared_ptr<unloc::event_store>> open_store(const options& opts);

/// Whether the store --store names runs the handler inside the transaction
/// that marks the event (SQLite): the receiver prints there, one commit a
/// delivery. The others claim first, and keep the plain path.
bool handles_inside_transaction(const options& opts);

/// What `import_file_journal` carried over.
struct import_report {
  std::size_t handled = 0;      ///< Events marked handled in the store.
  std::size_t checkpoints = 0;  ///< Access log checkpoints saved.
  /// Events the journal left claimed but not handled (a stop while printing
  /// them): not marked, so they are taken again if they come again.
  std::vector<unloc::uuid> in_doubt;
  /// Lines that are no record (such as two records glued by a short write on a
  /// full disk): skipped, so their events are taken again if they come again.
  std::size_t unreadable = 0;
  bool already_imported = false;  ///< FILE.imported found instead of FILE: nothing done.
};

/// Reads the state file `file` of the retired `file_event_store` and its
/// journal `file.journal`, marks each event they hold as handled in `store`
/// and saves their checkpoints (never backwards), then renames both files to
/// `*.imported`. Marks are idempotent, so an import cut short may run again.
unloc::result<import_report> import_file_journal(const std::string& file,
                                                 unloc::event_store& store);

}  // namespace receiver

#pragma once

/// @file
/// Which access log to read (`access_log_query`) and what a read did
/// (`log_read`): shared by the client and the reconciler, without libcurl.

#include <unloc/timestamp.hpp>
#include <unloc/uuid.hpp>
#include <unloc/version.hpp>

#include <cstddef>
#include <optional>

UNLOC_BEGIN_NAMESPACE

/// Which access log to read, and which part of it.
struct access_log_query {
  /// The Lock whose log is read; with `project_wide`, an optional filter.
  std::optional<uuid> lock_id;
  /// Read the Project's log (`/logs/access`) instead of one Lock's.
  bool project_wide = false;
  std::optional<timestamp> from;  ///< Oldest event (the API clamps it to 30 days ago).
  std::optional<timestamp> to;    ///< Newest event; default now.
  int page_size = 1000;           ///< Events a page, 1 to 1000.

  /// The log of one Lock.
  [[nodiscard]] static access_log_query lock(const uuid& lock_id) {
    access_log_query q;
    q.lock_id = lock_id;
    return q;
  }
  /// The log of the whole Project.
  [[nodiscard]] static access_log_query project() {
    access_log_query q;
    q.project_wide = true;
    return q;
  }
};

/// What a successful `client::read_access_log` did.
struct log_read {
  std::size_t events = 0;  ///< Events handed to the callback, the one that stopped it included.
  bool stopped = false;    ///< The callback returned false: the log was not read to its end.
};

UNLOC_END_NAMESPACE

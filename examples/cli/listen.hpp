#pragma once

// `unloc listen --forward-to URL`: develop against real Unloc without a public
// URL. Polls the access log from now on and POSTs each new Access Event to a
// local receiver exactly as Unloc delivers it.

#include <unloc/client.hpp>

#include <atomic>
#include <chrono>
#include <ostream>
#include <string>
#include <vector>

namespace unloc_cli {

/// What `unloc listen` polls and where it forwards.
struct listen_options {
  /// http(s)://[user:pass@]host[:port]/path, under the rules of Unloc's
  /// webhook URLs; http only to a loopback host (localhost, 127.x, [::1]).
  std::string forward_to;
  /// The Locks whose logs are polled (UUIDs); empty: the Project's log.
  std::vector<std::string> locks;
  /// Time between two polls.
  std::chrono::milliseconds interval{std::chrono::seconds(3)};
  /// Extra trusted CAs (PEM file) for an https forward target; may be empty.
  std::string ca_bundle;
};

/// Runs until `stop` becomes true; one line per forward on `out` (event id,
/// action, status or error, latency in ms); diagnostics on `err`. Returns the
/// process exit status: 0 after a clean stop, 2 on bad usage (http:// to a
/// non-loopback host, a malformed URL or Lock id), 1 or 3 when the API or the
/// network fails and does not recover (10 failed polls in a row, rate limits
/// not counted, or at once on an error that no retry mends, such as refused
/// credentials).
int run_listen(unloc::client& client, const listen_options& options, std::ostream& out,
               std::ostream& err, const std::atomic<bool>& stop);

}  // namespace unloc_cli

#pragma once

// The command line of unloc-webhook-receiver. The options and environment
// variables of shared/cli-and-receiver.md, plus --port-file, --threads and
// reconciliation with the access log (--reconcile).

#include <unloc/core.hpp>
#include <unloc/options.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace receiver {

/// Everything the receiver is configured by, once parsed and checked.
struct options {
  std::string host = "127.0.0.1";      ///< --listen host (an IPv6 address without brackets).
  int port = 8443;                     ///< --listen port; 0 picks a free one.
  std::string cert_file;               ///< --cert: the certificate chain (PEM).
  std::string key_file;                ///< --key: its private key (PEM).
  bool plain_http = false;             ///< --plain-http: no TLS (loopback tests only).
  std::string path = "/accessEvents";  ///< --path: where deliveries are POSTed.
  std::size_t max_body = 65536;        ///< --max-body: the largest body accepted, in bytes.
  bool no_auth = false;                ///< --no-auth: accept deliveries without credentials.
  std::string port_file;               ///< --port-file: where to write the bound port.
  int threads = 32;                    ///< --threads: connections served at once.
  /// UNLOC_WEBHOOK_USER/PASSWORD, then the _NEXT pair when set (rotation).
  std::vector<unloc::basic_credentials> credentials;

  /// --reconcile: the state file of reconciliation; empty: reconciliation off.
  std::string reconcile_state;
  std::vector<unloc::uuid> locks;                    ///< --lock: logs read; none: the Project's.
  std::chrono::seconds poll_interval{300};           ///< --poll-interval
  std::chrono::seconds overlap{24 * 3600};           ///< --overlap
  unloc::client_options api;  ///< UNLOC_API_URL, _PROJECT_ID, _CLIENT_ID, _CLIENT_SECRET, _CA_BUNDLE
};

/// What parsing decided: run with `opts`, or exit now with `exit_status`
/// (0 after --help or --version, 2 after a usage error, already printed).
struct parsed_options {
  options opts;
  int exit_status = -1;  ///< -1: run.
};

/// Parses the arguments and the environment. Prints --help and --version on
/// stdout and usage errors on stderr (never a password).
parsed_options parse_options(int argc, const char* const* argv);

}  // namespace receiver

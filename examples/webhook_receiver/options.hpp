#pragma once

// The command line of unloc-webhook-receiver: where it listens, its TLS files
// and credentials, the limits of its HTTP front, where it keeps its state
// (--store), and reconciliation with the access log (--reconcile).

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
  int threads = 0;                     ///< --threads: I/O threads; 0: the number of cores.

  std::size_t max_header_bytes = 8192;  ///< --max-header-bytes: request line and header block.
  std::chrono::milliseconds header_timeout{10000};     ///< --header-timeout: the whole head.
  std::chrono::milliseconds body_timeout{30000};       ///< --body-timeout: the whole body.
  std::chrono::milliseconds handshake_timeout{10000};  ///< --handshake-timeout: TLS.
  std::chrono::milliseconds idle_timeout{30000};       ///< --idle-timeout: between requests.
  std::size_t max_connections = 1024;              ///< --max-connections: open at once.
  std::size_t max_connections_per_client = 128;    ///< --max-connections-per-client
  std::size_t max_requests_per_connection = 1000;  ///< --max-requests-per-connection
  std::string metrics_host;  ///< --metrics-listen host; empty: no metrics listener.
  int metrics_port = 0;      ///< --metrics-listen port.
  /// UNLOC_WEBHOOK_USER/PASSWORD, then the _NEXT pair when set (rotation).
  std::vector<unloc::basic_credentials> credentials;

  /// --store: `sqlite:PATH` or `postgresql://USER@HOST:PORT/DB`; empty: in memory.
  std::string store;
  bool print = true;           ///< false with --no-print.
  std::chrono::seconds claim_lease{300};  ///< --claim-lease: a claim left unsettled, then taken over.
  std::string import_state;    ///< --import-state: a state file of the retired file journal.
  bool reconcile = false;      ///< --reconcile: also read the access log.
  std::vector<unloc::uuid> locks;                    ///< --lock: logs read; none: the Project's.
  std::chrono::seconds poll_interval{300};           ///< --poll-interval
  std::chrono::seconds overlap{24 * 3600};           ///< --overlap
  std::chrono::seconds log_lease{120};               ///< --log-lease
  unloc::client_options api;  ///< UNLOC_API_URL, _PROJECT_ID, _CLIENT_ID, _CLIENT_SECRET, _CA_BUNDLE
};

/// What parsing decided: run with `opts`, or exit now with `exit_status`
/// (0 after --help or --version, 2 after a usage error, already printed).
struct parsed_options {
  options opts;
  int exit_status = -1;  ///< -1: run.
};

/// The I/O threads the server runs: --threads, or one a core.
int io_threads(const options& o);

/// The hand-over pool's threads. An event is handed over (printed, stored) on
/// the I/O thread that read it, but on this pool from the last free I/O thread
/// while the hand-overs are slow (a store stalling): twice the I/O threads, so
/// that the deliveries of a stall wait there rather than in its queue.
int hand_over_pool_threads(const options& o);

/// Parses the arguments and the environment. Prints --help and --version on
/// stdout and usage errors on stderr (never a password).
parsed_options parse_options(int argc, const char* const* argv);

}  // namespace receiver

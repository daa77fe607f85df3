#pragma once

/// @file
/// Test support: TLS fixtures generated at test time with the openssl CLI, and
/// the Unloc reference server (tools/reference_server) run as a child process
/// on a free loopback port. Link the `unloc_test_support` library.
///
/// Side effect: the first use ignores SIGPIPE in the test process (httplib, in
/// the tests that use it, writes through OpenSSL, which raises it when a peer
/// has closed). The admin calls go through libcurl: this library links no
/// cpp-httplib, so that it builds with libc++ too.

#include <unloc/options.hpp>

#include <nlohmann/json.hpp>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace unloc_test {

/// Two Lock ids for the tests that register webhooks on a Lock.
// NOLINTNEXTLINE(cert-err58-cpp): a test fixture; a throw here fails the test at once.
inline const std::string lock_a = "df50a61f-9e1f-4e1c-9e89-8395c908065a";
// NOLINTNEXTLINE(cert-err58-cpp): as above.
inline const std::string lock_b = "c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef";

/// TLS files made once per process in a fresh temporary directory (removed at
/// exit). EC P-256 keys; certificates valid for 30 days from now.
struct test_tls {
  std::string dir;            ///< The temporary directory holding them all.
  std::string ca_cert;        ///< The test CA (PEM): trust it to reach the servers below.
  std::string ca_key;         ///< The test CA's key.
  std::string server_cert;    ///< For `localhost`, 127.0.0.1 and ::1 (SANs), signed by the test CA.
  std::string server_key;     ///< Its key.
  std::string other_ca_cert;  ///< An unrelated CA: trusting only it must fail ("wrong CA").
  std::string other_server_cert;  ///< Same names, signed by the unrelated CA.
  std::string other_server_key;   ///< Its key.
};

/// The process's TLS fixtures, generated on first use (thread-safe); throws
/// `std::runtime_error` with openssl's output when generation fails.
const test_tls& test_tls_files();

/// How to start a reference server.
struct reference_server_options {
  std::chrono::seconds token_lifetime{3600};                        ///< --token-lifetime
  std::string project_id = "d45031c2-be07-4d20-adbe-4e51e6ad0fed";  ///< --project
  std::string client_id = "unloc-test-client";                      ///< --client-id
  /// UNLOC_CLIENT_SECRET for the server; empty: a random one per server.
  std::string client_secret;
  std::string seed_file;  ///< --seed, when not empty
  /// --webhook-ca: the test CA by default (receivers use test_tls::server_cert).
  std::string webhook_ca = "<test CA>";
  int delivery_attempts = 8;                         ///< --delivery-attempts
  std::chrono::milliseconds delivery_backoff{50};    ///< --delivery-backoff-ms (fast for tests)
  bool log_requests = false;                         ///< --log-requests (to log_file())
  std::vector<std::string> extra_args;               ///< More arguments, as they are.
  std::vector<std::string> environment;              ///< More "NAME=value" entries.
  std::chrono::milliseconds startup_timeout{10000};  ///< Bound on waiting for the port file.
};

/// A reference server child process on 127.0.0.1 and a free port, ready when
/// the constructor returns (it waits on the port file, never sleeps a fixed
/// time). The destructor stops it: SIGTERM, then SIGKILL after 10 s.
/// Thread-safe: the admin helpers may be called from several threads at once.
class reference_server {
 public:
  /// Starts the server; throws `std::runtime_error` (with the server's output)
  /// when it does not come up within `options.startup_timeout`.
  explicit reference_server(reference_server_options options = {});
  ~reference_server();
  reference_server(const reference_server&) = delete;
  reference_server& operator=(const reference_server&) = delete;

  /// `https://127.0.0.1:PORT`, the base URL an SDK client is configured with.
  [[nodiscard]] std::string base_url() const;
  /// The CA file that verifies the server's certificate.
  [[nodiscard]] const std::string& ca_file() const;
  /// The Project, client id and client secret the server accepts.
  [[nodiscard]] const std::string& project_id() const { return options_.project_id; }
  /// @copydoc project_id
  [[nodiscard]] const std::string& client_id() const { return options_.client_id; }
  /// @copydoc project_id
  [[nodiscard]] const std::string& client_secret() const { return options_.client_secret; }
  /// Options of an SDK client for this server: its URL, Project, credentials and CA file.
  [[nodiscard]] unloc::client_options client_options() const {
    unloc::client_options options;
    options.api_url = base_url();
    options.project_id = project_id();
    options.client_id = client_id();
    options.client_secret = client_secret();
    options.ca_file = ca_file();
    return options;
  }
  /// The port it listens on.
  [[nodiscard]] int port() const { return port_; }
  /// The child's process id (0 once stopped).
  [[nodiscard]] pid_t pid() const { return pid_; }
  /// The file holding the server's stdout and stderr.
  [[nodiscard]] const std::string& log_file() const { return log_file_; }
  /// The server's output so far.
  [[nodiscard]] std::string log_text() const;

  /// Calls an admin endpoint (`method` GET, POST or DELETE; `path` such as
  /// "/_admin/faults") and returns its JSON body (`{}` when empty); throws
  /// `std::runtime_error` on a transport error or a non-2xx status.
  nlohmann::json admin(const std::string& method, const std::string& path,
                       const nlohmann::json& body = nullptr);
  /// Records `count` Access Events on `lock_id` (newest now, 1 s apart unless
  /// `fields` says otherwise; any field of POST /_admin/events may be set in
  /// `fields`), delivers them to matching webhooks, returns their ids newest first.
  std::vector<std::string> record_events(const std::string& lock_id, int count = 1,
                                         nlohmann::json fields = nlohmann::json::object());
  /// Injects a fault (POST /_admin/faults); returns it as the server stored it.
  nlohmann::json inject_fault(const nlohmann::json& fault);
  /// Clears every pending fault.
  void clear_faults();
  /// Requests per endpoint and connection counters (GET /_admin/requests).
  nlohmann::json request_counts();
  /// Zeroes those counters.
  void reset_request_counts();
  /// Delivery counters (GET /_admin/deliveries).
  nlohmann::json delivery_counts();
  /// Waits until no delivery is queued or in flight; false on timeout.
  bool wait_for_deliveries(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Records and delivers the events held in offline mode (shuffled); returns their ids
  /// in delivery order.
  std::vector<std::string> release_offline();
  /// A valid access token from the token endpoint.
  std::string fetch_token();

  /// Stops the server (SIGTERM; SIGKILL after `grace`) and returns its exit
  /// status, or 128 + the signal that ended it. Idempotent.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

 private:
  reference_server_options options_;
  std::string port_file_;
  std::string log_file_;
  pid_t pid_ = 0;
  int port_ = 0;
  int exit_status_ = -1;
  struct http_reply {
    int status = 0;
    std::string body;
  };
  // One request over the kept-alive admin connection (under admin_mutex_).
  http_reply send(const std::string& method, const std::string& path, const std::string& body);
  struct admin_connection;
  std::mutex admin_mutex_;
  std::unique_ptr<admin_connection> admin_;
};

}  // namespace unloc_test

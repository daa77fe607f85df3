#pragma once

// The reference server's command line.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace refserver {

/// Defaults that make the server run without configuration: the webhooks
/// guide's project, and a development client.
inline constexpr const char* default_project_id = "d45031c2-be07-4d20-adbe-4e51e6ad0fed";
/// @copydoc default_project_id
inline constexpr const char* default_client_id = "unloc-dev-client";
/// @copydoc default_project_id
inline constexpr const char* default_client_secret = "unloc-dev-secret";

/// Everything the command line and the environment configure.
struct server_options {
  std::string host = "127.0.0.1";
  int port = 12111;
  std::string cert_file;
  std::string key_file;
  std::string port_file;
  std::string project_id = default_project_id;
  std::string client_id = default_client_id;
  std::string client_secret = default_client_secret;  ///< From UNLOC_CLIENT_SECRET only.
  bool uses_default_project = true;
  bool uses_default_client_id = true;
  bool uses_default_secret = true;
  std::chrono::seconds token_lifetime{3600};
  std::string seed_file;
  std::string webhook_ca;
  bool allow_http_loopback_webhooks = false;  ///< Webhooks may be http:// to a loopback host.
  int delivery_attempts = 8;
  std::chrono::milliseconds delivery_backoff{200};
  int delivery_workers = 4;
  int threads = 64;
  int keep_alive_timeout_seconds = 5;
  std::uint64_t random_seed = 20230901;
  bool log_requests = false;
};

/// What parsing the command line decided.
struct parse_outcome {
  std::optional<server_options> options;  ///< Set when the server should run.
  int exit_code = 0;                      ///< When not: 0 after --help/--version, 2 on bad usage.
};

/// Reads argv and the environment (UNLOC_CLIENT_SECRET); prints --help,
/// --version or a usage error itself.
parse_outcome parse_command_line(int argc, char** argv);

}  // namespace refserver

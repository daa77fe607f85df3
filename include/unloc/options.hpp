#pragma once

/// @file
/// How a client is configured (`client_options`) and how one call may differ
/// (`call_options`): plain aggregates with defaults, so that C++20 code reads
/// `unloc::client_options{.project_id = "…"}` and C++17 code assigns fields.

#include <unloc/error.hpp>
#include <unloc/token.hpp>
#include <unloc/transport.hpp>
#include <unloc/version.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

UNLOC_BEGIN_NAMESPACE

/// When and how often a failed attempt is repeated: on connection failures and
/// on `429`, `502`, `503` and `504`, with exponential backoff and full jitter,
/// honouring `Retry-After`, and never past the call's deadline.
struct retry_policy {
  int max_attempts = 4;                                ///< Attempts in all, the first included.
  std::chrono::milliseconds initial_backoff{250};      ///< The first wait's upper bound.
  std::chrono::milliseconds max_backoff{8'000};        ///< No wait's upper bound exceeds this.
};

/// Gives the client its access tokens. The client calls it from many threads
/// at once; an implementation caches and refreshes as it sees fit.
class token_source {
 public:
  virtual ~token_source() = default;
  /// A token valid now, fetched by `deadline` if it must be fetched.
  virtual result<access_token> token(std::chrono::steady_clock::time_point deadline) = 0;
  /// The API refused `stale` (401): drop it, so that the next `token()` brings
  /// another. Callers that saw the same refusal at once share one refresh.
  virtual void invalidate(const access_token& stale) = 0;
};

/// Receives one line per request and per response, with every secret
/// (client secret, tokens, Authorization headers, passwords in URLs) redacted.
using log_function = std::function<void(std::string_view line)>;

/// Everything a client needs. Only `project_id` and the credentials (or a
/// `token_source`) have no default.
struct client_options {
  std::string api_url = "https://api.unloc.app";  ///< Base URL (https only).
  std::string project_id;                         ///< The Project.
  std::string client_id;                          ///< OAuth client id.
  std::string client_secret;                      ///< OAuth client secret. Secret.
  /// Tokens from the caller instead of from `client_id`/`client_secret`.
  std::shared_ptr<unloc::token_source> tokens;
  /// A token is refreshed this long before it expires.
  std::chrono::seconds token_refresh_margin{60};
  std::chrono::milliseconds connect_timeout{10'000};  ///< For one connection attempt.
  std::chrono::milliseconds deadline{30'000};  ///< For one call, its retries included.
  retry_policy retry{};                        ///< Retries of each call.
  std::string ca_file;  ///< A PEM file of CAs to trust besides the system's.
  std::string ca_pem;   ///< PEM text of CAs to trust besides the system's.
  /// A proxy URL, as libcurl takes it (`http://proxy:3128`). Empty: see
  /// `proxy_from_environment`.
  std::string proxy;
  /// With no `proxy` set, libcurl takes one from the environment: `https_proxy`
  /// (or `HTTPS_PROXY`), else `ALL_PROXY`/`all_proxy`, minus the hosts in
  /// `no_proxy`/`NO_PROXY`. False ignores all of these: no proxy but `proxy`,
  /// and `no_proxy` not consulted.
  bool proxy_from_environment = true;
  log_function logger;  ///< Sees every request and response line, redacted.
  /// Sends the requests; by default libcurl. Replace it to use another HTTP
  /// stack, or a `testing::scripted_transport` in unit tests.
  std::shared_ptr<unloc::transport> transport;
};

/// What one call does differently from the client's options.
struct call_options {
  std::optional<std::chrono::milliseconds> deadline;  ///< Replaces `client_options::deadline`.
  std::optional<retry_policy> retry;                  ///< Replaces `client_options::retry`.
};

UNLOC_END_NAMESPACE

#pragma once

// Fault injection: a test asks for the next N requests of an endpoint to fail
// in a given way (POST /_admin/faults), and the API routes consult the
// registry before and after answering.

#include "stats.hpp"
#include "store.hpp"
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace refserver {

/// How a request is spoiled.
enum class fault_kind {
  status,          ///< 500, 502, 503, 504 or 429 with an API error body, after delayMs if given.
  slow,            ///< The right answer, after a delay.
  drop,            ///< 200 headers of a chunked body, then the connection closes.
  reset,           ///< The connection closes before any byte of a response.
  half_body,       ///< Content-Length announced, half the body sent, connection closed.
  malformed_json,  ///< 200 with the real answer cut in half.
  html,            ///< 502 with an HTML page, as a proxy answers.
  expire_token,    ///< Every token is revoked before the request is answered.
  echo_authorization,  ///< 400 whose API error message echoes the Authorization header.
};

/// One injected fault and how many more requests it applies to.
struct fault {
  std::uint64_t id = 0;
  std::string endpoint_name = "any";  ///< token, webhooks, logs or any.
  std::string kind_name;              ///< As the test wrote it.
  fault_kind kind = fault_kind::status;
  int status = 0;           ///< For status faults.
  long long remaining = 1;  ///< Requests still to spoil; -1: until cleared.
  long long after = 0;      ///< Matching requests to let pass first.
  std::string retry_after;  ///< Retry-After header value, if any.
  std::chrono::milliseconds delay{1000};  ///< Slow faults; status faults when delayMs is given.

  [[nodiscard]] nlohmann::json to_json() const;
  /// Whether it applies to requests of `e`.
  [[nodiscard]] bool matches(endpoint e) const;
};

/// The pending faults. Safe to use from any thread.
class fault_registry {
 public:
  /// Adds a fault from its JSON description; returns what is wrong with it, or
  /// an empty string (and `added`) on success.
  std::string add(const nlohmann::json& spec, fault& added);
  /// The fault the next request of `e` gets, if any, counting it as used.
  std::optional<fault> take(endpoint e);
  /// The pending faults as JSON.
  [[nodiscard]] nlohmann::json list() const;
  /// Forgets every fault.
  void clear();
  /// Waits `delay` (a slow fault), or less when `interrupt` is called.
  void sleep_for(std::chrono::milliseconds delay);
  /// Ends every sleep now and later (the server is stopping).
  void interrupt();

 private:
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool interrupted_ = false;
  std::vector<fault> faults_;
  std::uint64_t next_id_ = 1;
};

/// Applies what a fault does before the handler runs; true when the response
/// is complete and the handler must not run.
bool apply_fault_before(const fault& f, const httplib::Request& req, httplib::Response& res,
                        store& state, fault_registry& faults);

/// Applies what a fault does to the handler's answer (malformed_json, half_body).
void apply_fault_after(const fault& f, httplib::Response& res);

}  // namespace refserver

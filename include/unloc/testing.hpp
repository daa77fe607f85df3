#pragma once

/// @file
/// Helpers for integrators' own tests: a valid delivery for any event and
/// credentials (the role of Stripe's `generateTestHeaderString`), and a
/// scripted transport to unit-test code that uses the client without a server.

#include <unloc/access_event.hpp>
#include <unloc/credentials.hpp>
#include <unloc/error.hpp>
#include <unloc/http_headers.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/transport.hpp>
#include <unloc/uuid.hpp>
#include <unloc/version.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE
namespace testing {

/// A delivery as Unloc sends it: the headers and the JSON body.
struct test_delivery {
  std::string method = "POST";  ///< Always POST.
  std::string path;             ///< The path of the webhook URL.
  http_headers headers;         ///< Content-Type, Content-Length and, with credentials, Authorization.
  std::string body;             ///< The event as JSON.
};

/// The Access Event of Unloc's webhooks guide, for tests that need one.
[[nodiscard]] inline access_event sample_access_event() {
  access_event e;
  e.id = uuid::parse("ae832e61-c8fa-4ed9-8196-61210cb4207b").value();
  e.action = access_action::unlocked;
  e.action_text = "unlocked";
  e.created = parse_timestamp("2022-01-01T10:35:24.083Z").value();
  e.key_id = uuid::parse("3f97fafb-1b6a-42d0-85fa-ae2ef338cc45").value();
  e.lock_id = uuid::parse("c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef").value();
  e.lock_name = "North gate";
  e.app_user_id = "+12125552390";
  e.user_name = "";
  return e;
}

/// The delivery Unloc would make of `event` to a webhook at `path`, with
/// `Authorization: Basic …` when `credentials` are given.
[[nodiscard]] inline test_delivery make_test_delivery(
    const access_event& event, const std::optional<basic_credentials>& credentials,
    std::string path = "/accessEvents") {
  test_delivery d;
  d.path = std::move(path);
  d.body = to_json_text(event);
  d.headers.add("Content-Type", "application/json");
  d.headers.add("Content-Length", std::to_string(d.body.size()));
  if (credentials) d.headers.add("Authorization", basic_authorization(*credentials));
  return d;
}

/// A response for a `scripted_transport`: `status`, a JSON `body`, `headers`.
[[nodiscard]] inline http_response json_response(int status, std::string body = {},
                                                 http_headers headers = {}) {
  http_response r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  if (!r.body.empty() && !r.headers.get("Content-Type")) {
    r.headers.add("Content-Type", "application/json");
  }
  return r;
}

/// A transport that answers from a script instead of the network, for unit
/// tests of code that uses `unloc::client` (set `client_options::transport`).
/// Answers are consumed in order; each may be a response, an error, or a
/// function of the request. Records every request. Thread-safe.
class scripted_transport final : public transport {
 public:
  /// Computes an answer from the request.
  using responder = std::function<result<http_response>(const http_request&)>;

  /// Queues a fixed answer (a response or an error).
  void push(result<http_response> answer) {
    push([answer = std::move(answer)](const http_request&) { return answer; });
  }
  /// Queues an answer computed from the request.
  void push(responder answer) {
    const std::lock_guard<std::mutex> lock(mutex_);
    script_.push_back(std::move(answer));
  }
  /// Answers every request once the script is used up (default: an error).
  void otherwise(responder answer) {
    const std::lock_guard<std::mutex> lock(mutex_);
    fallback_ = std::move(answer);
  }

  /// Every request sent so far, in order.
  [[nodiscard]] std::vector<http_request> requests() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

  /// Answers with the next scripted answer.
  result<http_response> send(const http_request& request,
                             std::chrono::steady_clock::time_point /*deadline*/) override {
    responder next;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(request);
      if (!script_.empty()) {
        next = std::move(script_.front());
        script_.pop_front();
      } else {
        next = fallback_;
      }
    }
    if (!next) {
      return make_error(error_category::network,
                        "scripted_transport: no answer scripted for " + request.method + " " +
                            request.url);
    }
    return next(request);
  }

 private:
  mutable std::mutex mutex_;
  std::deque<responder> script_;
  responder fallback_;
  std::vector<http_request> requests_;
};

}  // namespace testing
UNLOC_END_NAMESPACE

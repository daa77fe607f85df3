#pragma once

// Request and connection counters, so that tests can assert how many attempts
// a client made and that it reused its connections.

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <type_traits>
#include <utility>

namespace refserver {

/// Which part of the API a request is for.
enum class endpoint { token, webhooks, logs, other, admin };

/// The endpoint of a request path.
inline endpoint classify(const std::string& path) {
  if (path == "/v2/auth/token/") return endpoint::token;
  if (path.rfind("/_admin/", 0) == 0 || path == "/_admin") return endpoint::admin;
  // /v2/projects/{p}/webhooks[/{id}], /v2/projects/{p}[/locks/{l}]/logs/access
  const std::string prefix = "/v2/projects/";
  if (path.rfind(prefix, 0) != 0) return endpoint::other;
  const auto slash = path.find('/', prefix.size());
  if (slash == std::string::npos || slash == prefix.size()) return endpoint::other;
  const std::string rest = path.substr(slash);
  if (rest == "/webhooks" || (rest.rfind("/webhooks/", 0) == 0 && rest.size() > 10 &&
                              rest.find('/', 10) == std::string::npos)) {
    return endpoint::webhooks;
  }
  if (rest == "/logs/access") return endpoint::logs;
  if (rest.rfind("/locks/", 0) == 0) {
    const auto end = rest.find('/', 7);
    if (end != std::string::npos && end > 7 && rest.substr(end) == "/logs/access") {
      return endpoint::logs;
    }
  }
  return endpoint::other;
}

/// Counters; every member is safe to use from any thread.
class request_stats {
 public:
  /// Counts one request (called before routing).
  void count(endpoint e, const httplib::Request& req) {
    switch (e) {
      case endpoint::token: ++token_; break;
      case endpoint::webhooks: ++webhooks_; break;
      case endpoint::logs: ++logs_; break;
      case endpoint::other: ++other_; break;
      case endpoint::admin: ++admin_; return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    api_peers_.insert(req.remote_addr + " " + std::to_string(req.remote_port));
  }
  /// Counts a response that a fault replaced or changed.
  void count_fault() { ++faults_; }
  /// Counts an accepted TCP connection.
  void count_connection() { ++connections_; }
  /// Where TLS handshake counters come from: {completed, resumed}.
  void set_tls_counters(std::function<std::pair<long, long>()> counters) {
    tls_counters_ = std::move(counters);
  }
  /// The counters as `GET /_admin/requests` shows them (TLS counters are since start).
  nlohmann::json to_json() const {
    const auto tls = tls_counters_ ? tls_counters_() : std::pair<long, long>{0, 0};
    const auto api = token_ + webhooks_ + logs_ + other_;
    std::size_t peers = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      peers = api_peers_.size();
    }
    return {{"token", token_.load()},
            {"webhooks", webhooks_.load()},
            {"logs", logs_.load()},
            {"other", other_.load()},
            {"api", api},
            {"admin", admin_.load()},
            {"faultsServed", faults_.load()},
            {"connections", connections_.load()},
            {"apiConnections", peers},
            {"tlsHandshakes", tls.first - tls_base_.first},
            {"tlsResumed", tls.second - tls_base_.second}};
  }
  /// Zeroes the counters.
  void reset() {
    token_ = webhooks_ = logs_ = other_ = admin_ = faults_ = connections_ = 0;
    if (tls_counters_) tls_base_ = tls_counters_();
    std::lock_guard<std::mutex> lock(mutex_);
    api_peers_.clear();
  }

 private:
  std::atomic<std::uint64_t> token_{0}, webhooks_{0}, logs_{0}, other_{0}, admin_{0}, faults_{0},
      connections_{0};
  std::function<std::pair<long, long>()> tls_counters_;
  std::pair<long, long> tls_base_{0, 0};
  mutable std::mutex mutex_;
  std::set<std::string> api_peers_;
};

/// httplib's thread pool, counting each accepted connection (httplib hands
/// every accepted socket to the task queue exactly once).
class counting_thread_pool : public httplib::TaskQueue {
 public:
  /// `void` before cpp-httplib 0.15, `bool` since (false: queue full, the connection is closed);
  /// taken from the base so that the override builds with either.
  using enqueue_result =
      decltype(std::declval<httplib::TaskQueue&>().enqueue(std::function<void()>{}));

  counting_thread_pool(std::size_t threads, request_stats& stats) : pool_(threads), stats_(stats) {}
  enqueue_result enqueue(std::function<void()> fn) override {
    stats_.count_connection();
    return static_cast<enqueue_result>(pool_.enqueue(std::move(fn)));
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  httplib::ThreadPool pool_;
  request_stats& stats_;
};

// The override above has the base's exact signature, in whichever version: a
// change of parameter (say, a move-only task type) fails here, by name.
static_assert(std::is_same_v<decltype(&httplib::TaskQueue::enqueue),
                             counting_thread_pool::enqueue_result (httplib::TaskQueue::*)(
                                 std::function<void()>)>,
              "httplib::TaskQueue::enqueue changed: update counting_thread_pool::enqueue");

}  // namespace refserver

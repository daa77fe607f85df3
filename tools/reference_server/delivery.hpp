#pragma once

// Webhook delivery, as the platform does it: each Access Event is POSTed to
// every matching webhook by a pool of worker threads, retried with
// exponential backoff while the receiver fails, over kept-alive HTTPS
// connections with certificate verification always on. Never blocks the
// HTTP threads: enqueue only queues.

#include <unloc/access_event.hpp>
#include <unloc/credentials.hpp>
#include <unloc/uuid.hpp>
#include <unloc/webhook.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace refserver {

/// A webhook URL taken apart for delivery.
struct delivery_target {
  unloc::webhook_url_parts parts;  ///< As for https (`parts.scheme` is "https" even so).
  bool plain_http = false;         ///< The URL is http:// (to a loopback host).
};

/// Checks a webhook URL as the platform does (https only); with
/// `allow_http_loopback`, http:// to localhost, 127.x.x.x or [::1] passes too.
unloc::result<delivery_target> parse_delivery_url(const std::string& url, bool allow_http_loopback);

/// How deliveries are made.
struct delivery_settings {
  int attempts = 8;                        ///< Attempts per delivery.
  std::chrono::milliseconds backoff{200};  ///< First retry delay, doubled per attempt.
  int workers = 4;                         ///< Concurrent deliveries.
  std::string ca_file;                     ///< Trusted CAs (PEM); empty: the system's.
  bool allow_http_loopback = false;        ///< Deliver to http:// loopback URLs too.
  std::uint64_t seed = 1;                  ///< Seeds duplicates and shuffles.
  bool log = false;                        ///< One stderr line per attempt.
  std::function<bool(const unloc::uuid&)> is_registered;  ///< Whether a webhook still exists.
};

/// The delivery queue and its workers. Safe to use from any thread.
class delivery_service {
 public:
  explicit delivery_service(delivery_settings settings);
  ~delivery_service();
  delivery_service(const delivery_service&) = delete;
  delivery_service& operator=(const delivery_service&) = delete;

  /// Starts the workers.
  void start();
  /// Stops the workers (joined); queued deliveries are abandoned.
  void stop();

  /// Queues one delivery of `event` to each of `hooks`; with `deliver_twice`
  /// each is delivered a second time after it succeeds.
  void enqueue(const unloc::access_event& event, const std::vector<unloc::webhook>& hooks,
               bool deliver_twice);
  /// The share of successful deliveries repeated once more (0 to 1).
  void set_duplicate_probability(double probability);
  /// Shuffles events with the seeded generator (the offline release order).
  void shuffle(std::vector<unloc::access_event>& events);

  /// The counters of `GET /_admin/deliveries`.
  [[nodiscard]] nlohmann::json counts() const;
  /// Blocks until nothing is queued or in flight, or `timeout` passes; true when idle.
  bool wait_idle(std::chrono::milliseconds timeout);
  /// Drops queued deliveries and zeroes the counters.
  void clear();

 private:
  struct job {
    std::string body;
    std::string url;
    unloc::uuid event_id;
    unloc::uuid webhook_id;
    int attempt = 0;  // attempts made so far
    bool deliver_twice = false;
    bool is_duplicate = false;
    std::chrono::steady_clock::time_point due;
    std::uint64_t sequence = 0;
    std::uint64_t generation = 0;
  };
  struct later {
    bool operator()(const job& a, const job& b) const {
      return a.due != b.due ? a.due > b.due : a.sequence > b.sequence;
    }
  };
  class client_cache;

  void push(job j);  // with mutex_ held
  void run();
  [[nodiscard]] std::chrono::milliseconds backoff_after(int attempt) const;

  delivery_settings settings_;
  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  std::priority_queue<job, std::vector<job>, later> queue_;
  std::size_t in_flight_ = 0;
  bool stopping_ = false;
  std::uint64_t sequence_ = 0;
  std::uint64_t generation_ = 0;
  std::mt19937_64 random_;
  double duplicate_probability_ = 0;
  std::uint64_t queued_ = 0, delivered_ = 0, failed_attempts_ = 0, gave_up_ = 0, cancelled_ = 0,
                duplicated_ = 0;
  std::vector<std::thread> workers_;
};

}  // namespace refserver

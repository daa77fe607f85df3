#pragma once

// --reconcile: the receiver's events pass through an unloc::reconciler, which
// also reads the access log on start and every --poll-interval, so that each
// event is printed once whether it came by webhook, from the log, or both.

#include "options.hpp"

#include <unloc/unloc.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace receiver {

/// The reconciler, its state file, and the thread that reads the access log.
class log_poller {
 public:
  /// Opens the state file and makes the API client; on failure `error()` says why.
  explicit log_poller(const options& opts);
  ~log_poller();
  log_poller(const log_poller&) = delete;
  log_poller& operator=(const log_poller&) = delete;

  /// Why reconciliation cannot run; empty when it can.
  [[nodiscard]] const std::string& error() const { return error_; }
  /// Where webhook deliveries are offered.
  [[nodiscard]] unloc::reconciler& reconciler() { return *reconciler_; }

  /// Reads every log now, then every --poll-interval, on its own thread.
  void start();
  /// Stops the thread; a read in progress stops at its next event, its
  /// checkpoint unmoved.
  void stop();

 private:
  void run();
  void read_logs();

  options opts_;
  std::string error_;
  std::unique_ptr<unloc::client> client_;
  std::unique_ptr<unloc::reconciler> reconciler_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace receiver

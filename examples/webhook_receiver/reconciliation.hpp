#pragma once

// --reconcile: the access log read on start and every --poll-interval through
// the receiver's unloc::reconciler (the one its deliveries go through), so that
// each event is taken once whether it came by webhook, from the log, or both.
// With several receivers on one store, one reads a log at a time (the store's lease).

#include "options.hpp"

#include <unloc/unloc.hpp>

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace receiver {

/// The API client and the thread that reads the access log.
class log_poller {
 public:
  /// Makes the API client; on failure `error()` says why. `reconciler` outlives it.
  log_poller(const options& opts, unloc::reconciler& reconciler);
  ~log_poller();
  log_poller(const log_poller&) = delete;
  log_poller& operator=(const log_poller&) = delete;

  /// Why reconciliation cannot run; empty when it can.
  [[nodiscard]] const std::string& error() const { return error_; }

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
  unloc::reconciler& reconciler_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
  std::map<std::string, bool> elsewhere_;  // per log: another holds its lease (this thread only)
  std::thread thread_;
};

}  // namespace receiver

#pragma once

// --reconcile: the access log read on start and every --poll-interval through
// an unloc::reconciler over the receiver's store (the one its deliveries go
// through), so that each event is taken once whether it came by webhook, from
// the log, or both. With several receivers on one store, one reads a log at a
// time (the store's lease).

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
  /// Makes the API client; on failure `error()` says why. Events read go to
  /// `handler`, through `store`, as deliveries do.
  log_poller(options opts, std::shared_ptr<unloc::event_store> store,
             unloc::reconciler::handler_function handler);
  ~log_poller();
  log_poller(const log_poller&) = delete;
  log_poller& operator=(const log_poller&) = delete;

  /// Why reconciliation cannot run; empty when it can.
  [[nodiscard]] const std::string& error() const { return error_; }

  /// Reads every log now, then every --poll-interval, on its own thread. It
  /// holds the log's lease in the store as `HOST:port`: unique among the
  /// receivers running (one port, one process), and the same after a restart,
  /// so that a restarted receiver takes its own lease back at once.
  void start(int port);
  /// Stops the thread; a read in progress stops at its next event, its
  /// checkpoint unmoved.
  void stop();

 private:
  void run();
  void read_logs();

  options opts_;
  std::string error_;
  std::unique_ptr<unloc::client> client_;
  std::shared_ptr<unloc::event_store> store_;
  unloc::reconciler::handler_function handler_;
  std::unique_ptr<unloc::reconciler> reconciler_;  // made by start()
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
  std::map<std::string, bool> elsewhere_;  // per log: another holds its lease (this thread only)
  std::thread thread_;
};

}  // namespace receiver

#include "reconciliation.hpp"

#include "server.hpp"
#include "store.hpp"

#include <unistd.h>

#include <cstdio>
#include <map>
#include <utility>
#include <vector>

namespace receiver {

log_poller::log_poller(options opts, std::shared_ptr<unloc::event_store> store,
                       unloc::reconciler::handler_function handler)
    : opts_(std::move(opts)), store_(std::move(store)), handler_(std::move(handler)) {
  auto api = unloc::client::create(opts_.api);
  if (!api) {
    error_ = "--reconcile: " + unloc::to_string(api.error());
    return;
  }
  client_ = std::make_unique<unloc::client>(std::move(*api));
}

log_poller::~log_poller() { stop(); }

void log_poller::start(int port) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
  unloc::reconciler_options settings;
  settings.overlap = opts_.overlap;
  settings.log_lease = opts_.log_lease;
  settings.lease_holder = std::string(host) + ":" + std::to_string(port);
  settings.handler_in_store_transaction = handles_inside_transaction(opts_);  // as main.cpp
  reconciler_ = std::make_unique<unloc::reconciler>(store_, handler_, settings);
  thread_ = std::thread([this] { run(); });
}

void log_poller::stop() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void log_poller::run() {
  for (;;) {
    read_logs();
    std::unique_lock<std::mutex> lock(mutex_);
    if (wake_.wait_for(lock, opts_.poll_interval, [this] { return stopping_.load(); })) return;
  }
}

void log_poller::read_logs() {
  std::vector<unloc::access_log_query> queries;
  for (const auto& lock : opts_.locks) queries.push_back(unloc::access_log_query::lock(lock));
  if (queries.empty()) queries.push_back(unloc::access_log_query::project());
  for (const auto& query : queries) {
    if (stopping_) return;
    const std::string name =
        query.lock_id ? "lock " + query.lock_id->to_string() : std::string("the Project");
    auto report = reconciler_->read_log(*client_, query);
    if (stopping_) return;
    if (!report) {
      diagnostic("access log of " + name + ": not read, tried again in " +
                 std::to_string(opts_.poll_interval.count()) +
                 " s: " + unloc::to_string(report.error()));
      continue;
    }
    // Said when it changes only: with several receivers, all but one find it held every poll.
    if (report->lease_held_elsewhere != std::exchange(elsewhere_[name], report->lease_held_elsewhere)) {
      diagnostic("access log of " + name + ": " +
                 (report->lease_held_elsewhere
                      ? "another receiver reads it (it holds the lease in the store); this one "
                        "takes over if that lease runs out"
                      : "this receiver reads it now (it holds the lease)"));
    }
    if (report->lease_held_elsewhere) continue;
    diagnostic("access log of " + name + " read" +
               (report->from == unloc::timestamp{} ? std::string(" (all 30 days)")
                                                   : " from " + unloc::format_timestamp(report->from)) +
               " to " + unloc::format_timestamp(report->to) + ": " + std::to_string(report->read) +
               " events, recovered " + std::to_string(report->recovered));
  }
}

}  // namespace receiver

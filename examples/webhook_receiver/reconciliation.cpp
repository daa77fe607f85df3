#include "reconciliation.hpp"

#include "server.hpp"

#include <utility>
#include <vector>

namespace receiver {

log_poller::log_poller(const options& opts) : opts_(opts) {
  auto store = unloc::file_event_store::open(opts_.reconcile_state);
  if (!store) {
    error_ = "--reconcile: " + store.error().message;
    return;
  }
  auto api = unloc::client::create(opts_.api);
  if (!api) {
    error_ = "--reconcile: " + unloc::to_string(api.error());
    return;
  }
  client_ = std::make_unique<unloc::client>(std::move(*api));
  for (const auto& id : (*store)->in_doubt()) {
    diagnostic("event " + id.to_string() +
               " was being printed when the receiver last stopped: if it comes again, it is "
               "printed again (it may have been printed then)");
  }
  unloc::reconciler_options settings;
  settings.overlap = opts_.overlap;
  reconciler_ = std::make_unique<unloc::reconciler>(
      std::shared_ptr<unloc::event_store>(std::move(*store)),
      // Refusing once stopping ends a long read at once, its checkpoint unmoved.
      [this](const unloc::access_event& event, const unloc::handover& how) {
        if (stopping_) return false;
        if (how.possibly_repeated) {
          diagnostic("event " + event.id.to_string() +
                     " printed again: the receiver stopped while printing it before");
        }
        return print_event(event);
      },
      settings);
}

log_poller::~log_poller() { stop(); }

void log_poller::start() { thread_ = std::thread([this] { run(); }); }

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
    diagnostic("access log of " + name + " read" +
               (report->from == unloc::timestamp{} ? std::string(" (all 30 days)")
                                                   : " from " + unloc::format_timestamp(report->from)) +
               " to " + unloc::format_timestamp(report->to) + ": " + std::to_string(report->read) +
               " events, recovered " + std::to_string(report->recovered));
  }
}

}  // namespace receiver

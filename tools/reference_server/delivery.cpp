#include "delivery.hpp"

#include <unloc/credentials.hpp>
#include <unloc/version.hpp>

#include <httplib.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <utility>

namespace refserver {

// One worker's kept-alive clients, one per scheme, host and port.
class delivery_service::client_cache {
 public:
  explicit client_cache(std::string ca_file) : ca_file_(std::move(ca_file)) {}

  httplib::ClientImpl& get(const std::string& host, int port, bool plain_http) {
    auto& slot = clients_[(plain_http ? "http " : "https ") + host + " " + std::to_string(port)];
    if (!slot) {
      if (plain_http) {
        slot = std::make_unique<httplib::ClientImpl>(host, port);
      } else {
        auto tls = std::make_unique<httplib::SSLClient>(host, port);
        if (!ca_file_.empty()) tls->set_ca_cert_path(ca_file_);
        tls->enable_server_certificate_verification(true);
        slot = std::move(tls);
      }
      slot->set_keep_alive(true);
      slot->set_tcp_nodelay(true);
      slot->set_url_encode(false);  // the target is already percent-encoded
      slot->set_connection_timeout(5);
      slot->set_read_timeout(5);
      slot->set_write_timeout(5);
    }
    return *slot;
  }

 private:
  std::string ca_file_;
  std::map<std::string, std::unique_ptr<httplib::ClientImpl>> clients_;
};

namespace {

struct attempt_result {
  bool ok = false;
  std::string outcome;  // for the log
};

attempt_result post(httplib::ClientImpl& client, const unloc::webhook_url_parts& parts,
                    const std::string& body) {
  httplib::Headers headers = {
      {"User-Agent", std::string("unloc-reference-server/") + UNLOC_VERSION_STRING}};
  if (parts.credentials) {
    headers.emplace("Authorization", unloc::basic_authorization(*parts.credentials));
  }
  auto res = client.Post(parts.target, headers, body, "application/json");
  if (!res) return {false, httplib::to_string(res.error())};
  const bool ok = res->status >= 200 && res->status < 300;
  return {ok, "HTTP " + std::to_string(res->status)};
}

bool is_loopback_host(const std::string& host) {
  // 127.0.0.0/8 as an address only: "127.0.0.1.example.com" is a name like any other.
  return unloc::detail::ascii_iequals(host, "localhost") || host == "[::1]" ||
         (host.rfind("127.", 0) == 0 && unloc::detail::is_ipv4_address(host));
}

}  // namespace

unloc::result<delivery_target> parse_delivery_url(const std::string& url,
                                                  bool allow_http_loopback) {
  delivery_target target;
  constexpr std::string_view http = "http://";
  target.plain_http = allow_http_loopback && url.size() > http.size() &&
                      unloc::detail::ascii_iequals(url.substr(0, http.size()), http);
  // The same checks as https (host, port, credentials, path), on the URL made https.
  auto parts =
      unloc::parse_webhook_url(target.plain_http ? "https://" + url.substr(http.size()) : url);
  if (!parts) return std::move(parts).error();
  if (target.plain_http && !is_loopback_host(parts->host)) {
    return unloc::make_error(unloc::error_category::invalid_input,
                             "webhook URL may use http only to a loopback host (localhost, "
                             "127.0.0.1, [::1]): the server runs with "
                             "--allow-http-loopback-webhooks");
  }
  target.parts = std::move(*parts);
  return target;
}

delivery_service::delivery_service(delivery_settings settings)
    : settings_(std::move(settings)), random_(settings_.seed) {}

delivery_service::~delivery_service() { stop(); }

void delivery_service::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (int i = 0; i < settings_.workers; ++i) workers_.emplace_back([this] { run(); });
}

void delivery_service::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  idle_cv_.notify_all();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  workers_.clear();
}

void delivery_service::enqueue(const unloc::access_event& event,
                               const std::vector<unloc::webhook>& hooks, bool deliver_twice) {
  if (hooks.empty()) return;
  const std::string body = unloc::to_json_text(event);
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& hook : hooks) {
    job j;
    j.body = body;
    j.url = hook.url;
    j.event_id = event.id;
    j.webhook_id = hook.id;
    j.deliver_twice = deliver_twice;
    j.due = std::chrono::steady_clock::now();
    ++queued_;
    push(std::move(j));
  }
}

void delivery_service::push(job j) {
  j.sequence = sequence_++;
  j.generation = generation_;
  queue_.push(std::move(j));
  work_cv_.notify_one();
}

void delivery_service::set_duplicate_probability(double probability) {
  std::lock_guard<std::mutex> lock(mutex_);
  duplicate_probability_ = std::clamp(probability, 0.0, 1.0);
}

void delivery_service::shuffle(std::vector<unloc::access_event>& events) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::shuffle(events.begin(), events.end(), random_);
}

nlohmann::json delivery_service::counts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {{"queued", queued_},
          {"delivered", delivered_},
          {"failedAttempts", failed_attempts_},
          {"gaveUp", gave_up_},
          {"cancelled", cancelled_},
          {"duplicated", duplicated_},
          {"duplicateProbability", duplicate_probability_},
          {"pending", queue_.size() + in_flight_}};
}

bool delivery_service::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return idle_cv_.wait_for(lock, timeout, [this] {
    return stopping_ || (queue_.empty() && in_flight_ == 0);
  }) && !stopping_;
}

void delivery_service::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++generation_;
  queue_ = {};
  queued_ = delivered_ = failed_attempts_ = gave_up_ = cancelled_ = duplicated_ = 0;
  duplicate_probability_ = 0;
  if (in_flight_ == 0) idle_cv_.notify_all();
}

std::chrono::milliseconds delivery_service::backoff_after(int attempt) const {
  const std::chrono::milliseconds cap{30000};
  auto delay = settings_.backoff;
  for (int i = 1; i < attempt && delay < cap; ++i) delay *= 2;
  return std::min(delay, cap);
}

void delivery_service::run() {
  client_cache clients(settings_.ca_file);
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    if (queue_.empty()) {
      work_cv_.wait(lock);
      continue;
    }
    if (const auto due = queue_.top().due; due > std::chrono::steady_clock::now()) {
      work_cv_.wait_until(lock, due);
      continue;
    }
    job j = queue_.top();
    queue_.pop();
    ++in_flight_;
    lock.unlock();

    const bool registered = !settings_.is_registered || settings_.is_registered(j.webhook_id);
    attempt_result result{false, "cancelled: the webhook was deleted"};
    auto parts = parse_delivery_url(j.url, settings_.allow_http_loopback);
    if (registered && parts) {
      std::string host = parts->parts.host;
      if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
      const int default_port = parts->plain_http ? 80 : 443;
      const int port = parts->parts.port.empty() ? default_port : std::stoi(parts->parts.port);
      result = post(clients.get(host, port, parts->plain_http), parts->parts, j.body);
    }
    if (settings_.log) {
      std::fprintf(stderr, "delivery: event %s to %s attempt %d%s: %s\n",
                   j.event_id.to_string().c_str(), unloc::redact_url(j.url).c_str(), j.attempt + 1,
                   j.is_duplicate ? " (duplicate)" : "", result.outcome.c_str());
    }

    lock.lock();
    --in_flight_;
    ++j.attempt;
    if (j.generation == generation_) {
      if (!registered || !parts) {
        ++cancelled_;
      } else if (result.ok) {
        ++delivered_;
        std::uniform_real_distribution<double> roll(0.0, 1.0);
        if (!j.is_duplicate && (j.deliver_twice || (duplicate_probability_ > 0 &&
                                                    roll(random_) < duplicate_probability_))) {
          job again = j;
          again.attempt = 0;
          again.is_duplicate = true;
          again.due = std::chrono::steady_clock::now();
          ++queued_;
          ++duplicated_;
          push(std::move(again));
        }
      } else {
        ++failed_attempts_;
        if (j.attempt < settings_.attempts) {
          j.due = std::chrono::steady_clock::now() + backoff_after(j.attempt);
          push(std::move(j));
        } else {
          ++gave_up_;
        }
      }
    }
    if (queue_.empty() && in_flight_ == 0) idle_cv_.notify_all();
  }
}

}  // namespace refserver

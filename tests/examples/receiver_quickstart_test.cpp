// The README Quickstart's handler in an integrator's own HTTPS server (httplib),
// fed by the reference server's real webhook deliveries and retries: when the
// integrator's database insert fails once, the platform's retry is handled and
// the row appears once.

#include "catch.hpp"

#include <unloc/client.hpp>
#include <unloc/core.hpp>

#include "support/reference_server.hpp"
#include <httplib.h>

#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

const std::string lock_id = "df50a61f-9e1f-4e1c-9e89-8395c908065a";

// The integrator's database: one row an event, keyed by its id. Its next
// insert can be made to fail ("database is locked").
struct database {
  std::map<std::string, std::string> rows;
  bool fail_next_insert = false;
  bool insert(const unloc::access_event& event) {
    if (fail_next_insert) {
      fail_next_insert = false;
      return false;
    }
    rows.emplace(event.id.to_string(), unloc::to_json_text(event));
    return true;
  }
};

// An integrator's webhook endpoint: the README's handler behind httplib.
class integrator_server {
 public:
  integrator_server()
      : validator_(unloc::delivery_validator::create(options()).value()),
        http_(unloc_test::test_tls_files().server_cert.c_str(),
              unloc_test::test_tls_files().server_key.c_str()) {
    http_.Post("/accessEvents", [this](const httplib::Request& req, httplib::Response& res) {
      const auto headers = unloc::http_headers::from(req.headers);
      const auto decision = on_delivery({req.method, req.path, headers, req.body});
      const std::lock_guard<std::mutex> lock(mutex_);
      statuses_.push_back(decision.status);
      res.status = decision.status;
      for (const auto& h : decision.headers) {
        if (h.name != "Content-Type") res.set_header(h.name, h.value);
      }
      if (!decision.body.empty()) res.set_content(decision.body, "application/json");
    });
    port_ = http_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { http_.listen_after_bind(); });
  }
  ~integrator_server() {
    http_.stop();
    thread_.join();
  }
  integrator_server(const integrator_server&) = delete;
  integrator_server& operator=(const integrator_server&) = delete;

  [[nodiscard]] std::string url() const {
    return "https://myuser:mypasswoord@127.0.0.1:" + std::to_string(port_) + "/accessEvents";
  }
  void fail_next_insert() {
    const std::lock_guard<std::mutex> lock(mutex_);
    db_.fail_next_insert = true;
  }
  [[nodiscard]] std::map<std::string, std::string> rows() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return db_.rows;
  }
  [[nodiscard]] std::vector<int> statuses() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return statuses_;
  }

 private:
  static unloc::delivery_options options() {
    unloc::delivery_options o;
    o.credentials = {{"myuser", "mypasswoord"}};
    return o;
  }

  bool insert_into_my_database(const unloc::access_event& event) {
    const std::lock_guard<std::mutex> lock(mutex_);
    return db_.insert(event);
  }

  // The README's handler, as written there.
  unloc::delivery_decision on_delivery(const unloc::delivery_request& request) {
    auto decision = validator_.validate(request);
    if (!decision.ok()) return decision;
    const unloc::access_event& event = *decision.event;
    auto claim = events_.claim(event.id, event.created);
    if (!claim) return unloc::make_refusal(unloc::delivery_outcome::unavailable, "try again later");
    switch (claim->status) {
      case unloc::claim_status::already_handled:
        return decision;
      case unloc::claim_status::held_elsewhere: {
        auto busy = unloc::make_refusal(unloc::delivery_outcome::unavailable, "try again later");
        busy.headers.add("Retry-After", "1");
        return busy;
      }
      case unloc::claim_status::mine:
        break;
    }
    if (!insert_into_my_database(event)) {
      (void)events_.release(event.id, claim->token);
      return unloc::make_refusal(unloc::delivery_outcome::unavailable, "try again later");
    }
    (void)events_.mark_handled(event.id, claim->token);
    return decision;
  }

  unloc::delivery_validator validator_;
  unloc::memory_event_store events_;
  std::mutex mutex_;
  database db_;
  std::vector<int> statuses_;
  httplib::SSLServer http_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace

TEST_CASE("the Quickstart's handler loses nothing when the first insert fails: the platform's "
          "retry writes the row once",
          "[receiver][quickstart]") {
  integrator_server integrator;
  unloc_test::reference_server platform;
  auto api = unloc::client::create(platform.client_options());
  REQUIRE(api);
  unloc::webhook_registration registration;
  registration.lock_id = unloc::uuid::parse(lock_id).value();
  registration.url = integrator.url();
  REQUIRE(api->register_webhook(registration));

  integrator.fail_next_insert();
  const auto ids = platform.record_events(lock_id, 1);
  REQUIRE(platform.wait_for_deliveries());
  CHECK(integrator.statuses() == std::vector<int>{503, 204});
  const auto rows = integrator.rows();
  REQUIRE(rows.size() == 1);
  CHECK(rows.count(ids.at(0)) == 1);

  // A second event, delivered at once, is written too; nothing is written twice.
  const auto more = platform.record_events(lock_id, 1);
  REQUIRE(platform.wait_for_deliveries());
  CHECK(integrator.rows().size() == 2);
  CHECK(integrator.statuses() == std::vector<int>{503, 204, 204});
}

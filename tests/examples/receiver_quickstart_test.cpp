// The README Quickstart's handler in an integrator's own HTTPS server (httplib),
// fed by the reference server's real webhook deliveries and retries: when the
// integrator's database insert fails once, the platform's retry is handled and
// the row appears once.

#include "catch.hpp"

#include <unloc/client.hpp>
#include <unloc/core.hpp>

#include "quickstart.hpp"
#include "support/reference_server.hpp"
#include <httplib.h>

#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

const std::string lock_id = "df50a61f-9e1f-4e1c-9e89-8395c908065a";

// An integrator's webhook endpoint: the README's handler behind httplib.
class integrator_server {
 public:
  integrator_server()
      : validator_(unloc::delivery_validator::create(options()).value()),
        http_(unloc_test::test_tls_files().server_cert.c_str(),
              unloc_test::test_tls_files().server_key.c_str()) {
    http_.Post("/accessEvents", [this](const httplib::Request& req, httplib::Response& res) {
      const auto headers = unloc::http_headers::from(req.headers);
      const auto decision = unloc_test::quickstart_handler(
          validator_, events_, db_, {req.method, req.path, headers, req.body});
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
  void fail_next_insert() { db_.fail_next_insert(); }
  [[nodiscard]] std::map<std::string, std::string> rows() const { return db_.rows(); }
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

  unloc::delivery_validator validator_;
  unloc::memory_event_store events_;
  std::mutex mutex_;
  unloc_test::quickstart_database db_;
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

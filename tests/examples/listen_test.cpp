// `unloc listen` (examples/cli/listen.cpp) end to end: the reference server's
// access log, run_listen polling it, and unloc-webhook-receiver --plain-http
// receiving the forwards; then the forward's retries and the exit statuses.

#include "listen.hpp"

#include <unloc/unloc.hpp>

#include "receiver_harness.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <streambuf>

using receiver_test::credential_env;
using receiver_test::launch;
using receiver_test::lines_of;
using receiver_test::receiver_process;
using unloc_test::reference_server;

namespace {

using namespace std::chrono_literals;

// NOLINTNEXTLINE(cert-err58-cpp): a test fixture.
const std::string lock_a = "df50a61f-9e1f-4e1c-9e89-8395c908065a";

// An ostream that a test thread may read while run_listen writes it.
class shared_text : public std::streambuf {
 public:
  [[nodiscard]] std::string text() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return text_;
  }

 protected:
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    std::lock_guard<std::mutex> lock(mutex_);
    text_ += traits_type::to_char_type(c);
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    std::lock_guard<std::mutex> lock(mutex_);
    text_.append(s, static_cast<std::size_t>(n));
    return n;
  }

 private:
  mutable std::mutex mutex_;
  std::string text_;
};

// run_listen on a thread of its own; stopped (and joined) by stop() or the destructor.
class listener {
 public:
  listener(const unloc::client_options& api, const unloc_cli::listen_options& options)
      : client_(unloc::client::create(api).value()), thread_([this, options] {
          status_ = unloc_cli::run_listen(client_, options, out_stream_, err_stream_, stop_);
          done_ = true;
        }) {}
  ~listener() { stop(); }
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;

  int stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return status_;
  }
  // Waits until `pred(out, err)` holds or run_listen returned; false after `limit`.
  template <class Pred>
  bool wait_for(Pred pred, std::chrono::milliseconds limit = 30s) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred(out(), err())) {
      if (done_ || std::chrono::steady_clock::now() > deadline) return pred(out(), err());
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }
  [[nodiscard]] std::string out() const { return out_.text(); }
  [[nodiscard]] std::string err() const { return err_.text(); }
  [[nodiscard]] bool done() const { return done_; }

 private:
  unloc::client client_;
  shared_text out_, err_;
  std::ostream out_stream_{&out_}, err_stream_{&err_};
  std::atomic<bool> stop_{false}, done_{false};
  int status_ = -1;
  std::thread thread_;
};

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

unloc_cli::listen_options forward_to(const std::string& url) {
  unloc_cli::listen_options options;
  options.forward_to = url;
  options.interval = 50ms;
  return options;
}

// A forward target on loopback that takes every POST with 204.
class sink {
 public:
  sink() {
    server_.Post("/hook",
                 [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~sink() {
    server_.stop();
    thread_.join();
  }
  sink(const sink&) = delete;
  sink& operator=(const sink&) = delete;
  [[nodiscard]] std::string url() const {
    return "http://u1:p1@127.0.0.1:" + std::to_string(port_) + "/hook";
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

// An Access Event as the API serves it, the n-th of a test, created at `created`.
std::string event_json(int n, unloc::timestamp created) {
  char id[40];
  std::snprintf(id, sizeof id, "ae832e61-c8fa-4ed9-8196-%012d", n);
  return R"({"id":")" + std::string(id) + R"(","action":"unlocked","created":")" +
         unloc::format_timestamp(created) +
         R"(","keyId":"3f97fafb-1b6a-42d0-85fa-ae2ef338cc45","lockId":")" + lock_a +
         R"(","lockName":"North gate","appUserId":null,"userName":null})";
}

std::string event_id(int n) {
  char id[40];
  std::snprintf(id, sizeof id, "ae832e61-c8fa-4ed9-8196-%012d", n);
  return id;
}

unloc::timestamp now_ms() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

// Options of a client whose API is `logs` (a function of the request giving
// an access-log page's body); the token endpoint always answers.
unloc::client_options scripted_api(std::function<std::string(const unloc::http_request&)> logs) {
  auto transport = std::make_shared<unloc::testing::scripted_transport>();
  transport->otherwise([logs = std::move(logs)](const unloc::http_request& request) {
    if (request.url.find("/auth/token/") != std::string::npos) {
      return unloc::result<unloc::http_response>(unloc::testing::json_response(
          200,
          R"({"access_token":"tok","token_type":"bearer","expires_in":3600,)"
          R"("scope":["project.admin"],"project_id":"d45031c2-be07-4d20-adbe-4e51e6ad0fed"})"));
    }
    return unloc::result<unloc::http_response>(unloc::testing::json_response(200, logs(request)));
  });
  unloc::client_options options;
  options.api_url = "https://api.example.test";
  options.project_id = "d45031c2-be07-4d20-adbe-4e51e6ad0fed";
  options.client_id = "id";
  options.client_secret = "secret";
  options.transport = transport;
  return options;
}

}  // namespace

TEST_CASE("listen forwards the events recorded after it started to the receiver, once",
          "[listen]") {
  reference_server server;
  const auto before = server.record_events(lock_a, 3);
  receiver_process receiver(launch{{"--plain-http"}, credential_env()});
  REQUIRE(receiver.port() > 0);
  // Rate limited at first: the SDK's retries and then the poll loop's own back-off absorb it.
  server.inject_fault({{"endpoint", "logs"}, {"kind", "429"}, {"count", 5}, {"retryAfter", "0"}});

  const std::string url =
      "http://myuser:mypasswoord@127.0.0.1:" + std::to_string(receiver.port()) + "/accessEvents";
  listener listen(server.client_options(), forward_to(url));
  REQUIRE(listen.wait_for([](const auto&, const auto& err) { return has(err, "ready"); }));
  CHECK(has(listen.err(), "3 earlier event(s) not forwarded"));
  CHECK(has(listen.err(), "polling the access log failed"));  // the 429s, reported, survived

  const auto after = server.record_events(lock_a, 2, {{"action", "locked"}});
  const auto odd = server.record_events(lock_a, 1, {{"action", "opened\x1b[2J"}});
  REQUIRE(listen.wait_for([](const auto& out, const auto&) { return lines_of(out).size() >= 3; }));
  // A few more polls over the same window: nothing is forwarded twice.
  const auto polls = server.request_counts().at("logs").get<int>();
  REQUIRE(listen.wait_for([&server, polls](const auto&, const auto&) {
    return server.request_counts().at("logs").get<int>() >= polls + 5;
  }));
  CHECK(listen.stop() == 0);

  const auto forwarded = lines_of(listen.out());
  REQUIRE(forwarded.size() == 3);
  // Oldest first, as they happened: record_events returns them newest first.
  // (`odd` may tie with after[0] to the millisecond: then the ids decide.)
  const auto line_of = [&forwarded](const std::string& id) {
    const auto at = std::find_if(forwarded.begin(), forwarded.end(),
                                 [&id](const auto& line) { return line.rfind(id, 0) == 0; });
    return at - forwarded.begin();
  };
  CHECK(forwarded[0].rfind(after[1] + " locked 2", 0) == 0);
  const auto second = static_cast<std::size_t>(line_of(after[0]));
  REQUIRE(second < forwarded.size());
  CHECK(second > 0);
  CHECK(forwarded[second].rfind(after[0] + " locked 2", 0) == 0);
  CHECK(has(forwarded[0], " ms"));
  // An action the SDK does not know: forwarded as received, printed quoted and escaped.
  CHECK(has(listen.out(), odd[0] + " 'opened\\x1b[2J' 2"));
  const auto printed = lines_of(receiver.out());
  REQUIRE(printed.size() == 3);
  for (const auto& id : before) CHECK_FALSE(has(receiver.out(), id));
  for (const auto& id : after) CHECK(has(receiver.out(), id));
  CHECK(has(receiver.out(), "\"action\":\"opened\\u001b[2J\""));
  CHECK_FALSE(has(listen.err() + listen.out(), "mypasswoord"));
  CHECK(has(listen.err(), "myuser:REDACTED@"));
}

TEST_CASE("listen retries a forward like the platform: server errors again, a 4xx never",
          "[listen]") {
  reference_server server;
  httplib::Server target;
  std::mutex mutex;
  int flaky_calls = 0, rejected_calls = 0;
  std::string authorization, content_type;
  target.Post("/flaky", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex);
    res.status = ++flaky_calls < 3 ? 503 : 204;
    authorization = req.get_header_value("Authorization");
    content_type = req.get_header_value("Content-Type");
  });
  target.Post("/rejects", [&](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex);
    ++rejected_calls;
    res.status = 422;
  });
  const int port = target.bind_to_any_port("127.0.0.1");
  std::thread serving([&target] { target.listen_after_bind(); });
  const std::string base = "http://u1:p1@localhost:" + std::to_string(port);
  {
    listener flaky(server.client_options(), forward_to(base + "/flaky"));
    listener rejects(server.client_options(), forward_to(base + "/rejects"));
    const auto ready = [](const auto&, const auto& err) { return has(err, "ready"); };
    REQUIRE(flaky.wait_for(ready));
    REQUIRE(rejects.wait_for(ready));
    const auto ids = server.record_events(lock_a, 1);
    const auto one_line = [](const auto& out, const auto&) { return lines_of(out).size() == 1; };
    REQUIRE(flaky.wait_for(one_line));
    REQUIRE(rejects.wait_for(one_line));
    CHECK(flaky.out().rfind(ids[0] + " unlocked 204 ", 0) == 0);
    CHECK(has(flaky.out(), "(3 attempts)"));
    CHECK(rejects.out().rfind(ids[0] + " unlocked 422 ", 0) == 0);
    CHECK_FALSE(has(rejects.out(), "attempts"));
  }
  target.stop();
  serving.join();
  CHECK(flaky_calls == 3);
  CHECK(rejected_calls == 1);
  CHECK(authorization == unloc::basic_authorization({"u1", "p1"}));
  CHECK(content_type == "application/json");
}

TEST_CASE("listen forwards over https verifying the target, with its --ca-bundle", "[listen]") {
  reference_server server;
  receiver_process receiver(launch{{}, credential_env()});
  REQUIRE(receiver.port() > 0);
  const std::string url =
      "https://myuser:mypasswoord@127.0.0.1:" + std::to_string(receiver.port()) + "/accessEvents";
  auto trusting = forward_to(url);
  trusting.ca_bundle = unloc_test::test_tls_files().ca_cert;
  listener verified(server.client_options(), trusting);
  listener unverified(server.client_options(), forward_to(url));
  const auto ready = [](const auto&, const auto& err) { return has(err, "ready"); };
  REQUIRE(verified.wait_for(ready));
  REQUIRE(unverified.wait_for(ready));
  const auto ids = server.record_events(lock_a, 1);
  REQUIRE(verified.wait_for([](const auto& out, const auto&) { return !out.empty(); }));
  CHECK(verified.out().rfind(ids[0] + " unlocked 2", 0) == 0);
  // The platform retries a TLS failure too: the first attempt is told, then stopped.
  REQUIRE(unverified.wait_for(
      [](const auto&, const auto& err) { return has(err, "attempt 1 of 8: error: "); }));
  CHECK(unverified.stop() == 0);
  CHECK(has(unverified.out(), ids[0] + " unlocked error: "));
  CHECK(has(unverified.out(), "(stopped)"));
  CHECK(lines_of(receiver.out()).size() == 1);
}

TEST_CASE("listen refuses a bad target before any request, and stops when the API refuses it",
          "[listen]") {
  unloc::client_options nowhere;  // never reached: every case fails before a request
  nowhere.api_url = "https://127.0.0.1:9";
  nowhere.project_id = "d45031c2-be07-4d20-adbe-4e51e6ad0fed";
  nowhere.client_id = "id";
  nowhere.client_secret = "secret";
  nowhere.retry.max_attempts = 1;
  const auto status_of = [&nowhere](const unloc_cli::listen_options& options, std::string& err) {
    listener l(nowhere, options);
    REQUIRE(l.wait_for([](const auto&, const auto&) { return false; }, 20s) == false);
    REQUIRE(l.done());
    err = l.err();
    return l.stop();
  };
  std::string err;
  CHECK(status_of(forward_to("http://u:p@example.com/hook"), err) == 2);
  CHECK(has(err, "loopback"));
  CHECK(status_of(forward_to("http://u:p@10.1.2.3:8080/hook"), err) == 2);
  CHECK(status_of(forward_to("http://u:p@127.0.0.1.example.com/hook"), err) == 2);
  CHECK(status_of(forward_to("ftp://127.0.0.1/hook"), err) == 2);
  CHECK(status_of(forward_to("http://u:p@127.0.0.1/a b"), err) == 2);
  CHECK(has(err, "contains a space at position 22"));  // counted in the URL as given
  CHECK(status_of(forward_to("http://u:s3cr$t@127.0.0.1/hook"), err) == 2);
  CHECK_FALSE(has(err, "s3cr"));
  auto bad_lock = forward_to("http://127.0.0.1:1/hook");
  bad_lock.locks = {"not-a-uuid"};
  CHECK(status_of(bad_lock, err) == 2);
  // The API cannot be reached: 10 polls (no retries here, backing off from 1 ms), then 3.
  auto unreachable = forward_to("http://127.0.0.1:1/hook");
  unreachable.interval = 1ms;
  CHECK(status_of(unreachable, err) == 3);
  CHECK(has(err, "polling the access log failed"));

  reference_server server;
  // Rate limited for 12 polls in a row, more than the 10 other failures that end it: waited out.
  server.inject_fault({{"endpoint", "logs"}, {"kind", "429"}, {"count", 12}, {"retryAfter", "0"}});
  auto once = server.client_options();
  once.retry.max_attempts = 1;
  auto patient = forward_to("http://127.0.0.1:1/hook");
  patient.interval = 1ms;
  listener limited(once, patient);
  REQUIRE(limited.wait_for([](const auto&, const auto& err) { return has(err, "ready"); }));
  CHECK(limited.stop() == 0);
  std::size_t failures = 0;
  for (const auto& line : lines_of(limited.err())) failures += has(line, "HTTP 429") ? 1 : 0;
  CHECK(failures == 12);

  auto wrong = server.client_options();
  wrong.client_secret = "not-the-secret";
  listener refused(wrong, forward_to("http://127.0.0.1:1/hook"));
  REQUIRE(refused.wait_for([](const auto&, const auto&) { return false; }, 20s) == false);
  CHECK(refused.done());
  CHECK(refused.stop() == 1);
  CHECK_FALSE(has(refused.err(), "not-the-secret"));
}

TEST_CASE("listen forwards an event recorded after it started while its first polls failed",
          "[listen]") {
  reference_server server;
  sink target;
  auto once = server.client_options();
  once.retry.max_attempts = 1;
  server.inject_fault({{"endpoint", "logs"}, {"kind", "429"}, {"count", 3}, {"retryAfter", "0"}});
  listener listen(once, forward_to(target.url()));
  REQUIRE(listen.wait_for(
      [](const auto&, const auto& err) { return has(err, "polling the access log failed"); }));
  const auto ids = server.record_events(lock_a, 1);
  REQUIRE_FALSE(has(listen.err(), "ready"));  // recorded before the first successful poll
  REQUIRE(listen.wait_for([](const auto& out, const auto&) { return !out.empty(); }));
  CHECK(listen.out().rfind(ids[0] + " unlocked 204 ", 0) == 0);
  CHECK(has(listen.err(), "ready; 0 earlier event(s) not forwarded"));
  CHECK(listen.stop() == 0);
}

TEST_CASE("listen waits as long as a Retry-After past its page deadline asks, and stops meanwhile",
          "[listen]") {
  reference_server server;
  server.inject_fault({{"endpoint", "logs"}, {"kind", "429"}, {"count", 1}, {"retryAfter", "40"}});
  listener listen(server.client_options(), forward_to("http://127.0.0.1:1/hook"));
  REQUIRE(
      listen.wait_for([](const auto&, const auto& err) { return has(err, "again in 40000 ms"); }));
  CHECK(server.request_counts().at("logs").get<int>() == 1);  // the SDK did not wait either
  CHECK(listen.stop() == 0);  // during the wait: no other poll needed
  CHECK_FALSE(has(listen.err(), "ready"));
}

TEST_CASE("listen ends a poll that pages on forever, and stops between its pages", "[listen]") {
  SECTION("a stop ends the poll at the next page") {
    std::atomic<bool> stopping{false};
    std::atomic<int> pages{0}, pages_after_stop{0};
    const auto created = now_ms();
    listener listen(
        scripted_api([&](const unloc::http_request&) {
          ++pages;
          // Bounded, should the stop not be seen: the test fails, not hangs.
          const bool last = stopping && ++pages_after_stop > 2000;
          return R"({"accessEvents":[)" + event_json(pages, created) + R"(],"nextCursor":)" +
                 (last ? std::string("null") : "\"c" + std::to_string(pages) + "\"") + "}";
        }),
        forward_to("http://127.0.0.1:1/hook"));
    REQUIRE(listen.wait_for([&](const auto&, const auto&) { return pages > 50; }));
    stopping = true;
    CHECK(listen.stop() == 0);
    CHECK(pages_after_stop <= 1);  // the page in flight, at most
    CHECK(listen.out().empty());
  }
  SECTION("a poll of more than 100000 events is a failed poll") {
    std::string page = R"({"accessEvents":[)";
    for (int i = 0; i < 1000; ++i) page += (i ? "," : "") + event_json(i, now_ms());
    page += R"(],"nextCursor":"more"})";
    listener listen(scripted_api([&page](const unloc::http_request&) { return page; }),
                    forward_to("http://127.0.0.1:1/hook"));
    REQUIRE(listen.wait_for([](const auto&, const auto& err) {
      return has(err, "more than 100000 events in one poll");
    }));
    CHECK(listen.stop() == 0);
    CHECK(listen.out().empty());
  }
}

TEST_CASE("listen forwards no event dated outside its window, however often it is served",
          "[listen]") {
  sink target;
  std::atomic<int> polls{0};
  const auto old = now_ms() - std::chrono::hours(1);
  const auto future = now_ms() + std::chrono::hours(24 * 365);
  // Served on every poll, ignoring `from`: one event an hour old, one a year
  // ahead; from the third poll on, also one made now.
  listener listen(scripted_api([&](const unloc::http_request&) {
                    std::string events = event_json(1, old) + "," + event_json(2, future);
                    if (++polls >= 3) events += "," + event_json(3, now_ms());
                    return R"({"accessEvents":[)" + events + R"(],"nextCursor":null})";
                  }),
                  forward_to(target.url()));
  REQUIRE(listen.wait_for([](const auto& out, const auto&) { return !out.empty(); }));
  const int seen = polls;
  REQUIRE(listen.wait_for([&](const auto&, const auto&) { return polls >= seen + 5; }));
  CHECK(listen.stop() == 0);
  const auto forwarded = lines_of(listen.out());
  REQUIRE(forwarded.size() == 1);
  CHECK(forwarded[0].rfind(event_id(3) + " unlocked 204 ", 0) == 0);
  CHECK(has(listen.err(), "2 event(s) dated before "));
}

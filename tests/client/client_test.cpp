// The client against the reference server over real HTTPS on loopback, with
// a test CA generated at test time: every call, paging, token expiry, every
// fault the server injects, TLS trust, concurrency, and secrets kept out.

#include "catch.hpp"
#include "support/reference_server.hpp"

#include <unloc/unloc.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

const std::string lock_a = "c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef";
const std::string lock_b = "df50a61f-9e1f-4e1c-9e89-8395c908065a";

unloc_test::reference_server& server() {
  static unloc_test::reference_server instance;  // one server for the whole program
  return instance;
}

struct log_capture {
  std::mutex mutex;
  std::vector<std::string> lines;
  unloc::log_function function() {
    return [this](std::string_view line) {
      const std::lock_guard<std::mutex> lock(mutex);
      lines.emplace_back(line);
    };
  }
};

unloc::client_options options_for(unloc_test::reference_server& s) {
  unloc::client_options options = s.client_options();
  options.retry = {4, 20ms, 200ms};
  options.deadline = 10s;
  return options;
}

unloc::client make_client(unloc_test::reference_server& s, log_capture* log = nullptr) {
  auto options = options_for(s);
  if (log != nullptr) options.logger = log->function();
  return unloc::client::create(options).value();
}

unloc::uuid uuid_of(const std::string& text) { return unloc::uuid::parse(text).value(); }

struct fault_guard {  // no fault outlives the test that injected it
  ~fault_guard() { server().clear_faults(); }
};

}  // namespace

TEST_CASE("registers, finds, lists and deletes webhooks", "[client]") {
  auto c = make_client(server());
  const std::string url = "https://myuser:mypasswoord@127.0.0.1:9/accessEvents";
  unloc::webhook_registration registration;
  registration.lock_id = uuid_of(lock_b);
  registration.url = url;

  auto created = c.register_webhook(registration);
  REQUIRE(created.has_value());
  CHECK(created->trigger == "accessEvent");
  CHECK(created->url == url);
  CHECK(created->lock_id == registration.lock_id);
  CHECK(created->created.has_value());
  CHECK(unloc::to_string(*created).find("mypasswoord") == std::string::npos);

  auto again = c.register_webhook(registration);  // 409: the existing one
  REQUIRE(again.has_value());
  CHECK(again->id == created->id);

  auto ensured = c.ensure_webhook(registration);
  REQUIRE(ensured.has_value());
  CHECK_FALSE(ensured->created);
  CHECK(ensured->hook.id == created->id);

  auto listed = c.list_webhooks();
  REQUIRE(listed.has_value());
  CHECK(std::count_if(listed->begin(), listed->end(),
                      [&](const unloc::webhook& w) { return w.id == created->id; }) == 1);

  REQUIRE(c.delete_webhook(created->id).has_value());
  auto gone = c.delete_webhook(created->id);
  REQUIRE_FALSE(gone.has_value());
  CHECK(gone.error().http_status == 404);
  CHECK(gone.error().category == unloc::error_category::api);
  CHECK_FALSE(gone.error().request_id.empty());

  auto ensured_new = c.ensure_webhook(registration);
  REQUIRE(ensured_new.has_value());
  CHECK(ensured_new->created);
  REQUIRE(c.delete_webhook(ensured_new->hook.id).has_value());
}

TEST_CASE("rejects an http webhook URL before sending it", "[client]") {
  server().reset_request_counts();
  auto r = make_client(server()).register_webhook(uuid_of(lock_b), "http://example.com/hook");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().category == unloc::error_category::invalid_input);
}

TEST_CASE("reads 2,500 events over 25 pages, each exactly once, newest first", "[client]") {
  const std::string lock = "5a1c0de0-0000-4000-8000-000000002500";
  const auto ids = server().record_events(lock, 2500, {{"spacingMs", 1000}});
  REQUIRE(ids.size() == 2500);
  auto c = make_client(server());
  auto query = unloc::access_log_query::lock(uuid_of(lock));
  query.page_size = 100;

  std::vector<std::string> seen;
  unloc::timestamp previous = unloc::timestamp::max();
  auto count = c.read_access_log(query, [&](unloc::access_event&& e) {
    CHECK(e.lock_id.to_string() == lock);
    CHECK(e.created <= previous);
    previous = e.created;
    seen.push_back(e.id.to_string());
    return true;
  });
  REQUIRE(count.has_value());
  CHECK(count->events == 2500);
  CHECK_FALSE(count->stopped);
  CHECK(seen == ids);

  auto page = c.fetch_access_log_page(query);
  REQUIRE(page.has_value());
  CHECK(page->events.size() == 100);
  REQUIRE(page->next_cursor.has_value());
  auto second = c.fetch_access_log_page(query, *page->next_cursor);
  REQUIRE(second.has_value());
  CHECK(second->events.front().id.to_string() == ids[100]);

  auto project = unloc::access_log_query::project();
  project.lock_id = uuid_of(lock);
  auto all = c.access_log(project);
  REQUIRE(all.has_value());
  CHECK(all->size() == 2500);
}

TEST_CASE("keeps reading when the token expires in the middle of a run", "[client]") {
  fault_guard guard;
  const std::string lock = "5a1c0de0-0000-4000-8000-000000000777";
  server().record_events(lock, 300);
  auto c = make_client(server());
  REQUIRE(c.token().has_value());
  server().reset_request_counts();
  server().inject_fault({{"endpoint", "logs"}, {"kind", "expire_token"}, {"after", 1}});
  auto query = unloc::access_log_query::lock(uuid_of(lock));
  query.page_size = 50;
  auto events = c.access_log(query);
  REQUIRE(events.has_value());
  CHECK(events->size() == 300);
  CHECK(server().request_counts()["token"] == 1);  // exactly one new token
}

TEST_CASE("refreshes short-lived tokens before they expire", "[client]") {
  unloc_test::reference_server_options options;
  options.token_lifetime = 2s;
  unloc_test::reference_server short_lived(options);
  auto c = make_client(short_lived);
  const auto first = c.token().value();
  std::this_thread::sleep_for(1200ms);  // past half the lifetime: the client refreshes
  REQUIRE(c.list_webhooks().has_value());
  CHECK(c.token().value().value != first.value);
}

TEST_CASE("retries 502, 503, 504, a dropped connection, a reset and half a body", "[client]") {
  auto c = make_client(server());
  for (const std::string kind : {"502", "503", "504", "drop", "reset", "half_body", "html"}) {
    fault_guard guard;
    INFO(kind);
    server().reset_request_counts();
    server().inject_fault({{"endpoint", "webhooks"}, {"kind", kind}, {"count", 2}});
    auto listed = c.list_webhooks();
    CHECK(listed.has_value());
    CHECK(server().request_counts()["webhooks"] == 3);
  }
}

TEST_CASE("does not retry a 500 and reports the API's error", "[client]") {
  fault_guard guard;
  server().inject_fault({{"endpoint", "webhooks"}, {"kind", "500"}});
  auto r = make_client(server()).list_webhooks();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().http_status == 500);
  CHECK(r.error().attempts == 1);
  CHECK_FALSE(r.error().api_code.empty());
  CHECK_FALSE(r.error().request_id.empty());
}

TEST_CASE("keeps a proxy's HTML page as the raw body when retries run out", "[client]") {
  fault_guard guard;
  server().inject_fault({{"endpoint", "webhooks"}, {"kind", "html"}, {"count", 10}});
  auto r = make_client(server()).list_webhooks();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().http_status == 502);
  CHECK(r.error().attempts == 4);
  CHECK(r.error().api_code.empty());
  CHECK(r.error().body.find("<html") != std::string::npos);
}

TEST_CASE("honours Retry-After in seconds and as an HTTP date", "[client]") {
  auto c = make_client(server());
  for (const bool as_date : {false, true}) {
    fault_guard guard;
    std::string retry_after = "1";
    if (as_date) {
      const auto when = std::chrono::system_clock::now() + 2s;
      const std::time_t t = std::chrono::system_clock::to_time_t(when);
      std::tm tm{};
      gmtime_r(&t, &tm);
      char text[40];
      std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
      retry_after = text;
    }
    INFO(retry_after);
    server().inject_fault({{"endpoint", "webhooks"}, {"kind", "429"}, {"retryAfter", retry_after}});
    const auto started = steady::now();
    REQUIRE(c.list_webhooks().has_value());
    CHECK(steady::now() - started >= 900ms);  // not the client's 20 ms backoff
  }
}

TEST_CASE("never overruns the deadline, whatever the server asks", "[client]") {
  auto options = options_for(server());
  options.deadline = 1500ms;
  auto c = unloc::client::create(options).value();
  REQUIRE(c.token().has_value());
  {
    fault_guard guard;
    server().inject_fault({{"endpoint", "webhooks"}, {"kind", "503"}, {"retryAfter", "30"}});
    const auto started = steady::now();
    auto r = c.list_webhooks();
    CHECK(steady::now() - started < 1500ms);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().http_status == 503);
  }
  {
    fault_guard guard;
    server().inject_fault({{"endpoint", "webhooks"}, {"kind", "slow"}, {"delayMs", 5000}});
    const auto started = steady::now();
    auto r = c.list_webhooks();
    CHECK(steady::now() - started < 2000ms);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().category == unloc::error_category::timeout);
  }
  {
    fault_guard guard;
    server().inject_fault({{"endpoint", "webhooks"}, {"kind", "slow"}, {"delayMs", 200}});
    CHECK(c.list_webhooks().has_value());  // slow but inside the deadline
  }
}

TEST_CASE("reports a server that closes mid-body as a network error", "[client]") {
  fault_guard guard;
  server().inject_fault({{"endpoint", "webhooks"}, {"kind", "half_body"}, {"count", 10}});
  auto r = make_client(server()).list_webhooks();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().category == unloc::error_category::network);
  CHECK(r.error().attempts == 4);
}

TEST_CASE("reports malformed JSON from the server as an invalid response", "[client]") {
  fault_guard guard;
  server().inject_fault({{"endpoint", "webhooks"}, {"kind", "malformed_json"}});
  auto r = make_client(server()).list_webhooks();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().category == unloc::error_category::invalid_response);
  CHECK(r.error().http_status == 200);
}

TEST_CASE("repeats a registration whose connection dropped, and gets the webhook once",
          "[client]") {
  fault_guard guard;
  auto c = make_client(server());
  server().inject_fault({{"endpoint", "webhooks"}, {"kind", "drop"}});
  unloc::webhook_registration registration;
  registration.lock_id = uuid_of(lock_a);
  registration.url = "https://127.0.0.1:9/dropped";
  auto hook = c.register_webhook(registration);
  REQUIRE(hook.has_value());
  auto listed = c.list_webhooks().value();
  CHECK(std::count_if(listed.begin(), listed.end(), [](const unloc::webhook& w) {
          return w.url == "https://127.0.0.1:9/dropped";
        }) == 1);
  REQUIRE(c.delete_webhook(hook->id).has_value());
}

TEST_CASE("says a registration is ambiguous when every attempt broke after sending",
          "[client]") {
  fault_guard guard;
  server().inject_fault({{"endpoint", "webhooks"}, {"kind", "drop"}, {"count", 10}});
  auto r = make_client(server()).register_webhook(uuid_of(lock_a), "https://127.0.0.1:9/ambiguous");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().category == unloc::error_category::ambiguous);
  CHECK(r.error().message.find("may have been applied") != std::string::npos);
}

TEST_CASE("refuses a server whose certificate the CA does not sign, with a TLS error",
          "[client]") {
  auto options = options_for(server());
  options.ca_file = unloc_test::test_tls_files().other_ca_cert;
  auto r = unloc::client::create(options).value().list_webhooks();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().category == unloc::error_category::tls);
  CHECK(r.error().attempts == 1);

  auto no_ca = options_for(server());
  no_ca.ca_file.clear();  // the system's CAs alone do not know the test CA
  auto untrusted = unloc::client::create(no_ca).value().list_webhooks();
  REQUIRE_FALSE(untrusted.has_value());
  CHECK(untrusted.error().category == unloc::error_category::tls);
}

TEST_CASE("trusts a CA given as PEM text in memory", "[client]") {
  std::ifstream in(server().ca_file());
  auto options = options_for(server());
  options.ca_file.clear();
  options.ca_pem.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  CHECK(unloc::client::create(options).value().list_webhooks().has_value());
}

TEST_CASE("reports a refused connection and an unknown host as network errors", "[client]") {
  auto options = options_for(server());
  options.retry = {2, 10ms, 10ms};
  options.api_url = "https://127.0.0.1:9";  // discard port: nothing listens
  auto refused = unloc::client::create(options).value().list_webhooks();
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().category == unloc::error_category::network);
  CHECK(refused.error().attempts == 2);

  options.api_url = "https://no-such-host.invalid";
  auto unknown = unloc::client::create(options).value().list_webhooks();
  REQUIRE_FALSE(unknown.has_value());
  CHECK(unknown.error().category == unloc::error_category::network);
}

TEST_CASE("refuses wrong client credentials with an authentication error", "[client]") {
  auto options = options_for(server());
  options.client_secret = "not-the-secret";
  auto r = unloc::client::create(options).value().list_webhooks();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().category == unloc::error_category::authentication);
  CHECK(r.error().http_status == 401);
  CHECK(unloc::to_string(r.error()).find("not-the-secret") == std::string::npos);
}

TEST_CASE("serves 8 threads at once with one token and reused connections", "[client]") {
  auto c = make_client(server());
  server().reset_request_counts();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) ok += c.list_webhooks().has_value() ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == 200);
  const auto counts = server().request_counts();
  CHECK(counts["token"] == 1);
  CHECK(counts["webhooks"] == 200);
  INFO(counts.dump());
  CHECK(counts["connections"].get<int>() <= 16);  // not one per call
}

TEST_CASE("keeps every secret out of log lines and errors", "[client]") {
  fault_guard guard;
  log_capture log;
  auto c = make_client(server(), &log);
  const auto token = c.token().value().value;
  server().inject_fault({{"endpoint", "webhooks"}, {"kind", "503"}});
  REQUIRE(c.register_webhook(uuid_of(lock_a), "https://myuser:s3cret-pw@127.0.0.1:9/x").has_value());
  server().inject_fault({{"endpoint", "webhooks"}, {"kind", "expire_token"}});
  REQUIRE(c.list_webhooks().has_value());
  auto bad = c.register_webhook(uuid_of(lock_a), "https://myuser:s3cret-pw@127.0.0.1:9/x#frag");
  REQUIRE_FALSE(bad.has_value());

  REQUIRE(log.lines.size() >= 6);
  for (const auto& line : log.lines) {
    INFO(line);
    CHECK(line.find(server().client_secret()) == std::string::npos);
    CHECK(line.find(token) == std::string::npos);
    CHECK(line.find("s3cret-pw") == std::string::npos);
    CHECK(line.find("Bearer") == std::string::npos);
  }
  CHECK(unloc::to_string(bad.error()).find("s3cret-pw") == std::string::npos);
  for (auto& hook : c.list_webhooks().value()) {
    if (hook.url.find("s3cret-pw") != std::string::npos) {
      auto deleted = c.delete_webhook(hook.id);
      INFO((deleted ? std::string("ok") : unloc::to_string(deleted.error())));
      CHECK(deleted.has_value());
    }
  }
}

TEST_CASE("reuses one TLS connection for a thousand sequential calls", "[client]") {
  auto c = make_client(server());
  REQUIRE(c.list_webhooks().has_value());
  server().reset_request_counts();
  int ok = 0;
  for (int i = 0; i < 1000; ++i) ok += c.list_webhooks().has_value() ? 1 : 0;
  CHECK(ok == 1000);
  const auto counts = server().request_counts();
  INFO(counts.dump());
  CHECK(counts["tlsHandshakes"].get<int>() <= 1);
  CHECK(counts["connections"].get<int>() <= 1);
}

TEST_CASE("repeats a call transparently when the server closed the idle connection",
          "[client]") {
  unloc_test::reference_server_options options;
  options.extra_args = {"--keep-alive-timeout", "1"};
  unloc_test::reference_server impatient(options);
  auto c = make_client(impatient);
  REQUIRE(c.list_webhooks().has_value());
  // Waiting is the point here: the server drops the idle connection after 1 s.
  std::this_thread::sleep_for(1500ms);
  auto again = c.list_webhooks();
  REQUIRE(again.has_value());
  const auto counts = impatient.request_counts();
  INFO(counts.dump());
  CHECK(counts["webhooks"] == 2);
  CHECK(counts["apiConnections"].get<int>() == 2);  // the second call came on a new connection
}

TEST_CASE("a 404 for a webhook that never existed is an error, whatever came before it",
          "[client]") {
  auto c = make_client(server());
  const auto never = uuid_of("0b7c4f31-3a42-4f4f-9a8e-6c2b1f0d9e11");
  for (const std::string kind : {"", "expire_token", "503", "429"}) {
    fault_guard guard;
    INFO(kind);
    if (!kind.empty()) server().inject_fault({{"endpoint", "webhooks"}, {"kind", kind}});
    auto r = c.delete_webhook(never);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().http_status == 404);
    CHECK(r.error().category == unloc::error_category::api);
    CHECK(r.error().attempts == (kind.empty() ? 1 : 2));
  }
}

TEST_CASE("a 404 after an attempt that may have deleted the webhook counts as done",
          "[client]") {
  auto c = make_client(server());
  const auto never = uuid_of("0b7c4f31-3a42-4f4f-9a8e-6c2b1f0d9e11");
  // drop: broken after the request was sent; 502 and 504: a gateway may have passed it on.
  for (const std::string kind : {"drop", "502", "504"}) {
    fault_guard guard;
    INFO(kind);
    server().inject_fault({{"endpoint", "webhooks"}, {"kind", kind}});
    auto r = c.delete_webhook(never);
    INFO((r ? std::string("ok") : unloc::to_string(r.error())));
    CHECK(r.has_value());
  }
}

TEST_CASE("a registration that fails after an attempt that may have registered it is ambiguous",
          "[client]") {
  auto c = make_client(server());
  for (const std::string first : {"drop", "502", "504"}) {
    fault_guard guard;
    INFO(first);
    server().inject_fault({{"endpoint", "webhooks"}, {"kind", first}});
    server().inject_fault({{"endpoint", "webhooks"}, {"kind", "500"}});  // the repeat's answer
    auto r = c.register_webhook(uuid_of(lock_a), "https://127.0.0.1:9/maybe-" + first);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().category == unloc::error_category::ambiguous);
    CHECK(r.error().http_status == 500);
    CHECK(r.error().attempts == 2);
  }
  {  // a 503 says the first attempt was not applied: the 500 is a plain API error
    fault_guard guard;
    server().inject_fault({{"endpoint", "webhooks"}, {"kind", "503"}});
    server().inject_fault({{"endpoint", "webhooks"}, {"kind", "500"}});
    auto r = c.register_webhook(uuid_of(lock_a), "https://127.0.0.1:9/maybe-503");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().category == unloc::error_category::api);
  }
  for (auto& hook : c.list_webhooks().value()) {
    if (hook.url.find("/maybe-") != std::string::npos) REQUIRE(c.delete_webhook(hook.id));
  }
}

TEST_CASE("a caller waiting for a slow token fetch returns at its own deadline", "[client]") {
  fault_guard guard;
  auto c = make_client(server());  // a fresh client: no token yet
  server().reset_request_counts();
  server().inject_fault({{"endpoint", "token"}, {"kind", "slow"}, {"delayMs", 8000}});
  unloc::result<unloc::access_token> first = unloc::make_error(unloc::error_category::internal, "");
  std::thread fetcher([&] { first = c.token(); });  // its deadline is the client's 10 s
  while (server().request_counts()["token"] == 0) std::this_thread::yield();  // the fetch is out

  unloc::call_options one_second;
  one_second.deadline = 1s;
  const auto started = steady::now();
  auto waiter = c.list_webhooks(one_second);
  const auto waited = steady::now() - started;
  fetcher.join();

  REQUIRE_FALSE(waiter.has_value());
  CHECK(waiter.error().category == unloc::error_category::timeout);
  CHECK(waited < 4s);  // 1 s and some, far from the fetch's 8 s
  CHECK(first.has_value());
  CHECK(server().request_counts()["token"] == 1);  // the waiter sent no fetch of its own
}

TEST_CASE("callers waiting for a failing token fetch share its failure; the next one fetches anew",
          "[client]") {
  fault_guard guard;
  auto c = make_client(server());
  server().reset_request_counts();
  // Each attempt waits 1 s (Retry-After): the fetch stays in flight while the others arrive.
  server().inject_fault(
      {{"endpoint", "token"}, {"kind", "503"}, {"count", -1}, {"retryAfter", "1"}});
  std::vector<unloc::result<std::vector<unloc::webhook>>> results(
      4, unloc::make_error(unloc::error_category::internal, ""));
  std::vector<std::thread> callers;
  callers.emplace_back([&] { results[0] = c.list_webhooks(); });
  while (server().request_counts()["token"] == 0) std::this_thread::yield();
  for (std::size_t i = 1; i < results.size(); ++i) {
    callers.emplace_back([&results, &c, i] { results[i] = c.list_webhooks(); });
  }
  for (auto& t : callers) t.join();
  for (const auto& r : results) {
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().http_status == 503);
  }
  CHECK(server().request_counts()["token"] == 4);  // one fetch of 4 attempts, not one per caller
  CHECK(server().request_counts()["webhooks"] == 0);

  server().clear_faults();  // the failure is not cached: the next call fetches and succeeds
  CHECK(c.list_webhooks().has_value());
  CHECK(server().request_counts()["token"] == 5);
}

TEST_CASE("scrubs a token the server echoes from errors and log lines", "[client]") {
  fault_guard guard;
  log_capture log;
  auto c = make_client(server(), &log);
  const auto token = c.token().value().value;
  server().inject_fault({{"endpoint", "webhooks"}, {"kind", "echo_authorization"}});
  auto r = c.list_webhooks();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().http_status == 400);
  const auto text = unloc::to_string(r.error());
  INFO(text);
  CHECK(text.find(token) == std::string::npos);
  CHECK(r.error().api_message.find(token) == std::string::npos);
  CHECK(r.error().api_message.find("Bearer REDACTED") != std::string::npos);
  for (const auto& line : log.lines) CHECK(line.find(token) == std::string::npos);
}

namespace {
// Sets proxy variables for one test and puts the old values back after it.
class environment_guard {
 public:
  environment_guard() {
    for (const char* name : names) {
      const char* value = std::getenv(name);
      saved_.emplace_back(name, value != nullptr ? std::optional<std::string>(value)
                                                 : std::nullopt);
      ::unsetenv(name);
    }
  }
  ~environment_guard() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name, value->c_str(), 1);
      } else {
        ::unsetenv(name);
      }
    }
  }
  environment_guard(const environment_guard&) = delete;
  environment_guard& operator=(const environment_guard&) = delete;

 private:
  static constexpr const char* names[] = {"https_proxy", "HTTPS_PROXY", "all_proxy",
                                          "ALL_PROXY",   "no_proxy",    "NO_PROXY"};
  std::vector<std::pair<const char*, std::optional<std::string>>> saved_;
};
}  // namespace

TEST_CASE("takes a proxy from the environment unless told not to", "[client]") {
  environment_guard env;
  ::setenv("https_proxy", "http://127.0.0.1:9", 1);  // the discard port: nothing listens
  auto options = options_for(server());
  options.retry = {2, 10ms, 10ms};

  auto through_dead_proxy = unloc::client::create(options).value().list_webhooks();
  REQUIRE_FALSE(through_dead_proxy.has_value());
  CHECK(through_dead_proxy.error().category == unloc::error_category::network);

  options.proxy_from_environment = false;
  auto direct = unloc::client::create(options).value().list_webhooks();
  INFO((direct ? std::string("ok") : unloc::to_string(direct.error())));
  CHECK(direct.has_value());

  options.proxy = "http://127.0.0.1:9";  // an explicit proxy still counts
  auto explicit_proxy = unloc::client::create(options).value().list_webhooks();
  CHECK_FALSE(explicit_proxy.has_value());

  ::unsetenv("https_proxy");
  ::setenv("ALL_PROXY", "http://127.0.0.1:9", 1);
  options.proxy.clear();
  options.proxy_from_environment = true;
  CHECK_FALSE(unloc::client::create(options).value().list_webhooks().has_value());
  ::setenv("no_proxy", "127.0.0.1", 1);  // and no_proxy exempts the server
  CHECK(unloc::client::create(options).value().list_webhooks().has_value());
}

TEST_CASE("rotates a webhook's credentials: the new one registered, the old one deleted",
          "[client]") {
  auto c = make_client(server());
  const std::string endpoint = "127.0.0.1:9/rotation?x=1";
  const auto registration = [&](const std::string& lock, const std::string& url) {
    unloc::webhook_registration r;
    r.lock_id = uuid_of(lock);
    r.url = url;
    return r;
  };
  const auto old_hook =
      c.register_webhook(registration(lock_a, "https://alice:old-pass-1@" + endpoint)).value();
  // Not the same webhook: another Lock, another path.
  const auto other_lock =
      c.register_webhook(registration(lock_b, "https://alice:old-pass-1@" + endpoint)).value();
  const auto other_path =
      c.register_webhook(registration(lock_a, "https://alice:old-pass-1@127.0.0.1:9/elsewhere"))
          .value();

  // ensure_webhook alone would keep both: each then receives every event.
  const auto renewed = registration(lock_a, "https://alice:new-pass-2@" + endpoint);
  auto rotated = c.rotate_webhook_credentials(renewed);
  REQUIRE(rotated.has_value());
  CHECK(rotated->created);
  CHECK(rotated->hook.url == renewed.url);
  CHECK(rotated->deleted == std::vector<unloc::uuid>{old_hook.id});

  std::set<std::string> ids;
  for (const auto& hook : c.list_webhooks().value()) ids.insert(hook.id.to_string());
  CHECK(ids.count(rotated->hook.id.to_string()) == 1);
  CHECK(ids.count(old_hook.id.to_string()) == 0);
  CHECK(ids.count(other_lock.id.to_string()) == 1);
  CHECK(ids.count(other_path.id.to_string()) == 1);

  auto again = c.rotate_webhook_credentials(renewed);  // done already: nothing to do
  REQUIRE(again.has_value());
  CHECK_FALSE(again->created);
  CHECK(again->hook.id == rotated->hook.id);
  CHECK(again->deleted.empty());

  for (const auto& id : {rotated->hook.id, other_lock.id, other_path.id}) {
    REQUIRE(c.delete_webhook(id).has_value());
  }
}

TEST_CASE("a waiter with time left fetches anew when the fetch it waited for ran out of time",
          "[client]") {
  fault_guard guard;
  auto c = make_client(server());
  server().reset_request_counts();
  server().inject_fault({{"endpoint", "token"}, {"kind", "slow"}, {"delayMs", 3000}});
  unloc::call_options one_second;
  one_second.deadline = 1s;
  unloc::result<std::vector<unloc::webhook>> hurried =
      unloc::make_error(unloc::error_category::internal, "");
  std::thread fetcher([&] { hurried = c.list_webhooks(one_second); });
  while (server().request_counts()["token"] == 0) std::this_thread::yield();
  auto patient = c.list_webhooks();  // 10 s: it waits, then fetches itself
  fetcher.join();
  REQUIRE_FALSE(hurried.has_value());
  CHECK(hurried.error().category == unloc::error_category::timeout);
  INFO((patient ? std::string("ok") : unloc::to_string(patient.error())));
  CHECK(patient.has_value());
  CHECK(server().request_counts()["token"] == 2);
}

TEST_CASE("a waiter with time left fetches anew when the fetch it waited for stopped retrying "
          "at its caller's deadline",
          "[client]") {
  fault_guard guard;
  auto c = make_client(server());
  server().reset_request_counts();
  // A slow 503 asking for 5 s: the hurried caller's 3 s cannot wait that long, so
  // its fetch stops with the 503 although the fetch would have succeeded later.
  server().inject_fault(
      {{"endpoint", "token"}, {"kind", "503"}, {"retryAfter", "5"}, {"delayMs", 1500}});
  unloc::call_options three_seconds;
  three_seconds.deadline = 3s;
  unloc::result<std::vector<unloc::webhook>> hurried =
      unloc::make_error(unloc::error_category::internal, "");
  std::thread fetcher([&] { hurried = c.list_webhooks(three_seconds); });
  while (server().request_counts()["token"] == 0) std::this_thread::yield();
  auto patient = c.list_webhooks();  // 10 s: time left after the hurried fetch fails
  fetcher.join();
  REQUIRE_FALSE(hurried.has_value());
  CHECK(hurried.error().http_status == 503);
  INFO((patient ? std::string("ok") : unloc::to_string(patient.error())));
  CHECK(patient.has_value());  // not the 503 the hurried caller's deadline caused
  CHECK(server().request_counts()["token"] == 2);
}

// The client's logic (tokens, retries, deadlines, errors, paging, redaction)
// over a scripted transport. The same client against a real HTTPS server is
// tested in tests/client/.

#include "catch.hpp"

#include <unloc/client.hpp>
#include <unloc/testing.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using unloc::testing::json_response;
using namespace std::chrono_literals;

const std::string project = "d45031c2-be07-4d20-adbe-4e51e6ad0fed";
const std::string lock = "df50a61f-9e1f-4e1c-9e89-8395c908065a";
const std::string secret = "client-secret-value-42";

std::string token_body(const std::string& value, int expires_in = 3600) {
  return R"({"access_token":")" + value + R"(","token_type":"bearer","expires_in":)" +
         std::to_string(expires_in) + R"(,"scope":["project.admin"],"project_id":")" + project +
         R"("})";
}

std::string webhook_body(const std::string& id = "0b7c4f31-3a42-4f4f-9a8e-6c2b1f0d9e11") {
  return R"({"id":")" + id + R"(","trigger":"accessEvent","url":"https://vandelay.ind/accessEvents","lockId":")" +
         lock + R"(","created":"2024-05-01T12:00:00.000Z"})";
}

std::string event_json(int n) {
  char id[40];
  std::snprintf(id, sizeof id, "ae832e61-c8fa-4ed9-8196-%012d", n);
  return R"({"id":")" + std::string(id) +
         R"(","action":"unlocked","created":"2024-05-01T10:35:24.083Z","keyId":"3f97fafb-1b6a-42d0-85fa-ae2ef338cc45","lockId":")" +
         lock + R"(","lockName":"North gate","appUserId":"+12125552390","userName":""})";
}

struct fixture {
  std::shared_ptr<unloc::testing::scripted_transport> transport =
      std::make_shared<unloc::testing::scripted_transport>();
  std::vector<std::string> log;
  std::mutex log_mutex;
  std::string client_secret = secret;

  unloc::client make(unloc::retry_policy retry = {3, 1ms, 2ms}, std::chrono::milliseconds deadline = 5s) {
    unloc::client_options options;
    options.api_url = "https://api.example.test/";
    options.project_id = project;
    options.client_id = "client-id";
    options.client_secret = client_secret;
    options.transport = transport;
    options.retry = retry;
    options.deadline = deadline;
    options.logger = [this](std::string_view line) {
      const std::lock_guard<std::mutex> l(log_mutex);
      log.emplace_back(line);
    };
    return unloc::client::create(options).value();
  }

  std::vector<unloc::http_request> api_requests() const {
    std::vector<unloc::http_request> out;
    for (auto& r : transport->requests()) {
      if (r.url.find("/auth/token/") == std::string::npos) out.push_back(r);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("refuses options without https, a project or credentials", "[client]") {
  unloc::client_options options;
  options.project_id = project;
  options.client_id = "id";
  options.client_secret = "secret";
  options.transport = std::make_shared<unloc::testing::scripted_transport>();
  CHECK(unloc::client::create(options).has_value());

  auto http = options;
  http.api_url = "http://api.unloc.app";
  REQUIRE_FALSE(unloc::client::create(http).has_value());
  CHECK(unloc::client::create(http).error().field == "api_url");

  auto no_project = options;
  no_project.project_id.clear();
  CHECK_FALSE(unloc::client::create(no_project).has_value());

  auto no_secret = options;
  no_secret.client_secret.clear();
  CHECK_FALSE(unloc::client::create(no_secret).has_value());
}

TEST_CASE("sends the token request of the contract, then Bearer on every call", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("tok-1")));
  f.transport->push(json_response(200, R"({"webhooks":[]})"));
  f.transport->push(json_response(200, R"({"webhooks":[]})"));
  auto c = f.make();
  REQUIRE(c.list_webhooks().has_value());
  REQUIRE(c.list_webhooks().has_value());

  const auto requests = f.transport->requests();
  REQUIRE(requests.size() == 3);  // one token for both calls
  CHECK(requests[0].method == "POST");
  CHECK(requests[0].url == "https://api.example.test/v2/auth/token/");
  const auto body = nlohmann::json::parse(requests[0].body);
  CHECK(body["grant_type"] == "client_credentials");
  CHECK(body["client_id"] == "client-id");
  CHECK(body["client_secret"] == secret);
  CHECK(body["scope"] == "project.admin");
  CHECK(body["project_id"] == project);
  CHECK(requests[1].url == "https://api.example.test/v2/projects/" + project + "/webhooks");
  CHECK(requests[1].headers.get("Authorization") == std::optional<std::string_view>("Bearer tok-1"));
  CHECK(requests[1].headers.get("Accept") == std::optional<std::string_view>("application/json"));
}

TEST_CASE("on a 401 fetches a new token once and repeats the call", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("old")));
  f.transport->push(json_response(401, R"({"error":"invalid_token","message":"expired"})"));
  f.transport->push(json_response(200, token_body("new")));
  f.transport->push(json_response(200, R"({"webhooks":[]})"));
  auto c = f.make();
  REQUIRE(c.list_webhooks().has_value());
  const auto api = f.api_requests();
  REQUIRE(api.size() == 2);
  CHECK(api[1].headers.get("Authorization") == std::optional<std::string_view>("Bearer new"));
}

TEST_CASE("gives up after a second 401 with an authentication error", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("a")));
  f.transport->push(json_response(401, R"({"error":"invalid_token","message":"no"})"));
  f.transport->push(json_response(200, token_body("b")));
  f.transport->push(json_response(401, R"({"error":"invalid_token","message":"still no"})"));
  auto c = f.make();
  auto r = c.list_webhooks();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().category == unloc::error_category::authentication);
  CHECK(r.error().http_status == 401);
  CHECK(r.error().api_code == "invalid_token");
}

TEST_CASE("refreshes a token that is about to expire before using it", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("short", 0)));
  f.transport->push(json_response(200, R"({"webhooks":[]})"));
  f.transport->push(json_response(200, token_body("fresh")));
  f.transport->push(json_response(200, R"({"webhooks":[]})"));
  auto c = f.make();
  REQUIRE(c.list_webhooks().has_value());
  REQUIRE(c.list_webhooks().has_value());
  const auto api = f.api_requests();
  REQUIRE(api.size() == 2);
  CHECK(api[1].headers.get("Authorization") == std::optional<std::string_view>("Bearer fresh"));
}

TEST_CASE("reports a refused token request as an authentication error", "[client]") {
  fixture f;
  f.transport->push(json_response(401, R"({"error":"invalid_client","message":"bad secret"})"));
  auto r = f.make().list_webhooks();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().category == unloc::error_category::authentication);
  CHECK(r.error().api_code == "invalid_client");
}

TEST_CASE("retries 429, 502, 503 and 504, and not 500", "[client]") {
  for (const int status : {429, 502, 503, 504}) {
    fixture f;
    f.transport->push(json_response(200, token_body("t")));
    f.transport->push(json_response(status, R"({"error":"busy","message":"try again"})"));
    f.transport->push(json_response(200, R"({"webhooks":[]})"));
    INFO(status);
    CHECK(f.make().list_webhooks().has_value());
  }
  fixture f;
  f.transport->push(json_response(200, token_body("t")));
  f.transport->push(json_response(500, R"({"error":"internal","message":"boom"})"));
  auto r = f.make().list_webhooks();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().http_status == 500);
  CHECK(r.error().attempts == 1);
}

TEST_CASE("stops after max_attempts and says how many were made", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("t")));
  f.transport->otherwise([](const unloc::http_request&) -> unloc::result<unloc::http_response> {
    return json_response(503, R"({"error":"unavailable","message":"down"})",
                         {{"x-request-id", "req-123"}});
  });
  auto r = f.make({4, 1ms, 1ms}).list_webhooks();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().category == unloc::error_category::api);
  CHECK(r.error().http_status == 503);
  CHECK(r.error().attempts == 4);
  CHECK(r.error().request_id == "req-123");
  CHECK(f.api_requests().size() == 4);
}

TEST_CASE("retries connection failures", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("t")));
  f.transport->push(unloc::make_error(unloc::error_category::network, "connection reset"));
  f.transport->push(json_response(200, R"({"webhooks":[]})"));
  CHECK(f.make().list_webhooks().has_value());
}

TEST_CASE("does not retry a TLS failure", "[client]") {
  fixture f;
  f.transport->push(unloc::make_error(unloc::error_category::tls, "certificate not trusted"));
  auto r = f.make().list_webhooks();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().category == unloc::error_category::tls);
  CHECK(f.transport->requests().size() == 1);
}

TEST_CASE("waits as long as Retry-After asks, in seconds or as an HTTP date", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("t")));
  f.transport->push(json_response(429, "", {{"Retry-After", "1"}}));
  f.transport->push(json_response(200, R"({"webhooks":[]})"));
  const auto started = std::chrono::steady_clock::now();
  REQUIRE(f.make({3, 1ms, 1ms}).list_webhooks().has_value());
  CHECK(std::chrono::steady_clock::now() - started >= 1s);

  using unloc::detail::parse_retry_after;
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(784111767));  // Sun, 06 Nov 1994 08:49:27 GMT
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == std::optional(10'000ms));
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:17 GMT", now) == std::optional(0ms));
  CHECK(parse_retry_after(" 120 ", now) == std::optional(120'000ms));
  CHECK_FALSE(parse_retry_after("soon", now).has_value());
  CHECK_FALSE(parse_retry_after("Sun, 06 Foo 1994 08:49:37 GMT", now).has_value());
  CHECK_FALSE(parse_retry_after("-5", now).has_value());
  for (const char* malformed :
       {"12x", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 24:49:37 GMT",
        "Sun, 6x Nov 1994 08:49:37 GMT", "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 ovD 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMTx", "Sun, 06 Nov 1994"}) {
    INFO(malformed);
    CHECK_FALSE(parse_retry_after(malformed, now).has_value());
  }
  CHECK(parse_retry_after("9999999999", now) == std::optional<std::chrono::milliseconds>(24h * 365));
}

TEST_CASE("never waits past the deadline for a Retry-After", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("t")));
  f.transport->push(json_response(503, R"({"error":"maintenance","message":"later"})",
                                  {{"Retry-After", "30"}}));
  const auto started = std::chrono::steady_clock::now();
  auto r = f.make({5, 1ms, 1ms}, 2s).list_webhooks();
  CHECK(std::chrono::steady_clock::now() - started < 2s);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().http_status == 503);
  CHECK(r.error().api_code == "maintenance");
  CHECK(r.error().retry_after == std::optional(30'000ms));  // for a caller that polls again
}

TEST_CASE("returns the existing webhook on 409", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("t")));
  f.transport->push(json_response(409, R"({"webhook":)" + webhook_body() + "}"));
  auto hook = f.make().register_webhook(unloc::uuid::parse(lock).value(),
                                        "https://vandelay.ind/accessEvents");
  REQUIRE(hook.has_value());
  CHECK(hook->id.to_string() == "0b7c4f31-3a42-4f4f-9a8e-6c2b1f0d9e11");
  const auto api = f.api_requests();
  REQUIRE(api.size() == 1);
  const auto body = nlohmann::json::parse(api[0].body);
  CHECK(body == nlohmann::json::parse(R"({"trigger":"accessEvent","url":"https://vandelay.ind/accessEvents","lockId":")" + lock + "\"}"));
  CHECK(api[0].headers.get("content-type") == std::optional<std::string_view>("application/json"));
}

TEST_CASE("checks a webhook URL before sending anything", "[client]") {
  fixture f;
  auto r = f.make().register_webhook(unloc::uuid::parse(lock).value(), "http://vandelay.ind/x");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().category == unloc::error_category::invalid_input);
  CHECK(f.transport->requests().empty());
}

TEST_CASE("says a registration may have happened when the last attempt was ambiguous",
          "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("t")));
  f.transport->otherwise([](const unloc::http_request&) -> unloc::result<unloc::http_response> {
    return unloc::make_error(unloc::error_category::ambiguous,
                             "connection closed after the request was sent");
  });
  auto r = f.make().register_webhook(unloc::uuid::parse(lock).value(),
                                     "https://vandelay.ind/accessEvents");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().category == unloc::error_category::ambiguous);
  CHECK(r.error().attempts == 3);
}

TEST_CASE("ensure_webhook registers only what is missing", "[client]") {
  const auto registration = [] {
    unloc::webhook_registration r;
    r.url = "https://vandelay.ind/accessEvents";
    r.lock_id = unloc::uuid::parse(lock).value();
    return r;
  }();

  fixture present;
  present.transport->push(json_response(200, token_body("t")));
  present.transport->push(json_response(200, R"({"webhooks":[)" + webhook_body() + "]}"));
  auto found = present.make().ensure_webhook(registration);
  REQUIRE(found.has_value());
  CHECK_FALSE(found->created);
  CHECK(present.api_requests().size() == 1);

  fixture missing;
  missing.transport->push(json_response(200, token_body("t")));
  missing.transport->push(json_response(200, R"({"webhooks":[]})"));
  missing.transport->push(json_response(201, webhook_body()));
  auto created = missing.make().ensure_webhook(registration);
  REQUIRE(created.has_value());
  CHECK(created->created);
  CHECK(missing.api_requests().size() == 2);
}

TEST_CASE("deletes a webhook; a 404 is done only after an attempt that may have deleted it",
          "[client]") {
  const auto id = unloc::uuid::parse("0b7c4f31-3a42-4f4f-9a8e-6c2b1f0d9e11").value();
  fixture f;
  f.transport->push(json_response(200, token_body("t")));
  f.transport->push(json_response(204));
  auto c = f.make();
  CHECK(c.delete_webhook(id).has_value());
  CHECK(f.api_requests()[0].method == "DELETE");
  CHECK(f.api_requests()[0].url.find("/webhooks/0b7c4f31-3a42-4f4f-9a8e-6c2b1f0d9e11") !=
        std::string::npos);

  f.transport->push(unloc::make_error(unloc::error_category::ambiguous, "closed after sending"));
  f.transport->push(json_response(404, R"({"error":"not_found","message":"no such webhook"})"));
  CHECK(c.delete_webhook(id).has_value());

  // Refused before it was sent: the 404 is about a webhook that is not there.
  f.transport->push(unloc::make_error(unloc::error_category::network, "connection refused"));
  f.transport->push(json_response(404, R"({"error":"not_found","message":"no such webhook"})"));
  auto refused_then_404 = c.delete_webhook(id);
  REQUIRE_FALSE(refused_then_404.has_value());
  CHECK(refused_then_404.error().category == unloc::error_category::api);

  f.transport->push(json_response(404, R"({"error":"not_found","message":"no such webhook"})"));
  auto first_try_404 = c.delete_webhook(id);
  REQUIRE_FALSE(first_try_404.has_value());
  CHECK(first_try_404.error().http_status == 404);
}

TEST_CASE("follows nextCursor across every page, encoding it", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("t")));
  f.transport->push(json_response(200, "{\"accessEvents\":[" + event_json(1) + "," + event_json(2) +
                                           R"(],"nextCursor":"a b/c+="})"));
  f.transport->push(
      json_response(200, "{\"accessEvents\":[" + event_json(3) + R"(],"nextCursor":"page-3"})"));
  f.transport->push(json_response(200, "{\"accessEvents\":[" + event_json(4) +
                                           "],\"nextCursor\":null}"));
  auto query = unloc::access_log_query::lock(unloc::uuid::parse(lock).value());
  query.page_size = 2;
  query.from = unloc::parse_timestamp("2024-05-01T00:00:00Z").value();
  auto events = f.make().access_log(query);
  REQUIRE(events.has_value());
  REQUIRE(events->size() == 4);
  CHECK((*events)[3].id.to_string() == "ae832e61-c8fa-4ed9-8196-000000000004");
  const auto api = f.api_requests();
  REQUIRE(api.size() == 3);
  CHECK(api[0].url == "https://api.example.test/v2/projects/" + project + "/locks/" + lock +
                          "/logs/access?limit=2&from=2024-05-01T00%3A00%3A00.000Z");
  CHECK(api[1].url.find("&cursor=a%20b%2Fc%2B%3D") != std::string::npos);
  CHECK(api[2].url.find("&cursor=page-3") != std::string::npos);
}

TEST_CASE("reads the project log with a lock filter", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("t")));
  f.transport->push(json_response(200, R"({"accessEvents":[],"nextCursor":null})"));
  auto query = unloc::access_log_query::project();
  query.lock_id = unloc::uuid::parse(lock).value();
  REQUIRE(f.make().access_log(query).has_value());
  CHECK(f.api_requests()[0].url == "https://api.example.test/v2/projects/" + project +
                                       "/logs/access?limit=1000&lockId=" + lock);
}

TEST_CASE("stops reading the log when the callback says so", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("t")));
  f.transport->push(json_response(200, "{\"accessEvents\":[" + event_json(1) + "," + event_json(2) +
                                           R"(],"nextCursor":"more"})"));
  std::size_t seen = 0;
  auto read = f.make().read_access_log(
      unloc::access_log_query::lock(unloc::uuid::parse(lock).value()),
      [&seen](unloc::access_event&&) { return ++seen < 1; });
  REQUIRE(read.has_value());  // stopping is a success, not an error
  CHECK(read->events == 1);
  CHECK(read->stopped);
  CHECK(f.api_requests().size() == 1);
}

TEST_CASE("refuses a cursor that does not advance", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("t")));
  f.transport->otherwise([](const unloc::http_request&) -> unloc::result<unloc::http_response> {
    return json_response(200, R"({"accessEvents":[],"nextCursor":"same"})");
  });
  auto r = f.make().access_log(unloc::access_log_query::lock(unloc::uuid::parse(lock).value()));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().category == unloc::error_category::invalid_response);
}

TEST_CASE("reports a malformed page as an invalid response with its status", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("t")));
  f.transport->push(json_response(200, R"({"accessEvents":[{"id":"x"}]})", {{"x-request-id", "r-9"}}));
  auto r = f.make().access_log(unloc::access_log_query::lock(unloc::uuid::parse(lock).value()));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().category == unloc::error_category::invalid_response);
  CHECK(r.error().request_id == "r-9");
  CHECK(r.error().field == "id");
}

TEST_CASE("refuses a bad query before sending", "[client]") {
  fixture f;
  auto c = f.make();
  auto no_lock = c.access_log(unloc::access_log_query{});
  REQUIRE_FALSE(no_lock.has_value());
  CHECK(no_lock.error().field == "lock_id");
  auto q = unloc::access_log_query::project();
  q.page_size = 1001;
  CHECK_FALSE(c.access_log(q).has_value());
  CHECK(f.transport->requests().empty());
}

TEST_CASE("keeps an HTML error page from a proxy as the raw body", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("t")));
  f.transport->push(json_response(502, "<html><body>Bad Gateway</body></html>",
                                  {{"Content-Type", "text/html"}, {"X-Request-Id", "edge-1"}}));
  auto r = f.make({1, 1ms, 1ms}).list_webhooks();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().http_status == 502);
  CHECK(r.error().api_code.empty());
  CHECK(r.error().body.find("Bad Gateway") != std::string::npos);
  CHECK(r.error().request_id == "edge-1");
}

TEST_CASE("never puts a secret in a log line or an error", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("bearer-token-value")));
  // A server that echoes the secret back must not get it into the error either.
  f.transport->push(json_response(400, R"({"error":"bad","message":"got )" + secret + R"("})"));
  auto r = f.make().list_webhooks();
  REQUIRE_FALSE(r.has_value());
  CHECK(unloc::to_string(r.error()).find(secret) == std::string::npos);
  REQUIRE_FALSE(f.log.empty());
  for (const auto& line : f.log) {
    INFO(line);
    CHECK(line.find(secret) == std::string::npos);
    CHECK(line.find("bearer-token-value") == std::string::npos);
  }
  bool saw_redacted_authorization = false;
  for (const auto& line : f.log) {
    saw_redacted_authorization |= line.find("Authorization: REDACTED") != std::string::npos;
  }
  CHECK(saw_redacted_authorization);
  f.transport->push(json_response(200, token_body("bearer-token-value")));
  CHECK(unloc::to_string(f.make().token().value()).find("bearer-token-value") == std::string::npos);
}

TEST_CASE("logs each attempt, its response and its failure in one line each", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("tok-1")));
  f.transport->push(unloc::make_error(unloc::error_category::network, "connection reset"));
  f.transport->push(json_response(200, R"({"webhooks":[]})"));
  REQUIRE(f.make().list_webhooks().has_value());

  const std::string url = "https://api.example.test/v2/projects/" + project + "/webhooks";
  std::vector<std::string> lines;
  for (auto line : f.log) {  // durations vary: "in 3 ms" -> "in N ms"
    for (const std::string_view marker : {" in ", " failed after "}) {
      if (const auto at = line.find(marker); at != std::string::npos) {
        const auto digits = at + marker.size();
        line.replace(digits, line.find(' ', digits) - digits, "N");
      }
    }
    lines.push_back(line);
  }
  REQUIRE(lines.size() == 6);
  CHECK(lines[0] ==
        "unloc: > POST https://api.example.test/v2/auth/token/ (attempt 1) [Accept: application/json, "
        "Content-Type: application/json]");
  CHECK(lines[1] == "unloc: < 200 POST https://api.example.test/v2/auth/token/ in N ms "
                    "[Content-Type: application/json]");
  CHECK(lines[2] == "unloc: > GET " + url +
                        " (attempt 1) [Accept: application/json, Authorization: REDACTED]");
  CHECK(lines[3] == "unloc: ! GET " + url + " failed after N ms: network: connection reset");
  CHECK(lines[4] == "unloc: > GET " + url +
                        " (attempt 2) [Accept: application/json, Authorization: REDACTED]");
  CHECK(lines[5] == "unloc: < 200 GET " + url + " in N ms [Content-Type: application/json]");
}

TEST_CASE("shares one token fetch among concurrent callers", "[client]") {
  fixture f;
  std::atomic<int> token_requests{0};
  f.transport->otherwise([&token_requests](const unloc::http_request& r)
                             -> unloc::result<unloc::http_response> {
    if (r.url.find("/auth/token/") != std::string::npos) {
      ++token_requests;
      std::this_thread::sleep_for(20ms);  // a slow token endpoint: the others must wait for it
      return json_response(200, token_body("shared"));
    }
    return json_response(200, R"({"webhooks":[]})");
  });
  auto c = f.make();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  threads.reserve(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 10; ++j) ok += c.list_webhooks().has_value() ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == 80);
  CHECK(token_requests == 1);
}

TEST_CASE("names itself unloc-cpp with the libcurl version", "[client]") {
  const auto agent = unloc::client::user_agent();
  CHECK(agent.rfind(std::string("unloc-cpp/") + UNLOC_VERSION_STRING + " libcurl/", 0) == 0);
}

TEST_CASE("refuses endless empty pages with ever new cursors", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("t")));
  f.transport->push(
      json_response(200, "{\"accessEvents\":[" + event_json(1) + R"(],"nextCursor":"c0"})"));
  std::atomic<int> page{0};
  f.transport->otherwise([&page](const unloc::http_request&) -> unloc::result<unloc::http_response> {
    return json_response(200, R"({"accessEvents":[],"nextCursor":"c)" + std::to_string(++page) + "\"}");
  });
  auto r = f.make().access_log(unloc::access_log_query::lock(unloc::uuid::parse(lock).value()));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().category == unloc::error_category::invalid_response);
  CHECK(page == 101);
}

TEST_CASE("scrubs the bearer token a server echoes, in the error and the log", "[client]") {
  fixture f;
  const std::string token = "tok-7f3a9c2e5b1d";
  f.transport->push(json_response(200, token_body(token)));
  // A body that is not API JSON (kept raw) and one that is (read): both echo it.
  f.transport->push(json_response(400, "rejected Authorization: Bearer " + token));
  f.transport->push(json_response(
      400, R"({"error":"bad_request","message":"rejected Authorization: Bearer )" + token + "\"}"));
  f.transport->push(json_response(400, "a token issued elsewhere: Bearer other.token-value"));
  auto c = f.make();
  for (int i = 0; i < 3; ++i) {
    auto r = c.list_webhooks();
    REQUIRE_FALSE(r.has_value());
    const auto text = unloc::to_string(r.error()) + r.error().body + r.error().api_message;
    INFO(text);
    CHECK(text.find(token) == std::string::npos);
    CHECK(text.find("other.token-value") == std::string::npos);
    CHECK(text.find("Bearer REDACTED") != std::string::npos);
  }
  for (const auto& line : f.log) CHECK(line.find(token) == std::string::npos);
}

TEST_CASE("logs and scrubs when a secret is part of the word REDACTED", "[client]") {
  // Each log line holds "Authorization: REDACTED": scrubbing "DACT" there once
  // looped forever, finding its own replacement again.
  for (const std::string_view token : {"DACT", "ACTED", "REDACTED"}) {
    fixture f;
    f.transport->push(json_response(200, token_body(std::string(token))));
    f.transport->push(json_response(200, R"({"webhooks":[]})"));
    INFO(token);
    CHECK(f.make().list_webhooks().has_value());
    CHECK_FALSE(f.log.empty());
  }
}

TEST_CASE("scrubs a body before quoting and cutting it", "[client]") {
  fixture f;
  f.client_secret = "it's-s\xc3\xa9" "cret\\-42";  // a quote, non-ASCII and a backslash
  const std::string token = "tok-7f3a9c2e5b1d";
  f.transport->push(json_response(200, token_body(token)));
  f.transport->push(json_response(400, "echo: " + f.client_secret));
  // The token straddles the 512-byte cut: its first half would be kept.
  f.transport->push(json_response(400, std::string(500, 'x') + token));
  // Other whitespace after Bearer.
  f.transport->push(json_response(400, "Bearer\tother.token-value and bearer  second.token"));
  auto c = f.make();
  for (int i = 0; i < 3; ++i) {
    auto r = c.list_webhooks();
    REQUIRE_FALSE(r.has_value());
    const auto text = unloc::to_string(r.error()) + r.error().body;
    INFO(text);
    CHECK(text.find("cret") == std::string::npos);
    CHECK(text.find("tok-7f3a") == std::string::npos);
    CHECK(text.find("other.token-value") == std::string::npos);
    CHECK(text.find("second.token") == std::string::npos);
    CHECK(r.error().body.find("REDACTED") != std::string::npos);
  }
}

TEST_CASE("a failed token refresh after an attempt that may have applied the call is ambiguous",
          "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("t1")));
  f.transport->push(json_response(504, "gateway timeout"));  // the POST may have been applied
  f.transport->push(json_response(401, R"({"error":"unauthorized","message":"revoked"})"));
  f.transport->push(json_response(400, R"({"error":"invalid_client","message":"no"})"));
  auto r = f.make({4, 1ms, 2ms})
               .register_webhook(unloc::uuid::parse(lock).value(), "https://vandelay.ind/accessEvents");
  REQUIRE_FALSE(r.has_value());
  INFO(unloc::to_string(r.error()));
  CHECK(r.error().category == unloc::error_category::ambiguous);
  CHECK(r.error().attempts == 2);  // the POST's attempts, not the token request's
}

TEST_CASE("a callback that throws ends the log read with an internal error", "[client]") {
  fixture f;
  f.transport->push(json_response(200, token_body("t")));
  f.transport->push(json_response(200, "{\"accessEvents\":[" + event_json(1) + "]}"));
  auto read = f.make().read_access_log(
      unloc::access_log_query::lock(unloc::uuid::parse(lock).value()),
      [](unloc::access_event&&) -> bool { throw std::runtime_error("the handler failed"); });
  REQUIRE_FALSE(read.has_value());
  CHECK(read.error().category == unloc::error_category::internal);  // not the server's fault
}

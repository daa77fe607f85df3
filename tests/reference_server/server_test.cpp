// The reference server's API over real HTTPS: tokens, webhooks, the access
// log, fault injection and its counters.

#include <unloc/timestamp.hpp>

#include "catch.hpp"
#include "helpers.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <vector>

using nlohmann::json;
using server_test::api_client;
using server_test::https_client;
using unloc_test::lock_a;
using unloc_test::lock_b;
using unloc_test::reference_server;
using unloc_test::reference_server_options;

namespace {

json token_request(const reference_server& server) {
  return {{"grant_type", "client_credentials"},
          {"client_id", server.client_id()},
          {"client_secret", server.client_secret()},
          {"scope", "project.admin"},
          {"project_id", server.project_id()}};
}

json body_of(const httplib::Result& result) {
  REQUIRE(result);
  return json::parse(result->body);
}

std::string iso(std::chrono::system_clock::duration ago) {
  return unloc::format_timestamp(std::chrono::time_point_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now() - ago));
}

// Every page of a log, following nextCursor; checks the order as it goes.
std::vector<std::string> read_all_pages(api_client& api, const std::string& first, int& pages) {
  std::vector<std::string> ids;
  std::string last_created;
  std::string path = first;
  pages = 0;
  while (true) {
    auto result = api.get(path);
    REQUIRE(result);
    REQUIRE(result->status == 200);
    const json page = json::parse(result->body);
    ++pages;
    for (const auto& event : page.at("accessEvents")) {
      const auto created = event.at("created").get<std::string>();
      if (!last_created.empty()) REQUIRE(created <= last_created);  // newest first
      last_created = created;
      ids.push_back(event.at("id").get<std::string>());
    }
    if (page.at("nextCursor").is_null()) break;
    const char* separator = first.find('?') == std::string::npos ? "?" : "&";
    path = first + separator + "cursor=" + page.at("nextCursor").get<std::string>();
  }
  return ids;
}

}  // namespace

TEST_CASE("issues tokens for the configured client and refuses others", "[reference_server]") {
  reference_server server;
  auto client = https_client(server);
  const json good = token_request(server);

  auto ok = client->Post("/v2/auth/token/", good.dump(), "application/json");
  const json token = body_of(ok);
  CHECK(ok->status == 200);
  CHECK(token.at("token_type") == "bearer");
  CHECK(token.at("expires_in") == 3600);
  CHECK(token.at("scope") == json::array({"project.admin"}));
  CHECK(token.at("project_id") == server.project_id());
  CHECK(token.at("access_token").get<std::string>().size() > 40);

  const auto refused = [&](const json& body, int status, const std::string& code) {
    auto result = client->Post("/v2/auth/token/", body.dump(), "application/json");
    REQUIRE(result);
    CHECK(result->status == status);
    CHECK(json::parse(result->body).at("error") == code);
    CHECK(result->body.find(server.client_secret()) == std::string::npos);
  };
  json wrong = good;
  wrong["client_secret"] = "not-the-secret";
  refused(wrong, 401, "invalid_client");
  wrong = good;
  wrong["client_id"] = "someone-else";
  refused(wrong, 401, "invalid_client");
  wrong = good;
  wrong["grant_type"] = "password";
  refused(wrong, 400, "unsupported_grant_type");
  wrong = good;
  wrong["scope"] = "organization.admin";
  refused(wrong, 400, "invalid_scope");
  wrong = good;
  wrong["project_id"] = "00000000-0000-4000-8000-000000000000";
  refused(wrong, 401, "invalid_client");
  wrong = good;
  wrong.erase("project_id");
  refused(wrong, 400, "invalid_request");
  auto not_json = client->Post("/v2/auth/token/", "grant_type=client_credentials",
                               "application/x-www-form-urlencoded");
  REQUIRE(not_json);
  CHECK(not_json->status == 400);
}

TEST_CASE("refuses API calls without a valid unexpired token", "[reference_server]") {
  reference_server_options options;
  options.token_lifetime = std::chrono::seconds(0);  // expired as soon as issued
  reference_server server(options);
  auto client = https_client(server);
  const std::string path = "/v2/projects/" + server.project_id() + "/webhooks";

  const auto expect_invalid_token = [&](const httplib::Headers& headers) {
    auto result = client->Get(path, headers);
    REQUIRE(result);
    CHECK(result->status == 401);
    CHECK(json::parse(result->body).at("error") == "invalid_token");
    CHECK(result->get_header_value("WWW-Authenticate").find("Bearer") == 0);
  };
  expect_invalid_token({});
  expect_invalid_token({{"Authorization", "Bearer made-up"}});
  expect_invalid_token({{"Authorization", "Basic dXNlcjpwYXNz"}});
  expect_invalid_token({{"Authorization", "Bearer " + server.fetch_token()}});  // expired
}

TEST_CASE("registers, lists and deletes webhooks; the same url and lock give 409",
          "[reference_server]") {
  reference_server server;
  api_client api{server};
  const json registration = {{"trigger", "accessEvent"},
                             {"url", "https://user:pass@vandelay.ind/accessEvents"},
                             {"lockId", lock_a}};
  auto created = api.post(api.project("/webhooks"), registration);
  const json hook = body_of(created);
  CHECK(created->status == 201);
  CHECK(hook.at("trigger") == "accessEvent");
  CHECK(hook.at("url") == registration.at("url"));
  CHECK(hook.at("lockId") == lock_a);
  CHECK(hook.at("id").get<std::string>().size() == 36);
  CHECK(hook.at("created").is_string());

  auto again = api.post(api.project("/webhooks"), registration);
  CHECK(again->status == 409);
  CHECK(body_of(again) == hook);

  json no_lock = registration;
  no_lock.erase("lockId");
  auto project_wide = api.post(api.project("/webhooks"), no_lock);
  CHECK(project_wide->status == 201);
  CHECK(body_of(project_wide).at("lockId").is_null());

  auto list = api.get(api.project("/webhooks"));
  CHECK(list->status == 200);
  CHECK(body_of(list).at("webhooks").size() == 2);
  CHECK(body_of(list).at("webhooks")[0] == hook);

  auto deleted = api.del(api.project("/webhooks/" + hook.at("id").get<std::string>()));
  REQUIRE(deleted);
  CHECK(deleted->status == 204);
  CHECK(deleted->body.empty());
  CHECK(api.del(api.project("/webhooks/" + hook.at("id").get<std::string>()))->status == 404);
  CHECK(api.del(api.project("/webhooks/not-a-uuid"))->status == 404);
  CHECK(body_of(api.get(api.project("/webhooks"))).at("webhooks").size() == 1);

  auto other_project = api.get("/v2/projects/00000000-0000-4000-8000-000000000000/webhooks");
  CHECK(other_project->status == 404);
}

TEST_CASE("rejects invalid webhook registrations, naming the problem", "[reference_server]") {
  reference_server server;
  api_client api{server};
  const auto rejected = [&](const json& body, const std::string& code, const std::string& says) {
    auto result = api.post(api.project("/webhooks"), body);
    REQUIRE(result);
    CHECK(result->status == 400);
    const json error = json::parse(result->body);
    CHECK(error.at("error") == code);
    CHECK_THAT(error.at("message").get<std::string>(), Catch::Contains(says));
  };
  rejected({{"trigger", "accessEvent"}, {"url", "http://vandelay.ind/x"}}, "invalid_url", "https");
  rejected({{"trigger", "accessEvent"}, {"url", "https://us@er:pw@vandelay.ind/x"}}, "invalid_url",
           "reserved character");
  rejected({{"trigger", "lockEvent"}, {"url", "https://vandelay.ind/x"}}, "invalid_trigger",
           "accessEvent");
  rejected({{"url", "https://vandelay.ind/x"}}, "invalid_request", "trigger");
  rejected({{"trigger", "accessEvent"}}, "invalid_request", "url");
  rejected({{"trigger", "accessEvent"}, {"url", "https://vandelay.ind/x"}, {"lockId", "nope"}},
           "invalid_request", "lockId");
  rejected(json::array(), "invalid_request", "object");
}

TEST_CASE("pages through 2500 events newest first, each once, while events are recorded",
          "[reference_server]") {
  reference_server server;
  api_client api{server};
  const auto recorded = server.record_events(lock_a, 2500);
  server.record_events(lock_b, 30);
  REQUIRE(recorded.size() == 2500);

  // Page by page, recording newer events after the third page: they are not
  // part of this run, and nothing is skipped or repeated.
  std::vector<std::string> seen;
  std::string path = api.project("/locks/" + lock_a + "/logs/access?limit=100");
  int pages = 0;
  while (true) {
    const json page = body_of(api.get(path));
    ++pages;
    for (const auto& event : page.at("accessEvents")) {
      CHECK(event.at("lockId") == lock_a);
      seen.push_back(event.at("id").get<std::string>());
    }
    if (pages == 3) server.record_events(lock_a, 5);
    if (page.at("nextCursor").is_null()) break;
    path = api.project("/locks/" + lock_a +
                       "/logs/access?limit=100&cursor=" + page.at("nextCursor").get<std::string>());
  }
  CHECK(pages == 25);
  CHECK(seen == recorded);  // recorded newest first, 1 s apart

  int project_pages = 0;
  const auto everything =
      read_all_pages(api, api.project("/logs/access?limit=1000"), project_pages);
  CHECK(everything.size() == 2535);
  CHECK(std::set<std::string>(everything.begin(), everything.end()).size() == 2535);
  CHECK(project_pages == 3);
  const auto only_b =
      read_all_pages(api, api.project("/logs/access?lockId=" + lock_b + "&limit=7"), project_pages);
  CHECK(only_b.size() == 30);
  CHECK(project_pages == 5);

  // A cursor answers only the query it came from.
  const json first = body_of(api.get(api.project("/logs/access?limit=10")));
  auto reused = api.get(api.project(
      "/locks/" + lock_a + "/logs/access?cursor=" + first.at("nextCursor").get<std::string>()));
  CHECK(reused->status == 400);
  CHECK(body_of(reused).at("error") == "invalid_cursor");
}

TEST_CASE("serves only the last 30 days and validates the query", "[reference_server]") {
  reference_server server;
  api_client api{server};
  const auto old = server.record_events(lock_a, 1, {{"created", iso(std::chrono::hours(24 * 31))}});
  const auto recent =
      server.record_events(lock_a, 1, {{"created", iso(std::chrono::hours(24 * 29))}});
  const auto today = server.record_events(lock_a, 1);
  const std::string log = api.project("/locks/" + lock_a + "/logs/access");
  int pages = 0;

  CHECK(read_all_pages(api, log, pages) == std::vector<std::string>{today[0], recent[0]});
  CHECK(read_all_pages(api, log + "?from=" + iso(std::chrono::hours(24 * 40)), pages) ==
        std::vector<std::string>{today[0], recent[0]});
  CHECK(read_all_pages(api, log + "?to=" + iso(std::chrono::hours(24 * 1)), pages) ==
        std::vector<std::string>{recent[0]});
  CHECK(read_all_pages(api,
                       log + "?from=" + iso(std::chrono::hours(24 * 40)) +
                           "&to=" + iso(std::chrono::hours(24 * 30 + 12)),
                       pages)
            .empty());

  for (const std::string query :
       {"?limit=0", "?limit=1001", "?limit=ten", "?from=yesterday", "?to=2024-02-30T00:00:00Z",
        "?cursor=bm90LWEtY3Vyc29y", "?from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z"}) {
    INFO(query);
    auto result = api.get(log + query);
    REQUIRE(result);
    CHECK(result->status == 400);
  }
  CHECK(api.get(api.project("/locks/not-a-lock/logs/access"))->status == 400);
  CHECK(api.get(api.project("/logs/access?lockId=zzz"))->status == 400);
}

TEST_CASE("injects each kind of fault on the endpoint asked for", "[reference_server]") {
  reference_server server;
  api_client api{server};
  server.record_events(lock_a, 3);
  const std::string log = api.project("/logs/access");
  const auto fault = [&](const std::string& kind, json extra = json::object()) {
    extra["kind"] = kind;
    if (!extra.contains("endpoint")) extra["endpoint"] = "logs";
    server.inject_fault(extra);
  };

  for (const int status : {500, 502, 503, 504}) {
    fault(std::to_string(status));
    auto result = api.get(log);
    REQUIRE(result);
    CHECK(result->status == status);
    CHECK(json::parse(result->body).at("error").is_string());
    CHECK_FALSE(result->get_header_value("x-request-id").empty());
    CHECK(api.get(log)->status == 200);  // count defaults to 1
  }

  fault("429", {{"retryAfter", "3"}});
  auto limited = api.get(log);
  CHECK(limited->status == 429);
  CHECK(limited->get_header_value("Retry-After") == "3");
  fault("503", {{"retryAfter", "Wed, 21 Oct 2015 07:28:00 GMT"}});
  CHECK(api.get(log)->get_header_value("Retry-After") == "Wed, 21 Oct 2015 07:28:00 GMT");

  fault("html");
  auto proxy = api.get(log);
  CHECK(proxy->status == 502);
  CHECK(proxy->get_header_value("Content-Type") == "text/html");
  CHECK_THAT(proxy->body, Catch::Contains("<html>"));

  fault("slow", {{"delayMs", 300}});
  const auto start = std::chrono::steady_clock::now();
  auto slow = api.get(log);
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(300));
  CHECK(slow->status == 200);

  for (const std::string kind : {"drop", "reset", "half_body"}) {
    INFO(kind);
    fault(kind);
    CHECK_FALSE(api.get(log));  // no complete response
    CHECK(api.get(log)->status == 200);
  }

  fault("malformed_json");
  auto malformed = api.get(log);
  CHECK(malformed->status == 200);
  CHECK_FALSE(json::accept(malformed->body));

  fault("expire_token", {{"endpoint", "any"}});
  auto expired = api.get(log);
  CHECK(expired->status == 401);
  CHECK(body_of(expired).at("error") == "invalid_token");
  CHECK(api.get(log)->status == 401);  // the token stays revoked
  api.token = server.fetch_token();
  CHECK(api.get(log)->status == 200);

  // count and after: the 2nd and 3rd token requests fail, not the others; logs unaffected.
  fault("503", {{"endpoint", "token"}, {"count", 2}, {"after", 1}});
  auto token_client = https_client(server);
  std::vector<int> statuses;
  for (int i = 0; i < 4; ++i) {
    statuses.push_back(
        token_client->Post("/v2/auth/token/", token_request(server).dump(), "application/json")
            ->status);
    CHECK(api.get(log)->status == 200);
  }
  CHECK(statuses == std::vector<int>{200, 503, 503, 200});

  fault("500", {{"endpoint", "any"}, {"count", -1}});
  for (int i = 0; i < 5; ++i) CHECK(api.get(log)->status == 500);
  CHECK(server.admin("GET", "/_admin/faults").at("faults").size() == 1);
  server.clear_faults();
  CHECK(api.get(log)->status == 200);

  CHECK_THROWS(server.inject_fault({{"kind", "boom"}}));
  CHECK_THROWS(server.inject_fault({{"kind", "expire_token"}, {"endpoint", "token"}}));
  CHECK_THROWS(server.inject_fault({{"kind", "500"}, {"endpoint", "everything"}}));
  CHECK(server.request_counts().at("faultsServed") == 20);
}

TEST_CASE("counts requests and connections, and tags every response with a request id",
          "[reference_server]") {
  reference_server server;
  api_client api{server};
  server.reset_request_counts();
  std::set<std::string> request_ids;
  for (int i = 0; i < 50; ++i) {
    auto result = api.get(api.project("/webhooks"));
    REQUIRE(result);
    request_ids.insert(result->get_header_value("x-request-id"));
  }
  auto missing = api.get("/v2/nothing-here");
  CHECK(missing->status == 404);
  CHECK(body_of(missing).at("error") == "not_found");
  request_ids.insert(missing->get_header_value("x-request-id"));
  CHECK(request_ids.size() == 51);

  const json counts = server.request_counts();
  CHECK(counts.at("webhooks") == 50);
  CHECK(counts.at("other") == 1);
  CHECK(counts.at("api") == 51);
  CHECK(counts.at("token") == 0);
  // One kept-alive connection carried all 51 calls (the admin client has its own).
  CHECK(counts.at("apiConnections") == 1);
  CHECK(counts.at("connections") == 1);
  CHECK(counts.at("tlsHandshakes") == 1);
  CHECK(server.admin("GET", "/_admin/health") == json{{"ok", true}});
}

TEST_CASE("is trusted through the test CA only", "[reference_server]") {
  reference_server server;
  httplib::SSLClient wrong_ca("127.0.0.1", server.port());
  wrong_ca.set_ca_cert_path(unloc_test::test_tls_files().other_ca_cert);
  wrong_ca.enable_server_certificate_verification(true);
  auto refused = wrong_ca.Get("/_admin/health");
  CHECK_FALSE(refused);
  CHECK(refused.error() == httplib::Error::SSLServerVerification);
  httplib::SSLClient by_name("localhost", server.port());
  by_name.set_ca_cert_path(server.ca_file());
  by_name.enable_server_certificate_verification(true);
  auto trusted = by_name.Get("/_admin/health");
  REQUIRE(trusted);
  CHECK(trusted->status == 200);
}

TEST_CASE("loads a seed file and stops cleanly on SIGTERM", "[reference_server]") {
  const std::string seed = unloc_test::test_tls_files().dir + "/seed.json";
  const json event = {{"id", "ae832e61-c8fa-4ed9-8196-61210cb4207b"},
                      {"action", "viewedCode"},
                      {"created", iso(std::chrono::hours(1))},
                      {"keyId", "3f97fafb-1b6a-42d0-85fa-ae2ef338cc45"},
                      {"lockId", lock_a},
                      {"lockName", "North gate"},
                      {"appUserId", nullptr},
                      {"userName", ""}};
  std::ofstream(seed) << json{
      {"webhooks", {{{"url", "https://vandelay.ind/hooks"}, {"lockId", lock_a}}}},
      {"accessEvents",
       {event}}}.dump();
  reference_server_options options;
  options.seed_file = seed;
  reference_server server(options);
  api_client api{server};
  const json hooks = body_of(api.get(api.project("/webhooks"))).at("webhooks");
  REQUIRE(hooks.size() == 1);
  CHECK(hooks[0].at("url") == "https://vandelay.ind/hooks");
  const json log = body_of(api.get(api.project("/locks/" + lock_a + "/logs/access")));
  CHECK(log.at("accessEvents") == json::array({event}));
  CHECK(server.stop() == 0);
  CHECK(server.log_text().find(server.client_secret()) == std::string::npos);

  std::ofstream(seed) << R"({"accessEvents":[{"id":"x"}]})";
  CHECK_THROWS_WITH(reference_server(options), Catch::Contains("accessEvents[0]"));
  std::remove(seed.c_str());
}

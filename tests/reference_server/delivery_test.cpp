// The reference server's webhook deliveries, to a receiver in the test over
// HTTPS: matching, Basic credentials, retries, duplicates, the offline app;
// and plain HTTP to loopback with --allow-http-loopback-webhooks.

#include <unloc/credentials.hpp>
#include <unloc/parse.hpp>

#include "catch.hpp"
#include "helpers.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

using nlohmann::json;
using server_test::api_client;
using server_test::receiver;
using unloc_test::lock_a;
using unloc_test::lock_b;
using unloc_test::reference_server;
using unloc_test::reference_server_options;

namespace {

json register_hook(api_client& api, const std::string& url, const std::string& lock = {}) {
  json body = {{"trigger", "accessEvent"}, {"url", url}};
  if (!lock.empty()) body["lockId"] = lock;
  auto result = api.post(api.project("/webhooks"), body);
  REQUIRE(result);
  REQUIRE(result->status == 201);
  return json::parse(result->body);
}

std::vector<std::string> ids_of(const std::vector<server_test::delivery>& deliveries) {
  std::vector<std::string> ids;
  for (const auto& d : deliveries) {
    auto event = unloc::parse_access_event(d.body);
    REQUIRE(event);
    ids.push_back(event->id.to_string());
  }
  return ids;
}

}  // namespace

TEST_CASE("delivers each event to the matching webhooks with Basic credentials",
          "[reference_server]") {
  receiver hooks;
  reference_server server;
  api_client api{server};
  register_hook(api, hooks.url("/lockA", "integrator", "s3cret-pw"), lock_a);
  register_hook(api, hooks.url("/lockB"), lock_b);
  register_hook(api, hooks.url("/everything", "all", "pw"));

  const auto ids = server.record_events(lock_a, 3, {{"userName", "Kramer"}});
  REQUIRE(server.wait_for_deliveries());
  const auto received = hooks.received();
  REQUIRE(received.size() == 6);
  std::map<std::string, int> per_path;
  for (const auto& d : received) {
    ++per_path[d.path];
    CHECK(d.content_type == "application/json");
    auto event = unloc::parse_access_event(d.body);
    REQUIRE(event);
    CHECK(event->lock_id.to_string() == lock_a);
    CHECK(event->user_name == "Kramer");
    CHECK(std::find(ids.begin(), ids.end(), event->id.to_string()) != ids.end());
    const unloc::basic_credentials expected =
        d.path == "/lockA" ? unloc::basic_credentials{"integrator", "s3cret-pw"}
                           : unloc::basic_credentials{"all", "pw"};
    CHECK(d.authorization == unloc::basic_authorization(expected));
  }
  CHECK(per_path == std::map<std::string, int>{{"/lockA", 3}, {"/everything", 3}});

  // The body is the event as the access log serves it.
  const json log = json::parse(api.get(api.project("/logs/access"))->body).at("accessEvents");
  for (const auto& d : received) {
    CHECK(std::find(log.begin(), log.end(), json::parse(d.body)) != log.end());
  }

  const json counts = server.delivery_counts();
  CHECK(counts.at("queued") == 6);
  CHECK(counts.at("delivered") == 6);
  CHECK(counts.at("failedAttempts") == 0);
  CHECK(counts.at("pending") == 0);
}

TEST_CASE("holds offline events, then reports them late and out of order", "[reference_server]") {
  receiver hooks;
  reference_server server;
  api_client api{server};
  register_hook(api, hooks.url("/hook", "u", "p"), lock_a);

  const auto live = server.record_events(lock_a, 1);
  const auto held = server.record_events(lock_a, 20, {{"offline", true}, {"spacingMs", 60000}});
  REQUIRE(server.wait_for_deliveries());
  CHECK(ids_of(hooks.received()) == live);
  CHECK(server.delivery_counts().at("held") == 20);
  const std::string log = api.project("/locks/" + lock_a + "/logs/access");
  CHECK(json::parse(api.get(log)->body).at("accessEvents").size() == 1);

  const auto released = server.release_offline();
  REQUIRE(server.wait_for_deliveries());
  CHECK(std::is_permutation(released.begin(), released.end(), held.begin(), held.end()));
  CHECK(released != held);  // not in the order they happened
  const auto received = hooks.received();
  REQUIRE(received.size() == 21);
  std::vector<std::string> late = ids_of(received);
  late.erase(late.begin());
  CHECK(std::is_permutation(late.begin(), late.end(), held.begin(), held.end()));
  CHECK_FALSE(std::is_sorted(late.begin(), late.end(), [&held](const auto& a, const auto& b) {
    return std::find(held.begin(), held.end(), a) < std::find(held.begin(), held.end(), b);
  }));
  CHECK(json::parse(api.get(log)->body).at("accessEvents").size() == 21);
  CHECK(server.delivery_counts().at("held") == 0);
}

TEST_CASE("retries a delivery the receiver failed, with backoff", "[reference_server]") {
  receiver hooks(1);  // 500 the first time
  reference_server server;
  api_client api{server};
  register_hook(api, hooks.url("/hook"), lock_a);
  const auto ids = server.record_events(lock_a, 1);
  REQUIRE(server.wait_for_deliveries());
  CHECK(hooks.attempts() == 2);
  CHECK(ids_of(hooks.received()) == ids);
  const json counts = server.delivery_counts();
  CHECK(counts.at("delivered") == 1);
  CHECK(counts.at("failedAttempts") == 1);
  CHECK(counts.at("gaveUp") == 0);
}

TEST_CASE("gives up after the last attempt; never trusts an unknown CA", "[reference_server]") {
  receiver wrong_ca(0, true);
  receiver down(1000);
  reference_server_options options;
  options.delivery_attempts = 3;
  options.delivery_backoff = std::chrono::milliseconds(1);
  reference_server server(options);
  api_client api{server};
  register_hook(api, wrong_ca.url("/hook"), lock_a);
  register_hook(api, down.url("/hook"), lock_a);
  server.record_events(lock_a, 1);
  REQUIRE(server.wait_for_deliveries());
  CHECK(wrong_ca.attempts() == 0);  // the TLS handshake failed: no request was made
  CHECK(down.attempts() == 3);
  const json counts = server.delivery_counts();
  CHECK(counts.at("failedAttempts") == 6);
  CHECK(counts.at("gaveUp") == 2);
  CHECK(counts.at("delivered") == 0);
}

TEST_CASE("delivers an event twice when asked to", "[reference_server]") {
  receiver hooks;
  reference_server server;
  api_client api{server};
  register_hook(api, hooks.url("/hook"));
  const auto twice = server.record_events(lock_a, 1, {{"deliverTwice", true}});
  REQUIRE(server.wait_for_deliveries());
  CHECK(ids_of(hooks.received()) == std::vector<std::string>{twice[0], twice[0]});

  server.admin("POST", "/_admin/deliveries/duplicate", {{"probability", 1.0}});
  server.record_events(lock_b, 5);
  REQUIRE(server.wait_for_deliveries());
  CHECK(hooks.received().size() == 12);
  CHECK(server.delivery_counts().at("duplicated") == 6);
}

TEST_CASE("delivers to an http:// loopback webhook only with --allow-http-loopback-webhooks",
          "[reference_server]") {
  receiver plain(0, false, true);
  const std::string url = plain.url("/hook", "laptop", "pw");
  {
    reference_server server;
    api_client api{server};
    auto refused = api.post(api.project("/webhooks"), {{"trigger", "accessEvent"}, {"url", url}});
    REQUIRE(refused);
    CHECK(refused->status == 400);
    CHECK(json::parse(refused->body).at("error") == "invalid_url");
  }
  reference_server_options options;
  options.extra_args = {"--allow-http-loopback-webhooks"};
  reference_server server(options);
  api_client api{server};
  for (const std::string other :
       {"http://example.com/hook", "http://10.0.0.1:8080/hook", "http://127.0.0.1.nip.io/hook"}) {
    auto refused = api.post(api.project("/webhooks"), {{"trigger", "accessEvent"}, {"url", other}});
    REQUIRE(refused);
    CHECK(refused->status == 400);
  }
  register_hook(api, url, lock_a);
  const auto ids = server.record_events(lock_a, 2);
  REQUIRE(server.wait_for_deliveries());
  const auto received = plain.received();
  const auto got = ids_of(received);
  CHECK(std::is_permutation(got.begin(), got.end(), ids.begin(), ids.end()));
  for (const auto& d : received) {
    CHECK(d.authorization == unloc::basic_authorization({"laptop", "pw"}));
    CHECK(d.content_type == "application/json");
  }
}

#include "catch.hpp"
#include "fixtures.hpp"

#include <unloc/json_member.hpp>
#include <unloc/webhook.hpp>

#include "support/same_json.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using unloc::json_member;
using unloc::webhook;
using unloc::webhook_registration;
using unloc_test::extra_json;
using unloc_test::members_of;

constexpr std::string_view url_with_credentials =
    "https://myuser:mypasswoord@vandelay.ind/accessEvents";
constexpr std::string_view password = "mypasswoord";

// The request body of "Registering a webhook" in Unloc's API documentation, verbatim.
const std::string api_registration_body =
    R"({"trigger":"accessEvent","url":"https://vandelay.ind/accessEvents",)"
    R"("lockId":"df50a61f-9e1f-4e1c-9e89-8395c908065a"})";

// The 201 response of the reference server.
const std::string api_webhook =
    R"({"id":"5b1e3c1a-8a43-4d0e-9b8e-2f6a0c7d9e11","trigger":"accessEvent",)"
    R"("url":"https://vandelay.ind/accessEvents",)"
    R"("lockId":"df50a61f-9e1f-4e1c-9e89-8395c908065a","created":"2024-03-05T08:15:30.250Z"})";

using unit::has_text;

unloc::uuid uuid_of(std::string_view text) { return unloc::uuid::parse(text).value(); }

webhook_registration documented_registration() {
  webhook_registration r;
  r.url = "https://vandelay.ind/accessEvents";
  r.lock_id = uuid_of("df50a61f-9e1f-4e1c-9e89-8395c908065a");
  return r;
}

}  // namespace

TEST_CASE("to_string of a registration never contains the URL's password", "[webhook]") {
  webhook_registration r = documented_registration();
  r.url = std::string(url_with_credentials);
  const std::string line = unloc::to_string(r);
  INFO(line);
  CHECK_FALSE(has_text(line, password));
  CHECK(has_text(line, "REDACTED"));
  CHECK(has_text(line, "vandelay.ind/accessEvents"));
  CHECK(has_text(line, "df50a61f-9e1f-4e1c-9e89-8395c908065a"));
}

TEST_CASE("to_string of a webhook never contains the URL's password", "[webhook]") {
  auto w = nlohmann::json::parse(api_webhook).get<webhook>();
  for (const std::string_view url :
       {url_with_credentials, std::string_view("https://myuser:mypasswoord@vandelay.ind:8443/a?b=c"),
        std::string_view("https://myuser:mypasswoord@vandelay.ind")}) {
    w.url = std::string(url);
    const std::string line = unloc::to_string(w);
    INFO(line);
    CHECK_FALSE(has_text(line, password));
    CHECK(has_text(line, "vandelay.ind"));
    CHECK(has_text(line, "5b1e3c1a-8a43-4d0e-9b8e-2f6a0c7d9e11"));
  }
}

TEST_CASE("a registration is written as the API's request body", "[webhook]") {
  const webhook_registration r = documented_registration();
  CHECK(r.trigger == "accessEvent");

  const nlohmann::ordered_json ordered = r;
  CHECK(ordered.dump() == api_registration_body);

  const nlohmann::json j = r;
  CHECK(j == nlohmann::json::parse(api_registration_body));
}

TEST_CASE("a registration keeps the URL's credentials in the request body", "[webhook]") {
  webhook_registration r = documented_registration();
  r.url = std::string(url_with_credentials);
  const nlohmann::json j = r;
  CHECK(j.at("url") == std::string(url_with_credentials));
}

TEST_CASE("a registration without a Lock sends no lockId", "[webhook]") {
  webhook_registration r;
  r.url = "https://vandelay.ind/accessEvents";
  const nlohmann::json j = r;
  CHECK(j == nlohmann::json{{"trigger", "accessEvent"}, {"url", "https://vandelay.ind/accessEvents"}});
}

TEST_CASE("a registration survives a round trip through JSON", "[webhook]") {
  const auto back = nlohmann::json::parse(api_registration_body).get<webhook_registration>();
  CHECK(back.trigger == "accessEvent");
  CHECK(back.url == "https://vandelay.ind/accessEvents");
  REQUIRE(back.lock_id.has_value());
  CHECK(back.lock_id->to_string() == "df50a61f-9e1f-4e1c-9e89-8395c908065a");
  CHECK(nlohmann::json(back) == nlohmann::json::parse(api_registration_body));
}

TEST_CASE("reads the webhook the API returns", "[webhook]") {
  const auto w = nlohmann::json::parse(api_webhook).get<webhook>();
  CHECK(w.id.to_string() == "5b1e3c1a-8a43-4d0e-9b8e-2f6a0c7d9e11");
  CHECK(w.trigger == "accessEvent");
  CHECK(w.url == "https://vandelay.ind/accessEvents");
  REQUIRE(w.lock_id.has_value());
  CHECK(w.lock_id->to_string() == "df50a61f-9e1f-4e1c-9e89-8395c908065a");
  REQUIRE(w.created.has_value());
  CHECK(unloc::format_timestamp(*w.created) == "2024-03-05T08:15:30.250Z");
  CHECK(w.extra.empty());
}

TEST_CASE("a webhook survives a round trip through nlohmann::json", "[webhook]") {
  const auto j = nlohmann::json::parse(api_webhook);
  const nlohmann::json back = j.get<webhook>();
  CHECK(back == j);
}

TEST_CASE("a webhook survives a round trip through nlohmann::ordered_json", "[webhook]") {
  const auto j = nlohmann::ordered_json::parse(api_webhook);
  const nlohmann::ordered_json back = j.get<webhook>();
  CHECK(back.dump() == api_webhook);
}

TEST_CASE("a webhook without a Lock has lockId null through a round trip", "[webhook]") {
  auto j = nlohmann::json::parse(api_webhook);
  j["lockId"] = nullptr;
  const auto w = j.get<webhook>();
  CHECK_FALSE(w.lock_id.has_value());
  CHECK_FALSE(unloc::find_member(w.extra, "lockId").has_value());
  CHECK(w.extra.empty());
  const nlohmann::json back = w;
  REQUIRE(back.contains("lockId"));
  CHECK(back.at("lockId").is_null());
  CHECK(back == j);
  CHECK(has_text(unloc::to_string(w), "lock=null"));
}

TEST_CASE("a webhook without created has none and writes none", "[webhook]") {
  auto j = nlohmann::json::parse(api_webhook);
  j.erase("created");
  const auto w = j.get<webhook>();
  CHECK_FALSE(w.created.has_value());
  const nlohmann::json back = w;
  CHECK_FALSE(back.contains("created"));
  CHECK(back == j);
}

TEST_CASE("a webhook keeps unknown extra fields through a round trip", "[webhook]") {
  auto j = nlohmann::json::parse(api_webhook);
  j["active"] = true;
  j["lastDelivery"] = {{"status", 200}, {"at", "2024-03-06T00:00:00.000Z"}};
  const auto w = j.get<webhook>();
  REQUIRE(w.extra.size() == 2);
  const nlohmann::json extra = extra_json(w.extra);
  CHECK(extra.at("active") == true);
  CHECK(extra.at("lastDelivery").at("status") == 200);
  CHECK_FALSE(extra.contains("id"));
  CHECK_FALSE(extra.contains("url"));
  CHECK(w.extra == std::vector<json_member>{
                       {"active", "true"},
                       {"lastDelivery", R"({"at":"2024-03-06T00:00:00.000Z","status":200})"}});

  const nlohmann::json back = w;
  CHECK(back == j);
}

TEST_CASE("an extra field never overwrites a known field of a webhook", "[webhook]") {
  auto w = nlohmann::json::parse(api_webhook).get<webhook>();
  w.extra = members_of(nlohmann::ordered_json{{"url", "https://evil.example/steal"}, {"note", "kept"}});
  const nlohmann::json j = w;
  CHECK(j.at("url") == "https://vandelay.ind/accessEvents");
  CHECK(j.at("note") == "kept");
}

TEST_CASE("reading a webhook without id or url throws", "[webhook]") {
  auto no_id = nlohmann::json::parse(api_webhook);
  no_id.erase("id");
  CHECK_THROWS_AS(no_id.get<webhook>(), std::invalid_argument);

  auto no_url = nlohmann::json::parse(api_webhook);
  no_url.erase("url");
  CHECK_THROWS_AS(no_url.get<webhook>(), std::invalid_argument);
}

TEST_CASE("reading a webhook with an id, lockId or created that is not valid throws",
          "[webhook]") {
  for (const char* field : {"id", "lockId", "created"}) {
    auto j = nlohmann::json::parse(api_webhook);
    j[field] = "not valid";
    INFO(field);
    CHECK_THROWS(j.get<webhook>());
  }
}

TEST_CASE("from_json of a registration throws std::invalid_argument naming the field",
          "[webhook]") {
  auto bad_lock = nlohmann::json::parse(
      R"({"trigger":"accessEvent","url":"https://vandelay.ind/a","lockId":"not-a-uuid"})");
  CHECK_THROWS_AS(bad_lock.get<unloc::webhook_registration>(), std::invalid_argument);
  auto no_url = nlohmann::json::parse(R"({"trigger":"accessEvent"})");
  CHECK_THROWS_WITH(no_url.get<unloc::webhook_registration>(), "field 'url' is missing");
}

TEST_CASE("from_json of a webhook with a bad lockId throws std::invalid_argument", "[webhook]") {
  auto j = nlohmann::json::parse(
      R"({"id":"5b1e3c1a-8a43-4d0e-9b8e-2f6a0c7d9e11","url":"https://vandelay.ind/a","lockId":"x"})");
  CHECK_THROWS_AS(j.get<unloc::webhook>(), std::invalid_argument);
}

TEST_CASE("parse_webhook keeps unknown fields as their text, in the order received", "[webhook]") {
  const std::string body = api_webhook.substr(0, api_webhook.size() - 1) +
                           R"(,"zeta":1E2,"alpha":"caf\u00e9\/x","mid":{ "b" : 1.50 , "a" : [ ] }})";
  const std::vector<json_member> expected = {
      {"zeta", "1E2"}, {"alpha", "\"caf\xC3\xA9/x\""}, {"mid", R"({"b":1.50,"a":[]})"}};
  for (const std::string& text : {body, R"({"webhook":)" + body + "}"}) {
    INFO(text);
    const auto w = unloc::parse_webhook(text);
    REQUIRE(w.has_value());
    CHECK(w->id.to_string() == "5b1e3c1a-8a43-4d0e-9b8e-2f6a0c7d9e11");
    CHECK(w->extra == expected);
    CHECK(unloc::find_member(w->extra, "zeta") == std::optional<std::string_view>("1E2"));
    CHECK_FALSE(unloc::find_member(w->extra, "url").has_value());
    CHECK(unloc_test::same_json(extra_json(w->extra),
                                nlohmann::json::parse(R"({"zeta":1E2,"alpha":"caf\u00e9/x",)"
                                                      R"("mid":{"b":1.50,"a":[]}})")));
  }
  const auto list = unloc::parse_webhook_list(R"({"webhooks":[)" + body + "," + api_webhook + "]}");
  REQUIRE(list.has_value());
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].extra == expected);
  CHECK((*list)[1].extra.empty());
}

TEST_CASE("parse_webhook rejects a duplicate key as an invalid response naming it", "[webhook]") {
  const std::string head = api_webhook.substr(0, api_webhook.size() - 1);
  const std::pair<std::string, std::string> cases[] = {
      {head + R"(,"note":1,"note":2})", "note"},
      {head + R"(,"note":{"a":1,"a":2}})", "a"},
      {head + R"(,"url":"https://evil.example/"})", "url"},
  };
  for (const auto& [text, key] : cases) {
    INFO(text);
    const auto w = unloc::parse_webhook(text);
    REQUIRE_FALSE(w.has_value());
    CHECK(w.error().category == unloc::error_category::invalid_response);
    CHECK(w.error().field == key);
    CHECK(has_text(w.error().message, "duplicate key '" + key + "'"));
  }
}

TEST_CASE("an escaped key is still named in the error after an escaped value", "[webhook]") {
  const std::string long_value = "\\u0041" + std::string(40, 'a');
  const auto hook = unloc::parse_webhook(R"({"x\u0041xxxxxxxxxxxxxxxxxxxx":1,"i\u0064":")" +
                                         long_value + R"(","url":"https://h/p"})");
  REQUIRE_FALSE(hook.has_value());
  CHECK(hook.error().category == unloc::error_category::invalid_response);
  CHECK(hook.error().field == "id");
  CHECK(has_text(hook.error().message, "field 'id' is not a UUID"));
}

TEST_CASE("a list with the key 'webhooks' twice is an invalid response", "[webhook]") {
  const std::string one = R"({"id":"0b4b7d0e-3c7a-4c55-9a3b-6f1e2d3c4b5a","url":"https://h/a"})";
  const auto list = unloc::parse_webhook_list(R"({"webhooks":[)" + one + R"(],"webhooks":[)" +
                                              one + "]}");
  REQUIRE_FALSE(list.has_value());
  CHECK(list.error().category == unloc::error_category::invalid_response);
  CHECK(list.error().field == "webhooks");
}

TEST_CASE("parse_webhook reads the wrapped form with the rules of the bare one", "[webhook]") {
  const std::string inner =
      R"({"id":"0b4b7d0e-3c7a-4c55-9a3b-6f1e2d3c4b5a","url":"https://h/a","battery":{"v":3}})";
  const auto wrapped = unloc::parse_webhook(R"({"webhook":)" + inner + "}");
  REQUIRE(wrapped.has_value());
  CHECK(wrapped->url == "https://h/a");
  CHECK(wrapped->trigger == "accessEvent");
  CHECK(unloc::find_member(wrapped->extra, "battery") == std::optional<std::string_view>(R"({"v":3})"));

  // The wrapper twice is a duplicate key, as any other key twice is.
  const auto twice = unloc::parse_webhook(R"({"webhook":)" + inner + R"(,"webhook":)" + inner + "}");
  REQUIRE_FALSE(twice.has_value());
  CHECK(twice.error().field == "webhook");
  CHECK(has_text(twice.error().message, "duplicate key 'webhook'"));

  // Inside the wrapper, a missing field is named; after it, text that is not JSON wins.
  const auto missing = unloc::parse_webhook(R"({"webhook":{"url":"https://h/a"}})");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().field == "id");
  CHECK(has_text(missing.error().message, "field 'id' is missing"));
  const auto broken = unloc::parse_webhook(R"({"webhook":{"url":"https://h/a"}} x)");
  REQUIRE_FALSE(broken.has_value());
  CHECK(has_text(broken.error().message, "response body is not valid JSON at byte 34"));
}

TEST_CASE("a wrapped webhook with any other member before or after the wrapper is refused",
          "[webhook]") {
  const std::string inner =
      R"({"id":"22222222-2222-2222-2222-222222222222","url":"https://b.example/y","x":1})";
  const std::string known_before =
      R"({"id":"11111111-1111-1111-1111-111111111111","url":"https://a.example/x","webhook":)" +
      inner + "}";
  const std::string known_after = R"({"webhook":)" + inner + R"(,"url":"https://evil.example/z"})";
  const std::string unknown_before = R"({"x":2,"webhook":)" + inner + "}";
  const std::string unknown_after = R"({"webhook":)" + inner + R"(,"x":2})";
  const std::string null_after = R"({"webhook":)" + inner + R"(,"lockId":null})";
  for (const std::string& body :
       {known_before, known_after, unknown_before, unknown_after, null_after}) {
    INFO(body);
    const auto read = unloc::parse_webhook(body);
    CHECK_FALSE(read.has_value());
    if (read) continue;  // each body is told apart
    CHECK(read.error().category == unloc::error_category::invalid_response);
    CHECK(read.error().field == "webhook");
    CHECK(has_text(read.error().message, "field 'webhook' must be the only member of its object"));
  }
  // Text that is not JSON after the member beside the wrapper still says so.
  const auto broken = unloc::parse_webhook(known_after + " x");
  REQUIRE_FALSE(broken.has_value());
  CHECK(has_text(broken.error().message, "response body is not valid JSON"));
}

TEST_CASE("a webhook list checks its other members as every body does", "[webhook]") {
  for (const std::string& body : {std::string(R"({"webhooks":[],"x":1,"x":2})"),
                                  std::string(R"({"webhooks":[],"x":{"a":1,"a":2}})")}) {
    INFO(body);
    const auto list = unloc::parse_webhook_list(body);
    REQUIRE_FALSE(list.has_value());
    CHECK(list.error().category == unloc::error_category::invalid_response);
    CHECK(has_text(list.error().message, "duplicate key"));
  }
  const auto bare = unloc::parse_webhook_list(
      R"([{"id":"0b4b7d0e-3c7a-4c55-9a3b-6f1e2d3c4b5a","url":"https://h/a"}])");
  REQUIRE(bare.has_value());
  CHECK(bare->size() == 1);
}

TEST_CASE("a webhook list tells text that is not JSON from JSON of the wrong shape", "[webhook]") {
  const auto syntax = unloc::parse_webhook_list(R"({"webhooks":[})");
  REQUIRE_FALSE(syntax.has_value());
  CHECK(has_text(syntax.error().message, "response body is not valid JSON"));
  const auto schema = unloc::parse_webhook_list(R"({"webhooks":[{"id":"x","url":"https://h/a"}]})");
  REQUIRE_FALSE(schema.has_value());
  CHECK(schema.error().category == unloc::error_category::invalid_response);
  CHECK(schema.error().field == "id");
  CHECK(has_text(schema.error().message, "field 'id' is not a UUID"));
}

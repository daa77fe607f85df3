#include "catch.hpp"

#include "guide_examples.hpp"
#include "support/same_json.hpp"

#include <unloc/json_member.hpp>
#include <unloc/parse.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace {

using unloc_test::guide_delivery;
using unloc_test::guide_event;
using unloc_test::extra_json;

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("reads the webhooks guide's Access Event into every field", "[parse]") {
  auto event = unloc::parse_access_event(guide_event);
  REQUIRE(event.has_value());
  CHECK(event->id.to_string() == "ae832e61-c8fa-4ed9-8196-61210cb4207b");
  CHECK(event->action == unloc::access_action::unlocked);
  CHECK(event->action_text == "unlocked");
  CHECK(unloc::format_timestamp(event->created) == "2022-01-01T10:35:24.083Z");
  CHECK(event->key_id.to_string() == "3f97fafb-1b6a-42d0-85fa-ae2ef338cc45");
  CHECK(event->lock_id.to_string() == "c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef");
  CHECK(event->lock_name == "North gate");
  REQUIRE(event->app_user_id.has_value());
  CHECK(*event->app_user_id == "+12125552390");
  REQUIRE(event->user_name.has_value());
  CHECK(event->user_name->empty());
  CHECK(event->extra.empty());
}

TEST_CASE("reads the guide's delivery example, whose id has no RFC 4122 version", "[parse]") {
  auto event = unloc::parse_access_event(guide_delivery);
  REQUIRE(event.has_value());
  CHECK(event->id.to_string() == "def32263-a884-aed0-f167-f1a1ccbd297a");
  CHECK(event->action == unloc::access_action::locked);
}

TEST_CASE("keeps an unknown action with its text", "[parse]") {
  auto event = unloc::parse_access_event(replace(guide_event, "\"unlocked\"", "\"jammed\""));
  REQUIRE(event.has_value());
  CHECK(event->action == unloc::access_action::unknown);
  CHECK(event->action_text == "jammed");
}

TEST_CASE("reads viewedCode as its own action", "[parse]") {
  auto event = unloc::parse_access_event(replace(guide_event, "\"unlocked\"", "\"viewedCode\""));
  REQUIRE(event.has_value());
  CHECK(event->action == unloc::access_action::viewed_code);
}

TEST_CASE("takes an absent or null appUserId and userName as none", "[parse]") {
  auto nulls = unloc::parse_access_event(replace(replace(guide_event, "\"+12125552390\"", "null"),
                                                 R"("userName": "")", "\"userName\": null"));
  REQUIRE(nulls.has_value());
  CHECK_FALSE(nulls->app_user_id.has_value());
  CHECK_FALSE(nulls->user_name.has_value());

  auto absent = unloc::parse_access_event(
      replace(replace(guide_event, ",\n  \"appUserId\": \"+12125552390\"", ""),
              ",\n  \"userName\": \"\"", ""));
  REQUIRE(absent.has_value());
  CHECK_FALSE(absent->app_user_id.has_value());
  CHECK_FALSE(absent->user_name.has_value());
}

TEST_CASE("keeps unknown fields, nested ones included, as raw JSON", "[parse]") {
  auto event = unloc::parse_access_event(replace(
      guide_event, R"("userName": "")",
      R"("userName": "", "battery": 87, "source": {"app": "ios", "tags": [1, "a", null, true]})"));
  REQUIRE(event.has_value());
  const nlohmann::json extra = extra_json(event->extra);
  CHECK(extra["battery"] == 87);
  CHECK(extra["source"]["app"] == "ios");
  CHECK(extra["source"]["tags"] == nlohmann::json::parse(R"([1,"a",null,true])"));
  // Compact, in the order received.
  CHECK(event->extra == std::vector<unloc::json_member>{
                            {"battery", "87"}, {"source", R"({"app":"ios","tags":[1,"a",null,true]})"}});
}

TEST_CASE("accepts offsets and any number of fraction digits in created", "[parse]") {
  auto event = unloc::parse_access_event(
      replace(guide_event, "2022-01-01T10:35:24.083Z", "2022-01-01T12:35:24.0839999+02:00"));
  REQUIRE(event.has_value());
  CHECK(unloc::format_timestamp(event->created) == "2022-01-01T10:35:24.083Z");
}

TEST_CASE("rejects a duplicate key and names it", "[parse]") {
  auto event =
      unloc::parse_access_event(replace(guide_event, R"("lockName": "North gate")",
                                        R"("lockName": "North gate", "lockName": "South gate")"));
  REQUIRE_FALSE(event.has_value());
  CHECK(event.error().field == "lockName");
  CHECK(event.error().message.find("duplicate key 'lockName'") != std::string::npos);
}

TEST_CASE("rejects a duplicate key among unknown fields, nested or not", "[parse]") {
  auto top = unloc::parse_access_event(
      replace(guide_event, R"("userName": "")", R"("userName": "", "x": 1, "x": 2)"));
  REQUIRE_FALSE(top.has_value());
  CHECK(top.error().field == "x");

  auto nested = unloc::parse_access_event(
      replace(guide_event, R"("userName": "")", R"("userName": "", "x": {"y": 1, "y": 2})"));
  REQUIRE_FALSE(nested.has_value());
  CHECK(nested.error().field == "y");
}

TEST_CASE("names a missing required field", "[parse]") {
  for (const std::string field : {"id", "action", "created", "keyId", "lockId", "lockName"}) {
    const auto json = nlohmann::json::parse(guide_event);
    auto without = json;
    without.erase(field);
    auto event = unloc::parse_access_event(without.dump());
    INFO(field);
    REQUIRE_FALSE(event.has_value());
    CHECK(event.error().field == field);
    CHECK(event.error().message.find("is missing") != std::string::npos);
  }
}

TEST_CASE("names a required field of the wrong type or null", "[parse]") {
  auto number = unloc::parse_access_event(
      replace(guide_event, "\"North gate\"", "42"));
  REQUIRE_FALSE(number.has_value());
  CHECK(number.error().field == "lockName");
  CHECK(number.error().message.find("must be a string, got a number") != std::string::npos);

  auto object =
      unloc::parse_access_event(replace(guide_event, "\"unlocked\"", R"({"kind": "unlocked"})"));
  REQUIRE_FALSE(object.has_value());
  CHECK(object.error().field == "action");

  auto null_id = unloc::parse_access_event(
      replace(guide_event, "\"ae832e61-c8fa-4ed9-8196-61210cb4207b\"", "null"));
  REQUIRE_FALSE(null_id.has_value());
  CHECK(null_id.error().field == "id");
}

TEST_CASE("rejects malformed UUIDs, timestamps and an empty action, naming the field", "[parse]") {
  struct bad_case {
    std::string from, to, field;
  };
  const bad_case cases[] = {
      {"ae832e61-c8fa-4ed9-8196-61210cb4207b", "ae832e61-c8fa-4ed9-8196-61210cb4207", "id"},
      {"3f97fafb-1b6a-42d0-85fa-ae2ef338cc45", "", "keyId"},
      {"c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef", "c0f3aed0_2a7e_4de5_a0ff_3bfc22bfb6ef", "lockId"},
      {"2022-01-01T10:35:24.083Z", "2022-02-30T10:35:24.083Z", "created"},
      {"2022-01-01T10:35:24.083Z", "yesterday", "created"},
      {"\"unlocked\"", "\"\"", "action"},
  };
  for (const auto& c : cases) {
    auto event = unloc::parse_access_event(replace(guide_event, c.from, c.to));
    INFO(c.to);
    REQUIRE_FALSE(event.has_value());
    CHECK(event.error().field == c.field);
  }
}

TEST_CASE("reads each UUID digit where it stands, and rejects a bad character at any place",
          "[parse]") {
  const std::string id = "ae832e61-c8fa-4ed9-8196-61210cb4207b";
  for (std::size_t at = 0; at < id.size(); ++at) {
    const bool hyphen = at == 8 || at == 13 || at == 18 || at == 23;
    INFO("character " << at);
    // A digit changed at this place is read there (and only there).
    if (!hyphen) {
      std::string changed = id;
      changed[at] = changed[at] == 'f' ? '0' : 'f';
      auto event = unloc::parse_access_event(replace(guide_event, id, changed));
      REQUIRE(event.has_value());
      CHECK(event->id.to_string() == changed);
    }
    // Anything else at this place is refused: a non-digit, a hyphen out of place, a digit for a
    // hyphen.
    for (const char bad : hyphen ? std::string("0a_ ") : std::string("g-G/:@`~ ")) {
      std::string broken = id;
      broken[at] = bad;
      auto event = unloc::parse_access_event(replace(guide_event, id, broken));
      INFO(broken);
      REQUIRE_FALSE(event.has_value());
      CHECK(event.error().field == "id");
      CHECK(event.error().message.find("is not a UUID") != std::string::npos);
    }
  }
}

TEST_CASE("reads the event's fields in any order, and still refuses one given twice", "[parse]") {
  const std::string reversed =
      R"({"userName":"","appUserId":"+12125552390","lockName":"North gate",)"
      R"("lockId":"c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef","keyId":"3f97fafb-1b6a-42d0-85fa-ae2ef338cc45",)"
      R"("created":"2022-01-01T10:35:24.083Z","action":"unlocked",)"
      R"("id":"ae832e61-c8fa-4ed9-8196-61210cb4207b"})";
  auto event = unloc::parse_access_event(reversed);
  REQUIRE(event.has_value());
  auto expected = unloc::parse_access_event(guide_event);
  REQUIRE(expected.has_value());
  CHECK(unloc::to_json_text(*event) == unloc::to_json_text(*expected));
  // The first field again after the last, and the last again after the first.
  for (const std::string& twice :
       {replace(guide_event, R"("userName": "")", R"("userName": "","id":"x")"),
        replace(reversed, R"("userName":"",)", R"("userName":"","userName":null,)")}) {
    auto again = unloc::parse_access_event(twice);
    INFO(twice);
    REQUIRE_FALSE(again.has_value());
    CHECK(again.error().message.find("duplicate key") != std::string::npos);
  }
}

TEST_CASE("accepts uppercase UUIDs and writes them canonical", "[parse]") {
  auto event = unloc::parse_access_event(replace(guide_event, "ae832e61-c8fa-4ed9-8196-61210cb4207b",
                                                 "AE832E61-C8FA-4ED9-8196-61210CB4207B"));
  REQUIRE(event.has_value());
  CHECK(event->id.to_string() == "ae832e61-c8fa-4ed9-8196-61210cb4207b");
}

TEST_CASE("rejects JSON that is not an object", "[parse]") {
  for (const std::string body : {"[]", "42", "\"event\"", "null", "true", "[{}]"}) {
    auto event = unloc::parse_access_event(body);
    INFO(body);
    REQUIRE_FALSE(event.has_value());
    CHECK(event.error().message.find("must be a JSON object") != std::string::npos);
  }
}

TEST_CASE("reports text that is not JSON, or not UTF-8, as a syntax error", "[parse]") {
  unloc::detail::read_status failure{};
  for (const std::string body : {"", "{", "{\"id\":}", "{} trailing", "{'id': 1}"}) {
    INFO(body);
    auto event = unloc::detail::read_access_event(body, {}, failure);
    REQUIRE_FALSE(event.has_value());
    CHECK(failure == unloc::detail::read_status::syntax);
    CHECK(event.error().message.find("not valid JSON") != std::string::npos);
  }
  auto latin1 = unloc::detail::read_access_event(
      replace(guide_event, "North gate", "Nord\xe5 port"), {}, failure);
  REQUIRE_FALSE(latin1.has_value());
  CHECK(failure == unloc::detail::read_status::syntax);
  CHECK(latin1.error().message.find("not valid UTF-8") != std::string::npos);
}

TEST_CASE("never echoes the raw input in a syntax error", "[parse]") {
  auto event = unloc::parse_access_event("{\"id\": secret-looking-garbage}");
  REQUIRE_FALSE(event.has_value());
  CHECK(event.error().message.find("secret-looking-garbage") == std::string::npos);
}

TEST_CASE("stops at the nesting limit, even 100,000 levels deep", "[parse]") {
  unloc::detail::read_status failure{};
  const std::string deep_arrays(100'000, '[');
  auto arrays = unloc::detail::read_access_event(deep_arrays, {}, failure);
  REQUIRE_FALSE(arrays.has_value());
  CHECK(failure == unloc::detail::read_status::syntax);
  CHECK(arrays.error().message.find("deeper than 32") != std::string::npos);

  std::string deep_field = replace(guide_event, R"("userName": "")", R"("userName": "", "x": )");
  deep_field.insert(deep_field.size() - 2, std::string(100'000, '[') + std::string(100'000, ']'));
  CHECK_FALSE(unloc::parse_access_event(deep_field).has_value());

  std::string shallow = replace(guide_event, R"("userName": "")", R"("userName": "", "x": )");
  shallow.insert(shallow.size() - 2, std::string(30, '[') + std::string(30, ']'));
  CHECK(unloc::parse_access_event(shallow).has_value());
}

TEST_CASE("reads an access-log page with its cursor", "[parse]") {
  const std::string page = "{\"accessEvents\":[" + guide_event + "," + guide_delivery +
                           R"(],"nextCursor":"abc","total":{"n":2}})";
  auto parsed = unloc::parse_access_log_page(page);
  REQUIRE(parsed.has_value());
  REQUIRE(parsed->events.size() == 2);
  CHECK(parsed->events[0].action == unloc::access_action::unlocked);
  CHECK(parsed->events[1].action == unloc::access_action::locked);
  CHECK(parsed->next_cursor == std::optional<std::string>("abc"));

  auto last = unloc::parse_access_log_page(R"({"nextCursor": null, "accessEvents": []})");
  REQUIRE(last.has_value());
  CHECK(last->events.empty());
  CHECK_FALSE(last->next_cursor.has_value());
}

TEST_CASE("hands page events over one at a time and stops when asked", "[parse]") {
  const std::string page = "{\"accessEvents\":[" + guide_event + "," + guide_delivery + "]}";
  int seen = 0;
  auto stopped = unloc::read_access_log_page(page, [&seen](unloc::access_event&&) {
    ++seen;
    return false;
  });
  CHECK(seen == 1);
  CHECK_FALSE(stopped.has_value());
}

TEST_CASE("rejects a page without its events array or with a bad event", "[parse]") {
  CHECK_FALSE(unloc::parse_access_log_page(R"({"nextCursor": null})").has_value());
  CHECK_FALSE(unloc::parse_access_log_page(R"({"accessEvents": {}})").has_value());
  CHECK_FALSE(unloc::parse_access_log_page(R"({"accessEvents": [1]})").has_value());
  CHECK_FALSE(unloc::parse_access_log_page(R"({"accessEvents": [], "nextCursor": 5})").has_value());
  CHECK_FALSE(unloc::parse_access_log_page(R"([])").has_value());
  auto bad = unloc::parse_access_log_page("{\"accessEvents\":[" +
                                          replace(guide_event, "\"North gate\"", "1") + "]}");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().field == "lockName");
}

TEST_CASE("reads an API error body by the rules of every other body", "[parse]") {
  const auto read = [](const std::string& body) {
    unloc::error e;
    unloc::detail::read_api_error(body, e);
    return std::pair<std::string, std::string>(e.api_code, e.api_message);
  };
  using read_pair = std::pair<std::string, std::string>;
  CHECK(read(R"({"error":"not_found","message":"no such webhook","x":[1]})") ==
        read_pair("not_found", "no such webhook"));
  CHECK(read(R"({"message":"only a message"})") == read_pair("", "only a message"));
  // Not an API error: nothing is taken from it.
  for (const std::string body :
       {R"({"error":"a","error":"b"})", R"({"error":"a","x":{"k":1,"k":2}})", R"({"error":404})",
        R"({"error":"a"} trailing)", R"(["error"])", "<html>Bad Gateway</html>"}) {
    INFO(body);
    CHECK(read(body) == read_pair());
  }
}

#include "catch.hpp"
#include "fixtures.hpp"

#include <unloc/access_event.hpp>
#include <unloc/json_member.hpp>
#include <unloc/testing.hpp>

#include "support/same_json.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using unloc::access_action;
using unloc::access_event;
using unloc::json_member;
using unloc_test::extra_json;
using unloc_test::members_of;
using unloc_test::same_json;

// The Access Event of Unloc's webhooks guide, compact, fields in the API's order.
const std::string guide_event_text =
    R"({"id":"ae832e61-c8fa-4ed9-8196-61210cb4207b","action":"unlocked",)"
    R"("created":"2022-01-01T10:35:24.083Z","keyId":"3f97fafb-1b6a-42d0-85fa-ae2ef338cc45",)"
    R"("lockId":"c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef","lockName":"North gate",)"
    R"("appUserId":"+12125552390","userName":""})";

const std::vector<std::string> api_field_order = {
    "id", "action", "created", "keyId", "lockId", "lockName", "appUserId", "userName"};

using unit::has_text;

nlohmann::json guide_event() { return nlohmann::json::parse(guide_event_text); }

// The members of an object as nlohmann writes them with invalid UTF-8
// replaced: members_of, for values that may hold any bytes.
std::vector<json_member> replaced_members_of(const nlohmann::ordered_json& object) {
  std::vector<json_member> out;
  for (auto it = object.begin(); it != object.end(); ++it) {
    out.push_back({it.key(), it->dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace)});
  }
  return out;
}

template <typename Json>
std::vector<std::string> keys_of(const Json& j) {
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  return keys;
}

void check_same_event(const access_event& a, const access_event& b) {
  CHECK(a.id.to_string() == b.id.to_string());
  CHECK(a.action == b.action);
  CHECK(a.action_text == b.action_text);
  CHECK(unloc::format_timestamp(a.created) == unloc::format_timestamp(b.created));
  CHECK(a.key_id.to_string() == b.key_id.to_string());
  CHECK(a.lock_id.to_string() == b.lock_id.to_string());
  CHECK(a.lock_name == b.lock_name);
  CHECK(a.app_user_id == b.app_user_id);
  CHECK(a.user_name == b.user_name);
  CHECK(a.extra == b.extra);
}

// The message of the std::invalid_argument that from_json must throw for `j`.
template <typename Json>
std::string from_json_error(const Json& j) {
  try {
    (void)j.template get<access_event>();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  FAIL("from_json did not throw std::invalid_argument for " << j.dump());
  return {};
}

}  // namespace

static_assert(unloc::parse_access_action("viewedCode") == access_action::viewed_code,
              "actions are parsed at compile time");
static_assert(unloc::to_string(access_action::locked) == "locked",
              "action names are usable at compile time");

TEST_CASE("names the three known actions as the API writes them and reads them back",
          "[access_event]") {
  CHECK(unloc::to_string(access_action::locked) == "locked");
  CHECK(unloc::to_string(access_action::unlocked) == "unlocked");
  CHECK(unloc::to_string(access_action::viewed_code) == "viewedCode");
  for (const auto action :
       {access_action::locked, access_action::unlocked, access_action::viewed_code}) {
    CHECK(unloc::parse_access_action(unloc::to_string(action)) == action);
  }
}

TEST_CASE("reads any other action text as unknown", "[access_event]") {
  CHECK(unloc::to_string(access_action::unknown) == "unknown");
  for (const std::string_view text :
       {"", "opened", "viewed_code", "unlock", "unlocked ", "locke", "unknown"}) {
    INFO('"' << std::string(text) << '"');
    CHECK(unloc::parse_access_action(text) == access_action::unknown);
  }
}

TEST_CASE("masks every digit of a phone number but the last two", "[access_event]") {
  CHECK(unloc::mask_phone_number("+12125552390") == "+*********90");
  CHECK(unloc::mask_phone_number("+1 (212) 555-2390") == "+* (***) ***-**90");
  CHECK(unloc::mask_phone_number("90") == "90");
  CHECK(unloc::mask_phone_number("7") == "7");
  CHECK(unloc::mask_phone_number("").empty());
}

TEST_CASE("to_string masks the phone number unless asked to reveal it", "[access_event]") {
  const access_event event = unloc::testing::sample_access_event();

  const std::string masked = unloc::to_string(event);
  INFO(masked);
  CHECK(has_text(masked, "+*********90"));
  CHECK_FALSE(has_text(masked, "+12125552390"));
  CHECK_FALSE(has_text(masked, "21255523"));

  const std::string revealed = unloc::to_string(event, unloc::print_options{true});
  INFO(revealed);
  CHECK(has_text(revealed, "+12125552390"));
  CHECK_FALSE(has_text(revealed, "*"));
}

TEST_CASE("to_string shows the event's id, action, time, lock and key", "[access_event]") {
  const std::string line = unloc::to_string(unloc::testing::sample_access_event());
  INFO(line);
  CHECK(has_text(line, "ae832e61-c8fa-4ed9-8196-61210cb4207b"));
  CHECK(has_text(line, "unlocked"));
  CHECK(has_text(line, "2022-01-01T10:35:24.083Z"));
  CHECK(has_text(line, "c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef"));
  CHECK(has_text(line, "North gate"));
  CHECK(has_text(line, "3f97fafb-1b6a-42d0-85fa-ae2ef338cc45"));
}

TEST_CASE("to_string shows the text of an unknown action and null for an absent user",
          "[access_event]") {
  access_event event = unloc::testing::sample_access_event();
  event.action = access_action::unknown;
  event.action_text = "openedDoor";
  event.app_user_id.reset();
  event.user_name.reset();
  const std::string line = unloc::to_string(event, unloc::print_options{true});
  INFO(line);
  CHECK(has_text(line, "openedDoor"));
  CHECK(has_text(line, "app_user=null"));
  CHECK(has_text(line, "user_name=null"));
}

TEST_CASE("to_json_text writes the API's fields in the API's order", "[access_event]") {
  CHECK(unloc::to_json_text(unloc::testing::sample_access_event()) == guide_event_text);

  nlohmann::ordered_json j = unloc::testing::sample_access_event();
  CHECK(keys_of(j) == api_field_order);
}

TEST_CASE("to_json_text writes what nlohmann's ordered dump writes, invalid UTF-8 replaced",
          "[access_event]") {
  // to_json_text writes the text itself (it runs for every event a receiver
  // prints); nlohmann's dump with error_handler_t::replace is its reference.
  std::mt19937 random(20261202);
  const std::string bytes = std::string("a\"\\\x01\x1f\x7f\n\t/") +
                            "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" +  // é € 😀
                            "\xed\xa0\x80\xc0\xff\xf4\x90\xe0\x9f\xbf";  // invalid pieces
  const auto text = [&](std::size_t max_length) {
    std::string out(random() % (max_length + 1), ' ');
    for (char& c : out) c = bytes[random() % bytes.size()];
    return out;
  };
  for (int i = 0; i < 20000; ++i) {
    access_event event = unloc::testing::sample_access_event();
    event.action_text = text(6);
    event.action = unloc::parse_access_action(event.action_text);
    event.lock_name = text(12);
    event.app_user_id = random() % 2 == 0 ? std::optional<std::string>(text(5)) : std::nullopt;
    event.user_name = random() % 2 == 0 ? std::optional<std::string>(text(8)) : std::nullopt;
    if (random() % 3 == 0) {
      // Values as nlohmann writes them (invalid UTF-8 replaced), so that the
      // text kept is the text nlohmann writes again after parsing it.
      event.extra = replaced_members_of(nlohmann::ordered_json{
          {text(3), text(4)}, {"lockName", 1}, {"o", {{"x", text(3)}, {"n", 1.5}}}});
    }
    nlohmann::ordered_json j;
    to_json(j, event);
    const std::string expected =
        j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    const std::string written = unloc::to_json_text(event);
    if (written != expected) FAIL("to_json_text: " << written << "\nnlohmann:     " << expected);
  }
}

TEST_CASE("survives a round trip through nlohmann::json", "[access_event]") {
  const access_event original = unloc::testing::sample_access_event();
  const nlohmann::json j = original;
  CHECK(j == guide_event());
  const auto back = j.get<access_event>();
  check_same_event(back, original);
}

TEST_CASE("survives a round trip through nlohmann::ordered_json", "[access_event]") {
  const access_event original = unloc::testing::sample_access_event();
  const nlohmann::ordered_json j = original;
  CHECK(j.dump() == guide_event_text);
  const auto back = j.get<access_event>();
  check_same_event(back, original);
  CHECK(unloc::to_json_text(back) == guide_event_text);
}

TEST_CASE("reads the guide's event from JSON", "[access_event]") {
  const auto event = guide_event().get<access_event>();
  check_same_event(event, unloc::testing::sample_access_event());
  REQUIRE(event.user_name.has_value());
  CHECK(event.user_name->empty());
}

TEST_CASE("keeps an unknown action as its text through a round trip", "[access_event]") {
  auto j = guide_event();
  j["action"] = "openedDoor";
  const auto event = j.get<access_event>();
  CHECK(event.action == access_action::unknown);
  CHECK(event.action_text == "openedDoor");

  const nlohmann::json written = event;
  CHECK(written.at("action") == "openedDoor");
  CHECK(written == j);
  const auto again = written.get<access_event>();
  CHECK(again.action == access_action::unknown);
  CHECK(again.action_text == "openedDoor");
}

TEST_CASE("reads viewedCode as the viewed_code action", "[access_event]") {
  auto j = guide_event();
  j["action"] = "viewedCode";
  const auto event = j.get<access_event>();
  CHECK(event.action == access_action::viewed_code);
  CHECK(nlohmann::json(event).at("action") == "viewedCode");
}

TEST_CASE("keeps unknown extra fields through a round trip", "[access_event]") {
  auto j = guide_event();
  j["battery"] = 42;
  j["location"] = {{"lat", 59.91}, {"lon", 10.75}};
  j["tags"] = {"gate", "north"};
  const auto event = j.get<access_event>();
  REQUIRE(event.extra.size() == 3);
  const nlohmann::json extra = extra_json(event.extra);
  CHECK(extra.at("battery") == 42);
  CHECK(extra.at("location").at("lat") == 59.91);
  CHECK_FALSE(extra.contains("id"));
  CHECK(unloc::find_member(event.extra, "battery") == std::optional<std::string_view>("42"));
  CHECK(unloc::find_member(event.extra, "tags") ==
        std::optional<std::string_view>(R"(["gate","north"])"));
  CHECK_FALSE(unloc::find_member(event.extra, "id").has_value());
  CHECK_FALSE(unloc::find_member(event.extra, "Battery").has_value());

  const nlohmann::json written = event;
  CHECK(written == j);
  // Of the same types as j read back from its text (42 set in code is signed,
  // read from text unsigned: the kept text is what was sent).
  CHECK(same_json(written, nlohmann::json::parse(j.dump())));
}

TEST_CASE("from_json keeps no extra when there are no unknown fields", "[access_event]") {
  const auto event = guide_event().get<access_event>();
  CHECK(event.extra.empty());
  CHECK(extra_json(event.extra).is_null());
}

TEST_CASE("writes unknown extra fields after the API's fields in ordered JSON",
          "[access_event]") {
  const auto text = guide_event_text.substr(0, guide_event_text.size() - 1) +
                    R"(,"zone":"A","battery":42})";
  const auto event = nlohmann::ordered_json::parse(text).get<access_event>();
  CHECK(extra_json(event.extra).at("zone") == "A");
  CHECK(extra_json(event.extra).at("battery") == 42);
  // In the order received, each value as nlohmann writes it.
  CHECK(event.extra == std::vector<json_member>{{"zone", R"("A")"}, {"battery", "42"}});

  const nlohmann::ordered_json written = event;
  const auto keys = keys_of(written);
  REQUIRE(keys.size() == api_field_order.size() + 2);
  CHECK(std::vector<std::string>(keys.begin(), keys.begin() + 8) == api_field_order);
  CHECK(written.at("zone") == "A");
  CHECK(written.at("battery") == 42);
  CHECK(written.dump() == text);
  CHECK(unloc::to_json_text(event) == text);
}

TEST_CASE("an extra field never overwrites a known field", "[access_event]") {
  access_event event = unloc::testing::sample_access_event();
  event.extra = members_of(nlohmann::ordered_json{{"lockName", "Forged gate"}, {"floor", 3}});
  const nlohmann::json written = event;
  CHECK(written.at("lockName") == "North gate");
  CHECK(written.at("floor") == 3);

  const std::string text = unloc::to_json_text(event);
  CHECK(text == guide_event_text.substr(0, guide_event_text.size() - 1) + R"(,"floor":3})");
  CHECK(text.find("Forged") == std::string::npos);
}

TEST_CASE("to_json_text writes an extra value as its text, which nlohmann reads as it was",
          "[access_event]") {
  // Kept as received (the strict reader keeps a number's text, 1E2 or -0):
  // not nlohmann's own spelling, but the same value, of the same type.
  access_event event = unloc::testing::sample_access_event();
  event.extra = {{"big", "1E2"},
                 {"zero", "-0"},
                 {"price", "1.50"},
                 {"tiny", "1e-400"},
                 {"name", "\"\xc3\xa9\""},
                 {"nested", R"({"b":[1,-0.0,{"a":null}],"a":true})"},
                 {"\xc3\xa9", R"("x")"}};
  const std::string text = unloc::to_json_text(event);
  const std::string known = guide_event_text.substr(0, guide_event_text.size() - 1);
  CHECK(text.substr(0, known.size()) == known);
  CHECK(text.substr(known.size()) ==
        R"(,"big":1E2,"zero":-0,"price":1.50,"tiny":1e-400,"name":")" "\xc3\xa9" R"(",)"
        R"("nested":{"b":[1,-0.0,{"a":null}],"a":true},")" "\xc3\xa9" R"(":"x"})");

  nlohmann::ordered_json expected = nlohmann::ordered_json::parse(guide_event_text);
  for (const auto& member : event.extra) {
    expected[member.name] = nlohmann::ordered_json::parse(member.value);
  }
  const auto written = nlohmann::ordered_json::parse(text);
  CHECK(same_json(nlohmann::json(written), nlohmann::json(expected)));
  CHECK(keys_of(written) == keys_of(expected));

  nlohmann::ordered_json through_to_json = event;
  CHECK(through_to_json == written);
  CHECK(same_json(nlohmann::json(through_to_json), nlohmann::json(written)));
}

TEST_CASE("reads a null or absent appUserId and userName as no value and writes null",
          "[access_event]") {
  auto with_nulls = guide_event();
  with_nulls["appUserId"] = nullptr;
  with_nulls["userName"] = nullptr;
  const auto anonymized = with_nulls.get<access_event>();
  CHECK_FALSE(anonymized.app_user_id.has_value());
  CHECK_FALSE(anonymized.user_name.has_value());

  const nlohmann::json written = anonymized;
  CHECK(written.at("appUserId").is_null());
  CHECK(written.at("userName").is_null());
  CHECK(written == with_nulls);

  auto without = guide_event();
  without.erase("appUserId");
  without.erase("userName");
  const auto absent = without.get<access_event>();
  CHECK_FALSE(absent.app_user_id.has_value());
  CHECK_FALSE(absent.user_name.has_value());
  CHECK(unloc::to_string(absent).find("app_user=null") != std::string::npos);
}

TEST_CASE("from_json names the required field that is missing", "[access_event]") {
  for (const std::string field : {"id", "action", "created", "keyId", "lockId", "lockName"}) {
    auto j = guide_event();
    j.erase(field);
    const std::string message = from_json_error(j);
    INFO(field << ": " << message);
    CHECK(has_text(message, "'" + field + "'"));
    CHECK(has_text(message, "missing"));
  }
}

TEST_CASE("from_json names a field of the wrong type", "[access_event]") {
  const std::vector<std::string> fields = {"id",       "action",    "created", "keyId",
                                           "lockId",   "lockName",  "appUserId", "userName"};
  for (const auto& field : fields) {
    for (const nlohmann::json& wrong :
         {nlohmann::json(42), nlohmann::json(true), nlohmann::json::array({"x"}),
          nlohmann::json::object({{"x", 1}})}) {
      auto j = guide_event();
      j[field] = wrong;
      const std::string message = from_json_error(j);
      INFO(field << " = " << wrong.dump() << ": " << message);
      CHECK(has_text(message, "'" + field + "'"));
    }
  }
}

TEST_CASE("from_json rejects null for a required field", "[access_event]") {
  for (const std::string field : {"id", "action", "created", "keyId", "lockId", "lockName"}) {
    auto j = guide_event();
    j[field] = nullptr;
    const std::string message = from_json_error(j);
    INFO(field << ": " << message);
    CHECK(has_text(message, "'" + field + "'"));
  }
}

TEST_CASE("from_json names a field whose text is not valid", "[access_event]") {
  struct bad_value {
    std::string field;
    std::string text;
  };
  for (const auto& bad : {bad_value{"id", "not-a-uuid"}, bad_value{"keyId", ""},
                          bad_value{"lockId", "c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6e"},
                          bad_value{"created", "2022-01-01 10:35:24"},
                          bad_value{"created", "2022-02-30T10:35:24.083Z"},
                          bad_value{"action", ""}}) {
    auto j = guide_event();
    j[bad.field] = bad.text;
    const std::string message = from_json_error(j);
    INFO(bad.field << " = '" << bad.text << "': " << message);
    CHECK(has_text(message, "'" + bad.field + "'"));
  }
}

TEST_CASE("from_json with ordered_json names the field too", "[access_event]") {
  auto j = nlohmann::ordered_json::parse(guide_event_text);
  j.erase("created");
  CHECK(has_text(from_json_error(j), "'created'"));
  j = nlohmann::ordered_json::parse(guide_event_text);
  j["lockName"] = 7;
  CHECK(has_text(from_json_error(j), "'lockName'"));
}

TEST_CASE("from_json rejects JSON that is not an object", "[access_event]") {
  CHECK_THROWS_AS(nlohmann::json::array({guide_event()}).get<access_event>(), std::invalid_argument);
  CHECK_THROWS_AS(nlohmann::json("unlocked").get<access_event>(), std::invalid_argument);
  CHECK_THROWS_AS(nlohmann::json().get<access_event>(), std::invalid_argument);
}

#include "catch.hpp"
#include "fixtures.hpp"

#include <unloc/token.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::system_clock;
using unloc::access_token;

// A JWT-shaped secret; no part of it may reach a log line.
constexpr std::string_view jwt =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJwcm9qZWN0LTQyIn0.c2lnbmF0dXJlLXNlY3JldA";

// The token response of Unloc's API documentation, with a JWT and a project id filled in.
nlohmann::json token_response() {
  return {{"access_token", std::string(jwt)},
          {"token_type", "bearer"},
          {"expires_in", 3600},
          {"scope", {"project.admin"}},
          {"project_id", "project-42"}};
}

using unit::has_text;

}  // namespace

TEST_CASE("reads the token response and counts expires_in from now", "[token]") {
  const auto before = clock_type::now();
  const auto token = token_response().get<access_token>();
  const auto after = clock_type::now();

  CHECK(token.value == jwt);
  CHECK(token.token_type == "bearer");
  CHECK(token.scope == std::vector<std::string>{"project.admin"});
  CHECK(token.project_id == "project-42");
  CHECK(token.expires_at >= before + 3600s);
  CHECK(token.expires_at <= after + 3600s);
}

TEST_CASE("reads a scope written as one space-separated string", "[token]") {
  auto j = token_response();
  j["scope"] = "project.admin organization.admin";
  CHECK(j.get<access_token>().scope ==
        std::vector<std::string>{"project.admin", "organization.admin"});

  j["scope"] = " project.admin  organization.admin ";
  CHECK(j.get<access_token>().scope ==
        std::vector<std::string>{"project.admin", "organization.admin"});

  j["scope"] = "project.admin";
  CHECK(j.get<access_token>().scope == std::vector<std::string>{"project.admin"});

  j["scope"] = "";
  CHECK(j.get<access_token>().scope.empty());
}

TEST_CASE("reads a scope written as a list of several scopes", "[token]") {
  auto j = token_response();
  j["scope"] = {"organization.admin", "project.admin"};
  CHECK(j.get<access_token>().scope ==
        std::vector<std::string>{"organization.admin", "project.admin"});
}

TEST_CASE("a token response without scope, type or project still reads", "[token]") {
  auto j = token_response();
  j.erase("scope");
  j.erase("token_type");
  j.erase("project_id");
  const auto token = j.get<access_token>();
  CHECK(token.value == jwt);
  CHECK(token.scope.empty());
  CHECK(token.token_type == "bearer");
  CHECK(token.project_id.empty());
}

TEST_CASE("a token response without access_token or expires_in is rejected", "[token]") {
  auto no_token = token_response();
  no_token.erase("access_token");
  CHECK_THROWS(no_token.get<access_token>());

  auto no_expiry = token_response();
  no_expiry.erase("expires_in");
  CHECK_THROWS(no_expiry.get<access_token>());
}

TEST_CASE("to_string never contains the token's value", "[token]") {
  const auto token = token_response().get<access_token>();
  const std::string line = unloc::to_string(token);
  INFO(line);
  CHECK_FALSE(has_text(line, jwt));
  // Neither any of the JWT's three parts.
  CHECK_FALSE(has_text(line, jwt.substr(0, jwt.find('.'))));
  CHECK_FALSE(has_text(line, "eyJzdWIiOiJwcm9qZWN0LTQyIn0"));
  CHECK_FALSE(has_text(line, "c2lnbmF0dXJlLXNlY3JldA"));
  CHECK(has_text(line, "REDACTED"));
  CHECK(has_text(line, "project.admin"));
  CHECK(has_text(line, "project-42"));
}

TEST_CASE("expires_within is true once the token expires within the margin", "[token]") {
  const auto now = clock_type::now();
  access_token token;
  token.expires_at = now + 60s;
  CHECK_FALSE(token.expires_within(0s, now));
  CHECK_FALSE(token.expires_within(59s, now));
  CHECK(token.expires_within(60s, now));
  CHECK(token.expires_within(5min, now));
  CHECK_FALSE(token.expires_within(30s, now + 29s));
  CHECK(token.expires_within(30s, now + 30s));
}

TEST_CASE("an expired or never-set token always expires within any margin", "[token]") {
  const auto now = clock_type::now();
  access_token expired;
  expired.expires_at = now - 1s;
  CHECK(expired.expires_within(0s, now));

  const access_token never_set;
  CHECK(never_set.expires_within(0s));
}

TEST_CASE("a freshly read token does not expire within a minute", "[token]") {
  const auto token = token_response().get<access_token>();
  CHECK_FALSE(token.expires_within(1min));
  CHECK(token.expires_within(3601s));
}

TEST_CASE("to_json writes the time left as expires_in and reads back the same token",
          "[token]") {
  access_token token;
  token.value = std::string(jwt);
  token.expires_at = clock_type::now() + 3600s;
  token.scope = {"project.admin"};
  token.project_id = "project-42";

  const nlohmann::json j = token;
  CHECK(j.at("access_token") == jwt);
  CHECK(j.at("token_type") == "bearer");
  CHECK(j.at("expires_in").get<long long>() >= 3599);
  CHECK(j.at("expires_in").get<long long>() <= 3600);
  CHECK(j.at("scope") == nlohmann::json{"project.admin"});
  CHECK(j.at("project_id") == "project-42");

  const auto back = j.get<access_token>();
  CHECK(back.value == token.value);
  CHECK(back.scope == token.scope);
  CHECK(back.project_id == token.project_id);

  access_token expired = token;
  expired.expires_at = clock_type::now() - 10s;
  CHECK(nlohmann::json(expired).at("expires_in") == 0);
}

TEST_CASE("a key written with escapes keeps its meaning after an escaped value", "[token]") {
  // Keys and values decoded from escapes share no buffer: "scop\u0065" is
  // still "scope" after its value, itself escaped, was read.
  const std::string long_value = "\\u0041" + std::string(40, 'b');
  const auto token = unloc::parse_access_token(
      R"({"x\u0078xxxxxxxxxxxxxxxxxxxxxxx":1,"access_token":"t","expires_in":1,)"
      R"("scop\u0065":")" + long_value + R"(","project_\u0069d":"\u0050-1"})");
  REQUIRE(token.has_value());
  CHECK(token->scope == std::vector<std::string>{"A" + std::string(40, 'b')});
  CHECK(token->project_id == "P-1");
}

TEST_CASE("expires_in is read from any JSON number of seconds from 0 to 10^9", "[token]") {
  const auto now = std::chrono::system_clock::time_point{} + std::chrono::hours(24 * 365 * 50);
  const auto seconds_of = [&](const std::string& number) -> std::optional<long long> {
    const auto token = unloc::parse_access_token(
        R"({"access_token":"t","token_type":"bearer","expires_in":)" + number + "}", now);
    if (!token) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::seconds>(token->expires_at - now).count();
  };
  CHECK(seconds_of("3600") == 3600);
  CHECK(seconds_of("3600.9") == 3600);  // a fraction is dropped
  CHECK(seconds_of("3.6e3") == 3600);
  CHECK(seconds_of("36000E-1") == 3600);
  CHECK(seconds_of("0.5") == 0);
  CHECK(seconds_of("0") == 0);
  CHECK(seconds_of("-0") == 0);
  CHECK(seconds_of("1e-99999999999999999999") == 0);
  CHECK(seconds_of("1000000000") == 1'000'000'000);
  CHECK(seconds_of("1e9") == 1'000'000'000);
  CHECK(seconds_of("0.000001e15") == 1'000'000'000);
  CHECK_FALSE(seconds_of("1000000000.5"));
  CHECK_FALSE(seconds_of("1000000001"));
  CHECK_FALSE(seconds_of("1e10"));
  CHECK_FALSE(seconds_of("1e99999999999999999999"));
  CHECK_FALSE(seconds_of("123456789012345678901234567890"));
  CHECK_FALSE(seconds_of("-1"));
  CHECK_FALSE(seconds_of("-0.5"));
  CHECK_FALSE(seconds_of("\"3600\""));
  CHECK_FALSE(seconds_of("null"));
}

TEST_CASE("a token response with a key twice is refused, naming the key", "[token]") {
  for (const std::string& twice :
       {std::string(R"({"access_token":"a","access_token":"b","expires_in":60})"),
        std::string(R"({"access_token":"a","expires_in":60,"expires_in":1})"),
        std::string(R"({"access_token":"a","expires_in":60,"x":1,"x":2})")}) {
    INFO(twice);
    const auto token = unloc::parse_access_token(twice);
    REQUIRE_FALSE(token.has_value());
    CHECK(token.error().category == unloc::error_category::invalid_response);
    CHECK(has_text(token.error().message, "duplicate key"));
  }
}

TEST_CASE("a token response tells text that is not JSON from JSON of the wrong shape", "[token]") {
  const auto syntax = unloc::parse_access_token(R"({"access_token":"a","expires_in":60)");
  REQUIRE_FALSE(syntax.has_value());
  CHECK(syntax.error().category == unloc::error_category::invalid_response);
  CHECK(has_text(syntax.error().message, "response body is not valid JSON"));

  const auto schema = unloc::parse_access_token(R"({"access_token":7,"expires_in":60})");
  REQUIRE_FALSE(schema.has_value());
  CHECK(schema.error().category == unloc::error_category::invalid_response);
  CHECK(schema.error().field == "access_token");
  CHECK(has_text(schema.error().message, "field 'access_token' must be a string, got a number"));
}

TEST_CASE("an access_token that is not an RFC 6750 bearer token is refused", "[token]") {
  const auto with_value = [](std::string_view value) {
    auto j = token_response();
    j["access_token"] = std::string(value);
    return unloc::parse_access_token(j.dump());
  };
  // It goes into the Authorization header as it is.
  const std::vector<std::string> refused = {"ab\r\nX-Injected: 1", "a b", "a\tb", "a=b", "=",
                                           "ab\"c", "caf\xc3\xa9", std::string("a\0b", 3)};
  for (const auto& bad : refused) {
    auto r = with_value(bad);
    INFO(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().category == unloc::error_category::invalid_response);
    CHECK(r.error().field == "access_token");
  }
  for (const std::string_view good : {jwt, std::string_view("abc=="), std::string_view("a-._~+/9")}) {
    INFO(good);
    CHECK(with_value(good).has_value());
  }
}

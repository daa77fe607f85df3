#include "catch.hpp"

#include <unloc/http_headers.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using unloc::http_headers;

std::vector<std::string> names_of(const http_headers& headers) {
  std::vector<std::string> names;
  for (const auto& field : headers) names.push_back(field.name);
  return names;
}

std::vector<std::string> values_of(const http_headers& headers) {
  std::vector<std::string> values;
  for (const auto& field : headers) values.push_back(field.value);
  return values;
}

}  // namespace

TEST_CASE("an empty header list has no fields", "[http_headers]") {
  const http_headers headers;
  CHECK(headers.empty());
  CHECK(headers.size() == 0);
  CHECK_FALSE(headers.get("Content-Type").has_value());
  CHECK(headers.count("Content-Type") == 0);
  CHECK(headers.begin() == headers.end());
}

TEST_CASE("get ignores the case of the name", "[http_headers]") {
  const http_headers headers{{"Content-Type", "application/json"}};
  for (const std::string_view name :
       {"Content-Type", "content-type", "CONTENT-TYPE", "cOnTeNt-TyPe"}) {
    INFO(std::string(name));
    const auto value = headers.get(name);
    REQUIRE(value.has_value());
    CHECK(*value == "application/json");
  }
}

TEST_CASE("get finds nothing for a name that differs in more than case", "[http_headers]") {
  const http_headers headers{{"Content-Type", "application/json"}, {"X-A[b", "1"}};
  CHECK_FALSE(headers.get("Content_Type").has_value());
  CHECK_FALSE(headers.get("Content-Typ").has_value());
  CHECK_FALSE(headers.get("Content-Types").has_value());
  CHECK_FALSE(headers.get("").has_value());
  // '[' and '{' differ only in bit 0x20, as 'A' and 'a' do; they are not case variants.
  CHECK_FALSE(headers.get("x-a{b").has_value());
  CHECK(headers.get("x-a[B").has_value());
}

TEST_CASE("get keeps the value exactly as given", "[http_headers]") {
  const http_headers headers{{"Authorization", "Basic bXl1c2VyOm15cGFzc3dvcmQ="}};
  CHECK(headers.get("authorization") == std::optional<std::string_view>("Basic bXl1c2VyOm15cGFzc3dvcmQ="));
}

TEST_CASE("get gives the first of repeated fields and count counts them all in any case",
          "[http_headers]") {
  http_headers headers;
  headers.add("Set-Cookie", "a=1");
  headers.add("Content-Length", "0");
  headers.add("set-cookie", "b=2");
  headers.add("SET-COOKIE", "c=3");
  CHECK(headers.count("Set-Cookie") == 3);
  CHECK(headers.count("set-COOKIE") == 3);
  CHECK(headers.count("content-length") == 1);
  CHECK(headers.count("Cookie") == 0);
  CHECK(headers.get("SET-cookie") == std::optional<std::string_view>("a=1"));
}

TEST_CASE("keeps the fields in the order given, names as written", "[http_headers]") {
  http_headers headers{{"X-Request-Id", "r-1"}, {"content-type", "text/plain"}};
  headers.add("Accept", "application/json");
  headers.add("x-request-id", "r-2");
  CHECK_FALSE(headers.empty());
  CHECK(headers.size() == 4);
  CHECK(names_of(headers) ==
        std::vector<std::string>{"X-Request-Id", "content-type", "Accept", "x-request-id"});
  CHECK(values_of(headers) ==
        std::vector<std::string>{"r-1", "text/plain", "application/json", "r-2"});
}

TEST_CASE("from copies every field of a std::map", "[http_headers]") {
  const std::map<std::string, std::string> source = {
      {"Content-Type", "application/json"}, {"Authorization", "Basic eDp5"}, {"X-Request-Id", "r-9"}};
  const auto headers = http_headers::from(source);
  CHECK(headers.size() == 3);
  // A std::map's order is the order of its keys.
  CHECK(names_of(headers) ==
        std::vector<std::string>{"Authorization", "Content-Type", "X-Request-Id"});
  CHECK(headers.get("content-type") == std::optional<std::string_view>("application/json"));
  CHECK(headers.get("AUTHORIZATION") == std::optional<std::string_view>("Basic eDp5"));
  CHECK(headers.get("x-request-id") == std::optional<std::string_view>("r-9"));
}

TEST_CASE("from keeps every repeated field of a std::multimap in order", "[http_headers]") {
  std::multimap<std::string, std::string> source;
  source.emplace("Set-Cookie", "a=1");
  source.emplace("Content-Length", "12");
  source.emplace("Set-Cookie", "b=2");
  source.emplace("set-cookie", "c=3");
  const auto headers = http_headers::from(source);
  CHECK(headers.size() == 4);
  CHECK(headers.count("SET-COOKIE") == 3);
  CHECK(headers.get("set-cookie") == std::optional<std::string_view>("a=1"));
  CHECK(values_of(headers) == std::vector<std::string>{"12", "a=1", "b=2", "c=3"});
}

TEST_CASE("from keeps the order of a sequence of name/value pairs", "[http_headers]") {
  const std::vector<std::pair<std::string_view, std::string_view>> source = {
      {"Zeta", "1"}, {"alpha", "2"}, {"Zeta", "3"}};
  const auto headers = http_headers::from(source);
  CHECK(names_of(headers) == std::vector<std::string>{"Zeta", "alpha", "Zeta"});
  CHECK(values_of(headers) == std::vector<std::string>{"1", "2", "3"});
  CHECK(headers.count("zeta") == 2);
}

#include <unloc/http_headers.hpp>

#include "catch.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
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

// The shape of boost::core::string_view and Qt's QByteArray: data() and a signed
// size(), no conversion to std::string or std::string_view.
class foreign_text {
 public:
  explicit foreign_text(const char* text) : text_(text) {}
  [[nodiscard]] const char* data() const noexcept { return text_.data(); }
  [[nodiscard]] long long size() const noexcept { return static_cast<long long>(text_.size()); }

 private:
  std::string text_;
};

// The shape of a Boost.Beast field: name_string() and value(), not a pair.
class named_field {
 public:
  named_field(const char* name, const char* value) : name_(name), value_(value) {}
  [[nodiscard]] foreign_text name_string() const { return name_; }
  [[nodiscard]] foreign_text value() const { return value_; }

 private:
  foreign_text name_;
  foreign_text value_;
};

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
  CHECK(headers.get("authorization") ==
        std::optional<std::string_view>("Basic bXl1c2VyOm15cGFzc3dvcmQ="));
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
  const std::map<std::string, std::string> source = {{"Content-Type", "application/json"},
                                                     {"Authorization", "Basic eDp5"},
                                                     {"X-Request-Id", "r-9"}};
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

TEST_CASE("from keeps values exactly as given, optional whitespace included", "[http_headers]") {
  const std::vector<std::pair<std::string, std::string>> source = {
      {"X-Padded", " \tvalue with  inner  spaces\t "}, {"X-Empty", ""}, {"X-List", "a ,b,  c"}};
  const auto headers = http_headers::from(source);
  CHECK(headers.get("x-padded") ==
        std::optional<std::string_view>(" \tvalue with  inner  spaces\t "));
  CHECK(headers.get("x-empty") == std::optional<std::string_view>(""));
  CHECK(headers.get("x-list") == std::optional<std::string_view>("a ,b,  c"));
}

TEST_CASE("from finds every field of a std::unordered_map", "[http_headers]") {
  const std::unordered_map<std::string, std::string> source = {{"Content-Type", "application/json"},
                                                               {"Authorization", "Basic eDp5"}};
  const auto headers = http_headers::from(source);
  CHECK(headers.size() == 2);
  CHECK(headers.get("CONTENT-TYPE") == std::optional<std::string_view>("application/json"));
  CHECK(headers.get("authorization") == std::optional<std::string_view>("Basic eDp5"));
}

TEST_CASE("from takes pairs of C strings, tuples and the SDK's own fields", "[http_headers]") {
  const std::vector<std::pair<const char*, const char*>> c_strings = {
      {"Content-Type", "application/json"}, {"X-Null", nullptr}};
  const auto from_c_strings = http_headers::from(c_strings);
  CHECK(names_of(from_c_strings) == std::vector<std::string>{"Content-Type", "X-Null"});
  CHECK(values_of(from_c_strings) == std::vector<std::string>{"application/json", ""});

  const std::vector<std::tuple<std::string, std::string_view>> tuples = {{"A", "1"}, {"a", "2"}};
  CHECK(values_of(http_headers::from(tuples)) == std::vector<std::string>{"1", "2"});

  const http_headers original{{"X-One", "1"}, {"x-one", " 2 "}};
  const auto copy = http_headers::from(original);
  CHECK(names_of(copy) == names_of(original));
  CHECK(values_of(copy) == values_of(original));
}

TEST_CASE("from takes text that has only data() and size()", "[http_headers]") {
  std::vector<std::pair<foreign_text, foreign_text>> source;
  source.emplace_back(foreign_text("Content-Type"), foreign_text("application/json"));
  source.emplace_back(foreign_text("X-Padded"), foreign_text(" a "));
  const auto headers = http_headers::from(source);
  CHECK(names_of(headers) == std::vector<std::string>{"Content-Type", "X-Padded"});
  CHECK(values_of(headers) == std::vector<std::string>{"application/json", " a "});
}

TEST_CASE("from takes fields that have name_string() and value(), repeated names in order",
          "[http_headers]") {
  const std::vector<named_field> source = {
      {"Set-Cookie", "a=1"}, {"Content-Length", "0"}, {"set-cookie", " b=2 "}};
  const auto headers = http_headers::from(source);
  CHECK(names_of(headers) ==
        std::vector<std::string>{"Set-Cookie", "Content-Length", "set-cookie"});
  CHECK(values_of(headers) == std::vector<std::string>{"a=1", "0", " b=2 "});
  CHECK(headers.count("SET-COOKIE") == 2);
}

TEST_CASE("to_string_view views text of every shape without copying", "[http_headers]") {
  const std::string owned = "owned";
  CHECK(unloc::to_string_view(owned).data() == owned.data());
  CHECK(unloc::to_string_view(owned) == "owned");
  const std::string_view view = "view";
  CHECK(unloc::to_string_view(view).data() == view.data());
  const foreign_text foreign("foreign");
  CHECK(unloc::to_string_view(foreign).data() == foreign.data());
  CHECK(unloc::to_string_view(foreign) == "foreign");
  const char* c_string = "c string";
  CHECK(unloc::to_string_view(c_string).data() == c_string);
  CHECK(unloc::to_string_view(c_string).size() == 8);
  CHECK(unloc::to_string_view("literal") == "literal");
  const char* null = nullptr;
  CHECK(unloc::to_string_view(null).empty());
  // Embedded NULs count: the size comes from size(), not from a terminator.
  const std::string with_nul("a\0b", 3);
  CHECK(unloc::to_string_view(with_nul).size() == 3);
}

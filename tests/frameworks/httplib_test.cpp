// http_headers::from with cpp-httplib's own header type: a std::multimap whose
// names compare without case, filled in arrival order as httplib's parser does.

#include <unloc/http_headers.hpp>

#include "catch.hpp"
#include <httplib.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

TEST_CASE("from copies an httplib::Headers, repeated names in arrival order, values as given",
          "[http_headers][httplib]") {
  httplib::Headers source;
  source.emplace("set-cookie", "a=1");
  source.emplace("Content-Type", "application/json");
  source.emplace("Set-Cookie", " b=2\t");
  source.emplace("SET-COOKIE", "c=3");
  const auto headers = unloc::http_headers::from(source);
  CHECK(headers.size() == 4);
  CHECK(headers.count("Set-Cookie") == 3);
  CHECK(headers.get("content-type") == std::optional<std::string_view>("application/json"));
  std::vector<std::string> names;
  std::vector<std::string> values;
  for (const auto& field : headers) {
    names.push_back(field.name);
    values.push_back(field.value);
  }
  // httplib::Headers orders names without case; equal names keep their arrival order.
  CHECK(names ==
        std::vector<std::string>{"Content-Type", "set-cookie", "Set-Cookie", "SET-COOKIE"});
  CHECK(values == std::vector<std::string>{"application/json", "a=1", " b=2\t", "c=3"});
}

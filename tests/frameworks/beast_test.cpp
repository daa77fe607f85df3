// http_headers::from and unloc::to_string_view with Boost.Beast's own types
// (Boost 1.74: fields whose elements have name_string() and value(), and
// boost::string_view, which does not convert to std::string_view).

#include <unloc/core.hpp>
#include <unloc/testing.hpp>

#include "catch.hpp"
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace http = boost::beast::http;
using unloc::http_headers;

// A request as a Beast server receives it: the raw bytes through Beast's parser.
http::request<http::string_body> parse_request(const std::string& raw) {
  http::request_parser<http::string_body> parser;
  parser.eager(true);
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (!ec && !parser.is_done() && used < raw.size()) {
    used += parser.put(boost::asio::buffer(raw.data() + used, raw.size() - used), ec);
  }
  INFO(ec.message());
  REQUIRE_FALSE(ec);
  REQUIRE(parser.is_done());
  return parser.release();
}

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

TEST_CASE("from copies a Beast request's fields, and its base() the same",
          "[http_headers][beast]") {
  http::request<http::string_body> request{http::verb::post, "/accessEvents", 11};
  request.set(http::field::content_type, "application/json");
  request.set("X-Request-Id", "r-1");
  const auto headers = http_headers::from(request);
  CHECK(names_of(headers) == std::vector<std::string>{"Content-Type", "X-Request-Id"});
  CHECK(headers.get("content-type") == std::optional<std::string_view>("application/json"));
  CHECK(headers.get("x-request-id") == std::optional<std::string_view>("r-1"));

  const auto from_base = http_headers::from(request.base());
  CHECK(names_of(from_base) == names_of(headers));
  CHECK(values_of(from_base) == values_of(headers));
}

TEST_CASE("from keeps the repeated fields of a parsed Beast request in order, values as parsed",
          "[http_headers][beast]") {
  const auto request = parse_request(
      "POST /accessEvents HTTP/1.1\r\n"
      "Host: example.com\r\n"
      "set-cookie: a=1\r\n"
      "X-List:  a ,  b\t\r\n"
      "Set-Cookie: b=2\r\n"
      "Content-Length: 0\r\n"
      "SET-COOKIE: c=3\r\n"
      "\r\n");
  const auto headers = http_headers::from(request);
  // Beast moves a repeated name's fields together, in arrival order, names as written.
  CHECK(names_of(headers) == std::vector<std::string>{"Host", "set-cookie", "Set-Cookie",
                                                      "SET-COOKIE", "X-List", "Content-Length"});
  CHECK(values_of(headers) ==
        std::vector<std::string>{"example.com", "a=1", "b=2", "c=3", "a ,  b", "0"});
  CHECK(headers.count("Set-Cookie") == 3);
  CHECK(headers.get("SET-cookie") == std::optional<std::string_view>("a=1"));
  // Beast's parser drops the OWS around a value (RFC 9110); what is inside stays.
  CHECK(headers.get("x-list") == std::optional<std::string_view>("a ,  b"));
}

TEST_CASE("a delivery parsed by Beast is validated with no cast", "[http_headers][beast]") {
  const unloc::basic_credentials credentials{"myuser", "mypasswoord"};
  const auto delivery =
      unloc::testing::make_test_delivery(unloc::testing::sample_access_event(), credentials);
  std::string raw = delivery.method + " " + delivery.path + " HTTP/1.1\r\nHost: receiver\r\n";
  for (const auto& field : delivery.headers) raw += field.name + ": " + field.value + "\r\n";
  raw += "\r\n" + delivery.body;
  const auto request = parse_request(raw);

  unloc::delivery_options options;
  options.credentials = {credentials};
  const unloc::delivery_validator validator(options);
  const auto headers = http_headers::from(request);
  const auto decision =
      validator.validate({unloc::to_string_view(request.method_string()),
                          unloc::to_string_view(request.target()), headers, request.body()});
  INFO(decision.message);
  CHECK(decision.status == 204);
  REQUIRE(decision.event.has_value());
  CHECK(decision.event->id == unloc::testing::sample_access_event().id);
}

TEST_CASE("to_string_view views a boost::string_view without copying", "[http_headers][beast]") {
  const std::string text = "/accessEvents?x=1";
  const boost::beast::string_view beast_view(text.data(), text.size());
  const auto view = unloc::to_string_view(beast_view);
  CHECK(view.data() == text.data());
  CHECK(view == text);
}

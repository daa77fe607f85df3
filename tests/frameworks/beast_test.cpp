// http_headers::from and unloc::to_string_view with Boost.Beast's own types
// (Boost 1.74: fields whose elements have name_string() and value(), and
// boost::string_view, which does not convert to std::string_view), and the
// adapter <unloc/beast.hpp>: Beast request in, decision out as a Beast response.

#include <unloc/beast.hpp>
#include <unloc/core.hpp>
#include <unloc/testing.hpp>

#include "catch.hpp"
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstddef>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
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

namespace {

const unloc::basic_credentials good{"myuser", "mypasswoord"};

unloc::delivery_validator make_validator(std::size_t max_body = 65536) {
  unloc::delivery_options options;
  options.credentials = {good};
  options.max_body_bytes = max_body;
  return unloc::delivery_validator(options);
}

// The raw bytes of a delivery of the sample event with these credentials.
std::string raw_delivery(const std::optional<unloc::basic_credentials>& credentials,
                         const std::string& path = "/accessEvents") {
  const auto delivery =
      unloc::testing::make_test_delivery(unloc::testing::sample_access_event(), credentials, path);
  std::string raw = "POST " + delivery.path + " HTTP/1.1\r\nHost: receiver\r\n";
  for (const auto& field : delivery.headers) raw += field.name + ": " + field.value + "\r\n";
  return raw + "\r\n" + delivery.body;
}

// The head of a request as a server reads it before the body: the parser stops after
// the header block, whatever follows.
http::request<http::string_body> parse_head(const std::string& raw) {
  http::request_parser<http::string_body> parser;
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (!ec && !parser.is_header_done() && used < raw.size()) {
    used += parser.put(boost::asio::buffer(raw.data() + used, raw.size() - used), ec);
  }
  INFO(ec.message());
  REQUIRE_FALSE(ec);
  REQUIRE(parser.is_header_done());
  REQUIRE_FALSE(parser.is_done());
  return parser.release();
}

// What a client reads: the response serialized by Beast, then parsed back.
http::response<http::string_body> on_the_wire(const http::response<http::string_body>& response,
                                              bool head_request = false) {
  std::ostringstream out;
  out << response;
  const auto bytes = out.str();
  http::response_parser<http::string_body> parser;
  parser.skip(head_request);
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (!ec && !parser.is_done() && used < bytes.size()) {
    used += parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
  }
  INFO(bytes);
  CHECK(used == bytes.size());
  REQUIRE_FALSE(ec);
  REQUIRE(parser.is_done());
  return parser.release();
}

}  // namespace

TEST_CASE("check_headers answers 401 from a head with wrong credentials, before the body",
          "[beast]") {
  const auto validator = make_validator();
  const auto head = parse_head(raw_delivery(unloc::basic_credentials{"myuser", "wrong"}));
  const auto decision = unloc::beast::check_headers(validator, head.base());
  REQUIRE(decision.has_value());
  CHECK(decision->outcome == unloc::delivery_outcome::unauthorized);
  CHECK(decision->status == 401);
  CHECK(decision->message.find("wrong") != std::string::npos);
}

TEST_CASE("check_headers decides 404, 405 and 413 from the head, and nothing for a good one",
          "[beast]") {
  const auto validator = make_validator(100);
  const auto elsewhere = parse_head(raw_delivery(good, "/other"));
  CHECK(unloc::beast::check_headers(validator, elsewhere)->status == 404);

  auto get = parse_head(raw_delivery(good));
  get.method(http::verb::get);
  CHECK(unloc::beast::check_headers(validator, get)->status == 405);

  auto unknown_method = parse_head(raw_delivery(good));
  unknown_method.method_string("BREW");
  CHECK(unloc::beast::check_headers(validator, unknown_method)->status == 405);

  // The sample event is over 100 bytes: its Content-Length alone decides.
  const auto head = parse_head(raw_delivery(good));
  const auto too_large = unloc::beast::check_headers(validator, head);
  REQUIRE(too_large.has_value());
  CHECK(too_large->status == 413);

  const auto roomy = make_validator();
  CHECK_FALSE(unloc::beast::check_headers(roomy, head).has_value());
}

TEST_CASE("validate accepts a whole delivery held in a string, a vector or a flat buffer",
          "[beast]") {
  const auto validator = make_validator();
  const auto request = parse_request(raw_delivery(good));
  const auto decision = unloc::beast::validate(validator, request);
  INFO(decision.message);
  CHECK(decision.ok());
  REQUIRE(decision.event.has_value());
  CHECK(decision.event->id == unloc::testing::sample_access_event().id);

  http::request<http::vector_body<char>> as_vector(request.base());
  as_vector.body().assign(request.body().begin(), request.body().end());
  CHECK(unloc::beast::validate(validator, as_vector).ok());

  http::request<http::basic_dynamic_body<boost::beast::flat_buffer>> as_flat(request.base());
  const auto n = request.body().size();
  boost::asio::buffer_copy(as_flat.body().prepare(n), boost::asio::buffer(request.body()));
  as_flat.body().commit(n);
  CHECK(unloc::beast::validate(validator, as_flat).ok());
}

TEST_CASE("validate refuses a body that is not the event, and never throws", "[beast]") {
  static_assert(
      noexcept(unloc::beast::validate(std::declval<const unloc::delivery_validator&>(),
                                      std::declval<const http::request<http::string_body>&>())));
  static_assert(
      noexcept(unloc::beast::check_headers(std::declval<const unloc::delivery_validator&>(),
                                           std::declval<const http::request_header<>&>())));
  const auto validator = make_validator();
  auto request = parse_request(raw_delivery(good));
  request.body() = std::string("{\"id\":\"\xff\xfe\"}");
  request.prepare_payload();
  CHECK(unloc::beast::validate(validator, request).status == 400);
  request.body() = R"({"id":"not a uuid"})";
  request.prepare_payload();
  const auto invalid = unloc::beast::validate(validator, request);
  CHECK(invalid.status == 422);
  CHECK(invalid.field == "id");
  // A body over the limit read anyway (chunked, no Content-Length) is still refused.
  request.body() = std::string(70000, ' ');
  request.erase(http::field::content_length);
  request.chunked(true);
  CHECK(unloc::beast::validate(validator, request).status == 413);
}

TEST_CASE("to_response writes a 204 with neither body nor Content-Length, keeping the connection",
          "[beast]") {
  const auto validator = make_validator();
  const auto request = parse_request(raw_delivery(good));
  const auto response =
      unloc::beast::to_response(unloc::beast::validate(validator, request), request);
  CHECK(response.result() == http::status::no_content);
  CHECK(response.version() == 11);
  CHECK(response.keep_alive());
  CHECK(response.find(http::field::content_length) == response.end());
  CHECK(response.body().empty());
  std::ostringstream out;
  out << response;
  CHECK(out.str() == "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST_CASE("to_response writes a refusal with its headers, JSON body and length", "[beast]") {
  const auto validator = make_validator();
  const auto head = parse_head(raw_delivery(unloc::basic_credentials{"myuser", "wrong"}));
  const auto decision = *unloc::beast::check_headers(validator, head);
  const auto response = on_the_wire(unloc::beast::to_response(decision, head));
  CHECK(response.result_int() == 401);
  CHECK(response[http::field::www_authenticate] == "Basic realm=\"unloc\"");
  CHECK(response[http::field::content_type] == "application/json");
  CHECK(response.body() == decision.body);
  CHECK(response[http::field::content_length] == std::to_string(decision.body.size()));
  CHECK(response.keep_alive());
  // Nothing secret from the request on the wire.
  CHECK(response.body().find("wrong") != std::string::npos);
  CHECK(response.body().find(unloc::basic_authorization({"myuser", "wrong"}).substr(6)) ==
        std::string::npos);
}

TEST_CASE("to_response follows the request's HTTP version and keep-alive, and closes on 413",
          "[beast]") {
  const auto refusal = unloc::make_refusal(unloc::delivery_outcome::not_found, "no webhook here");
  http::request<http::string_body> request{http::verb::post, "/x", 10};
  CHECK_FALSE(unloc::beast::to_response(refusal, request).keep_alive());
  CHECK(unloc::beast::to_response(refusal, request).version() == 10);
  request.set(http::field::connection, "keep-alive");
  CHECK(unloc::beast::to_response(refusal, request).keep_alive());
  request.version(11);
  request.set(http::field::connection, "close");
  CHECK_FALSE(unloc::beast::to_response(refusal, request).keep_alive());
  request.erase(http::field::connection);
  CHECK(unloc::beast::to_response(refusal, request).keep_alive());

  const auto too_large =
      unloc::make_refusal(unloc::delivery_outcome::payload_too_large, "over the limit");
  const auto response = on_the_wire(unloc::beast::to_response(too_large, request));
  CHECK(response.result_int() == 413);
  CHECK_FALSE(response.keep_alive());
}

TEST_CASE("to_response answers a HEAD with the length and no body, and a bad status with 503",
          "[beast]") {
  const auto refusal =
      unloc::make_refusal(unloc::delivery_outcome::method_not_allowed, "deliveries are POST");
  const http::request<http::string_body> head_request{http::verb::head, "/accessEvents", 11};
  const auto response = unloc::beast::to_response(refusal, head_request);
  CHECK(response.result_int() == 405);
  CHECK(response[http::field::allow] == "POST");
  CHECK(response[http::field::content_length] == std::to_string(refusal.body.size()));
  CHECK(response.body().empty());
  CHECK(on_the_wire(response, true).result_int() == 405);

  for (const int status : {0, 100, 1000, -1}) {
    auto odd = refusal;
    odd.status = status;
    CHECK(unloc::beast::to_response(odd, head_request).result_int() == 503);
  }
}

TEST_CASE("check_headers refuses a Transfer-Encoding other than chunked, closing the connection",
          "[beast]") {
  const auto validator = make_validator();
  for (const char* coding : {"gzip", "chunked, gzip", "identity"}) {
    auto head = parse_head(raw_delivery(good));
    head.erase(http::field::content_length);
    head.set(http::field::transfer_encoding, coding);
    const auto decision = unloc::beast::check_headers(validator, head);
    REQUIRE(decision.has_value());
    CHECK(decision->status == 400);
    const auto response = unloc::beast::to_response(*decision, head);
    CHECK_FALSE(response.keep_alive());
    CHECK(response.count(http::field::connection) == 1);
  }
  auto chunked = parse_head(raw_delivery(good));
  chunked.erase(http::field::content_length);
  chunked.set(http::field::transfer_encoding, "Chunked");
  CHECK_FALSE(unloc::beast::check_headers(validator, chunked).has_value());
  chunked.insert(http::field::transfer_encoding, "chunked");  // two fields
  CHECK(unloc::beast::check_headers(validator, chunked)->status == 400);
}

TEST_CASE("to_response closes for a decision that carries Connection: close", "[beast]") {
  auto refusal = unloc::make_refusal(unloc::delivery_outcome::unavailable, "shutting down");
  const http::request<http::string_body> request{http::verb::post, "/accessEvents", 11};
  CHECK(unloc::beast::to_response(refusal, request).keep_alive());
  refusal.headers.add("connection", "Close");
  const auto response = on_the_wire(unloc::beast::to_response(refusal, request));
  CHECK_FALSE(response.keep_alive());
  CHECK(response.count(http::field::connection) == 1);
  CHECK(response.result_int() == 503);
}

TEST_CASE(
    "the adapter reads the fields a decision needs by name in any case, repeats counted, "
    "as the validator reads http_headers",
    "[beast]") {
  const auto validator = make_validator();
  const auto swap_field = [](std::string raw, const std::string& from, const std::string& to) {
    const auto at = raw.find(from);
    REQUIRE(at != std::string::npos);
    return raw.replace(at, from.size(), to);
  };
  const std::string raw = raw_delivery(good);
  const auto authorization = raw.substr(raw.find("Authorization: "));
  const auto authorization_line = authorization.substr(0, authorization.find("\r\n") + 2);
  struct variant {
    std::string raw;
    int status;
  };
  const variant variants[] = {
      {raw, 204},
      {swap_field(raw, "Authorization:", "aUTHORIZATION:"), 204},
      {swap_field(raw, "Content-Type:", "content-type:"), 204},
      {swap_field(raw, "Authorization:", "X-Authorization:"), 401},                      // missing
      {swap_field(raw, "\r\n\r\n", "\r\n" + authorization_line + "\r\n"), 401},          // twice
      {swap_field(raw, "\r\n\r\n", "\r\nCONTENT-TYPE: application/json\r\n\r\n"), 415},  // twice
      {swap_field(raw, "Content-Type:", "Content-Typo:"), 415},
  };
  for (const auto& v : variants) {
    INFO(v.raw.substr(0, v.raw.find("\r\n\r\n")));
    const auto request = parse_request(v.raw);
    const auto decision = unloc::beast::validate(validator, request);
    CHECK(decision.status == v.status);
    const auto early = unloc::beast::check_headers(validator, request.base());
    CHECK(early.has_value() == (v.status != 204));
    if (early) CHECK(early->status == v.status);
    // The generic path, every field copied, decides the same.
    const auto headers = unloc::http_headers::from(request.base());
    const auto generic = validator.validate({unloc::to_string_view(request.method_string()),
                                             unloc::to_string_view(request.target()), headers,
                                             unloc::to_string_view(request.body())});
    CHECK(generic.status == decision.status);
    CHECK(generic.message == decision.message);
  }
}

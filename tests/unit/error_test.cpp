#include "catch.hpp"
#include "fixtures.hpp"

#include <unloc/error.hpp>

#include <cstddef>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace {

using unloc::error;
using unloc::error_category;
using unloc::result;

using unit::has_text;

error bad_input() { return unloc::make_error(error_category::invalid_input, "the id is empty", "id"); }

}  // namespace

static_assert(std::is_base_of_v<std::logic_error, unloc::bad_result_access>,
              "calling value() on an error is a programming error");
static_assert(std::string_view(unloc::to_string(error_category::invalid_input)) == "invalid_input",
              "category names are usable at compile time");

TEST_CASE("a result built from a value holds that value", "[error]") {
  result<int> r = 42;
  CHECK(r.has_value());
  CHECK(static_cast<bool>(r));
  CHECK(r.value() == 42);
  CHECK(*r == 42);

  result<std::string> s = std::string("North gate");
  REQUIRE(s.has_value());
  CHECK(s->size() == 10);
  const result<std::string>& cs = s;
  CHECK(cs.value() == "North gate");
}

TEST_CASE("a result built from an error holds that error", "[error]") {
  result<int> r = bad_input();
  CHECK_FALSE(r.has_value());
  CHECK_FALSE(static_cast<bool>(r));
  CHECK(r.error().category == error_category::invalid_input);
  CHECK(r.error().message == "the id is empty");
  CHECK(r.error().field == "id");

  const error moved_out = std::move(r).error();
  CHECK(moved_out.message == "the id is empty");
}

TEST_CASE("make_error sets the category, the message and the field", "[error]") {
  const error e = unloc::make_error(error_category::network, "connection reset");
  CHECK(e.category == error_category::network);
  CHECK(e.message == "connection reset");
  CHECK(e.field.empty());
  CHECK(e.http_status == 0);
  CHECK(e.attempts == 0);
}

TEST_CASE("value() on an error throws bad_result_access carrying the error", "[error]") {
  result<int> r = bad_input();
  CHECK_THROWS_AS(r.value(), unloc::bad_result_access);
  const result<int>& cr = r;
  CHECK_THROWS_AS(cr.value(), unloc::bad_result_access);
  CHECK_THROWS_AS(std::move(r).value(), unloc::bad_result_access);

  result<int> again = bad_input();
  try {
    (void)again.value();
    FAIL("value() returned on an error");
  } catch (const unloc::bad_result_access& e) {
    CHECK(e.error().category == error_category::invalid_input);
    CHECK(e.error().message == "the id is empty");
    INFO(e.what());
    CHECK(has_text(e.what(), "the id is empty"));
    CHECK(has_text(e.what(), "invalid_input"));
  }
}

TEST_CASE("error() on a value throws std::logic_error", "[error]") {
  result<int> r = 7;
  CHECK_THROWS_AS(r.error(), std::logic_error);
  CHECK_THROWS_AS(std::move(r).error(), std::logic_error);
}

TEST_CASE("value() on an rvalue moves a move-only value out", "[error]") {
  result<std::unique_ptr<int>> r = std::make_unique<int>(5);
  std::unique_ptr<int> taken = std::move(r).value();
  REQUIRE(taken != nullptr);
  CHECK(*taken == 5);
}

TEST_CASE("value_or gives the value, or the fallback when an error is held", "[error]") {
  const result<int> ok = 3;
  const result<int> failed = bad_input();
  CHECK(ok.value_or(9) == 3);
  CHECK(failed.value_or(9) == 9);

  const result<std::string> name = bad_input();
  CHECK(name.value_or("unnamed") == "unnamed");
}

TEST_CASE("and_then calls the function on a value and passes an error through", "[error]") {
  int calls = 0;
  const auto half = [&calls](int v) -> result<int> {
    ++calls;
    if (v % 2 != 0) return unloc::make_error(error_category::invalid_input, "odd");
    return v / 2;
  };

  const result<int> even = 10;
  const auto chained = even.and_then(half);
  REQUIRE(chained.has_value());
  CHECK(*chained == 5);
  CHECK(calls == 1);

  const result<int> odd = 3;
  const auto refused = odd.and_then(half);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message == "odd");
  CHECK(calls == 2);

  const result<int> failed = bad_input();
  const auto passed = failed.and_then(half);
  REQUIRE_FALSE(passed.has_value());
  CHECK(passed.error().message == "the id is empty");
  CHECK(calls == 2);
}

TEST_CASE("and_then may change the value type", "[error]") {
  const result<int> n = 12;
  const result<std::string> text =
      n.and_then([](int v) -> result<std::string> { return std::to_string(v); });
  REQUIRE(text.has_value());
  CHECK(*text == "12");
}

TEST_CASE("transform maps a value and passes an error through untouched", "[error]") {
  int calls = 0;
  const auto describe = [&calls](int v) {
    ++calls;
    return std::string(static_cast<std::size_t>(v), '*');
  };

  const result<int> three = 3;
  const result<std::string> stars = three.transform(describe);
  REQUIRE(stars.has_value());
  CHECK(*stars == "***");
  CHECK(calls == 1);

  error e = bad_input();
  e.http_status = 400;
  e.request_id = "req-1";
  const result<int> failed = e;
  const result<std::string> passed = failed.transform(describe);
  REQUIRE_FALSE(passed.has_value());
  CHECK(calls == 1);
  CHECK(passed.error().message == "the id is empty");
  CHECK(passed.error().http_status == 400);
  CHECK(passed.error().request_id == "req-1");
}

TEST_CASE("result<void> is success by default and value() then does not throw", "[error]") {
  const result<void> ok;
  CHECK(ok.has_value());
  CHECK(static_cast<bool>(ok));
  CHECK_NOTHROW(ok.value());
  CHECK_THROWS_AS(ok.error(), std::logic_error);
}

TEST_CASE("result<void> built from an error holds it and value() throws", "[error]") {
  const result<void> failed = bad_input();
  CHECK_FALSE(failed.has_value());
  CHECK_FALSE(static_cast<bool>(failed));
  CHECK(failed.error().message == "the id is empty");
  CHECK_THROWS_AS(failed.value(), unloc::bad_result_access);
  try {
    failed.value();
    FAIL("value() returned on an error");
  } catch (const unloc::bad_result_access& e) {
    CHECK(e.error().field == "id");
  }
}

TEST_CASE("every error category has its own name", "[error]") {
  const error_category all[] = {
      error_category::invalid_input, error_category::invalid_response,
      error_category::authentication, error_category::api,
      error_category::network,        error_category::tls,
      error_category::timeout,        error_category::ambiguous,
      error_category::internal,
  };
  const char* const names[] = {"invalid_input", "invalid_response", "authentication",
                               "api",           "network",          "tls",
                               "timeout",       "ambiguous",        "internal"};
  for (std::size_t i = 0; i < std::size(all); ++i) {
    CHECK(std::string(unloc::to_string(all[i])) == names[i]);
  }
}

TEST_CASE("to_string of an error gives category and message and only the parts that are set",
          "[error]") {
  const error plain = unloc::make_error(error_category::timeout, "the deadline passed");
  CHECK(unloc::to_string(plain) == "timeout: the deadline passed");

  error full = unloc::make_error(error_category::api, "the API refused the call", "url");
  full.http_status = 409;
  full.api_code = "conflict";
  full.api_message = "a webhook with this url exists";
  full.request_id = "req-8d2f";
  full.attempts = 3;
  const std::string line = unloc::to_string(full);
  INFO(line);
  CHECK(line.rfind("api: the API refused the call", 0) == 0);
  CHECK(has_text(line, "'url'"));
  CHECK(has_text(line, "409"));
  CHECK(has_text(line, "conflict"));
  CHECK(has_text(line, "a webhook with this url exists"));
  CHECK(has_text(line, "req-8d2f"));
  CHECK(has_text(line, "3 attempts"));
  CHECK_FALSE(has_text(line, "\n"));
}

TEST_CASE("to_string of an error leaves out the raw body and a single attempt", "[error]") {
  error e = unloc::make_error(error_category::api, "the API answered 502");
  e.http_status = 502;
  e.body = "<html>Bad Gateway</html>";
  e.attempts = 1;
  const std::string line = unloc::to_string(e);
  INFO(line);
  CHECK(has_text(line, "502"));
  CHECK_FALSE(has_text(line, "<html>"));
  CHECK_FALSE(has_text(line, "attempt"));
  CHECK_FALSE(has_text(line, "field"));
  CHECK_FALSE(has_text(line, "request id"));
}

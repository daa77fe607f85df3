#include <unloc/timestamp.hpp>

#include "catch.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>

namespace {

using unloc::format_timestamp;
using unloc::parse_timestamp;
using unloc::timestamp;

constexpr std::int64_t ms_per_day = 86400000;

std::int64_t ms_of(std::string_view text) {
  auto parsed = parse_timestamp(text);
  const std::string why = parsed ? std::string() : parsed.error().message;
  INFO(text << ": " << why);
  REQUIRE(parsed.has_value());
  return static_cast<std::int64_t>(parsed->time_since_epoch().count());
}

timestamp at_ms(std::int64_t ms) { return timestamp(std::chrono::milliseconds(ms)); }

// The error message of a parse that must fail.
std::string timestamp_error(std::string_view text) {
  auto parsed = parse_timestamp(text);
  INFO(text);
  REQUIRE_FALSE(parsed.has_value());
  CHECK(parsed.error().category == unloc::error_category::invalid_input);
  return parsed.error().message;
}

std::string round_trip(std::string_view text) {
  auto parsed = parse_timestamp(text);
  INFO(text);
  REQUIRE(parsed.has_value());
  return format_timestamp(*parsed);
}

// An oracle that shares nothing with Hinnant's algorithm: counts days year by year.
std::int64_t naive_days_from_civil(int year, int month, int day) {
  const auto leap = [](int y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); };
  const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  std::int64_t days = 0;
  for (int y = 1970; y < year; ++y) days += leap(y) ? 366 : 365;
  for (int y = year; y < 1970; ++y) days -= leap(y) ? 366 : 365;
  for (int m = 1; m < month; ++m) days += (m == 2 && leap(year)) ? 29 : month_days[m - 1];
  return days + day - 1;
}

}  // namespace

static_assert(unloc::detail::days_from_civil(1970, 1, 1) == 0, "the epoch is day 0");
static_assert(unloc::detail::days_from_civil(1969, 12, 31) == -1, "the day before the epoch");
static_assert(unloc::detail::days_from_civil(2000, 3, 1) == 11017, "after a 400-year leap day");
static_assert(unloc::detail::civil_from_days(-1).year == 1969, "civil_from_days before 1970");
static_assert(unloc::detail::civil_from_days(-1).month == 12, "civil_from_days before 1970");
static_assert(unloc::detail::civil_from_days(-1).day == 31, "civil_from_days before 1970");

TEST_CASE("parses the documented Access Event times to milliseconds since the epoch",
          "[timestamp]") {
  CHECK(ms_of("2022-01-01T10:35:24.083Z") == 1641033324083);
  CHECK(ms_of("2022-01-01T10:40:00.013Z") == 1641033600013);
  CHECK(ms_of("2022-01-01T10:40:00.013Z") - ms_of("2022-01-01T10:35:24.083Z") == 275930);
}

TEST_CASE("formats a parsed timestamp back to the same text", "[timestamp]") {
  for (const char* text :
       {"2022-01-01T10:35:24.083Z", "2022-01-01T10:40:00.013Z", "1970-01-01T00:00:00.000Z",
        "1969-12-31T23:59:59.999Z", "2024-02-29T23:59:59.999Z", "2000-02-29T00:00:00.001Z",
        "0000-01-01T00:00:00.000Z", "0001-02-03T04:05:06.789Z", "9999-12-31T23:59:59.999Z"}) {
    CHECK(round_trip(text) == text);
  }
}

TEST_CASE("formats the epoch and instants around it with exactly three fraction digits",
          "[timestamp]") {
  CHECK(format_timestamp(at_ms(0)) == "1970-01-01T00:00:00.000Z");
  CHECK(format_timestamp(at_ms(1)) == "1970-01-01T00:00:00.001Z");
  CHECK(format_timestamp(at_ms(-1)) == "1969-12-31T23:59:59.999Z");
  CHECK(format_timestamp(at_ms(-ms_per_day)) == "1969-12-31T00:00:00.000Z");
  CHECK(format_timestamp(at_ms(-ms_per_day - 1)) == "1969-12-30T23:59:59.999Z");
  CHECK(format_timestamp(at_ms(1641033324083)) == "2022-01-01T10:35:24.083Z");
}

TEST_CASE("applies a positive, a negative and a minus-zero offset to get UTC", "[timestamp]") {
  const std::int64_t utc = ms_of("2022-01-01T10:35:24.083Z");
  CHECK(ms_of("2022-01-01T12:35:24.083+02:00") == utc);
  CHECK(ms_of("2022-01-01T05:05:24.083-05:30") == utc);
  CHECK(ms_of("2022-01-01T10:35:24.083-00:00") == utc);
  CHECK(ms_of("2022-01-01T10:35:24.083+00:00") == utc);
  CHECK(round_trip("2022-01-01T12:35:24.083+02:00") == "2022-01-01T10:35:24.083Z");
  CHECK(round_trip("2022-01-01T05:05:24.083-05:30") == "2022-01-01T10:35:24.083Z");
}

TEST_CASE("an offset can move the instant into another day, month and year", "[timestamp]") {
  CHECK(round_trip("2022-01-01T00:30:00+01:00") == "2021-12-31T23:30:00.000Z");
  CHECK(round_trip("2021-12-31T23:30:00-01:00") == "2022-01-01T00:30:00.000Z");
  CHECK(round_trip("2024-03-01T01:00:00+23:59") == "2024-02-29T01:01:00.000Z");
}

TEST_CASE("accepts 0 to 9 fraction digits and rounds down to the millisecond", "[timestamp]") {
  const std::int64_t second = ms_of("2022-01-01T10:35:24Z");
  CHECK(second == 1641033324000);
  CHECK(ms_of("2022-01-01T10:35:24.0Z") == second);
  CHECK(ms_of("2022-01-01T10:35:24.1Z") == second + 100);
  CHECK(ms_of("2022-01-01T10:35:24.08Z") == second + 80);
  CHECK(ms_of("2022-01-01T10:35:24.083Z") == second + 83);
  CHECK(ms_of("2022-01-01T10:35:24.0839Z") == second + 83);
  CHECK(ms_of("2022-01-01T10:35:24.08399Z") == second + 83);
  CHECK(ms_of("2022-01-01T10:35:24.083999Z") == second + 83);
  CHECK(ms_of("2022-01-01T10:35:24.0839999Z") == second + 83);
  CHECK(ms_of("2022-01-01T10:35:24.08399999Z") == second + 83);
  CHECK(ms_of("2022-01-01T10:35:24.999999999Z") == second + 999);
  CHECK(ms_of("2022-01-01T10:35:24.000000001+01:00") == second - 3600000);
}

TEST_CASE("rounds a fraction before 1970 down to the earlier millisecond", "[timestamp]") {
  CHECK(ms_of("1969-12-31T23:59:59.9999Z") == -1);
  CHECK(ms_of("1969-12-31T23:59:59.0001Z") == -1000);
  CHECK(round_trip("1969-12-31T23:59:59.9999999Z") == "1969-12-31T23:59:59.999Z");
}

TEST_CASE("rejects a dot without digits and a fraction of 10 or more digits", "[timestamp]") {
  CHECK(timestamp_error("2022-01-01T10:35:24.Z") ==
        "invalid timestamp '2022-01-01T10:35:24.Z': '.' must be followed by at least one digit");
  CHECK(timestamp_error("2022-01-01T10:35:24.") ==
        "invalid timestamp '2022-01-01T10:35:24.': '.' must be followed by at least one digit");
  CHECK(timestamp_error("2022-01-01T10:35:24.0123456789Z") ==
        "invalid timestamp '2022-01-01T10:35:24.0123456789Z': the fraction has 10 digits; at "
        "most 9 are allowed");
  CHECK(timestamp_error("2022-01-01T10:35:24,083Z").find("character 20 must be 'Z', '+' or '-'") !=
        std::string::npos);
}

TEST_CASE("accepts lowercase t and z", "[timestamp]") {
  CHECK(ms_of("2022-01-01t10:35:24.083z") == 1641033324083);
  CHECK(ms_of("2022-01-01t10:35:24.083Z") == 1641033324083);
}

TEST_CASE("rejects a day past the end of its month", "[timestamp]") {
  CHECK(timestamp_error("2022-02-30T00:00:00Z") ==
        "invalid timestamp '2022-02-30T00:00:00Z': day 30 is out of range for 2022-02");
  CHECK(timestamp_error("2023-02-29T00:00:00Z") ==
        "invalid timestamp '2023-02-29T00:00:00Z': day 29 is out of range for 2023-02");
  CHECK(timestamp_error("2022-04-31T00:00:00Z").find("day 31 is out of range for 2022-04") !=
        std::string::npos);
  CHECK(timestamp_error("2022-01-32T00:00:00Z").find("day 32 is out of range for 2022-01") !=
        std::string::npos);
  CHECK(timestamp_error("2022-01-00T00:00:00Z").find("day 00 is out of range for 2022-01") !=
        std::string::npos);
}

TEST_CASE("accepts February 29 in leap years only", "[timestamp]") {
  CHECK(ms_of("2024-02-29T12:00:00Z") == 1709208000000);
  CHECK(ms_of("2000-02-29T00:00:00Z") - ms_of("2000-02-28T00:00:00Z") == ms_per_day);
  CHECK(ms_of("2000-03-01T00:00:00Z") - ms_of("2000-02-29T00:00:00Z") == ms_per_day);
  CHECK(ms_of("0000-02-29T00:00:00Z") - ms_of("0000-02-28T00:00:00Z") == ms_per_day);
  CHECK(timestamp_error("1900-02-29T00:00:00Z").find("day 29 is out of range for 1900-02") !=
        std::string::npos);
  CHECK(timestamp_error("2100-02-29T00:00:00Z").find("day 29 is out of range for 2100-02") !=
        std::string::npos);
  CHECK(ms_of("2023-03-01T00:00:00Z") - ms_of("2023-02-28T00:00:00Z") == ms_per_day);
}

TEST_CASE("accepts the last day of every month and rejects the day after", "[timestamp]") {
  const int last_2023[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  for (int month = 1; month <= 12; ++month) {
    char good[32];
    char bad[32];
    std::snprintf(good, sizeof good, "2023-%02d-%02dT00:00:00Z", month, last_2023[month - 1]);
    std::snprintf(bad, sizeof bad, "2023-%02d-%02dT00:00:00Z", month, last_2023[month - 1] + 1);
    INFO(good);
    CHECK(parse_timestamp(good).has_value());
    CHECK_FALSE(parse_timestamp(bad).has_value());
  }
}

TEST_CASE("rejects a month, hour, minute or second out of range", "[timestamp]") {
  CHECK(timestamp_error("2022-00-01T00:00:00Z") ==
        "invalid timestamp '2022-00-01T00:00:00Z': month 00 is out of range (01-12)");
  CHECK(timestamp_error("2022-13-01T00:00:00Z") ==
        "invalid timestamp '2022-13-01T00:00:00Z': month 13 is out of range (01-12)");
  CHECK(timestamp_error("2022-01-01T24:00:00Z") ==
        "invalid timestamp '2022-01-01T24:00:00Z': hour 24 is out of range (00-23)");
  CHECK(timestamp_error("2022-01-01T23:60:00Z") ==
        "invalid timestamp '2022-01-01T23:60:00Z': minute 60 is out of range (00-59)");
  CHECK(timestamp_error("2022-01-01T23:59:61Z") ==
        "invalid timestamp '2022-01-01T23:59:61Z': second 61 is out of range (00-59)");
  CHECK(ms_of("2022-01-01T23:59:59Z") == ms_of("2022-01-02T00:00:00Z") - 1000);
}

TEST_CASE("rejects a leap second saying leap seconds are not supported", "[timestamp]") {
  CHECK(timestamp_error("2016-12-31T23:59:60Z") ==
        "invalid timestamp '2016-12-31T23:59:60Z': second 60 is a leap second; leap seconds are "
        "not supported");
}

TEST_CASE("rejects an offset hour or minute out of range", "[timestamp]") {
  CHECK(timestamp_error("2022-01-01T00:00:00+24:00") ==
        "invalid timestamp '2022-01-01T00:00:00+24:00': offset hour 24 is out of range (00-23)");
  CHECK(timestamp_error("2022-01-01T00:00:00-01:60") ==
        "invalid timestamp '2022-01-01T00:00:00-01:60': offset minute 60 is out of range (00-59)");
  CHECK(ms_of("2022-01-01T00:00:00-23:59") == ms_of("2022-01-01T23:59:00Z"));
}

TEST_CASE("rejects a malformed offset", "[timestamp]") {
  for (const char* text :
       {"2022-01-01T00:00:00+0200", "2022-01-01T00:00:00+02", "2022-01-01T00:00:00+2:00",
        "2022-01-01T00:00:00+02:0", "2022-01-01T00:00:00+", "2022-01-01T00:00:00+02-00",
        "2022-01-01T00:00:00+a2:00"}) {
    CHECK(timestamp_error(text).find("the offset at character 20 must be +HH:MM or -HH:MM") !=
          std::string::npos);
  }
}

TEST_CASE("rejects an empty timestamp", "[timestamp]") {
  CHECK(timestamp_error("") == "invalid timestamp '': the text is empty");
}

TEST_CASE("rejects text that ends before the seconds", "[timestamp]") {
  CHECK(timestamp_error("2022-01-01") ==
        "invalid timestamp '2022-01-01': ends after 10 characters; expected YYYY-MM-DDTHH:MM:SS "
        "then Z or +HH:MM/-HH:MM");
  CHECK(timestamp_error("2022-01-01T10:35").find("ends after 16 characters") != std::string::npos);
}

TEST_CASE("rejects a missing time zone", "[timestamp]") {
  CHECK(timestamp_error("2022-01-01T10:35:24.083") ==
        "invalid timestamp '2022-01-01T10:35:24.083': the time zone is missing; expected Z or "
        "+HH:MM/-HH:MM at character 24");
  CHECK(timestamp_error("2022-01-01T10:35:24").find("the time zone is missing") !=
        std::string::npos);
}

TEST_CASE("rejects text after the time zone", "[timestamp]") {
  CHECK(timestamp_error("2022-01-01T10:35:24.083Zjunk") ==
        "invalid timestamp '2022-01-01T10:35:24.083Zjunk': unexpected text after the time zone "
        "at character 25");
  CHECK(timestamp_error("2022-01-01T10:35:24+01:00Z").find("unexpected text after the time zone") !=
        std::string::npos);
  CHECK(timestamp_error("2022-01-01T10:35:24Z ").find("at character 21") != std::string::npos);
}

TEST_CASE("rejects wrong separators and a non-digit where a digit belongs", "[timestamp]") {
  CHECK(timestamp_error("2022-01-01 10:35:24Z") ==
        "invalid timestamp '2022-01-01 10:35:24Z': character 11 must be 'T'");
  CHECK(timestamp_error("2022/01/01T10:35:24Z") ==
        "invalid timestamp '2022/01/01T10:35:24Z': character 5 must be '-'");
  CHECK(timestamp_error("2022-01-01T10.35.24Z") ==
        "invalid timestamp '2022-01-01T10.35.24Z': character 14 must be ':'");
  CHECK(timestamp_error("2022-1-01T10:35:24Z") ==
        "invalid timestamp '2022-1-01T10:35:24Z': character 7 must be a digit");
  CHECK(timestamp_error("+2022-01-01T10:35:24Z") ==
        "invalid timestamp '+2022-01-01T10:35:24Z': character 1 must be a digit");
  CHECK(timestamp_error("20220101T103524Z").find("character 5 must be '-'") != std::string::npos);
}

TEST_CASE("rejects a timestamp with an embedded NUL and writes the NUL escaped in the message",
          "[timestamp]") {
  using namespace std::string_literals;
  CHECK(timestamp_error("2022-01-01T10:35:24.083\0Z"s) ==
        "invalid timestamp '2022-01-01T10:35:24.083\\x00Z': character 24 must be 'Z', '+' or "
        "'-' (the time zone)");
  CHECK(
      timestamp_error("2022-01-01T10:35:24.083Z\0"s).find("unexpected text after the time zone") !=
      std::string::npos);
  CHECK(timestamp_error("2022\0-01-01T10:35:24Z"s).find("\\x00") != std::string::npos);
}

TEST_CASE("parses instants before 1970", "[timestamp]") {
  CHECK(ms_of("1969-12-31T23:59:59.999Z") == -1);
  CHECK(ms_of("1900-01-01T00:00:00.000Z") == -2208988800000);
  CHECK(ms_of("1600-03-01T00:00:00Z") == -11670912000000);
  CHECK(ms_of("0001-01-01T00:00:00Z") == -62135596800000);
  CHECK(ms_of("0000-01-01T00:00:00Z") == -62167219200000);
  CHECK(round_trip("1969-07-20T20:17:40.5Z") == "1969-07-20T20:17:40.500Z");
}

TEST_CASE("parses and formats the last millisecond of year 9999", "[timestamp]") {
  CHECK(ms_of("9999-12-31T23:59:59.999Z") == 253402300799999);
  CHECK(format_timestamp(at_ms(253402300799999)) == "9999-12-31T23:59:59.999Z");
}

TEST_CASE("formats years outside 0000-9999 in ISO 8601 expanded form", "[timestamp]") {
  CHECK(round_trip("9999-12-31T23:59:59.999-00:01") == "+10000-01-01T00:00:59.999Z");
  CHECK(round_trip("0000-01-01T00:00:00+00:01") == "-0001-12-31T23:59:00.000Z");
  CHECK(format_timestamp(at_ms(-62167219200001)) == "-0001-12-31T23:59:59.999Z");
  CHECK_NOTHROW((void)format_timestamp(timestamp::min()));
  CHECK_NOTHROW((void)format_timestamp(timestamp::max()));
  CHECK(format_timestamp(timestamp::min()).front() == '-');
  CHECK(format_timestamp(timestamp::max()).front() == '+');
}

TEST_CASE("agrees with a day-counting oracle on every first of the month from 1600 to 2400",
          "[timestamp]") {
  for (int year = 1600; year <= 2400; ++year) {
    for (int month = 1; month <= 12; ++month) {
      char text[32];
      std::snprintf(text, sizeof text, "%04d-%02d-01T00:00:00.000Z", year, month);
      INFO(text);
      REQUIRE(ms_of(text) == naive_days_from_civil(year, month, 1) * ms_per_day);
      REQUIRE(format_timestamp(at_ms(naive_days_from_civil(year, month, 1) * ms_per_day)) == text);
    }
  }
}

TEST_CASE("round-trips random instants across years 0000-9999 and every offset shape",
          "[timestamp]") {
  std::mt19937_64 random(20220101);
  const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  for (int i = 0; i < 5000; ++i) {
    const int year = static_cast<int>(random() % 10000);
    const int month = static_cast<int>(random() % 12) + 1;
    const int day = static_cast<int>(random() % month_days[month - 1]) + 1;
    const int hour = static_cast<int>(random() % 24);
    const int minute = static_cast<int>(random() % 60);
    const int second = static_cast<int>(random() % 60);
    const int millis = static_cast<int>(random() % 1000);
    char utc[40];
    std::snprintf(utc, sizeof utc, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, month, day, hour,
                  minute, second, millis);
    INFO(utc);
    const std::int64_t expected = naive_days_from_civil(year, month, day) * ms_per_day +
                                  ((hour * 60 + minute) * 60 + second) * std::int64_t{1000} +
                                  millis;
    REQUIRE(ms_of(utc) == expected);
    REQUIRE(format_timestamp(at_ms(expected)) == utc);

    // The same instant with a fraction of up to 9 digits (extra digits must be dropped) and an
    // offset of up to +-23:59 moves by exactly the offset.
    const int offset = static_cast<int>(random() % (2 * 1439 + 1)) - 1439;
    const int extra = static_cast<int>(random() % 1000000);
    char local[48];
    std::snprintf(local, sizeof local, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%06d%c%02d:%02d", year,
                  month, day, hour, minute, second, millis, extra, offset < 0 ? '-' : '+',
                  (offset < 0 ? -offset : offset) / 60, (offset < 0 ? -offset : offset) % 60);
    INFO(local);
    REQUIRE(ms_of(local) == expected - offset * std::int64_t{60000});
  }
}

TEST_CASE("never throws on any single-byte change to a valid timestamp", "[timestamp]") {
  const std::string valid = "2022-01-01T10:35:24.083+02:00";
  for (std::size_t pos = 0; pos <= valid.size(); ++pos) {
    for (int byte = 0; byte < 256; ++byte) {
      std::string text = valid;
      if (pos == valid.size()) {
        text += static_cast<char>(byte);
      } else {
        text[pos] = static_cast<char>(byte);
      }
      CHECK_NOTHROW((void)parse_timestamp(text));
      auto parsed = parse_timestamp(text);
      // Whatever is accepted must format and parse back to the same instant.
      if (parsed) CHECK(parse_timestamp(format_timestamp(*parsed)).value() == *parsed);
    }
    CHECK_NOTHROW((void)parse_timestamp(std::string_view(valid).substr(0, pos)));
  }
}

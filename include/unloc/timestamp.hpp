#pragma once

/// @file
/// `unloc::timestamp`: a UTC instant with millisecond precision, read from and
/// written as RFC 3339 text (`2022-01-01T10:35:24.083Z`).

#include <unloc/detail/text.hpp>
#include <unloc/error.hpp>
#include <unloc/version.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

UNLOC_BEGIN_NAMESPACE

/// A UTC instant, milliseconds since 1970-01-01T00:00:00Z (leap seconds not counted).
using timestamp = std::chrono::time_point<std::chrono::system_clock, std::chrono::milliseconds>;

/// Reads RFC 3339 `YYYY-MM-DDTHH:MM:SS[.fraction]` followed by `Z` or `+HH:MM`/`-HH:MM`
/// (`T` and `Z` in either case; 1 to 9 fraction digits, rounded down to the millisecond;
/// years 0000-9999), checks the calendar and converts to UTC. Never throws (only
/// `std::bad_alloc` for the error message); leap seconds (`:60`) are rejected.
[[nodiscard]] inline result<timestamp> parse_timestamp(std::string_view text);

/// Writes `t` as UTC `YYYY-MM-DDTHH:MM:SS.mmmZ`, always with three fraction digits.
/// Years outside 0000-9999 are written in ISO 8601 expanded form (`-0001`, `+10000`).
[[nodiscard]] inline std::string format_timestamp(timestamp t);

namespace detail {

/// A proleptic Gregorian date.
struct civil_date {
  std::int64_t year;
  unsigned month;  // 1-12
  unsigned day;    // 1-31
};

// Howard Hinnant's days_from_civil: days since 1970-01-01, for any year (before 1970 too).
inline constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);                 // [0, 399]
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            // [0, 146096]
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// Howard Hinnant's civil_from_days: the inverse of days_from_civil.
inline constexpr civil_date civil_from_days(std::int64_t z) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);                    // [0, 146096]
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const unsigned mp = (5 * doy + 2) / 153;                                     // [0, 11]
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;                             // [1, 31]
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;                                // [1, 12]
  return {static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

inline constexpr bool is_leap_year(std::int64_t y) noexcept {
  return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

inline constexpr unsigned days_in_month(std::int64_t y, unsigned m) noexcept {
  constexpr unsigned char days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return (m == 2 && is_leap_year(y)) ? 29U : days[m - 1];
}

// The value of `count` decimal digits at text[pos]; the caller has checked they are digits.
inline constexpr unsigned decimal_at(std::string_view text, std::size_t pos,
                                     std::size_t count) noexcept {
  unsigned v = 0;
  for (std::size_t i = 0; i < count; ++i) v = v * 10 + static_cast<unsigned>(text[pos + i] - '0');
  return v;
}

// What is wrong with a timestamp's text. The parser only names the problem;
// the message is built out of line (timestamp_error), so the parser compiles small.
enum class timestamp_problem : std::uint8_t {
  empty, too_short, digit, letter_t, punctuation, fraction_empty, fraction_long, zone_missing,
  offset_shape, zone, trailing, month, day, hour, minute, leap_second, second, offset_hour,
  offset_minute
};

// The fixed part of the text; 'D' marks a digit.
inline constexpr std::string_view timestamp_shape = "DDDD-DD-DDTDD:DD:DD";

// `n`: the problem's character position (0-based), count or field value. One
// table and one path, so that it compiles small too; it returns the result
// itself, so that parse_timestamp's returns move and destroy no error.
UNLOC_DETAIL_COLD inline result<timestamp> timestamp_error(std::string_view text,
                                                           timestamp_problem problem,
                                                           std::size_t n) {
  // What stands between `before` and `after`: 'c' character n (1-based, as people
  // count), 'n' the number n, '2' n as two digits. The punctuation and day
  // problems add the expected character and the year-month below.
  struct message {
    const char* before;
    char what;
    const char* after;
  };
  static constexpr message messages[] = {
      {"the text is empty", 0, ""},
      {"ends after ", 'n', " characters; expected YYYY-MM-DDTHH:MM:SS then Z or +HH:MM/-HH:MM"},
      {"", 'c', " must be a digit"},
      {"", 'c', " must be 'T'"},
      {"", 'c', "'"},  // " must be '<shape[n]>" is added below
      {"'.' must be followed by at least one digit", 0, ""},
      {"the fraction has ", 'n', " digits; at most 9 are allowed"},
      {"the time zone is missing; expected Z or +HH:MM/-HH:MM at ", 'c', ""},
      {"the offset at ", 'c', " must be +HH:MM or -HH:MM"},
      {"", 'c', " must be 'Z', '+' or '-' (the time zone)"},
      {"unexpected text after the time zone at ", 'c', ""},
      {"month ", '2', " is out of range (01-12)"},
      {"day ", '2', ""},  // " is out of range for YYYY-MM" is added below
      {"hour ", '2', " is out of range (00-23)"},
      {"minute ", '2', " is out of range (00-59)"},
      {"second 60 is a leap second; leap seconds are not supported", 0, ""},
      {"second ", '2', " is out of range (00-59)"},
      {"offset hour ", '2', " is out of range (00-23)"},
      {"offset minute ", '2', " is out of range (00-59)"},
  };
  constexpr auto problems = static_cast<std::size_t>(timestamp_problem::offset_minute) + 1;
  static_assert(std::size(messages) == problems, "one message a problem, in the enum's order");
  const message& m = messages[static_cast<std::size_t>(problem)];
  std::string out = "invalid timestamp " + quoted(text) + ": " + m.before;
  if (m.what == 'c') out += "character " + std::to_string(n + 1);
  if (m.what == 'n') out += std::to_string(n);
  if (m.what == '2') out += {static_cast<char>('0' + n / 10 % 10), static_cast<char>('0' + n % 10)};
  if (problem == timestamp_problem::punctuation) {
    out += std::string(" must be '") + timestamp_shape[n];
  }
  if (problem == timestamp_problem::day) {
    out += " is out of range for " + std::string(text.substr(0, 7));
  }
  out += m.after;
  return make_error(error_category::invalid_input, std::move(out));
}

}  // namespace detail

inline result<timestamp> parse_timestamp(std::string_view text) {
  using problem = detail::timestamp_problem;
  constexpr std::string_view shape = detail::timestamp_shape;
  const std::size_t n = text.size();
  if (n == 0) return detail::timestamp_error(text, problem::empty, 0);
  // Up to the text's end (a bound the compiler cannot unroll: this loop compiles once).
  const std::size_t fixed = n < shape.size() ? n : shape.size();
  for (std::size_t i = 0; i < fixed; ++i) {
    const char c = text[i];
    const char want = shape[i];
    if (want == 'D') {
      if (!detail::is_digit(c)) return detail::timestamp_error(text, problem::digit, i);
    } else if (want == 'T') {
      if (c != 'T' && c != 't') return detail::timestamp_error(text, problem::letter_t, i);
    } else if (c != want) {
      return detail::timestamp_error(text, problem::punctuation, i);
    }
  }
  if (fixed < shape.size()) return detail::timestamp_error(text, problem::too_short, n);

  std::size_t pos = shape.size();
  unsigned millis = 0;
  if (pos < n && text[pos] == '.') {
    const std::size_t first = ++pos;
    while (pos < n && detail::is_digit(text[pos])) ++pos;
    const std::size_t digits = pos - first;
    if (digits == 0) return detail::timestamp_error(text, problem::fraction_empty, 0);
    if (digits > 9) return detail::timestamp_error(text, problem::fraction_long, digits);
    // Digits past the third are dropped: rounding down to the earlier millisecond.
    const std::size_t used = digits < 3 ? digits : 3;
    millis = detail::decimal_at(text, first, used);
    for (std::size_t i = used; i < 3; ++i) millis *= 10;
  }

  std::int64_t offset_minutes = 0;
  unsigned offset_hour = 0;
  unsigned offset_minute = 0;
  if (pos >= n) return detail::timestamp_error(text, problem::zone_missing, pos);
  const char zone = text[pos];
  if (zone == 'Z' || zone == 'z') {
    ++pos;
  } else if (zone == '+' || zone == '-') {
    if (n - pos < 6 || !detail::is_digit(text[pos + 1]) || !detail::is_digit(text[pos + 2]) ||
        text[pos + 3] != ':' || !detail::is_digit(text[pos + 4]) ||
        !detail::is_digit(text[pos + 5])) {
      return detail::timestamp_error(text, problem::offset_shape, pos);
    }
    offset_hour = detail::decimal_at(text, pos + 1, 2);
    offset_minute = detail::decimal_at(text, pos + 4, 2);
    const std::int64_t magnitude = std::int64_t{offset_hour} * 60 + offset_minute;
    offset_minutes = zone == '+' ? magnitude : -magnitude;
    pos += 6;
  } else {
    return detail::timestamp_error(text, problem::zone, pos);
  }
  if (pos != n) return detail::timestamp_error(text, problem::trailing, pos);

  const std::int64_t year = detail::decimal_at(text, 0, 4);
  const unsigned month = detail::decimal_at(text, 5, 2);
  const unsigned day = detail::decimal_at(text, 8, 2);
  const unsigned hour = detail::decimal_at(text, 11, 2);
  const unsigned minute = detail::decimal_at(text, 14, 2);
  const unsigned second = detail::decimal_at(text, 17, 2);
  if (month < 1 || month > 12) return detail::timestamp_error(text, problem::month, month);
  if (day < 1 || day > detail::days_in_month(year, month)) {
    return detail::timestamp_error(text, problem::day, day);
  }
  if (hour > 23) return detail::timestamp_error(text, problem::hour, hour);
  if (minute > 59) return detail::timestamp_error(text, problem::minute, minute);
  if (second == 60) return detail::timestamp_error(text, problem::leap_second, second);
  if (second > 59) return detail::timestamp_error(text, problem::second, second);
  if (offset_hour > 23) return detail::timestamp_error(text, problem::offset_hour, offset_hour);
  if (offset_minute > 59) {
    return detail::timestamp_error(text, problem::offset_minute, offset_minute);
  }

  const std::int64_t seconds_of_day = hour * 3600 + minute * 60 + second;
  const std::int64_t seconds =
      detail::days_from_civil(year, month, day) * 86400 + seconds_of_day - offset_minutes * 60;
  return timestamp(std::chrono::milliseconds(seconds * 1000 + millis));
}

namespace detail {

// Appends `t` as `format_timestamp` writes it to `out`.
inline void append_timestamp(std::string& out, timestamp t) {
  constexpr std::int64_t ms_per_day = 86400000;
  const auto count = static_cast<std::int64_t>(t.time_since_epoch().count());
  // Floor division, without ever computing a product that could overflow.
  std::int64_t days = count / ms_per_day;
  std::int64_t ms_of_day = count % ms_per_day;
  if (ms_of_day < 0) {
    ms_of_day += ms_per_day;
    --days;
  }
  const detail::civil_date date = detail::civil_from_days(days);

  char buffer[40];
  char* end = buffer + sizeof buffer;
  char* p = end;
  const auto put = [&p](std::uint64_t v, int width) {
    for (int i = 0; i < width || v != 0; ++i) {
      *--p = static_cast<char>('0' + v % 10);
      v /= 10;
    }
  };
  // Written backwards from the end of the buffer.
  *--p = 'Z';
  const auto ms = static_cast<std::uint64_t>(ms_of_day);
  put(ms % 1000, 3);
  *--p = '.';
  put(ms / 1000 % 60, 2);
  *--p = ':';
  put(ms / 60000 % 60, 2);
  *--p = ':';
  put(ms / 3600000, 2);
  *--p = 'T';
  put(date.day, 2);
  *--p = '-';
  put(date.month, 2);
  *--p = '-';
  if (date.year < 0) {
    put(static_cast<std::uint64_t>(-date.year), 4);
    *--p = '-';
  } else {
    put(static_cast<std::uint64_t>(date.year), 4);
    if (date.year > 9999) *--p = '+';
  }
  out.append(p, end);
}

}  // namespace detail

inline std::string format_timestamp(timestamp t) {
  std::string out;
  detail::append_timestamp(out, t);
  return out;
}

UNLOC_END_NAMESPACE

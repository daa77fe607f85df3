#pragma once

// Backoff with full jitter, and the Retry-After header (RFC 9110 10.2.3).
// Internal (namespace detail), part of the client: it reads HTTP dates with
// timestamp.hpp's calendar, a public header, so it is not in detail/.

#include <unloc/detail/os.hpp>
#include <unloc/detail/text.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/version.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

UNLOC_BEGIN_NAMESPACE
namespace detail {

/// A random wait in [0, min(cap, base * 2^(attempt-1))]: "full jitter", so that
/// clients failing together do not retry together.
inline std::chrono::milliseconds full_jitter_backoff(int attempt, std::chrono::milliseconds base,
                                                     std::chrono::milliseconds cap) {
  // splitmix64 seeded by the system: <random> would cost every including file
  // more to compile than the rest of this header. The modulo's bias is nil
  // for waits of at most a day in milliseconds.
  thread_local std::uint64_t state = [] {
    std::uint64_t seed = 0;
    if (!random_bytes(&seed, sizeof seed)) {
      seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    }
    return seed;
  }();
  const int doublings = std::clamp(attempt - 1, 0, 30);
  const auto ceiling = (std::min<std::int64_t>)(cap.count(), base.count() << doublings);
  if (ceiling <= 0) return std::chrono::milliseconds(0);
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return std::chrono::milliseconds(
      static_cast<std::int64_t>(z % (static_cast<std::uint64_t>(ceiling) + 1)));
}

// The number written in the `count` digits at value[pos] (in bounds), or -1.
// Out of line: parse_retry_after reads six of them.
UNLOC_DETAIL_NOINLINE inline int digits_at(std::string_view value, std::size_t pos,
                                           std::size_t count) noexcept {
  int n = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    if (!is_digit(value[i])) return -1;
    n = n * 10 + (value[i] - '0');
  }
  return n;
}

/// How long a Retry-After value asks to wait: delay-seconds, or an
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) measured from `now`. None
/// when malformed; zero for a date in the past.
inline std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) noexcept {
  value = trim_ows(value);
  if (!value.empty() && is_digit(value.front())) {
    if (value.size() > 9) return std::chrono::hours(24 * 365);  // absurdly long: capped by the deadline
    const int seconds = digits_at(value, 0, value.size());
    if (seconds < 0) return std::nullopt;
    return std::chrono::seconds(seconds);
  }
  // "Sun, 06 Nov 1994 08:49:37 GMT": 29 characters, fixed positions.
  if (value.size() != 29 || value[3] != ',' || value[4] != ' ' || value[7] != ' ' ||
      value[11] != ' ' || value[16] != ' ' || value[19] != ':' || value[22] != ':' ||
      std::string_view(value.data() + 25, 4) != " GMT") {
    return std::nullopt;
  }
  static constexpr std::string_view months = "JanFebMarAprMayJunJulAugSepOctNovDec";
  const auto month_at = months.find(std::string_view(value.data() + 8, 3));
  const int day = digits_at(value, 5, 2);
  const int year = digits_at(value, 12, 4);
  const int hour = digits_at(value, 17, 2);
  const int minute = digits_at(value, 20, 2);
  const int second = digits_at(value, 23, 2);
  if (month_at == std::string_view::npos || month_at % 3 != 0 || day < 1 || day > 31 ||
      year < 0 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 ||
      second > 60) {
    return std::nullopt;
  }
  const auto days = days_from_civil(year, static_cast<unsigned>(month_at / 3 + 1),
                                     static_cast<unsigned>(day));
  const auto when = std::chrono::system_clock::time_point(std::chrono::hours(days * 24 + hour) +
                                                          std::chrono::minutes(minute) +
                                                          std::chrono::seconds(second));
  if (when <= now) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(when - now);
}

}  // namespace detail
UNLOC_END_NAMESPACE

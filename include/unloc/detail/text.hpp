#pragma once

// Small ASCII text helpers shared by the parsers. Internal: not part of the API.

#include <unloc/version.hpp>

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

UNLOC_BEGIN_NAMESPACE
namespace detail {

inline constexpr char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

inline constexpr bool ascii_iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

inline constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

inline constexpr bool is_hex_digit(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/// Optional whitespace (RFC 9110 OWS) trimmed from both ends.
inline constexpr std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// Untrusted text made safe to put in an error message: quoted, cut to
/// `max_chars`, control and non-ASCII bytes written as \xHH.
UNLOC_DETAIL_COLD inline std::string quoted(std::string_view text, std::size_t max_chars = 64) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "'";
  const std::size_t n = text.size() < max_chars ? text.size() : max_chars;
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\') {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '\'';
  if (n < text.size()) out += "...";
  return out;
}

/// Checks the multi-byte UTF-8 character that `text` starts with (RFC 3629: no
/// overlong forms, no surrogates, nothing above U+10FFFF). True when it is one;
/// `length` gets its bytes, or those of its longest valid prefix (at least 1).
inline bool utf8_sequence(std::string_view text, std::size_t& length) noexcept {
  const auto lead = static_cast<unsigned char>(text[0]);
  std::size_t more = 0;
  unsigned char low = 0x80;  // the range of the second byte
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    more = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    more = 2;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    more = 3;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  }
  length = 1;
  for (; length <= more && length < text.size(); ++length) {
    const auto next = static_cast<unsigned char>(text[length]);
    if (next < (length == 1 ? low : 0x80) || next > (length == 1 ? high : 0xBF)) break;
  }
  return more > 0 && length == more + 1;
}

/// Appends `text` as a JSON string, quotes included, the way nlohmann's
/// `dump(-1, ' ', false, error_handler_t::replace)` writes it: UTF-8 kept, `"`,
/// `\\` and control characters escaped, each maximal invalid UTF-8 sequence
/// replaced by U+FFFD.
inline void append_json_string(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    std::size_t run = i;  // printable ASCII is copied in runs
    while (run < n) {
      const auto c = static_cast<unsigned char>(text[run]);
      if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
      ++run;
    }
    out.append(text.data() + i, run - i);
    i = run;
    if (i == n) break;
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out += '\\';
      switch (c) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '\b': out += 'b'; break;
        case '\f': out += 'f'; break;
        case '\n': out += 'n'; break;
        case '\r': out += 'r'; break;
        case '\t': out += 't'; break;
        default:
          out += "u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
      }
      ++i;
      continue;
    }
    std::size_t valid = 0;
    const bool whole = utf8_sequence(text.substr(i), valid);
    if (whole) {
      out.append(text.data() + i, valid);
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for the invalid sequence
    }
    i += valid;
  }
  out += '"';
}

/// A compact JSON object of string members: `{"a":"1","b":"2"}`.
inline std::string json_object_text(
    std::initializer_list<std::pair<std::string_view, std::string_view>> members) {
  std::string out(1, '{');
  for (const auto& [name, value] : members) {
    if (out.size() > 1) out += ',';
    append_json_string(out, name);
    out += ':';
    append_json_string(out, value);
  }
  return out + '}';
}

/// Compares two strings in time that depends only on their lengths, never on
/// where they differ, so that a caller guessing a secret learns nothing from timing.
inline bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  // Walk the longer length so that a length mismatch costs the same as a content mismatch.
  const std::size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const auto y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = static_cast<unsigned char>(diff | (x ^ y));
  }
  // volatile keeps the optimiser from turning the loop into an early exit.
  volatile unsigned char result = diff;
  return result == 0;
}

}  // namespace detail
UNLOC_END_NAMESPACE

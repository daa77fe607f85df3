#pragma once

// Base64 (RFC 4648 section 4: standard alphabet, padded). Internal: not part of the API.

#include <unloc/version.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

UNLOC_BEGIN_NAMESPACE
namespace detail {

/// `text` encoded as base64 with the standard alphabet and `=` padding.
[[nodiscard]] inline std::string base64_encode(std::string_view text);

/// `encoded` decoded from base64, or nothing when it is not strict base64: the
/// standard alphabet only, a length that is a multiple of 4, one or two `=` only
/// at the end, no whitespace, and zero bits left over after the last character
/// (so that every byte string has exactly one accepted encoding).
[[nodiscard]] inline std::optional<std::string> base64_decode(std::string_view encoded);

inline constexpr char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The value of each byte as a base64 digit, or 0xff when it is not one.
struct base64_decode_table {
  unsigned char value[256];
};

inline constexpr base64_decode_table make_base64_decode_table() {
  base64_decode_table table{};
  for (auto& v : table.value) v = 0xff;
  for (unsigned char i = 0; i < 64; ++i) {
    table.value[static_cast<unsigned char>(base64_alphabet[i])] = i;
  }
  return table;
}

inline constexpr base64_decode_table base64_decode_values = make_base64_decode_table();

inline std::string base64_encode(std::string_view text) {
  const std::size_t n = text.size();
  std::string out((n + 2) / 3 * 4, '=');
  const auto* in = reinterpret_cast<const unsigned char*>(text.data());
  char* o = out.data();
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const unsigned long v = (static_cast<unsigned long>(in[i]) << 16) |
                            (static_cast<unsigned long>(in[i + 1]) << 8) | in[i + 2];
    *o++ = base64_alphabet[(v >> 18) & 0x3f];
    *o++ = base64_alphabet[(v >> 12) & 0x3f];
    *o++ = base64_alphabet[(v >> 6) & 0x3f];
    *o++ = base64_alphabet[v & 0x3f];
  }
  if (n - i == 1) {
    const unsigned long v = static_cast<unsigned long>(in[i]) << 16;
    *o++ = base64_alphabet[(v >> 18) & 0x3f];
    *o++ = base64_alphabet[(v >> 12) & 0x3f];
  } else if (n - i == 2) {
    const unsigned long v =
        (static_cast<unsigned long>(in[i]) << 16) | (static_cast<unsigned long>(in[i + 1]) << 8);
    *o++ = base64_alphabet[(v >> 18) & 0x3f];
    *o++ = base64_alphabet[(v >> 12) & 0x3f];
    *o++ = base64_alphabet[(v >> 6) & 0x3f];
  }
  return out;
}

inline std::optional<std::string> base64_decode(std::string_view encoded) {
  const std::size_t n = encoded.size();
  if (n % 4 != 0) return std::nullopt;
  if (n == 0) return std::string();
  std::size_t padding = 0;
  if (encoded[n - 1] == '=') padding = encoded[n - 2] == '=' ? 2 : 1;

  const auto* in = reinterpret_cast<const unsigned char*>(encoded.data());
  const auto& table = base64_decode_values.value;
  std::string out(n / 4 * 3 - padding, '\0');
  char* o = out.data();
  // Every quad but the last is complete; '=' there maps to 0xff and is rejected.
  const std::size_t full = n - 4;
  for (std::size_t i = 0; i < full; i += 4) {
    const unsigned a = table[in[i]], b = table[in[i + 1]], c = table[in[i + 2]],
                   d = table[in[i + 3]];
    if ((a | b | c | d) & 0x80) return std::nullopt;
    const unsigned long v = (static_cast<unsigned long>(a) << 18) |
                            (static_cast<unsigned long>(b) << 12) | (c << 6) | d;
    *o++ = static_cast<char>((v >> 16) & 0xff);
    *o++ = static_cast<char>((v >> 8) & 0xff);
    *o++ = static_cast<char>(v & 0xff);
  }

  const unsigned a = table[in[full]], b = table[in[full + 1]];
  const unsigned c = padding == 2 ? 0 : table[in[full + 2]];
  const unsigned d = padding >= 1 ? 0 : table[in[full + 3]];
  if ((a | b | c | d) & 0x80) return std::nullopt;
  const unsigned long v =
      (static_cast<unsigned long>(a) << 18) | (static_cast<unsigned long>(b) << 12) | (c << 6) | d;
  // Bits below the last encoded byte must be zero, or two encodings would decode alike.
  if (padding == 2 && (v & 0xffff) != 0) return std::nullopt;
  if (padding == 1 && (v & 0xff) != 0) return std::nullopt;
  *o++ = static_cast<char>((v >> 16) & 0xff);
  if (padding < 2) *o++ = static_cast<char>((v >> 8) & 0xff);
  if (padding < 1) *o++ = static_cast<char>(v & 0xff);
  return out;
}

}  // namespace detail
UNLOC_END_NAMESPACE

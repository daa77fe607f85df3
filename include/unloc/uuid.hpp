#pragma once

/// @file
/// `unloc::uuid`: the 128-bit ids of Access Events, Keys, Locks and webhooks.

#include <unloc/detail/text.hpp>
#include <unloc/error.hpp>
#include <unloc/version.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

UNLOC_BEGIN_NAMESPACE

/// A UUID as 16 bytes. A plain value: cheap to copy, safe to share between threads.
///
/// Any 128-bit value is accepted: the RFC 4122 version and variant bits are not
/// checked, because Unloc's own ids do not always set them.
class uuid {
 public:
  /// The nil UUID, `00000000-0000-0000-0000-000000000000`.
  constexpr uuid() noexcept = default;
  /// The UUID with these 16 bytes, most significant first.
  explicit constexpr uuid(const std::array<std::uint8_t, 16>& bytes) noexcept : bytes_(bytes) {}

  /// Reads the 36-character form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in either
  /// case. Never throws on any input (only `std::bad_alloc` for the error message).
  [[nodiscard]] static result<uuid> parse(std::string_view text);

  /// The canonical form: 36 characters, lowercase, with hyphens.
  [[nodiscard]] std::string to_string() const;
  /// The 16 bytes, most significant first.
  [[nodiscard]] constexpr const std::array<std::uint8_t, 16>& bytes() const noexcept {
    return bytes_;
  }
  /// True for the nil UUID (all bytes zero).
  [[nodiscard]] constexpr bool is_nil() const noexcept {
    for (const std::uint8_t b : bytes_) {
      if (b != 0) return false;
    }
    return true;
  }

  /// True when both hold the same bytes.
  friend constexpr bool operator==(const uuid& a, const uuid& b) noexcept {
    for (std::size_t i = 0; i < a.bytes_.size(); ++i) {
      if (a.bytes_[i] != b.bytes_[i]) return false;
    }
    return true;
  }
  /// True when the bytes differ.
  friend constexpr bool operator!=(const uuid& a, const uuid& b) noexcept { return !(a == b); }
  /// Orders by bytes, most significant first (the order of the lowercase text form).
  friend constexpr bool operator<(const uuid& a, const uuid& b) noexcept {
    for (std::size_t i = 0; i < a.bytes_.size(); ++i) {
      if (a.bytes_[i] != b.bytes_[i]) return a.bytes_[i] < b.bytes_[i];
    }
    return false;
  }

 private:
  std::array<std::uint8_t, 16> bytes_{};
};

/// The canonical lowercase form of `u`; same as `u.to_string()`.
[[nodiscard]] inline std::string to_string(const uuid& u) { return u.to_string(); }

/// nlohmann/json ADL hook: writes the canonical string. For trusted models only.
template <typename BasicJsonType>
void to_json(BasicJsonType& j, const uuid& u) {
  j = u.to_string();
}

/// nlohmann/json ADL hook: reads a string; throws nlohmann's `type_error` when `j` is
/// not a string and `std::invalid_argument` when it is not a UUID (nlohmann's
/// convention). Untrusted input goes through `uuid::parse`, which never throws.
template <typename BasicJsonType>
void from_json(const BasicJsonType& j, uuid& u) {
  const auto& text = j.template get_ref<const typename BasicJsonType::string_t&>();
  auto parsed = uuid::parse(std::string_view(text.data(), text.size()));
  if (!parsed) throw std::invalid_argument(parsed.error().message);
  u = *parsed;
}

namespace detail {

inline constexpr std::size_t uuid_text_size = 36;

// Where each byte's two hex digits start in the canonical text (8-4-4-4-12 groups).
inline constexpr std::uint8_t uuid_digit_starts[16] = {0,  2,  4,  6,  9,  11, 14, 16,
                                                       19, 21, 24, 26, 28, 30, 32, 34};

inline constexpr bool is_uuid_hyphen_position(std::size_t i) noexcept {
  return i == 8 || i == 13 || i == 18 || i == 23;
}

// Assumes is_hex_digit(c).
inline constexpr std::uint8_t hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<std::uint8_t>(c - 'a' + 10);
  return static_cast<std::uint8_t>(c - 'A' + 10);
}

// The reason is `before`, the number `n`, `after`: built here, out of line,
// rather than at each of parse()'s returns (as is the result they return).
UNLOC_DETAIL_COLD inline result<uuid> uuid_error(std::string_view text, const char* before,
                                                 std::size_t n, const char* after) {
  return make_error(error_category::invalid_input,
                    "invalid UUID " + quoted(text) + ": " + before + std::to_string(n) + after);
}

}  // namespace detail

inline result<uuid> uuid::parse(std::string_view text) {
  if (text.size() != detail::uuid_text_size) {
    return detail::uuid_error(text, "expected 36 characters, got ", text.size(), "");
  }
  std::array<std::uint8_t, 16> bytes{};
  std::size_t nibble = 0;
  for (std::size_t i = 0; i < detail::uuid_text_size; ++i) {
    const char c = text[i];
    if (detail::is_uuid_hyphen_position(i)) {
      if (c != '-') {
        return detail::uuid_error(text, "character ", i + 1, " must be a hyphen");
      }
      continue;
    }
    if (!detail::is_hex_digit(c)) {
      return detail::uuid_error(text, "character ", i + 1, " is not a hex digit");
    }
    auto& byte = bytes[nibble / 2];
    byte = static_cast<std::uint8_t>((byte << 4) | detail::hex_value(c));
    ++nibble;
  }
  return uuid(bytes);
}

namespace detail {

// Appends the canonical lowercase form of `u` (36 characters) to `out`: each
// byte's two digits from a table of all 256, at uuid_digit_starts.
inline void append_uuid(std::string& out, const uuid& u) {
  static constexpr auto digits = [] {
    std::array<char, 512> pairs{};
    const char hex[] = "0123456789abcdef";
    for (std::size_t b = 0; b < 256; ++b) {
      pairs[2 * b] = hex[b >> 4];
      pairs[2 * b + 1] = hex[b & 0xf];
    }
    return pairs;
  }();
  const auto& bytes = u.bytes();
  char text[uuid_text_size];
  text[8] = text[13] = text[18] = text[23] = '-';
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::memcpy(text + uuid_digit_starts[i], digits.data() + 2 * std::size_t{bytes[i]}, 2);
  }
  out.append(text, uuid_text_size);
}

}  // namespace detail

inline std::string uuid::to_string() const {
  std::string out;
  detail::append_uuid(out, *this);
  return out;
}

UNLOC_END_NAMESPACE

namespace std {
/// Hashes a UUID for unordered containers: its two 64-bit halves, combined.
template <>
struct hash<unloc::uuid> {
  /// The hash of `u`; cheap, never throws.
  std::size_t operator()(const unloc::uuid& u) const noexcept {
    const auto& b = u.bytes();
    std::uint64_t high = 0;
    std::uint64_t low = 0;
    for (std::size_t i = 0; i < 8; ++i) {
      high = (high << 8) | b[i];
      low = (low << 8) | b[i + 8];
    }
    // Mixing `low` keeps ids that differ only in their last bytes apart on 32-bit size_t too.
    const std::uint64_t mixed = high ^ (low * 0x9e3779b97f4a7c15ULL);
    return static_cast<std::size_t>(mixed ^ (mixed >> 32));
  }
};
}  // namespace std

#pragma once

// Small helpers shared by the reference server's files: random ids, base64url,
// the clock, JSON responses and reading fields of untrusted JSON without throwing.

#include <unloc/detail/base64.hpp>
#include <unloc/detail/os.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/uuid.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace refserver {

/// Now, to the millisecond, as the SDK's timestamps count time.
inline unloc::timestamp now_ms() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

/// Milliseconds since the epoch of a timestamp.
inline std::int64_t millis(unloc::timestamp t) {
  return static_cast<std::int64_t>(t.time_since_epoch().count());
}

/// The timestamp `ms` milliseconds after the epoch.
inline unloc::timestamp from_millis(std::int64_t ms) {
  return unloc::timestamp(std::chrono::milliseconds(ms));
}

/// `n` bytes from the system CSPRNG; throws when the system has none to give.
inline void random_fill(void* out, std::size_t n) {
  if (!unloc::detail::random_bytes(out, n)) throw std::runtime_error("no entropy from the OS");
}

/// A random (version 4) UUID.
inline unloc::uuid random_uuid() {
  std::array<std::uint8_t, 16> b{};
  random_fill(b.data(), b.size());
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);
  return unloc::uuid(b);
}

/// `bytes` random bytes as lowercase hex.
inline std::string random_hex(std::size_t bytes) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string raw(bytes, '\0');
  random_fill(raw.data(), raw.size());
  std::string out;
  out.reserve(bytes * 2);
  for (const char c : raw) {
    const auto b = static_cast<unsigned char>(c);
    out += hex[b >> 4];
    out += hex[b & 0xf];
  }
  return out;
}

/// Base64url without padding (RFC 4648 section 5).
inline std::string base64url_encode(std::string_view text) {
  std::string out = unloc::detail::base64_encode(text);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

/// Decodes unpadded base64url; nothing when it is not.
inline std::optional<std::string> base64url_decode(std::string_view text) {
  std::string standard(text);
  for (char& c : standard) {
    if (c == '-') {
      c = '+';
    } else if (c == '_') {
      c = '/';
    } else if (c == '+' || c == '/' || c == '=') {
      return std::nullopt;
    }
  }
  while (standard.size() % 4 != 0) standard += '=';
  return unloc::detail::base64_decode(standard);
}

/// Writes `body` as the JSON response with `status`.
inline void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

/// Writes already serialized JSON text as the response.
inline void send_json_text(httplib::Response& res, int status, const std::string& text) {
  res.status = status;
  res.set_content(text, "application/json");
}

/// The API's error shape: `{"error":code,"message":message}`.
inline void send_error(httplib::Response& res, int status, std::string_view code,
                       std::string_view message) {
  send_json(res, status, {{"error", code}, {"message", message}});
}

/// A JSON object from an untrusted body, or an error text saying why not.
// NOLINTNEXTLINE(bugprone-exception-escape): nlohmann::json's noexcept move asserts only.
struct json_body {
  nlohmann::json value;
  std::string problem;  ///< Empty when `value` is an object.
};

/// Parses `text` without throwing; an empty body reads as `{}` when `empty_ok`.
inline json_body parse_json_object(const std::string& text, bool empty_ok) {
  json_body out;
  if (text.empty() && empty_ok) {
    out.value = nlohmann::json::object();
    return out;
  }
  out.value = nlohmann::json::parse(text, nullptr, false);
  if (out.value.is_discarded()) {
    out.problem = "the body is not valid JSON";
  } else if (!out.value.is_object()) {
    out.problem = "the body must be a JSON object";
  }
  return out;
}

/// A field's string value: nothing when absent or null; `problem` is set when
/// the field has another type.
inline std::optional<std::string> string_field(const nlohmann::json& object, const char* key,
                                               std::string& problem) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) {
    problem = std::string("field '") + key + "' must be a string";
    return std::nullopt;
  }
  return it->get<std::string>();
}

/// A field's integer value within [low, high]; `fallback` when absent or null.
inline long long integer_field(const nlohmann::json& object, const char* key, long long fallback,
                               long long low, long long high, std::string& problem) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_number_integer() || it->get<long long>() < low || it->get<long long>() > high) {
    problem = std::string("field '") + key + "' must be an integer from " + std::to_string(low) +
              " to " + std::to_string(high);
    return fallback;
  }
  return it->get<long long>();
}

/// A field's boolean value; `fallback` when absent or null.
inline bool bool_field(const nlohmann::json& object, const char* key, bool fallback,
                       std::string& problem) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    problem = std::string("field '") + key + "' must be true or false";
    return fallback;
  }
  return it->get<bool>();
}

}  // namespace refserver

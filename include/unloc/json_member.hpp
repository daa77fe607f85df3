#pragma once

/// @file
/// A JSON object member the SDK has no field for, kept as received: the
/// `extra` of an Access Event or a webhook. Its value is compact JSON text, so
/// that the SDK's headers need no JSON library; parse it with the one you use
/// (`nlohmann::json::parse(member.value)`).

#include <unloc/version.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

UNLOC_BEGIN_NAMESPACE

/// One member of a JSON object: its name and its value as JSON text.
struct json_member {
  std::string name;   ///< The member's name, decoded (no JSON escapes left).
  /// Its value as JSON text: `42`, `"A"`, `{"lat":59.91}` (compact as the SDK
  /// reads it). Must be valid JSON: `to_json_text` writes it as it is.
  std::string value;
};

/// Equal names and equal texts (`1` and `1.0` differ).
[[nodiscard]] inline bool operator==(const json_member& a, const json_member& b) noexcept {
  return a.name == b.name && a.value == b.value;
}

/// Not `a == b`.
[[nodiscard]] inline bool operator!=(const json_member& a, const json_member& b) noexcept {
  return !(a == b);
}

/// The value (JSON text) of the member called `name`, if `members` has one.
[[nodiscard]] inline std::optional<std::string_view> find_member(
    const std::vector<json_member>& members, std::string_view name) noexcept {
  for (const auto& member : members) {
    if (member.name == name) return std::string_view(member.value);
  }
  return std::nullopt;
}

UNLOC_END_NAMESPACE

#pragma once

/// @file
/// The OAuth2 access token the API calls carry (`Authorization: Bearer …`).

#include <unloc/detail/json_reader.hpp>
#include <unloc/detail/text.hpp>
#include <unloc/error.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/version.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE

/// An access token and what it is good for. `value` is a secret: `to_string`
/// never prints it.
struct access_token {
  std::string value;                          ///< The bearer token (a JWT). Secret.
  std::string token_type = "bearer";          ///< Always `bearer`.
  std::chrono::system_clock::time_point expires_at{};  ///< When it stops being accepted.
  std::vector<std::string> scope;             ///< Granted scopes, e.g. `project.admin`.
  std::string project_id;                     ///< The Project it is for.

  /// True when it expires within `margin` of `now` (or has expired).
  [[nodiscard]] bool expires_within(std::chrono::system_clock::duration margin,
                                    std::chrono::system_clock::time_point now =
                                        std::chrono::system_clock::now()) const noexcept {
    return now + margin >= expires_at;
  }
};

namespace detail {

/// The scopes of an RFC 6749 space-separated scope string.
[[nodiscard]] inline std::vector<std::string> split_scope(const std::string& all) {
  std::vector<std::string> out;
  for (std::size_t start = 0; start < all.size();) {
    const auto end = (std::min)(all.find(' ', start), all.size());
    if (end > start) out.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace detail

/// One line for logs; the token's value is written as `REDACTED`.
[[nodiscard]] inline std::string to_string(const access_token& t) {
  std::string out = "access_token{value=REDACTED, type=" + t.token_type +
                    ", expires_at=" +
                    format_timestamp(std::chrono::time_point_cast<std::chrono::milliseconds>(
                        t.expires_at)) +
                    ", scope=[";
  for (std::size_t i = 0; i < t.scope.size(); ++i) out += (i == 0 ? "" : ",") + t.scope[i];
  return out + "], project_id=" + t.project_id + "}";
}

/// The token as the token endpoint writes it (`expires_in` counted from now).
template <typename BasicJsonType>
void to_json(BasicJsonType& j, const access_token& t) {
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(
      t.expires_at - std::chrono::system_clock::now());
  j = BasicJsonType::object();
  j["access_token"] = t.value;
  j["token_type"] = t.token_type;
  j["expires_in"] = left.count() > 0 ? left.count() : 0;
  j["scope"] = t.scope;
  j["project_id"] = t.project_id;
}

/// Reads a token endpoint response from trusted JSON (`expires_in` counted
/// from now); throws (nlohmann's convention) when invalid. `scope` may be a
/// list or one space-separated string (RFC 6749).
template <typename BasicJsonType>
void from_json(const BasicJsonType& j, access_token& t) {
  access_token out;
  out.value = j.at("access_token").template get<std::string>();
  if (const auto it = j.find("token_type"); it != j.end()) out.token_type = it->template get<std::string>();
  out.expires_at = std::chrono::system_clock::now() +
                   std::chrono::seconds(j.at("expires_in").template get<long long>());
  if (const auto it = j.find("scope"); it != j.end() && it->is_array()) {
    out.scope = it->template get<std::vector<std::string>>();
  } else if (it != j.end() && it->is_string()) {
    out.scope = detail::split_scope(it->template get<std::string>());
  }
  if (const auto it = j.find("project_id"); it != j.end() && it->is_string()) {
    out.project_id = it->template get<std::string>();
  }
  t = std::move(out);
}

/// Reads a token endpoint response; `expires_in` is counted from `now`.
[[nodiscard]] inline result<access_token> parse_access_token(
    std::string_view json_text,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
  detail::json_reader reader(json_text, detail::max_response_depth);
  access_token out;
  bool has_expires = false;
  const auto on_member = [&](std::string_view key) {
    // Named before the value is read: reading it may reuse the key's buffer.
    enum { other, value, type, expires, scope, project } field = other;
    for (const auto& [name, named] : {std::pair{"access_token", value}, {"token_type", type},
                                      {"expires_in", expires}, {"scope", scope},
                                      {"project_id", project}}) {
      if (key == name) field = named;
    }
    const char first = reader.peek();
    std::string_view text;  // a string's content
    std::string number;     // the text of expires_in
    if (field == scope && first == '[') {
      out.scope.clear();
      return reader.read_elements(2, [&] {
        if (reader.peek() != '"') return reader.read_value(nullptr, 2);  // not a scope: skipped
        if (!reader.read_string(text)) return false;
        out.scope.push_back(std::string(text));  // as split_scope does: one instantiation
        return true;
      });
    }
    if (!(first == '"' ? reader.read_string(text)
                       : reader.read_value(field == expires ? &number : nullptr, 1))) {
      return false;
    }
    const bool string = first == '"';
    switch (field) {
      case value:
        if (string) out.value = std::string(text);
        return true;
      case type:
        return (string && detail::ascii_iequals(text, "bearer")) ||
               reader.fail_schema("field 'token_type' must be 'bearer'", "token_type");
      case expires: {
        const auto seconds = first == '-' || detail::is_digit(first)
                                 ? detail::json_whole_number(number, 1'000'000'000)
                                 : std::nullopt;
        if (!seconds) {
          return reader.fail_schema("field 'expires_in' must be a number of seconds", "expires_in");
        }
        out.expires_at = now + std::chrono::seconds(static_cast<long long>(*seconds));
        has_expires = true;
        return true;
      }
      case scope:
        if (string) out.scope = detail::split_scope(std::string(text));
        return true;
      case project:
        if (string) out.project_id = std::string(text);
        return true;
      case other:
        return true;  // a field the SDK does not use, or not of the type it reads: skipped
    }
    return true;
  };
  reader.read_document("a token response", [&] { return reader.read_members(1, on_member); });
  if (!reader.ok()) return detail::response_error(reader);
  if (out.value.empty()) {
    return detail::response_error("field 'access_token' is missing or not a string", "access_token");
  }
  if (!has_expires) {
    return detail::response_error("field 'expires_in' must be a number of seconds", "expires_in");
  }
  return out;
}

UNLOC_END_NAMESPACE

#pragma once

/// @file
/// The OAuth2 access token the API calls carry (`Authorization: Bearer …`).

#include <unloc/detail/json_reader.hpp>
#include <unloc/detail/text.hpp>
#include <unloc/error.hpp>
#include <unloc/parse.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/version.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>  // std::size too: <iterator> would bring the streams
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

/// Appends to `out` the scopes of an RFC 6749 space-separated scope string.
inline void append_scopes(std::string_view all, std::vector<std::string>& out) {
  for (std::size_t start = 0; start < all.size();) {
    const auto end = (std::min)(all.find(' ', start), all.size());
    if (end > start) out.emplace_back(all.substr(start, end - start));
    start = end + 1;
  }
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
    detail::append_scopes(it->template get<std::string>(), out.scope);
  }
  if (const auto it = j.find("project_id"); it != j.end() && it->is_string()) {
    out.project_id = it->template get<std::string>();
  }
  t = std::move(out);
}

namespace detail {

/// A character of an RFC 6750 b64token (a bearer token), `=` included.
inline constexpr bool is_b64token(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.' ||
         c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

/// True when `text` is an RFC 6750 b64token: `1*( ALPHA / DIGIT / "-" / "." /
/// "_" / "~" / "+" / "/" ) *"="`, fit to follow `Authorization: Bearer `.
inline constexpr bool is_bearer_token(std::string_view text) noexcept {
  std::size_t n = 0;
  while (n < text.size() && text[n] != '=' && is_b64token(text[n])) ++n;
  if (n == 0) return false;
  while (n < text.size() && text[n] == '=') ++n;
  return n == text.size();
}

// The token endpoint's response as read from untrusted JSON.

/// A token being read, and the time its `expires_in` counts from.
struct token_reading {
  access_token token;
  std::chrono::system_clock::time_point now;
};

[[nodiscard]] inline access_token& token_at(void* target) noexcept {
  return static_cast<token_reading*>(target)->token;
}

inline constexpr json_field token_fields[] = {
    {"access_token", json_kind::string, true, false,
     [](void* t, json_scalar v) -> std::string {
       if (v.text.empty()) return "must not be empty";
       // It goes into a header as it is: a CR or LF would start a header of the server's choosing.
       if (!is_bearer_token(v.text)) return "must be a bearer token (RFC 6750 characters)";
       token_at(t).value.assign(v.text);
       return {};
     }},
    {"token_type", json_kind::string, false, false,
     [](void* t, json_scalar v) -> std::string {
       if (!ascii_iequals(v.text, "bearer")) return "must be 'bearer'";
       token_at(t).token_type.assign(v.text);
       return {};
     }},
    {"expires_in", json_kind::number, true, false,
     [](void* t, json_scalar v) -> std::string {
       const auto seconds = json_whole_number(v.text, 1'000'000'000);
       if (!seconds) return "must be a number of seconds";
       auto* reading = static_cast<token_reading*>(t);
       reading->token.expires_at =
           reading->now + std::chrono::seconds(static_cast<long long>(*seconds));
       return {};
     }},
    // A list, or one space-separated string (RFC 6749): each string split.
    {"scope", json_kind::strings, false, false,
     [](void* t, json_scalar v) -> std::string {
       append_scopes(v.text, token_at(t).scope);
       return {};
     }},
    {"project_id", json_kind::string, false, false,
     [](void* t, json_scalar v) -> std::string {
       token_at(t).project_id.assign(v.text);
       return {};
     }},
};

inline constexpr json_object token_object{"a token response", token_fields,
                                          std::size(token_fields)};

}  // namespace detail

/// Reads a token endpoint response; `expires_in` is counted from `now`. Never throws.
[[nodiscard]] inline result<access_token> parse_access_token(
    std::string_view json_text,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
  detail::token_reading reading{{}, now};
  detail::read_error e =
      detail::read_json(json_text, detail::token_object, &reading, detail::max_response_depth);
  if (e.failed()) return detail::response_error(std::move(e));
  return std::move(reading.token);
}

UNLOC_END_NAMESPACE

#pragma once

/// @file
/// Webhook URLs and the HTTP Basic credentials they may carry.
///
/// Unloc delivers Access Events by `POST` to a webhook URL, which must use
/// https and may carry `user:password@`; Unloc then sends
/// `Authorization: Basic base64("user:password")` with every delivery. User and
/// password must not contain the RFC 3986 reserved characters. Nothing here
/// throws on any input (only `std::bad_alloc` escapes), and no error message or
/// `to_string` ever contains a password.

#include <unloc/detail/base64.hpp>
#include <unloc/detail/os.hpp>
#include <unloc/detail/text.hpp>
#include <unloc/error.hpp>
#include <unloc/version.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

UNLOC_BEGIN_NAMESPACE

/// HTTP Basic credentials of a webhook URL. The password is a secret: it is
/// never written to an error message, a log line or `to_string`.
struct basic_credentials {
  std::string user;      ///< The user name (not secret).
  std::string password;  ///< The password: a secret.
};

/// `"<user>:REDACTED"`: the credentials as they may be logged.
[[nodiscard]] inline std::string to_string(const basic_credentials& credentials);

/// Equal when user and password are; the passwords are compared in constant time.
[[nodiscard]] inline bool operator==(const basic_credentials& a, const basic_credentials& b);
/// Not equal when user or password differ.
[[nodiscard]] inline bool operator!=(const basic_credentials& a, const basic_credentials& b);

/// The characters a user or password must not contain: RFC 3986 gen-delims and
/// sub-delims, as Unloc's docs list them.
inline constexpr std::string_view reserved_characters = ":/?#[]@!$&'()*+,;=";

/// Checks a user or password for a webhook URL: one or more RFC 3986 unreserved
/// characters (`A-Z`, `a-z`, `0-9`, `-._~`). So no reserved character, no `%`,
/// space, control or non-ASCII byte, nor any other byte that a URL cannot carry
/// as it is. `what` names which of the two `text` is, for the message; the error
/// names the character and its position (counted from 0), never the text itself.
[[nodiscard]] inline result<void> check_credential(std::string_view text, std::string_view what);

/// New credentials from the operating system's CSPRNG: a 22-character user
/// (132 bits) and a 32-character password (192 bits) over `A-Z a-z 0-9 - _`.
/// Fails (`error_category::internal`) only when the system has no entropy to give.
[[nodiscard]] inline result<basic_credentials> generate_credentials();

/// A webhook URL taken apart.
struct webhook_url_parts {
  std::string scheme;  ///< Always `"https"` (lower case).
  std::string host;    ///< Host name, IPv4 address, or IPv6 address in brackets (`"[::1]"`).
  std::string port;    ///< Decimal port without leading zeros; empty when the URL has none (443).
  std::string target;  ///< Path and query, `"/"` when the URL has no path.
  std::optional<basic_credentials> credentials;  ///< The `user:password@`, if any.
};

/// Takes apart a webhook URL as Unloc accepts it for registration: https
/// (any case), a host, an optional port 1-65535, optional credentials that pass
/// `check_credential`, no fragment, at most 2048 characters of printable ASCII.
[[nodiscard]] inline result<webhook_url_parts> parse_webhook_url(std::string_view url);

/// Checks that Unloc would accept `url` as a webhook URL (see `parse_webhook_url`).
[[nodiscard]] inline result<void> validate_webhook_url(std::string_view url);

/// `url` (which must not carry credentials yet) with `credentials` inserted as
/// `user:password@` after `https://`. The result holds the password: redact it
/// with `redact_url` before it is logged.
[[nodiscard]] inline result<std::string> make_webhook_url(std::string_view url,
                                                          const basic_credentials& credentials);

/// `url` with any password replaced by `REDACTED` (`https://user:REDACTED@host/p`),
/// for logs. Never fails: on text that is not a well-formed URL it redacts
/// everything that might be a password, erring towards redacting too much.
[[nodiscard]] inline std::string redact_url(std::string_view url);

/// The `Authorization` header value Unloc sends for these credentials:
/// `"Basic " + base64(user + ":" + password)`. Holds the secret.
[[nodiscard]] inline std::string basic_authorization(const basic_credentials& credentials);

namespace detail {

inline constexpr std::size_t max_webhook_url_length = 2048;

inline constexpr bool is_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~".
inline constexpr bool is_unreserved(char c) noexcept {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

inline constexpr bool is_sub_delim(char c) noexcept {
  return std::string_view("!$&'()*+,;=").find(c) != std::string_view::npos;
}

// Printable ASCII that RFC 3986 allows nowhere in a URL.
inline constexpr bool is_never_in_url(char c) noexcept {
  return std::string_view("\"<>\\^`{|}").find(c) != std::string_view::npos;
}

// Whether `text` up to its first ':' is an RFC 3986 scheme; `colon` gets that ':'.
inline constexpr bool has_scheme(std::string_view text, std::size_t& colon) noexcept {
  colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || !is_alpha(text[0])) return false;
  for (std::size_t i = 1; i < colon; ++i) {
    const char c = text[i];
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

// A character for a message: '@', or "'" for the apostrophe.
inline std::string quoted_char(char c) {
  if (c == '\'') return "\"'\"";
  return std::string("'") + c + "'";
}

inline std::string hex_byte(unsigned char c) {
  static constexpr char hex[] = "0123456789abcdef";
  return std::string("0x") + hex[c >> 4] + hex[c & 0xf];
}

inline std::string at_position(std::size_t i) { return " at position " + std::to_string(i); }

UNLOC_DETAIL_COLD inline error invalid_url(std::string message) {
  return make_error(error_category::invalid_input, "webhook URL " + std::move(message), "url");
}

// Dotted-quad IPv4: four decimal numbers 0-255 without leading zeros.
inline constexpr bool is_ipv4_address(std::string_view s) noexcept {
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t digits = 0;
    unsigned value = 0;
    while (i < s.size() && is_digit(s[i]) && digits < 4) {
      value = value * 10 + static_cast<unsigned>(s[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0 || digits > 3 || value > 255) return false;
    if (digits > 1 && s[i - digits] == '0') return false;
    ++parts;
    if (i == s.size()) return parts == 4;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
}

// RFC 4291 text form: eight groups of 1-4 hex digits, one "::" for a run of
// zero groups, optionally ending in a dotted-quad IPv4 address. No zone id.
inline constexpr bool is_ipv6_address(std::string_view s) noexcept {
  int groups = 0;
  bool compressed = false;
  std::size_t i = 0;
  if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
    compressed = true;
    i = 2;
    if (i == s.size()) return true;
  } else if (s.empty() || s[0] == ':') {
    return false;
  }
  while (true) {
    const std::size_t start = i;
    while (i < s.size() && is_hex_digit(s[i])) ++i;
    if (i < s.size() && s[i] == '.') {
      if (groups > 6 || !is_ipv4_address(s.substr(start))) return false;
      groups += 2;
      break;
    }
    if (i == start || i - start > 4) return false;
    ++groups;
    if (i == s.size()) break;
    if (s[i] != ':') return false;
    ++i;
    if (i < s.size() && s[i] == ':') {
      if (compressed) return false;
      compressed = true;
      ++i;
      if (i == s.size()) break;
    } else if (i == s.size()) {
      return false;
    }
  }
  return compressed ? groups <= 7 : groups == 8;
}

// `offset` is where the host starts in the URL, for the message.
inline result<void> check_host(std::string_view host, std::size_t offset) {
  if (host.empty()) return invalid_url("has no host");
  if (host.front() == '[') {
    if (host.back() != ']' || !is_ipv6_address(host.substr(1, host.size() - 2))) {
      return invalid_url("host is not a valid IPv6 address");
    }
    return {};
  }
  bool numeric = true;
  for (std::size_t i = 0; i < host.size(); ++i) {
    const char c = host[i];
    if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.' && c != '_') {
      return invalid_url("host contains the character " + quoted_char(c) + at_position(offset + i));
    }
    if (!is_digit(c) && c != '.') numeric = false;
  }
  if (numeric) {
    if (!is_ipv4_address(host)) return invalid_url("host is not a valid IPv4 address");
    return {};
  }
  // Labels between dots: not empty (one trailing dot is allowed), at most 63 characters.
  std::size_t label_start = 0;
  for (std::size_t i = 0; i <= host.size(); ++i) {
    if (i < host.size() && host[i] != '.') continue;
    const std::size_t length = i - label_start;
    if (length == 0 && i != host.size()) return invalid_url("host has an empty label");
    if (length > 63) return invalid_url("host has a label longer than 63 characters");
    label_start = i + 1;
  }
  return {};
}

// On success `port` gets the canonical decimal form. The message never quotes
// the text: when a host is missing, the "port" may be a password.
inline result<void> check_port(std::string_view text, std::string& port) {
  if (text.empty()) return invalid_url("has ':' after the host but no port");
  unsigned long value = 0;
  for (const char c : text) {
    if (!is_digit(c)) return invalid_url("port is not a number");
    value = value * 10 + static_cast<unsigned long>(c - '0');
    if (value > 65535) return invalid_url("port is out of range 1-65535");
  }
  if (value == 0) return invalid_url("port is out of range 1-65535");
  port = std::to_string(value);
  return {};
}

inline result<void> check_credentials(const basic_credentials& credentials) {
  auto user = check_credential(credentials.user, "user");
  if (!user) return user;
  return check_credential(credentials.password, "password");
}

}  // namespace detail

inline std::string to_string(const basic_credentials& credentials) {
  return credentials.user + ":REDACTED";
}

inline bool operator==(const basic_credentials& a, const basic_credentials& b) {
  const bool same_user = a.user == b.user;
  const bool same_password = detail::constant_time_equal(a.password, b.password);
  return same_user && same_password;
}

inline bool operator!=(const basic_credentials& a, const basic_credentials& b) { return !(a == b); }

inline result<void> check_credential(std::string_view text, std::string_view what) {
  const auto fail = [what](const std::string& problem) {
    return make_error(error_category::invalid_input, std::string(what) + problem,
                      std::string(what));
  };
  if (text.empty()) return fail(" is empty");
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const auto byte = static_cast<unsigned char>(c);
    if (detail::is_unreserved(c)) continue;
    const std::string at = detail::at_position(i);
    if (reserved_characters.find(c) != std::string_view::npos) {
      return fail(" contains the reserved character " + detail::quoted_char(c) + at);
    }
    if (c == ' ') return fail(" contains a space" + at);
    if (byte < 0x20 || byte == 0x7f) {
      return fail(" contains a control character (" + detail::hex_byte(byte) + ")" + at);
    }
    if (byte >= 0x80) {
      return fail(" contains a non-ASCII byte (" + detail::hex_byte(byte) + ")" + at);
    }
    // '%' would be read as percent-encoding in the URL; the rest are invalid in any URL.
    return fail(" contains the character " + detail::quoted_char(c) + at +
                ", which a URL cannot carry as it is");
  }
  return {};
}

inline result<basic_credentials> generate_credentials() {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  static_assert(sizeof alphabet - 1 == 64, "6 bits a character: 256 is a multiple of 64");
  constexpr std::size_t user_length = 22;      // 132 bits
  constexpr std::size_t password_length = 32;  // 192 bits
  unsigned char bytes[user_length + password_length];
  if (!detail::random_bytes(bytes, sizeof bytes)) {
    return make_error(error_category::internal,
                      "could not read random bytes from the operating system");
  }
  basic_credentials credentials;
  credentials.user.reserve(user_length);
  credentials.password.reserve(password_length);
  // Masking to 6 bits keeps every character equally likely (no modulo bias).
  for (std::size_t i = 0; i < user_length; ++i) credentials.user += alphabet[bytes[i] & 0x3f];
  for (std::size_t i = user_length; i < sizeof bytes; ++i) {
    credentials.password += alphabet[bytes[i] & 0x3f];
  }
  // The bytes determine the password: wipe them. volatile keeps the stores.
  volatile unsigned char* wipe = bytes;
  for (std::size_t i = 0; i < sizeof bytes; ++i) wipe[i] = 0;
  return credentials;
}

inline result<webhook_url_parts> parse_webhook_url(std::string_view url) {
  using detail::at_position;
  using detail::invalid_url;
  if (url.empty()) return invalid_url("is empty");
  if (url.size() > detail::max_webhook_url_length) {
    return invalid_url("is " + std::to_string(url.size()) + " characters long, more than the " +
                       std::to_string(detail::max_webhook_url_length) + " allowed");
  }
  for (std::size_t i = 0; i < url.size(); ++i) {
    const char c = url[i];
    const auto byte = static_cast<unsigned char>(c);
    if (c == ' ') return invalid_url("contains a space" + at_position(i));
    if (byte < 0x20 || byte == 0x7f) {
      return invalid_url("contains a control character (" + detail::hex_byte(byte) + ")" +
                         at_position(i));
    }
    if (byte >= 0x80) {
      return invalid_url("contains a non-ASCII byte (" + detail::hex_byte(byte) + ")" +
                         at_position(i) +
                         "; use punycode for the host and percent-encoding elsewhere");
    }
    if (detail::is_never_in_url(c)) {
      return invalid_url("contains the character " + detail::quoted_char(c) + at_position(i) +
                         ", which must be percent-encoded");
    }
    if (c == '%' && (i + 2 >= url.size() || !detail::is_hex_digit(url[i + 1]) ||
                     !detail::is_hex_digit(url[i + 2]))) {
      return invalid_url("has a '%'" + at_position(i) + " not followed by two hex digits");
    }
  }

  std::size_t colon = 0;
  if (!detail::has_scheme(url, colon)) {
    return invalid_url("has no scheme; it must start with 'https://'");
  }
  const std::string_view scheme = url.substr(0, colon);
  const bool slashes = url.substr(colon + 1, 2) == "//";
  if (!detail::ascii_iequals(scheme, "https")) {
    // Name the scheme only where it surely is one: "secret:..." may be a password.
    if (!slashes && !detail::ascii_iequals(scheme, "http")) {
      return invalid_url("must start with 'https://'");
    }
    return invalid_url("must use https, got scheme " + detail::quoted(scheme, 16) +
                       ": Unloc requires https for webhooks");
  }
  if (!slashes) return invalid_url("must start with 'https://'");
  if (url.find('#') != std::string_view::npos) return invalid_url("must not have a fragment");

  const std::size_t authority_start = colon + 3;
  std::size_t authority_end = url.find_first_of("/?", authority_start);
  if (authority_end == std::string_view::npos) authority_end = url.size();
  const std::string_view authority = url.substr(authority_start, authority_end - authority_start);

  webhook_url_parts parts;
  parts.scheme = "https";

  // RFC 3986 and WHATWG both end the userinfo at the authority's last '@'.
  std::size_t host_start = 0;  // in authority
  const std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    const std::size_t separator = userinfo.find(':');
    if (separator == std::string_view::npos) {
      return invalid_url(
          "has a user but no password; Unloc's Basic authentication needs 'user:password@'");
    }
    basic_credentials credentials{std::string(userinfo.substr(0, separator)),
                                  std::string(userinfo.substr(separator + 1))};
    auto checked = detail::check_credentials(credentials);
    if (!checked) return invalid_url(checked.error().message);
    parts.credentials = std::move(credentials);
    host_start = at + 1;
  }

  const std::string_view host_port = authority.substr(host_start);
  std::size_t port_colon = std::string_view::npos;
  if (!host_port.empty() && host_port.front() == '[') {
    const std::size_t close = host_port.find(']');
    if (close == std::string_view::npos) return invalid_url("has an IPv6 host without ']'");
    if (close + 1 < host_port.size()) {
      if (host_port[close + 1] != ':') return invalid_url("has text after the IPv6 host");
      port_colon = close + 1;
    }
  } else {
    port_colon = host_port.find(':');
  }
  const std::string_view host = host_port.substr(0, port_colon);
  auto host_ok = detail::check_host(host, authority_start + host_start);
  if (!host_ok) return host_ok.error();
  parts.host = std::string(host);
  if (port_colon != std::string_view::npos) {
    auto port_ok = detail::check_port(host_port.substr(port_colon + 1), parts.port);
    if (!port_ok) return port_ok.error();
  }

  const std::string_view target = url.substr(authority_end);
  for (std::size_t i = 0; i < target.size(); ++i) {
    const char c = target[i];
    const bool allowed = detail::is_unreserved(c) || detail::is_sub_delim(c) || c == '%' ||
                         c == ':' || c == '@' || c == '/' || c == '?';
    if (!allowed) {
      return invalid_url("path or query contains the character " + detail::quoted_char(c) +
                         at_position(authority_end + i) + ", which must be percent-encoded");
    }
  }
  parts.target =
      target.empty() || target.front() == '?' ? "/" + std::string(target) : std::string(target);
  return parts;
}

inline result<void> validate_webhook_url(std::string_view url) {
  auto parsed = parse_webhook_url(url);
  if (!parsed) return std::move(parsed).error();
  return {};
}

inline result<std::string> make_webhook_url(std::string_view url,
                                            const basic_credentials& credentials) {
  auto parsed = parse_webhook_url(url);
  if (!parsed) return std::move(parsed).error();
  if (parsed->credentials) {
    return detail::invalid_url("already has credentials; pass it without 'user:password@'");
  }
  auto checked = detail::check_credentials(credentials);
  if (!checked) return checked.error();
  // The URL parsed, so it starts with "https://" (in some letter case).
  constexpr std::size_t authority_start = 8;
  const std::size_t length =
      url.size() + credentials.user.size() + 1 + credentials.password.size() + 1;
  if (length > detail::max_webhook_url_length) {
    return detail::invalid_url("with credentials would be " + std::to_string(length) +
                               " characters long, more than the " +
                               std::to_string(detail::max_webhook_url_length) + " allowed");
  }
  std::string out;
  out.reserve(length);
  out.append(url.substr(0, authority_start));
  out.append(credentials.user);
  out += ':';
  out.append(credentials.password);
  out += '@';
  out.append(url.substr(authority_start));
  return out;
}

inline std::string redact_url(std::string_view url) {
  constexpr std::string_view redacted = "REDACTED";
  // The authority follows "scheme://" (or a leading "//"). Without that shape
  // there is no telling where it ends, so all of the text is searched.
  std::size_t start = 0;
  std::size_t end = url.size();
  std::size_t colon = 0;
  if (detail::has_scheme(url, colon) && url.substr(colon + 1, 2) == "//") {
    start = colon + 3;
  } else if (url.substr(0, 2) == "//") {
    start = 2;
  }
  if (start != 0) {
    // Up to the first '/', not the first '/', '?' or '#' as RFC 3986 would: a
    // password holding '?' or '#' (which it must not, but might) stays covered.
    end = url.find('/', start);
    if (end == std::string_view::npos) end = url.size();
  }
  const std::string_view region = url.substr(start, end - start);

  std::size_t from = std::string_view::npos;  // first byte to redact
  std::size_t to = url.size();                // one past the last
  const std::size_t at = region.rfind('@');
  if (at != std::string_view::npos) {
    const std::size_t separator = region.find(':');
    if (separator < at) {
      from = start + separator + 1;
      to = start + at;
    }
  } else {
    // No '@': a password still shows as a port when the host was left out
    // ("https://user:secret/path"). Redact whatever follows ':' and is not a port.
    std::size_t separator = region.find(':');
    if (!region.empty() && region.front() == '[') {
      const std::size_t close = region.find(']');
      if (close != std::string_view::npos) separator = region.find(':', close);
    }
    if (separator != std::string_view::npos) {
      std::string_view port = region.substr(separator + 1);
      port = port.substr(0, port.find_first_of("?#"));
      std::string canonical;
      if (!port.empty() && !detail::check_port(port, canonical)) {
        from = start + separator + 1;
        // A password holding '/' puts its '@' past the region: redact up to that
        // '@', or to the end when there is none.
        const std::size_t later_at = url.find('@', end);
        if (later_at != std::string_view::npos) to = later_at;
      }
    }
  }
  if (from == std::string_view::npos) return std::string(url);
  std::string out;
  out.reserve(from + redacted.size() + (url.size() - to));
  out.append(url.substr(0, from));
  out.append(redacted);
  out.append(url.substr(to));
  return out;
}

inline std::string basic_authorization(const basic_credentials& credentials) {
  std::string pair;
  pair.reserve(credentials.user.size() + 1 + credentials.password.size());
  pair.append(credentials.user);
  pair += ':';
  pair.append(credentials.password);
  std::string header = "Basic " + detail::base64_encode(pair);
  // The joined copy holds the password: clear it before its memory is freed.
  volatile char* wipe = pair.data();
  for (std::size_t i = 0; i < pair.size(); ++i) wipe[i] = 0;
  return header;
}

UNLOC_END_NAMESPACE

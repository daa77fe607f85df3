#pragma once

/// @file
/// Validating an incoming webhook delivery, independent of any HTTP server:
/// give it the request's method, path, headers and body; it says what to
/// answer and hands over the typed Access Event, or names what was wrong.
/// Validation only decides: it remembers nothing (see `<unloc/event_store.hpp>`
/// for handling each event once).

#include <unloc/access_event.hpp>
#include <unloc/credentials.hpp>
#include <unloc/detail/base64.hpp>
#include <unloc/detail/text.hpp>
#include <unloc/error.hpp>
#include <unloc/http_headers.hpp>
#include <unloc/parse.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/version.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE

/// How a delivery validator decides.
struct delivery_options {
  /// The path that receives deliveries; any other path is answered 404. Empty: any path.
  std::string path = "/accessEvents";
  /// The Basic credentials a delivery may carry. List two pairs, old and new,
  /// while rotating them; either is accepted. No user name or password may be
  /// empty (an unset environment variable must not open the door).
  std::vector<basic_credentials> credentials;
  /// When false, deliveries without credentials are accepted (loopback tests only).
  bool require_authentication = true;
  /// The largest body accepted, checked against Content-Length before the
  /// body is read, and against the body itself.
  std::size_t max_body_bytes = 65536;
  /// Limits on the body's JSON.
  parse_limits limits{};
  /// An event received this long or more after it was `created` is flagged late.
  std::chrono::milliseconds late_after = std::chrono::minutes(5);
};

/// What a validator decided about a delivery.
enum class delivery_outcome : std::uint8_t {
  /// 204: a valid Access Event, whether or not it was seen before (the
  /// validator does not remember: claim it in an `event_store` to act once).
  accepted,
  unauthorized,            ///< 401: credentials missing, malformed or wrong.
  not_found,               ///< 404: another path.
  method_not_allowed,      ///< 405: another method than POST.
  payload_too_large,       ///< 413: the body is over the limit.
  unsupported_media_type,  ///< 415: not `application/json`.
  malformed_body,          ///< 400: not JSON, not UTF-8, or a malformed header.
  invalid_event,           ///< 422: JSON, but not a valid Access Event.
  /// 503: the event cannot be taken now (the server's store or its own work
  /// failed, or another request holds the event); the platform retries.
  unavailable,
};

/// The name of an outcome, such as `"invalid_event"` (also the `error` code in
/// the response body).
[[nodiscard]] constexpr const char* to_string(delivery_outcome outcome) noexcept {
  switch (outcome) {
    case delivery_outcome::accepted: return "accepted";
    case delivery_outcome::unauthorized: return "unauthorized";
    case delivery_outcome::not_found: return "not_found";
    case delivery_outcome::method_not_allowed: return "method_not_allowed";
    case delivery_outcome::payload_too_large: return "payload_too_large";
    case delivery_outcome::unsupported_media_type: return "unsupported_media_type";
    case delivery_outcome::malformed_body: return "malformed_body";
    case delivery_outcome::invalid_event: return "invalid_event";
    case delivery_outcome::unavailable: return "unavailable";
  }
  return "unknown";
}

/// The HTTP status that answers an outcome: 204 for `accepted`, else the
/// status of the receiver's table (404, 405, 401, 413, 415, 400, 422, 503).
[[nodiscard]] constexpr int http_status_of(delivery_outcome outcome) noexcept {
  switch (outcome) {
    case delivery_outcome::accepted: return 204;
    case delivery_outcome::unauthorized: return 401;
    case delivery_outcome::not_found: return 404;
    case delivery_outcome::method_not_allowed: return 405;
    case delivery_outcome::payload_too_large: return 413;
    case delivery_outcome::unsupported_media_type: return 415;
    case delivery_outcome::malformed_body: return 400;
    case delivery_outcome::invalid_event: return 422;
    case delivery_outcome::unavailable: return 503;
  }
  return 503;
}

/// The answer to a delivery, and what it carried.
struct delivery_decision {
  delivery_outcome outcome = delivery_outcome::unavailable;  ///< What was decided.
  int status = 503;              ///< The HTTP status to answer with.
  http_headers headers;          ///< Headers to add to the response.
  std::string body;              ///< The response body (JSON naming the error; empty on 204).
  std::optional<access_event> event;  ///< The event, when accepted.
  std::string message;           ///< Why it was rejected, for logs (never holds a secret).
  std::string field;             ///< The event field at fault, for `invalid_event`.
  /// Receipt time minus `created`: how late the platform reported the event.
  std::chrono::milliseconds lag{0};
  bool late = false;  ///< True when `lag` reached `delivery_options::late_after`.

  /// True for a valid event: claim it, act on it, answer 2xx.
  [[nodiscard]] bool ok() const noexcept { return outcome == delivery_outcome::accepted; }
};

/// A refusal with the same JSON body and headers as the validator's own:
/// `{"error":"<outcome>","field":…,"message":…}`, `Content-Type:
/// application/json`, and the outcome's status (`http_status_of`). For a
/// server's own limits and failures, so that they answer like the SDK; for
/// `unauthorized` it adds `WWW-Authenticate`, for `method_not_allowed`
/// `Allow`. Put no exception's text in `message`: it goes to the peer.
/// `accepted` is not a refusal: it makes `unavailable` (503, retried), never a
/// 204 with a body that `ok()` would take for a valid event without one.
[[nodiscard]] delivery_decision make_refusal(delivery_outcome outcome, std::string message,
                                             std::string field = {});

/// One HTTP request as the validator needs it. Views: the caller's buffers must
/// outlive the call.
struct delivery_request {
  std::string_view method;       ///< `"POST"`; methods are case-sensitive.
  std::string_view path;         ///< The request target's path (a query is ignored).
  const http_headers& headers;   ///< All request headers.
  std::string_view body;         ///< The raw body.
};

namespace detail {

/// The credentials of an `Authorization: Basic …` value, still in base64;
/// none when the scheme is not Basic.
[[nodiscard]] inline std::optional<std::string_view> basic_token(std::string_view value) noexcept {
  value = trim_ows(value);
  const auto space = value.find_first_of(" \t");
  if (space == std::string_view::npos || !ascii_iequals(value.substr(0, space), "basic")) {
    return std::nullopt;
  }
  return trim_ows(value.substr(space));
}

/// User and password from an `Authorization: Basic …` value; none when malformed.
[[nodiscard]] inline std::optional<basic_credentials> parse_basic_authorization(
    std::string_view value) {
  const auto token = basic_token(value);
  if (!token) return std::nullopt;
  auto decoded = base64_decode(*token);
  if (!decoded) return std::nullopt;
  const auto colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return basic_credentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

/// The three request fields a delivery's decision reads, gathered in one pass
/// over the headers: the first value of each, and how many times it came.
struct delivery_fields {
  struct field {
    std::string_view value;  ///< The first value.
    std::size_t count = 0;   ///< How many times the field came.
  };
  field authorization, content_type, content_length;

  /// None yet: `take` each header field.
  delivery_fields() = default;
  explicit delivery_fields(const http_headers& headers) noexcept {
    for (const auto& h : headers) take(h.name, h.value);
  }

  /// Looks at one header field (the views must outlive this object).
  void take(std::string_view name, std::string_view value) noexcept {
    field* f = nullptr;
    switch (name.size()) {  // the length first: most fields are passed over on it
      case 13: f = ascii_iequals(name, "Authorization") ? &authorization : nullptr; break;
      case 12: f = ascii_iequals(name, "Content-Type") ? &content_type : nullptr; break;
      case 14: f = ascii_iequals(name, "Content-Length") ? &content_length : nullptr; break;
      default: break;
    }
    if (f != nullptr) add(*f, value);
  }

  /// Counts one more of `f`, whose value is `value` (a view, as for take).
  static void add(field& f, std::string_view value) noexcept {
    if (f.count++ == 0) f.value = value;
  }
};

// The validator's decisions from header fields already gathered (views into a
// server's own request), for the SDK's server adapters: copying every field into
// an http_headers first cost a tenth of a delivery's work in the validator.
struct validator_access;

/// True when `token` is one of `expected`. Every one is compared with `equal`
/// (constant time), with no early exit, so timing tells not which matched.
template <typename Equal>
[[nodiscard]] bool token_matches(std::string_view token, const std::vector<std::string>& expected,
                                 Equal&& equal) {
  unsigned matched = 0;
  for (const auto& candidate : expected) matched |= equal(token, candidate) ? 1U : 0U;
  return matched != 0;
}

/// Each pair of `active` as a Basic header carries it: `user:password` in
/// base64. base64_decode accepts one encoding a byte string, so a token equals
/// one of these exactly when it decodes to that pair; a user with a colon is
/// left out, as the decoded pair's first colon would end the user there.
[[nodiscard]] inline std::vector<std::string> basic_tokens(
    const std::vector<basic_credentials>& active) {
  std::vector<std::string> tokens;
  for (const auto& pair : active) {
    if (pair.user.find(':') == std::string::npos) {
      tokens.push_back(base64_encode(pair.user + ':' + pair.password));
    }
  }
  return tokens;
}

/// True for `application/json`, with any case and optional parameters; a
/// charset other than UTF-8 is refused.
[[nodiscard]] inline bool is_json_media_type(std::string_view value) noexcept {
  auto semicolon = value.find(';');
  if (!ascii_iequals(trim_ows(value.substr(0, semicolon)), "application/json")) return false;
  while (semicolon != std::string_view::npos) {
    value.remove_prefix(semicolon + 1);
    semicolon = value.find(';');
    const auto param = trim_ows(value.substr(0, semicolon));
    const auto eq = param.find('=');
    if (eq == std::string_view::npos || !ascii_iequals(trim_ows(param.substr(0, eq)), "charset")) {
      continue;
    }
    auto charset = trim_ows(param.substr(eq + 1));
    if (charset.size() >= 2 && charset.front() == '"' && charset.back() == '"') {
      charset = charset.substr(1, charset.size() - 2);
    }
    if (!ascii_iequals(charset, "utf-8") && !ascii_iequals(charset, "utf8")) return false;
  }
  return true;
}

/// A Content-Length value: digits only, no overflow.
[[nodiscard]] inline std::optional<std::uint64_t> parse_content_length(
    std::string_view value) noexcept {
  value = trim_ows(value);
  if (value.empty() || value.size() > 19) return std::nullopt;
  std::uint64_t n = 0;
  for (const char c : value) {
    if (!is_digit(c)) return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

}  // namespace detail

/// Decides what to answer to a webhook delivery, following the status table
/// of `unloc-webhook-receiver`, in this order: 404 (path), 405 (method), 401
/// (credentials), 415 (content type), 413 (size), 400 (JSON, UTF-8), 422
/// (schema); then 204 (`accepted`) with the event. It has no side effect: a
/// repeated delivery is accepted again; handling each event once is the
/// caller's next step, with an `event_store`.
///
/// Thread safety: immutable after construction; `validate` may be called from
/// many threads at once. To change the credentials at run time, build a new
/// validator and swap it in (a `std::shared_ptr` under a mutex).
///
/// `validate` and `check_headers` never throw, whatever the request holds.
class delivery_validator {
 public:
  /// A validator with the given options, or an `invalid_input` error when a
  /// credential pair has an empty user name or password (read from an unset
  /// environment variable, say): use this where the options come from outside.
  [[nodiscard]] static result<delivery_validator> create(delivery_options options) {
    if (const char* why = blank_credentials(options)) {
      return make_error(error_category::invalid_input, why, "credentials");
    }
    return delivery_validator(std::move(options), checked{});
  }

  /// A validator with the given options. Throws `std::invalid_argument` when a
  /// credential pair has an empty user name or password: a programming error
  /// (see `create` for options read from the environment).
  explicit delivery_validator(delivery_options options)
      : options_(std::move(options)), tokens_(detail::basic_tokens(options_.credentials)) {
    if (const char* why = blank_credentials(options_)) throw std::invalid_argument(why);
  }

  /// The first half of `validate`, for servers that can answer before reading
  /// the body: decides 404, 405, 401, 415 and a Content-Length over the limit
  /// (413) from the request line and headers. None: go on and read the body.
  [[nodiscard]] std::optional<delivery_decision> check_headers(std::string_view method,
                                                               std::string_view path,
                                                               const http_headers& headers) const
      noexcept {
    return check_fields(method, path, detail::delivery_fields(headers));
  }

  /// Decides about a whole request, received now.
  [[nodiscard]] delivery_decision validate(const delivery_request& request) const noexcept {
    return validate(request, now());
  }

  /// Decides about a whole request received at `received_at` (which sets the lag).
  [[nodiscard]] delivery_decision validate(const delivery_request& request,
                                           timestamp received_at) const noexcept {
    return decide(request.method, request.path, detail::delivery_fields(request.headers),
                  request.body, received_at);
  }

  /// The options it decides by.
  [[nodiscard]] const delivery_options& options() const noexcept { return options_; }

 private:
  friend struct detail::validator_access;
  struct checked {};
  delivery_validator(delivery_options options, checked)
      : options_(std::move(options)), tokens_(detail::basic_tokens(options_.credentials)) {}

  // Why the credentials cannot be used; null when they can.
  static const char* blank_credentials(const delivery_options& options) noexcept {
    for (const auto& pair : options.credentials) {
      if (pair.user.empty()) return "a webhook credential has an empty user name";
      if (pair.password.empty()) return "a webhook credential has an empty password";
    }
    return nullptr;
  }

  static delivery_decision internal_failure() noexcept {
    try {
      return make_refusal(delivery_outcome::unavailable,
                          "internal failure while validating the delivery");
    } catch (...) {
      return delivery_decision{};  // out of memory: 503 without a body, the platform retries
    }
  }

  delivery_decision decide(std::string_view method, std::string_view path,
                           const detail::delivery_fields& fields, std::string_view body,
                           timestamp received_at) const noexcept {
    try {
      if (auto early = check_headers_or_throw(method, path, fields)) return std::move(*early);
      return check_body(body, received_at);
    } catch (...) {
      return internal_failure();
    }
  }

  // check_headers, from the fields gathered.
  std::optional<delivery_decision> check_fields(
      std::string_view method, std::string_view path,
      const detail::delivery_fields& fields) const noexcept {
    try {
      return check_headers_or_throw(method, path, fields);
    } catch (...) {
      return internal_failure();
    }
  }

  static timestamp now() {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now());
  }

  std::optional<delivery_decision> check_headers_or_throw(
      std::string_view method, std::string_view path, const detail::delivery_fields& fields) const {
    if (const auto query = path.find('?'); query != std::string_view::npos) {
      path = path.substr(0, query);
    }
    if (!options_.path.empty() && path != options_.path) {
      return make_refusal(delivery_outcome::not_found, "no webhook at this path");
    }
    if (method != "POST") {
      return make_refusal(delivery_outcome::method_not_allowed,
                          "deliveries are POST requests, got " + detail::quoted(method, 16));
    }
    if (options_.require_authentication) {
      if (const char* why = check_credentials(fields.authorization)) {
        return make_refusal(delivery_outcome::unauthorized, why);
      }
    }
    const auto& type = fields.content_type;
    if (type.count != 1 || !detail::is_json_media_type(type.value)) {
      return make_refusal(delivery_outcome::unsupported_media_type,
                          "Content-Type must be application/json, got " +
                              (type.count > 0 ? detail::quoted(type.value) : std::string("none")));
    }
    if (const auto& length = fields.content_length; length.count > 0) {
      const auto n = detail::parse_content_length(length.value);
      if (!n || length.count != 1) {
        return make_refusal(delivery_outcome::malformed_body,
                            "malformed Content-Length " + detail::quoted(length.value, 24));
      }
      if (*n > options_.max_body_bytes) return too_large(*n);
    }
    return std::nullopt;
  }

  // Why the request's credentials are refused; null when they are accepted.
  const char* check_credentials(const detail::delivery_fields::field& authorization) const {
    if (authorization.count == 0) return "missing Authorization header";
    if (authorization.count != 1) return "more than one Authorization header";
    // Compared as sent, not decoded: no copy of the secret, a tenth less work a delivery.
    const auto token = detail::basic_token(authorization.value);
    if (token && detail::token_matches(*token, tokens_, &detail::constant_time_equal)) {
      return nullptr;
    }
    return detail::parse_basic_authorization(authorization.value) ? "wrong user or password"
                                                                   : "malformed Basic credentials";
  }

  delivery_decision too_large(std::uint64_t size) const {
    return make_refusal(delivery_outcome::payload_too_large,
                        "body of " + std::to_string(size) + " bytes is over the limit of " +
                            std::to_string(options_.max_body_bytes));
  }

  // One decision, returned from every path (NRVO), and the event read into it
  // in place: an Access Event is some ten strings to move.
  delivery_decision check_body(std::string_view body, timestamp received_at) const {
    delivery_decision d;
    if (body.size() > options_.max_body_bytes) {
      d = too_large(body.size());
      return d;
    }
    access_event& event = d.event.emplace();
    detail::read_error e =
        detail::read_json(body, detail::event_object, &event, options_.limits.max_depth);
    if (e.failed()) {
      // Out of memory is this side's failure: 503, which the platform retries (a 422 it drops).
      if (e.status == detail::read_status::internal) {
        d = internal_failure();
      } else {
        const bool syntax = e.status == detail::read_status::syntax;
        d = make_refusal(
            syntax ? delivery_outcome::malformed_body : delivery_outcome::invalid_event,
            e.take_message(), std::move(e.field));
      }
      return d;
    }
    d.lag = std::chrono::duration_cast<std::chrono::milliseconds>(received_at - event.created);
    d.late = d.lag >= options_.late_after;
    d.outcome = delivery_outcome::accepted;
    d.status = 204;
    return d;
  }

  delivery_options options_;
  std::vector<std::string> tokens_;  // options_.credentials as Basic tokens (basic_tokens)
};

namespace detail {

struct validator_access {
  // delivery_validator::check_headers, from the fields gathered.
  [[nodiscard]] static std::optional<delivery_decision> check_headers(
      const delivery_validator& validator, std::string_view method, std::string_view path,
      const delivery_fields& fields) noexcept {
    return validator.check_fields(method, path, fields);
  }

  // delivery_validator::validate, from the fields gathered, received now.
  [[nodiscard]] static delivery_decision validate(const delivery_validator& validator,
                                                  std::string_view method, std::string_view path,
                                                  const delivery_fields& fields,
                                                  std::string_view body) noexcept {
    return validator.decide(method, path, fields, body, delivery_validator::now());
  }
};

}  // namespace detail

inline delivery_decision make_refusal(delivery_outcome outcome, std::string message,
                                      std::string field) {
  if (outcome == delivery_outcome::accepted) outcome = delivery_outcome::unavailable;
  delivery_decision d;
  d.outcome = outcome;
  d.status = http_status_of(outcome);
  d.body = "{\"error\":";  // {"error":…,"field":…,"message":…}
  detail::append_json_string(d.body, to_string(outcome));
  if (!field.empty()) {
    d.body += ",\"field\":";
    detail::append_json_string(d.body, field);
  }
  d.body += ",\"message\":";
  detail::append_json_string(d.body, message);
  d.body += '}';
  d.headers.add("Content-Type", "application/json");
  if (outcome == delivery_outcome::unauthorized) {
    d.headers.add("WWW-Authenticate", "Basic realm=\"unloc\"");
  } else if (outcome == delivery_outcome::method_not_allowed) {
    d.headers.add("Allow", "POST");
  }
  d.message = std::move(message);
  d.field = std::move(field);
  return d;
}

UNLOC_END_NAMESPACE

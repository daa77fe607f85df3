#pragma once

// The connection under the client (google-cloud-cpp's split): one API call
// becomes attempts over the transport, with the bearer token, the 401 refresh,
// retries with backoff inside the deadline, and the redacted log lines.
// Internal (namespace detail): included by client.hpp only. It stands on the
// public headers, which is why it lives in client/, not in detail/.

#include <unloc/client/retry.hpp>
#include <unloc/credentials.hpp>
#include <unloc/detail/text.hpp>
#include <unloc/error.hpp>
#include <unloc/http_headers.hpp>
#include <unloc/options.hpp>
#include <unloc/parse.hpp>
#include <unloc/token.hpp>
#include <unloc/transport.hpp>
#include <unloc/version.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

UNLOC_BEGIN_NAMESPACE
namespace detail {

/// Percent-encodes everything but RFC 3986 unreserved characters.
inline std::string url_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 0xf];
    }
  }
  return out;
}

/// One API call, before it becomes attempts.
struct api_call {
  std::string method;       // GET, POST, DELETE
  std::string target;       // path and query, e.g. /v2/projects/…/webhooks
  std::string body;         // JSON, or empty
  bool authenticated = true;  // false for the token endpoint itself
  bool repeatable = false;    // a POST that is safe to send twice (the token request)
};

/// The response a call ended with (any status), and how it got there.
struct call_outcome {
  http_response response;
  int attempts = 0;
  // An attempt may have been applied: it broke after it was sent, or a gateway
  // answered 502/504 for it. Only for calls that change something (not GET, not
  // the token request). A 401, 429 or 503 says the request was not applied.
  bool ambiguous_attempt = false;
};

/// Header values that may be logged as they are; every other value is REDACTED.
inline bool loggable_header(std::string_view name) noexcept {
  for (const std::string_view allowed :
       {"content-type", "content-length", "accept", "user-agent", "x-request-id", "retry-after"}) {
    if (ascii_iequals(name, allowed)) return true;
  }
  return false;
}

// Appends ` [name: value, …]`, each value REDACTED unless loggable_header.
UNLOC_DETAIL_COLD inline void append_headers(std::string& out, const http_headers& headers) {
  const char* separator = " [";
  for (const auto& h : headers) {
    out.append(separator).append(h.name).append(": ");
    out.append(loggable_header(h.name) ? std::string_view(h.value) : std::string_view("REDACTED"));
    separator = ", ";
  }
  if (!headers.empty()) out += ']';
}

/// Replaces every occurrence of `secret` in `text` with REDACTED. A secret
/// shorter than 4 characters is left: it cannot be told from ordinary text (a
/// real client secret or token is far longer).
inline void scrub_secret(std::string& text, std::string_view secret) {
  constexpr std::string_view redacted = "REDACTED";
  if (secret.size() < 4) return;
  // On after the REDACTED just written: a secret inside "REDACTED" would be found there again.
  for (auto at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + redacted.size())) {
    text.replace(at, secret.size(), redacted);
  }
}

/// Replaces the credentials after every `Bearer` and spaces or tabs with
/// REDACTED: a token this process never saw, too.
inline void scrub_bearer_tokens(std::string& text) {
  constexpr std::string_view redacted = "REDACTED";
  constexpr std::string_view bearer = "bearer";  // an auth scheme: any case
  for (std::size_t at = 0; at + bearer.size() < text.size(); ++at) {
    if (!ascii_iequals(std::string_view(text).substr(at, bearer.size()), bearer)) continue;
    auto start = at + bearer.size();
    if (text[start] != ' ' && text[start] != '\t') continue;
    while (start < text.size() && (text[start] == ' ' || text[start] == '\t')) ++start;
    auto end = start;
    while (end < text.size() && is_b64token(text[end])) ++end;
    if (end == start || text.compare(start, end - start, redacted) == 0) continue;
    text.replace(start, end - start, redacted);
  }
}

inline bool retryable_status(int status) noexcept {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

class connection {
 public:
  // Defined after credentials_token_source, which it makes.
  connection(client_options options, std::shared_ptr<unloc::transport> transport);
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  [[nodiscard]] const client_options& options() const noexcept { return options_; }
  [[nodiscard]] token_source& tokens() noexcept { return *tokens_; }

  /// Runs a call to its end: a response of any status, or an error.
  result<call_outcome> execute(const api_call& call, const call_options& per_call) {
    return execute(call, per_call.retry.value_or(options_.retry),
                   std::chrono::steady_clock::now() + per_call.deadline.value_or(options_.deadline));
  }

  result<call_outcome> execute(const api_call& call, const retry_policy& policy,
                               std::chrono::steady_clock::time_point deadline) {
    call_outcome out;
    bool refreshed = false;
    const bool changes_state = call.method != "GET" && !call.repeatable;
    for (int attempt = 1;; ++attempt) {
      out.attempts = attempt;
      http_request request = make_request(call);
      std::optional<access_token> token;
      if (call.authenticated) {
        auto fetched = tokens_->token(deadline);
        if (!fetched) {
          if (attempt == 1) return finish(std::move(fetched).error(), nullptr);  // its own attempts
          out.attempts = attempt - 1;  // a refresh after a 401 failed: count what this call sent
          return finish(std::move(fetched).error(), &out);
        }
        token.emplace(std::move(*fetched));
        authorize(request, token->value);
      }
      if (options_.logger) log_line(call, request, attempt, nullptr, nullptr, {});
      const auto started = std::chrono::steady_clock::now();
      auto sent = transport_->send(request, deadline);
      const auto took = std::chrono::steady_clock::now() - started;

      std::chrono::milliseconds wait = full_jitter_backoff(attempt, policy.initial_backoff,
                                                           policy.max_backoff);
      if (sent) {
        if (options_.logger) log_line(call, request, attempt, &*sent, nullptr, took);
        const int status = sent->status;
        if (status == 401 && token && !refreshed) {
          refreshed = true;  // a token expired early or was revoked: one new token, one repeat
          tokens_->invalidate(*token);
          continue;
        }
        out.response = std::move(*sent);
        out.ambiguous_attempt |= changes_state && (status == 502 || status == 504);
        if (!retryable_status(status) || attempt >= policy.max_attempts) return out;
        wait = (std::max)(wait, retry_after(out.response));
        if (std::chrono::steady_clock::now() + wait >= deadline) return out;  // never overrun
      } else {
        error failure = std::move(sent).error();
        if (options_.logger) log_line(call, request, attempt, nullptr, &failure, took);
        out.ambiguous_attempt |= failure.category == error_category::ambiguous;
        const bool retryable = failure.category == error_category::network ||
                               failure.category == error_category::ambiguous;
        if (!retryable || attempt >= policy.max_attempts ||
            std::chrono::steady_clock::now() + wait >= deadline) {
          return finish(std::move(failure), &out);
        }
      }
      std::this_thread::sleep_for(wait);
    }
  }

  /// The error for a response with an error status: the API's `error` and
  /// `message` when the body has them, the raw body otherwise. `ambiguous`
  /// when an attempt of the call may have been applied.
  [[nodiscard]] UNLOC_DETAIL_COLD error http_error(const call_outcome& outcome) const {
    const auto& response = outcome.response;
    error e;
    e.category = (response.status == 401 || response.status == 403) ? error_category::authentication
                                                                     : error_category::api;
    if (outcome.ambiguous_attempt) e.category = error_category::ambiguous;
    e.http_status = response.status;
    e.attempts = outcome.attempts;
    if (const auto id = response.headers.get("x-request-id")) e.request_id = std::string(*id);
    const auto asked = response.headers.get("Retry-After");
    if (asked && (response.status == 429 || response.status == 503)) {
      e.retry_after = parse_retry_after(*asked, std::chrono::system_clock::now());
    }
    read_api_error(response.body, e);
    e.message = "the API refused the request";
    if (e.api_code.empty() && e.api_message.empty() && !response.body.empty()) {
      // Scrubbed before quoting and cutting: either would hide a secret from the scrub.
      std::string body = response.body;
      scrub_secrets(body);
      e.body = quoted(body, 512);
      e.message += "; its body is not an API error: " + e.body;
    }
    if (outcome.ambiguous_attempt) {
      e.message += " after an earlier attempt that may have been applied";
    }
    scrub_secrets(e);
    return e;
  }

  /// An error for a response whose body did not read as the contract says;
  /// `internal` (out of memory, a callback that threw) stays `internal`.
  [[nodiscard]] UNLOC_DETAIL_COLD error response_error(const call_outcome& outcome, error e) const {
    if (e.category != error_category::internal) e.category = error_category::invalid_response;
    e.http_status = outcome.response.status;
    e.attempts = outcome.attempts;
    if (const auto id = outcome.response.headers.get("x-request-id")) e.request_id = std::string(*id);
    scrub_secrets(e);
    return e;
  }

  /// Fetches a token with the client credentials (used by credentials_token_source).
  result<access_token> fetch_token(std::chrono::steady_clock::time_point deadline) {
    const std::string body = json_object_text({{"grant_type", "client_credentials"},
                                               {"client_id", options_.client_id},
                                               {"client_secret", options_.client_secret},
                                               {"scope", "project.admin"},
                                               {"project_id", options_.project_id}});
    api_call call{"POST", "/v2/auth/token/", body, false, true};
    auto outcome = execute(call, options_.retry, deadline);
    if (!outcome) return outcome.error();
    if (const int status = outcome->response.status; status != 200) {
      error e = http_error(*outcome);
      // OAuth refuses bad client credentials with 400 or 401; anything else
      // (an outage, a rate limit) is not the credentials' fault.
      if (status == 400) e.category = error_category::authentication;
      e.message.insert(0, e.category == error_category::authentication
                              ? "the token request was refused: "
                              : "the token request failed: ");
      return e;
    }
    auto token = parse_access_token(outcome->response.body);
    if (!token) return response_error(*outcome, token.error());
    return token;
  }

  /// Whether a failed token fetch ended only because its caller's deadline ran
  /// out: a timeout, or a failure execute() would have retried (it retries
  /// those until max_attempts unless the deadline comes first).
  [[nodiscard]] bool ran_out_of_time(const error& e) const noexcept {
    if (e.category == error_category::timeout) return true;
    const bool retryable = e.category == error_category::network ||
                           e.category == error_category::ambiguous ||
                           retryable_status(e.http_status);
    return retryable && e.attempts < options_.retry.max_attempts;
  }

 private:
  // What execute() does per attempt, out of line: it runs once per call, and
  // inlined it would be compiled again into every file that creates a client.
  UNLOC_DETAIL_NOINLINE http_request make_request(const api_call& call) const {
    http_request request;
    request.method = call.method;
    request.url = options_.api_url + call.target;
    request.headers.add("Accept", "application/json");
    if (!call.body.empty()) request.headers.add("Content-Type", "application/json");
    request.body = call.body;
    request.repeatable = call.repeatable;
    return request;
  }

  // The wait a 429/503 asks for (Retry-After), or zero.
  UNLOC_DETAIL_NOINLINE static std::chrono::milliseconds retry_after(const http_response& r) {
    if (const auto value = r.headers.get("Retry-After")) {
      if (auto asked = parse_retry_after(*value, std::chrono::system_clock::now())) return *asked;
    }
    return std::chrono::milliseconds(0);
  }

  // The log line of an attempt (neither `response` nor `failure`), or of its
  // outcome. Built only when a logger is set: every call would pay for it.
  UNLOC_DETAIL_COLD void log_line(const api_call& call, const http_request& request, int attempt,
                                  const http_response* response, const error* failure,
                                  std::chrono::steady_clock::duration took) const {
    using std::chrono::milliseconds;
    const auto ms = std::to_string(std::chrono::duration_cast<milliseconds>(took).count());
    std::string line = "unloc: ";
    if (response != nullptr) line.append("< ").append(std::to_string(response->status)).append(" ");
    line.append(response == nullptr && failure == nullptr ? "> " : failure != nullptr ? "! " : "");
    line.append(call.method).append(" ").append(redact_url(request.url));
    if (response != nullptr) {
      line.append(" in ").append(ms).append(" ms");
      append_headers(line, response->headers);
    } else if (failure != nullptr) {
      line.append(" failed after ").append(ms).append(" ms: ").append(to_string(*failure));
    } else {
      line.append(" (attempt ").append(std::to_string(attempt)).append(")");
      append_headers(line, request.headers);
    }
    scrub_secrets(line);
    options_.logger(line);
  }

  // Every token this connection sent is a secret to scrub from what a server
  // echoes. The last few suffice: older ones expired long before.
  // The bearer header, and the token kept for scrubbing; out of line, as make_request.
  UNLOC_DETAIL_NOINLINE void authorize(http_request& request, const std::string& value) {
    remember_token(value);
    request.headers.add("Authorization", "Bearer " + value);
  }

  void remember_token(const std::string& value) {
    const std::lock_guard<std::mutex> lock(tokens_used_mutex_);
    if (std::find(tokens_used_.begin(), tokens_used_.end(), value) != tokens_used_.end()) return;
    tokens_used_[next_token_used_] = value;  // over the oldest
    next_token_used_ = (next_token_used_ + 1) % tokens_used_.size();
  }

  void scrub_secrets(std::string& text) const {
    const std::lock_guard<std::mutex> lock(tokens_used_mutex_);
    scrub_secret(text, options_.client_secret);
    for (const auto& token : tokens_used_) scrub_secret(text, token);
    scrub_bearer_tokens(text);
  }

  void scrub_secrets(error& e) const {
    for (std::string* text : {&e.message, &e.api_message, &e.body, &e.api_code}) {
      scrub_secrets(*text);
    }
  }

  // The error a call ends with; `out` (when the call got that far) counts its
  // attempts and says whether one may have been applied.
  UNLOC_DETAIL_COLD error finish(error e, const call_outcome* out) const {
    if (out != nullptr) {
      e.attempts = out->attempts;
      if (out->ambiguous_attempt && e.category != error_category::ambiguous) {
        e.category = error_category::ambiguous;
        e.message += " after an earlier attempt that may have been applied";
      }
    }
    scrub_secrets(e);
    return e;
  }

  client_options options_;
  std::shared_ptr<unloc::transport> transport_;
  std::shared_ptr<token_source> tokens_;
  mutable std::mutex tokens_used_mutex_;
  std::array<std::string, 8> tokens_used_;  // empty until used: too short to scrub
  std::size_t next_token_used_ = 0;
};

/// Tokens by the OAuth2 client-credentials grant, cached and refreshed
/// `margin` before expiry. One fetch is in flight at a time; callers that need
/// a token meanwhile wait for it, each no longer than its own deadline, and
/// share its result, unless it failed only because its caller's deadline ran
/// out and they have time left: then they fetch again. A failed fetch is not
/// cached: the next caller fetches.
class credentials_token_source final : public token_source {
 public:
  credentials_token_source(connection& owner, std::chrono::seconds margin)
      : owner_(owner), margin_(margin) {}

  result<access_token> token(std::chrono::steady_clock::time_point deadline) override {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!fresh()) {
      if (!fetching_) {
        fetching_ = true;
        lock.unlock();
        const auto began = std::chrono::system_clock::now();
        result<access_token> fetched = make_error(error_category::internal, "no token fetched");
        try {
          fetched = owner_.fetch_token(deadline);
        } catch (...) {  // out of memory: let the waiters go before it propagates
          finish_fetch(fetched, began);
          throw;
        }
        finish_fetch(fetched, began);
        return fetched;
      }
      const auto seen = fetches_done_;
      if (!fetch_done_.wait_until(lock, deadline, [&] { return fetches_done_ != seen; })) {
        return make_error(error_category::timeout,
                          "no access token within the deadline: the token request in flight "
                          "has not finished");
      }
      // That fetch failed: share its failure, unless only its caller's deadline
      // ended it and this caller still has time (then fetch again).
      if (!fresh() && last_failure_ &&
          (!last_failure_out_of_time_ || std::chrono::steady_clock::now() >= deadline)) {
        return *last_failure_;
      }
    }
    return *cached_;
  }

  void invalidate(const access_token& stale) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (cached_ && cached_->value == stale.value) cached_.reset();
  }

 private:
  [[nodiscard]] bool fresh() const {
    return cached_ && std::chrono::system_clock::now() < refresh_at_;
  }
  void finish_fetch(result<access_token>& fetched, std::chrono::system_clock::time_point began) {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      fetching_ = false;
      ++fetches_done_;
      if (fetched) {
        last_failure_.reset();
        cached_.emplace(*fetched);
        // Refresh `margin` before expiry, or half-way through a lifetime shorter than two margins.
        const auto lifetime = cached_->expires_at - began;
        refresh_at_ = began + (lifetime > 2 * margin_ ? lifetime - margin_ : lifetime / 2);
      } else {
        last_failure_.emplace(fetched.error());
        last_failure_out_of_time_ = owner_.ran_out_of_time(*last_failure_);
      }
    }
    fetch_done_.notify_all();
  }

  connection& owner_;
  std::chrono::seconds margin_;
  std::mutex mutex_;  // guards what follows; never held during a fetch
  std::condition_variable fetch_done_;
  bool fetching_ = false;
  std::uint64_t fetches_done_ = 0;
  std::optional<error> last_failure_;  // of the last fetch done, if it failed
  bool last_failure_out_of_time_ = false;  // only its caller's deadline ended it
  std::optional<access_token> cached_;
  std::chrono::system_clock::time_point refresh_at_{};
};

inline connection::connection(client_options options, std::shared_ptr<unloc::transport> transport)
    : options_(std::move(options)), transport_(std::move(transport)) {
  while (!options_.api_url.empty() && options_.api_url.back() == '/') options_.api_url.pop_back();
  tokens_ = options_.tokens ? options_.tokens
                            : std::make_shared<credentials_token_source>(
                                  *this, options_.token_refresh_margin);
}

}  // namespace detail
UNLOC_END_NAMESPACE

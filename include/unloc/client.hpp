#pragma once

/// @file
/// The Unloc API client: webhooks and the 30-day access log, with tokens,
/// retries and connection reuse handled underneath.

#include <unloc/access_event.hpp>
#include <unloc/access_log_query.hpp>
#include <unloc/credentials.hpp>
#include <unloc/client/connection.hpp>
#include <unloc/client/curl_transport.hpp>
#include <unloc/error.hpp>
#include <unloc/options.hpp>
#include <unloc/parse.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/token.hpp>
#include <unloc/uuid.hpp>
#include <unloc/version.hpp>
#include <unloc/webhook.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE

/// A webhook that `ensure_webhook` found or created.
struct ensured_webhook {
  webhook hook;          ///< The webhook.
  bool created = false;  ///< True when this call registered it.
};

/// What `rotate_webhook_credentials` did.
struct rotated_webhook {
  webhook hook;               ///< The webhook with the new credentials.
  bool created = false;       ///< True when this call registered it.
  std::vector<uuid> deleted;  ///< The webhooks with other credentials that it deleted.
};

/// The client of the Unloc API for one Project.
///
/// Thread safety: one client may be used from many threads at once; copies
/// are cheap and share their connections and token. Tokens are fetched when
/// first needed, cached, refreshed before they expire and once more on a 401.
/// Connections are kept alive between calls.
///
/// Errors: every call returns a `result`; nothing the network or the server
/// does makes it throw. Each call retries by its `retry_policy` within its
/// deadline (see `call_options`).
class client {
 public:
  /// A client with `options`; fails on invalid options (an `http://` URL, a
  /// missing project id or credentials, an unreadable CA file).
  [[nodiscard]] static result<client> create(client_options options) {
    if (options.project_id.empty()) {
      return make_error(error_category::invalid_input, "project_id is required", "project_id");
    }
    if (!detail::ascii_iequals(std::string_view(options.api_url).substr(0, 8), "https://")) {
      return make_error(error_category::invalid_input,
                        "api_url must be an https URL; TLS is never switched off", "api_url");
    }
    if (!options.tokens && (options.client_id.empty() || options.client_secret.empty())) {
      return make_error(error_category::invalid_input,
                        "client_id and client_secret (or a token source) are required",
                        "client_id");
    }
    std::shared_ptr<unloc::transport> transport = options.transport;
    if (!transport) {
      detail::curl_transport_options curl;
      curl.connect_timeout = options.connect_timeout;
      curl.ca_file = options.ca_file;
      curl.ca_pem = options.ca_pem;
      curl.proxy = options.proxy;
      curl.proxy_from_environment = options.proxy_from_environment;
      curl.user_agent = user_agent();
      auto made = detail::curl_transport::create(std::move(curl));
      if (!made) return made.error();
      transport = std::move(*made);
    }
    return client(std::make_shared<detail::connection>(std::move(options), std::move(transport)));
  }

  /// `unloc-cpp/<version> libcurl/<version>`, sent with every request.
  [[nodiscard]] static std::string user_agent() {
    return "unloc-cpp/" UNLOC_VERSION_STRING " " + detail::curl_version_token();
  }

  /// Registers a webhook. If the same URL and Lock are registered already
  /// (`409`), returns the existing webhook instead of failing. The URL is
  /// checked first (https, a host, no fragment, credentials without reserved
  /// characters). When an attempt may have registered it (it broke after it
  /// was sent, or a gateway answered `502`/`504`) and the call then fails in
  /// any way, an HTTP error included, the error's category is `ambiguous`:
  /// `ensure_webhook` settles that.
  [[nodiscard]] result<webhook> register_webhook(const webhook_registration& registration,
                                                 const call_options& per_call = {}) const {
    if (auto valid = validate_webhook_url(registration.url); !valid) return valid.error();
    // Repeating this POST is harmless (a repeat answers 409 with the webhook), so it is retried.
    auto outcome =
        conn_->execute({"POST", project_path("/webhooks"), to_json_text(registration)}, per_call);
    if (!outcome) return outcome.error();
    const int status = outcome->response.status;
    if (status != 200 && status != 201 && status != 409) return conn_->http_error(*outcome);
    auto hook = parse_webhook(outcome->response.body);
    if (!hook) return conn_->response_error(*outcome, hook.error());
    return hook;
  }

  /// Registers a webhook for `lock_id` at `url`.
  [[nodiscard]] result<webhook> register_webhook(const uuid& lock_id, std::string url,
                                                 const call_options& per_call = {}) const {
    webhook_registration registration;
    registration.lock_id = lock_id;
    registration.url = std::move(url);
    return register_webhook(registration, per_call);
  }

  /// Finds the webhook with this trigger, Lock and URL, and registers it only
  /// when missing: safe to run on every start of a deployment.
  [[nodiscard]] result<ensured_webhook> ensure_webhook(const webhook_registration& registration,
                                                       const call_options& per_call = {}) const {
    if (auto valid = validate_webhook_url(registration.url); !valid) return valid.error();
    auto existing = list_webhooks(per_call);
    if (!existing) return existing.error();
    for (auto& hook : *existing) {
      if (hook.trigger == registration.trigger && hook.lock_id == registration.lock_id &&
          hook.url == registration.url) {
        return ensured_webhook{std::move(hook), false};
      }
    }
    auto created = register_webhook(registration, per_call);
    if (!created) return created.error();
    return ensured_webhook{std::move(*created), true};
  }

  /// Moves a webhook to new credentials: registers `registration` (its URL
  /// carrying the new `user:password@`) unless it is registered already, then
  /// deletes the Lock's other webhooks with the same trigger to the same
  /// endpoint (scheme, host, port, path and query: the URL without its user
  /// info), which carry other credentials. Accept both pairs in the validator
  /// before calling it, and drop the old pair after. Safe to repeat: after a
  /// failure, running it again finishes the job. One rotator at a time per
  /// webhook: two rotations to different new credentials running at once can
  /// each delete the other's new webhook.
  [[nodiscard]] result<rotated_webhook> rotate_webhook_credentials(
      const webhook_registration& registration, const call_options& per_call = {}) const {
    auto endpoint = parse_webhook_url(registration.url);
    if (!endpoint) return endpoint.error();
    auto ensured = ensure_webhook(registration, per_call);
    if (!ensured) return ensured.error();
    rotated_webhook out{std::move(ensured->hook), ensured->created, {}};
    auto hooks = list_webhooks(per_call);
    if (!hooks) return hooks.error();
    for (const auto& hook : *hooks) {
      if (hook.id == out.hook.id || hook.trigger != registration.trigger ||
          hook.lock_id != registration.lock_id || hook.url == registration.url) {
        continue;
      }
      auto other = parse_webhook_url(hook.url);
      if (!other || !same_endpoint(*other, *endpoint)) continue;
      auto deleted = delete_webhook(hook.id, per_call);
      // A 404: another process rotating at the same time deleted it first.
      if (!deleted && deleted.error().http_status != 404) return deleted.error();
      if (deleted) out.deleted.push_back(hook.id);
    }
    return out;
  }

  /// The Project's webhooks.
  [[nodiscard]] result<std::vector<webhook>> list_webhooks(const call_options& per_call = {}) const {
    auto outcome = conn_->execute({"GET", project_path("/webhooks"), {}}, per_call);
    if (!outcome) return outcome.error();
    if (outcome->response.status != 200) return conn_->http_error(*outcome);
    auto hooks = parse_webhook_list(outcome->response.body);
    if (!hooks) return conn_->response_error(*outcome, hooks.error());
    return hooks;
  }

  /// Deletes a webhook. A `404` counts as success only after an attempt that
  /// may have deleted it (it broke after it was sent, or a gateway answered
  /// `502`/`504`); after a `401`, `429` or `503` it is the error it says. A
  /// failure after such an attempt is `ambiguous`.
  [[nodiscard]] result<void> delete_webhook(const uuid& webhook_id,
                                            const call_options& per_call = {}) const {
    auto outcome = conn_->execute(
        {"DELETE", project_path("/webhooks/" + webhook_id.to_string()), {}}, per_call);
    if (!outcome) return outcome.error();
    const int status = outcome->response.status;
    if (status == 200 || status == 204) return {};
    if (status == 404 && outcome->ambiguous_attempt) return {};  // an earlier attempt deleted it
    return conn_->http_error(*outcome);
  }

  /// One page of an access log; pass the previous page's `next_cursor` to get
  /// the next. The deadline applies to this page.
  [[nodiscard]] result<access_log_page> fetch_access_log_page(
      const access_log_query& query, const std::string& cursor = {},
      const call_options& per_call = {}) const {
    access_log_page page;
    auto next = read_page(
        query, cursor,
        [&page](access_event&& e) {
          page.events.push_back(std::move(e));
          return true;
        },
        per_call);
    if (!next) return next.error();
    page.next_cursor = std::move(*next);
    return page;
  }

  /// Reads every page of an access log, handing each event to
  /// `on_event(access_event&&)` in the order served (newest first); memory
  /// stays bounded by one page. `on_event` returns false to stop early: a
  /// success, with `log_read::stopped` set. Returns how many events were
  /// handed over. The deadline applies to each page. An exception `on_event`
  /// throws ends the read with an `internal` error; it is not rethrown.
  template <typename OnEvent>
  [[nodiscard]] result<log_read> read_access_log(const access_log_query& query,
                                                 OnEvent&& on_event,
                                                 const call_options& per_call = {}) const {
    log_read read;
    std::string cursor;
    int empty_pages_in_a_row = 0;  // a server that pages through nothing forever is broken
    for (;;) {
      const std::size_t before = read.events;
      auto next = read_page(
          query, cursor,
          [&](access_event&& e) {
            ++read.events;
            read.stopped = !on_event(std::move(e));
            return !read.stopped;
          },
          per_call);
      if (read.stopped) return read;  // the page reader reports the stop as its failure
      if (!next) return next.error();
      if (!*next) return read;
      empty_pages_in_a_row = read.events == before ? empty_pages_in_a_row + 1 : 0;
      if (**next == cursor || empty_pages_in_a_row > 100) {
        return make_error(error_category::invalid_response,
                          "the access log's cursor does not advance", "nextCursor");
      }
      cursor = std::move(**next);
    }
  }

  /// Every event of an access log, all pages followed, in the order served.
  [[nodiscard]] result<std::vector<access_event>> access_log(
      const access_log_query& query, const call_options& per_call = {}) const {
    std::vector<access_event> events;
    auto read = read_access_log(
        query,
        [&events](access_event&& e) {
          events.push_back(std::move(e));
          return true;
        },
        per_call);
    if (!read) return read.error();
    return events;
  }

  /// The current access token, fetched if needed (for diagnostics; the calls
  /// above manage tokens themselves). `to_string` of it never shows its value.
  [[nodiscard]] result<access_token> token(const call_options& per_call = {}) const {
    return conn_->tokens().token(std::chrono::steady_clock::now() +
                                 per_call.deadline.value_or(conn_->options().deadline));
  }

  /// The options the client was created with.
  [[nodiscard]] const client_options& options() const noexcept { return conn_->options(); }

 private:
  explicit client(std::shared_ptr<detail::connection> conn) : conn_(std::move(conn)) {}

  // Scheme, host (any case), port (443 when none) and target alike.
  static bool same_endpoint(const webhook_url_parts& a, const webhook_url_parts& b) {
    const auto port = [](const std::string& p) { return p.empty() ? std::string("443") : p; };
    return a.scheme == b.scheme && detail::ascii_iequals(a.host, b.host) &&
           port(a.port) == port(b.port) && a.target == b.target;
  }

  [[nodiscard]] std::string project_path(const std::string& rest) const {
    return "/v2/projects/" + detail::url_encode(conn_->options().project_id) + rest;
  }

  template <typename OnEvent>
  result<std::optional<std::string>> read_page(const access_log_query& query,
                                               const std::string& cursor, OnEvent&& on_event,
                                               const call_options& per_call) const {
    auto target = log_target(query);
    if (!target) return target.error();
    if (!cursor.empty()) *target += "&cursor=" + detail::url_encode(cursor);
    auto outcome = conn_->execute({"GET", std::move(*target), {}}, per_call);
    if (!outcome) return outcome.error();
    if (outcome->response.status != 200) return conn_->http_error(*outcome);
    auto next = read_access_log_page(outcome->response.body, std::forward<OnEvent>(on_event));
    if (!next) return conn_->response_error(*outcome, next.error());
    return next;
  }

  [[nodiscard]] result<std::string> log_target(const access_log_query& query) const {
    if (query.page_size < 1 || query.page_size > 1000) {
      return make_error(error_category::invalid_input, "page_size must be 1 to 1000", "page_size");
    }
    if (query.from && query.to && *query.from > *query.to) {
      return make_error(error_category::invalid_input, "from is after to", "from");
    }
    std::string target;
    std::string params = "?limit=" + std::to_string(query.page_size);
    if (query.project_wide) {
      target = project_path("/logs/access");
      if (query.lock_id) params += "&lockId=" + query.lock_id->to_string();
    } else {
      if (!query.lock_id) {
        return make_error(error_category::invalid_input, "a lock's access log needs a lock id",
                          "lock_id");
      }
      target = project_path("/locks/" + query.lock_id->to_string() + "/logs/access");
    }
    if (query.from) params += "&from=" + detail::url_encode(format_timestamp(*query.from));
    if (query.to) params += "&to=" + detail::url_encode(format_timestamp(*query.to));
    return target + params;
  }

  std::shared_ptr<detail::connection> conn_;
};

UNLOC_END_NAMESPACE

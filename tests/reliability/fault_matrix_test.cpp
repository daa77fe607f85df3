// The client's fault matrix ("Never lose an Access Event"): every fault the
// reference server injects, once (transient) and until cleared (permanent),
// crossed with every call it applies to; then raw peers written here with
// plain sockets and OpenSSL: a listener that never answers, half a body and a
// close, an answer that is not HTTP, a certificate from another CA, a name
// that does not resolve, a refused connection. Each row either succeeds after
// retries, with the number of requests the server saw, or returns the row's
// error category within the call's deadline; then the same client must still
// work. CI runs it under AddressSanitizer and UBSan too.
//
// tests/client/client_test.cpp checks single cases in depth (Retry-After as a
// date, secrets in logs, paging order); this file is the systematic version.
// UNLOC_FAULT_MATRIX_LOG=1 prints the clients' (redacted) log lines.

#include <unloc/unloc.hpp>

#include "catch.hpp"
#include "support/reference_server.hpp"
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;
using unloc::error_category;

// --- Timing -------------------------------------------------------------------
// Short, so that the whole matrix runs in seconds. The bounds below are
// correctness bounds (a call returns by its deadline), not performance ones.

// Deadlines a row is not meant to reach are long (a loaded CI machine under
// ASan makes a TLS handshake take hundreds of ms); those a row must reach are
// as short as the outcome allows, and longer where a handshake comes first.
const unloc::retry_policy fast_retry{4, 10ms, 40ms};  // 4 attempts, waits of 0-40 ms
constexpr milliseconds call_deadline = 10'000ms;      // not reached but by a bug
constexpr milliseconds short_deadline = 500ms;        // reached; the connection is warm
constexpr milliseconds handshake_deadline = 2000ms;   // reached; a TLS handshake first
constexpr milliseconds silent_deadline = 600ms;       // reached; nothing can happen before
constexpr milliseconds slow_delay = 5000ms;           // "slow" beyond every deadline + margin
constexpr milliseconds slow_within = 200ms;           // "slow" well inside the deadline
constexpr milliseconds margin = 1500ms;               // deadline + margin: the latest return
constexpr milliseconds early = 50ms;  // `timeout` this long before the deadline is wrong

milliseconds since(steady::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady::now() - start);
}

unloc::log_function debug_logger() {
  if (std::getenv("UNLOC_FAULT_MATRIX_LOG") == nullptr) return {};
  return [started = steady::now()](std::string_view line) {
    std::fprintf(stderr, "%6lld ms %.*s\n", static_cast<long long>(since(started).count()),
                 static_cast<int>(line.size()), line.data());
  };
}

// --- The reference server and its data ------------------------------------------

unloc_test::reference_server& server() {
  static unloc_test::reference_server instance([] {
    unloc_test::reference_server_options options;
    options.delivery_attempts = 1;  // no webhook here is ever delivered to; keep it so
    options.delivery_backoff = 10ms;
    // The admin connection idles while the raw peers run; at the default 5 s
    // the server would close it under the harness's kept-alive client.
    options.extra_args = {"--keep-alive-timeout", "120"};
    return options;
  }());
  return instance;
}

const std::string hooks_lock = "fa017000-0000-4000-8000-00000000000a";
const std::string log_lock = "fa017000-0000-4000-8000-00000000000b";
constexpr int log_events = 25;
constexpr int log_page_size = 10;
constexpr int log_pages = 3;  // 10 + 10 + 5

unloc::uuid uuid_of(const std::string& text) { return unloc::uuid::parse(text).value(); }

unloc::access_log_query log_query() {
  auto query = unloc::access_log_query::lock(uuid_of(log_lock));
  query.page_size = log_page_size;
  return query;
}

unloc::client_options options_for(unloc_test::reference_server& s) {
  unloc::client_options options = s.client_options();
  options.retry = fast_retry;
  options.deadline = call_deadline;
  options.logger = debug_logger();
  return options;
}

// The log's event ids, newest first, recorded once for the whole program.
const std::vector<std::string>& log_ids() {
  static const std::vector<std::string> ids = [] {
    auto recorded = server().record_events(log_lock, log_events, {{"spacingMs", 1000}});
    // A clean read takes log_pages requests: the baseline of the multi-page rows.
    auto c = unloc::client::create(options_for(server())).value();
    REQUIRE(c.token().has_value());
    server().reset_request_counts();
    auto all = c.access_log(log_query());
    REQUIRE(all.has_value());
    REQUIRE(all->size() == recorded.size());
    REQUIRE(server().request_counts()["logs"] == log_pages);
    return recorded;
  }();
  return ids;
}

class fault_guard {  // no fault outlives the row that injected it
 public:
  fault_guard() = default;
  fault_guard(const fault_guard&) = delete;
  fault_guard& operator=(const fault_guard&) = delete;
  ~fault_guard() {
    if (cleared_) return;
    try {
      server().clear_faults();
    } catch (...) {  // a destructor must not throw; the next row's checks would show it
    }
  }
  void clear() {
    server().clear_faults();
    cleared_ = true;
  }

 private:
  bool cleared_ = false;
};

// --- The matrix -----------------------------------------------------------------

enum class call { token, register_webhook, list_webhooks, delete_webhook, log_page, log_read };
constexpr std::array<call, 6> every_call{call::token,         call::register_webhook,
                                         call::list_webhooks, call::delete_webhook,
                                         call::log_page,      call::log_read};

const char* name_of(call c) {
  switch (c) {
    case call::token: return "token";
    case call::register_webhook: return "register_webhook";
    case call::list_webhooks: return "list_webhooks";
    case call::delete_webhook: return "delete_webhook";
    case call::log_page: return "fetch_access_log_page";
    case call::log_read: return "read_access_log (3 pages, the fault from page 2)";
  }
  return "?";
}

const char* endpoint_of(call c) {
  switch (c) {
    case call::token: return "token";
    case call::register_webhook:
    case call::list_webhooks:
    case call::delete_webhook: return "webhooks";
    case call::log_page:
    case call::log_read: return "logs";
  }
  return "any";
}

/// What one call must end with.
struct expect {
  bool ok = false;
  /// ok: requests the faulted step cost the server, the good one included;
  /// an error: the attempts it reports (and the requests the server saw).
  int requests = 1;
  error_category category = error_category::internal;
  int status = 0;      ///< The error's HTTP status (0: no response).
  int new_tokens = 0;  ///< Token requests during the call (calls other than `token`).
  /// Requests libcurl repeats on its own, unseen by the SDK's attempt count: it
  /// sends a request once more on a fresh connection when a reused one closes
  /// before any byte of a response (a reset).
  int curl_repeats = 0;
};

expect ok(int requests, int new_tokens = 0) {
  expect e;
  e.ok = true;
  e.requests = requests;
  e.new_tokens = new_tokens;
  return e;
}

expect fail(error_category category, int status, int attempts, int new_tokens = 0) {
  expect e;
  e.category = category;
  e.status = status;
  e.requests = attempts;
  e.new_tokens = new_tokens;
  return e;
}

expect with_curl_repeat(expect e) {
  e.curl_repeats = 1;
  return e;
}

/// One cell: what the SDK must do.
struct cell {
  bool applies = true;
  expect want;
};

cell is(expect want) {
  cell c;
  c.want = want;
  return c;
}
cell not_applicable() {
  cell c;
  c.applies = false;
  return c;
}

struct fault_row {
  std::string name;
  nlohmann::json fault;  ///< POST /_admin/faults without endpoint, count and after.
  bool permanent = false;
  milliseconds deadline = call_deadline;        ///< The call's deadline (call_options).
  milliseconds token_deadline = call_deadline;  ///< The same for the token column's fresh client.
  milliseconds honours_wait{0};  ///< A Retry-After the call must have waited (less `early`).
  bool html = false;             ///< The error keeps a proxy's HTML page as its raw body.
  cell get;                      ///< list_webhooks, fetch_access_log_page, read_access_log
  cell post;                     ///< register_webhook
  cell del;                      ///< delete_webhook
  cell token;                    ///< token (a fresh client's first token)
};

constexpr auto api = error_category::api;
constexpr auto authn = error_category::authentication;
constexpr auto network = error_category::network;
constexpr auto timeout = error_category::timeout;
constexpr auto ambiguous = error_category::ambiguous;
constexpr auto invalid = error_category::invalid_response;

std::vector<fault_row> fault_rows() {
  std::vector<fault_row> rows;
  for (const bool permanent : {false, true}) {
    const auto row = [&](std::string name, nlohmann::json fault) {
      fault_row r;
      r.name = std::move(name);
      r.fault = std::move(fault);
      r.permanent = permanent;
      return r;
    };
    {  // 500: never retried (the server may have acted), transient or not
      auto r = row("500", {{"kind", "500"}});
      r.get = r.post = r.del = is(fail(api, 500, 1));
      r.token = is(fail(api, 500, 1));
      rows.push_back(r);
    }
    for (const char* kind : {"502", "503", "504", "429"}) {  // retried
      auto r = row(kind, {{"kind", kind}});
      const int status = std::atoi(kind);
      // A gateway's 502/504 may come after the request was applied: a POST or
      // DELETE that ends there is ambiguous. A 503 or 429 says it was not.
      const bool gateway = status == 502 || status == 504;
      r.get = is(permanent ? fail(api, status, 4) : ok(2));
      r.post = r.del = is(permanent ? fail(gateway ? ambiguous : api, status, 4) : ok(2));
      r.token = permanent ? is(fail(api, status, 4)) : is(ok(2));
      rows.push_back(r);
    }
    {  // 429 + Retry-After: waited for when it fits the deadline, returned at once when not
      auto r = row(permanent ? "429 Retry-After: 30 (beyond the deadline)" : "429 Retry-After: 1",
                   {{"kind", "429"}, {"retryAfter", permanent ? "30" : "1"}});
      if (!permanent) r.honours_wait = 1000ms;  // not the 0-40 ms backoff of the policy
      r.get = r.post = r.del = is(permanent ? fail(api, 429, 1) : ok(2));
      r.token = permanent ? is(fail(api, 429, 1)) : is(ok(2));
      rows.push_back(r);
    }
    {  // slow within the deadline: one request, success (every page, when permanent)
      auto r = row("slow 200 ms (within the deadline)",
                   {{"kind", "slow"}, {"delayMs", slow_within.count()}});
      r.get = r.post = r.del = r.token = is(ok(1));
      rows.push_back(r);
    }
    {  // slow beyond the deadline: one attempt, the deadline ends it
      auto r = row("slow 5 s (beyond the deadline: 0.5 s, 2 s for a fresh client's token)",
                   {{"kind", "slow"}, {"delayMs", slow_delay.count()}});
      r.deadline = short_deadline;
      r.token_deadline = handshake_deadline;  // the request must be out before the deadline
      r.get = is(fail(timeout, 0, 1));
      // And so they are: the server registers or deletes after the delay.
      r.post = r.del = is(fail(ambiguous, 0, 1));
      r.token = is(fail(timeout, 0, 1));
      rows.push_back(r);
    }
    {  // 200 headers of a chunked body, then the connection closes
      auto r = row("drop", {{"kind", "drop"}});
      r.get = is(permanent ? fail(network, 0, 4) : ok(2));
      r.post = r.del = is(permanent ? fail(ambiguous, 0, 4) : ok(2));
      r.token = permanent ? is(fail(network, 0, 4)) : is(ok(2));
      rows.push_back(r);
    }
    {  // the connection closes before any byte of an answer
      auto r = row("reset", {{"kind", "reset"}});
      // The first attempt goes out on the kept-alive connection: libcurl repeats
      // it once itself (so a transient reset costs 2 requests in 1 attempt).
      // The token column's fresh client has no connection to reuse.
      r.get = is(permanent ? with_curl_repeat(fail(network, 0, 4)) : ok(2));
      r.post = r.del = is(permanent ? with_curl_repeat(fail(ambiguous, 0, 4)) : ok(2));
      r.token = permanent ? is(fail(network, 0, 4)) : is(ok(2));
      rows.push_back(r);
    }
    {  // half the body, then the connection closes
      auto r = row("half_body", {{"kind", "half_body"}});
      r.get = is(permanent ? fail(network, 0, 4) : ok(2));
      r.post = is(permanent ? fail(ambiguous, 0, 4) : ok(2));  // applied, then 409 on the retry
      r.token = permanent ? is(fail(network, 0, 4)) : is(ok(2));
      // The server answers a 204 with a body: the delete is done, the byte left over
      // must not break the client's next call.
      r.del = is(ok(1));
      rows.push_back(r);
    }
    {  // malformed JSON in a 200: not retried (the request was answered)
      auto r = row("malformed_json", {{"kind", "malformed_json"}});
      r.get = r.post = r.token = is(fail(invalid, 200, 1));
      r.del = is(ok(1));  // a delete reads no body
      rows.push_back(r);
    }
    {  // a proxy's HTML 502: retried; the page kept as the raw body
      auto r = row("html", {{"kind", "html"}});
      r.html = true;
      r.get = is(permanent ? fail(api, 502, 4) : ok(2));
      r.post = r.del = is(permanent ? fail(ambiguous, 502, 4) : ok(2));
      r.token = permanent ? is(fail(api, 502, 4)) : is(ok(2));
      rows.push_back(r);
    }
    {  // every token revoked: one new token and one repeat; revoked again: authentication
      auto r = row("expire_token", {{"kind", "expire_token"}});
      r.get = r.post = r.del = is(permanent ? fail(authn, 401, 2, 1) : ok(2, 1));
      r.token = not_applicable();  // the server refuses it on the token endpoint
      rows.push_back(r);
    }
  }
  return rows;
}

const cell& cell_for(const fault_row& row, call c) {
  switch (c) {
    case call::token: return row.token;
    case call::register_webhook: return row.post;
    case call::delete_webhook: return row.del;
    case call::list_webhooks:
    case call::log_page:
    case call::log_read: break;
  }
  return row.get;
}

/// One long-lived client per column (the token column uses a fresh one per
/// row): a client that went through every fault before must still do the next.
unloc::client& column_client(call what) {
  static std::array<std::optional<unloc::client>, every_call.size()> clients;
  auto& slot = clients[static_cast<std::size_t>(what)];
  if (!slot) slot = unloc::client::create(options_for(server())).value();
  return *slot;
}

/// What a call did.
struct observed {
  std::optional<unloc::error> error;
  milliseconds elapsed{0};       ///< The whole call.
  milliseconds faulted_step{0};  ///< From the last event handed over (or the start) to the end.
  int requests = 0;              ///< Requests of the faulted step, as the server counted them.
  int new_tokens = 0;
  std::optional<unloc::error> next_call;  ///< How the client's next call failed, if it did.
  std::string wrong;                      ///< What is wrong with the data, if anything.
};

std::string describe(const expect& e) {
  std::string out = e.ok ? "success after " + std::to_string(e.requests) + " request(s)"
                         : std::string(unloc::to_string(e.category)) + " (HTTP " +
                               std::to_string(e.status) + ") after " + std::to_string(e.requests) +
                               " attempt(s)";
  if (e.curl_repeats != 0) out += " (+1 request repeated by libcurl)";
  return out;
}

std::string describe(const observed& o) {
  std::string out = (o.error ? unloc::to_string(*o.error) : std::string("success")) +
                    "; the server saw " + std::to_string(o.requests) + " request(s) and " +
                    std::to_string(o.new_tokens) + " token request(s); took " +
                    std::to_string(o.elapsed.count()) + " ms";
  if (o.next_call) out += "; the next call failed: " + unloc::to_string(*o.next_call);
  return out;
}

milliseconds deadline_of(const fault_row& row, call what) {
  return what == call::token ? row.token_deadline : row.deadline;
}

observed run(call what, const fault_row& row, int serial) {
  auto& s = server();
  std::optional<unloc::client> fresh;
  if (what == call::token) fresh = unloc::client::create(options_for(s)).value();
  const unloc::client& c = fresh ? *fresh : column_client(what);
  unloc::call_options per_call;
  per_call.deadline = deadline_of(row, what);
  const std::string url = "https://127.0.0.1:9/fault-matrix/" + std::to_string(serial);
  std::optional<unloc::uuid> to_delete;
  if (what != call::token) {
    // A valid token (an earlier row may have revoked it) and a live connection,
    // so that the fault meets the call itself.
    auto warm = c.list_webhooks();
    INFO("warm-up: " << (warm ? std::string("ok") : unloc::to_string(warm.error())));
    REQUIRE(warm.has_value());
  }
  if (what == call::delete_webhook) {
    auto hook = c.register_webhook(uuid_of(hooks_lock), url);
    REQUIRE(hook.has_value());
    to_delete = hook->id;
  }

  fault_guard guard;
  s.reset_request_counts();
  nlohmann::json fault = row.fault;
  fault["endpoint"] = endpoint_of(what);
  fault["count"] = row.permanent ? -1 : 1;
  if (what == call::log_read) fault["after"] = 1;  // page 1 passes, the fault starts at page 2
  s.inject_fault(fault);

  observed out;
  std::vector<std::string> events;
  const auto started = steady::now();
  auto last_progress = started;
  switch (what) {
    case call::token: {
      auto r = c.token(per_call);
      if (!r)
        out.error = r.error();
      else if (r->value.empty())
        out.wrong = "an empty token";
      break;
    }
    case call::register_webhook: {
      auto r = c.register_webhook(uuid_of(hooks_lock), url, per_call);
      if (!r)
        out.error = r.error();
      else if (r->url != url)
        out.wrong = "registered " + r->url;
      break;
    }
    case call::list_webhooks: {
      auto r = c.list_webhooks(per_call);
      if (!r) out.error = r.error();
      break;
    }
    case call::delete_webhook: {
      auto r = c.delete_webhook(*to_delete, per_call);
      if (!r) out.error = r.error();
      break;
    }
    case call::log_page: {
      auto r = c.fetch_access_log_page(log_query(), {}, per_call);
      if (!r) {
        out.error = r.error();
      } else {
        for (auto& e : r->events) events.push_back(e.id.to_string());
        if (!r->next_cursor) out.wrong = "no cursor after the first page";
      }
      break;
    }
    case call::log_read: {
      auto r = c.read_access_log(
          log_query(),
          [&](unloc::access_event&& e) {
            events.push_back(e.id.to_string());
            last_progress = steady::now();
            return true;
          },
          per_call);
      if (!r)
        out.error = r.error();
      else if (r->events != events.size() || r->stopped) {
        out.wrong = "the count differs from the events handed over, or it says it stopped";
      }
      break;
    }
  }
  out.elapsed = since(started);
  out.faulted_step = since(last_progress);
  const auto counts = s.request_counts();
  out.requests = counts[endpoint_of(what)].get<int>();
  if (what == call::log_read) {  // page 1 before the fault, page 3 after it
    out.requests -= out.error ? 1 : log_pages - 1;
  }
  out.new_tokens = what == call::token ? 0 : counts["token"].get<int>();
  guard.clear();

  // The same client's next call, the fault gone.
  auto next = c.list_webhooks();
  if (!next) out.next_call = next.error();

  // What the call's outcome must mean for the data.
  const auto& ids = log_ids();
  if (what == call::log_page && !out.error &&
      events != std::vector<std::string>(ids.begin(), ids.begin() + log_page_size)) {
    out.wrong += " the page is not the log's newest 10 events;";
  }
  if (what == call::log_read) {  // whatever happened: a prefix of the log, each event once
    if (events.size() > ids.size() || !std::equal(events.begin(), events.end(), ids.begin())) {
      out.wrong += " the events handed over are not the log's, in order, once each;";
    }
    if (!out.error && events.size() != ids.size()) out.wrong += " events are missing;";
    if (out.error && events.size() < static_cast<std::size_t>(log_page_size)) {
      out.wrong += " page 1's events were not all handed over;";
    }
  }
  if (what == call::delete_webhook) {
    if (!out.error && next) {
      for (const auto& w : *next) {
        if (w.id == *to_delete) out.wrong += " the webhook is still listed;";
      }
    }
    (void)c.delete_webhook(*to_delete);  // after an error: it may be there, or go late (slow)
  }
  if (what == call::register_webhook) {
    // However the attempts went, the webhook is registered at most once, and
    // ensure_webhook settles what an error left open.
    unloc::webhook_registration registration;
    registration.lock_id = uuid_of(hooks_lock);
    registration.url = url;
    auto ensured = c.ensure_webhook(registration);
    REQUIRE(ensured.has_value());
    auto listed = c.list_webhooks();
    REQUIRE(listed.has_value());
    if (std::count_if(listed->begin(), listed->end(),
                      [&](const unloc::webhook& w) { return w.url == url; }) != 1) {
      out.wrong += " registered more than once;";
    }
    REQUIRE(c.delete_webhook(ensured->hook.id).has_value());
  }
  return out;
}

void check(const expect& want, const observed& got, call what, const fault_row& row) {
  const milliseconds deadline = deadline_of(row, what);
  INFO("observed: " << describe(got));
  CHECK(got.wrong.empty());
  CHECK_FALSE(got.next_call.has_value());  // the same client's next call succeeds
  if (want.ok) {
    REQUIRE_FALSE(got.error.has_value());
    CHECK(got.requests == want.requests);
    CHECK(got.new_tokens == want.new_tokens);
    // A read of several pages has a deadline for each page.
    CHECK(got.elapsed <= (what == call::log_read ? log_pages : 1) * deadline + margin);
    CHECK(got.elapsed >= row.honours_wait - early);
    return;
  }
  REQUIRE(got.error.has_value());
  const unloc::error& e = *got.error;
  CHECK(e.category == want.category);
  CHECK(e.http_status == want.status);
  CHECK(e.attempts == want.requests);
  CHECK(got.new_tokens == want.new_tokens);
  CHECK(got.requests == e.attempts + want.curl_repeats);  // every attempt reached the server
  if (e.http_status != 0) CHECK_FALSE(e.request_id.empty());
  if (e.http_status >= 400 && row.html) {  // a proxy's page: kept as the raw body
    CHECK(e.api_code.empty());
    CHECK(e.body.find("<html") != std::string::npos);
  } else if (e.http_status >= 400) {  // the server's {"error","message"}: read, not kept raw
    CHECK_FALSE(e.api_code.empty());
    CHECK_FALSE(e.api_message.empty());
    CHECK(e.body.empty());
  }
  if (e.category == error_category::ambiguous) {
    CHECK(e.message.find("may have been applied") != std::string::npos);
  }
  // Within the deadline (of the failing page, for a multi-page read) ...
  CHECK(got.faulted_step <= deadline + margin);
  // ... and a timeout means that the deadline passed, not that something gave up early.
  if (e.category == error_category::timeout) CHECK(got.faulted_step >= deadline - early);
}

// --- Raw peers -------------------------------------------------------------------

/// A token source that never calls anyone: the raw peers speak no token endpoint.
class fixed_tokens final : public unloc::token_source {
 public:
  unloc::result<unloc::access_token> token(steady::time_point /*deadline*/) override {
    unloc::access_token t;
    t.value = "fault-matrix-token";
    t.expires_at = std::chrono::system_clock::now() + std::chrono::hours(1);
    return t;
  }
  void invalidate(const unloc::access_token& /*stale*/) override {}
};

struct raw_client_options {
  milliseconds deadline = call_deadline;
  milliseconds connect_timeout = 10'000ms;  // the SDK's default
  bool with_credentials = false;            // a token request first (it carries the secret)
};

unloc::client raw_client(const std::string& api_url, const raw_client_options& raw = {}) {
  unloc::client_options options;
  options.api_url = api_url;
  options.project_id = "d45031c2-be07-4d20-adbe-4e51e6ad0fed";
  options.ca_file = unloc_test::test_tls_files().ca_cert;
  options.retry = fast_retry;
  options.deadline = raw.deadline;
  options.connect_timeout = raw.connect_timeout;
  options.logger = debug_logger();
  if (raw.with_credentials) {
    options.client_id = "fault-matrix";
    options.client_secret = "fault-matrix-secret-never-sent";
  } else {
    options.tokens = std::make_shared<fixed_tokens>();
  }
  return unloc::client::create(options).value();
}

unloc::client raw_client(int port, const raw_client_options& raw = {}) {
  return raw_client("https://127.0.0.1:" + std::to_string(port), raw);
}

/// A socket bound to 127.0.0.1 and a free port, listening or not.
int bound_socket(int& port, bool listening) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  if (listening) REQUIRE(::listen(fd, 16) == 0);
  socklen_t length = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0);
  port = ntohs(addr.sin_port);
  return fd;
}

/// A peer that accepts connections on 127.0.0.1 and misbehaves in one way,
/// serving them one at a time on its own thread.
class raw_peer {
 public:
  enum class behaviour {
    silent_tcp,      ///< Accepts; never reads, never writes (no TLS handshake).
    silent_tls,      ///< Completes the handshake, reads the request, never answers.
    half_body,       ///< A 200 head with Content-Length N, N/2 bytes, then closes.
    half_body_once,  ///< half_body on the first connection, a whole answer afterwards.
    not_http,        ///< Answers bytes that are not HTTP, then closes.
    wrong_ca,        ///< Presents a certificate that another CA signed.
  };

  explicit raw_peer(behaviour b, bool close_notify = true)
      : behaviour_(b), close_notify_(close_notify) {
    ::signal(SIGPIPE, SIG_IGN);  // a write to a client that has gone
    if (b != behaviour::silent_tcp) {
      const auto& tls = unloc_test::test_tls_files();
      const bool other = b == behaviour::wrong_ca;
      ctx_ = SSL_CTX_new(TLS_server_method());
      REQUIRE(ctx_ != nullptr);
      REQUIRE(SSL_CTX_use_certificate_chain_file(
                  ctx_, (other ? tls.other_server_cert : tls.server_cert).c_str()) == 1);
      REQUIRE(SSL_CTX_use_PrivateKey_file(ctx_,
                                          (other ? tls.other_server_key : tls.server_key).c_str(),
                                          SSL_FILETYPE_PEM) == 1);
    }
    listen_fd_ = bound_socket(port_, true);
    thread_ = std::thread([this] { loop(); });
  }
  ~raw_peer() {
    stopping_ = true;
    thread_.join();
    ::close(listen_fd_);
    for (auto& held : held_) {
      if (held.ssl != nullptr) SSL_free(held.ssl);
      ::close(held.fd);
    }
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  }
  raw_peer(const raw_peer&) = delete;
  raw_peer& operator=(const raw_peer&) = delete;

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] int connections() const { return connections_; }
  /// Requests read whole (head and body).
  [[nodiscard]] int requests() const { return requests_; }

  /// True when the client has closed every connection the peer still holds
  /// open, within `within`: what a client opens, it closes.
  bool held_connections_closed(milliseconds within) {
    const auto until = steady::now() + within;
    const std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& held : held_) {
      for (;;) {
        const auto left = std::chrono::duration_cast<milliseconds>(until - steady::now());
        if (left.count() <= 0) return false;
        pollfd p{held.fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
        char buffer[4096];  // TLS records (a close_notify) may come first, then the end
        const ssize_t n = ::recv(held.fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
      }
    }
    return true;
  }

 private:
  struct connection {
    int fd = -1;
    SSL* ssl = nullptr;
  };

  void loop() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      const int n = ++connections_;
      timeval read_timeout{5, 0};  // a blocking read never holds this thread long
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &read_timeout, sizeof read_timeout);
      serve(connection{fd, nullptr}, n);
    }
  }

  void hold(connection c) {
    const std::lock_guard<std::mutex> lock(mutex_);
    held_.push_back(c);
  }

  void serve(connection c, int n) {
    if (behaviour_ == behaviour::silent_tcp) return hold(c);
    c.ssl = SSL_new(ctx_);
    SSL_set_fd(c.ssl, c.fd);
    if (SSL_accept(c.ssl) != 1 || !read_request(c.ssl)) {
      ERR_clear_error();
      return close(c, false);
    }
    ++requests_;
    if (behaviour_ == behaviour::silent_tls) return hold(c);
    if (behaviour_ == behaviour::not_http) {
      write(c.ssl, "SSH-2.0-OpenSSH_9.2p1\r\n");
      return close(c, close_notify_);
    }
    const std::string body = R"({"webhooks":[],"padding":"0123456789abcdef0123456789abcdef"})";
    const std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n";
    if (behaviour_ == behaviour::half_body_once && n > 1) {
      write(c.ssl, head + body);
      return hold(c);  // kept alive: the client's pool owns it until the client goes
    }
    write(c.ssl, head + body.substr(0, body.size() / 2));
    close(c, close_notify_);
  }

  static void write(SSL* ssl, const std::string& bytes) {
    if (SSL_write(ssl, bytes.data(), static_cast<int>(bytes.size())) <= 0) ERR_clear_error();
  }

  static void close(connection c, bool notify) {
    if (notify) (void)SSL_shutdown(c.ssl);  // close_notify: TLS ends cleanly, HTTP does not
    ERR_clear_error();
    SSL_free(c.ssl);
    ::close(c.fd);
  }

  // Reads one request, its head and its Content-Length body (bytes left unread
  // at close would make the kernel send a reset instead of an orderly close).
  static bool read_request(SSL* ssl) {
    std::string data;
    std::size_t head_end = std::string::npos;
    std::size_t length = 0;
    for (;;) {
      if (head_end == std::string::npos) {
        head_end = data.find("\r\n\r\n");
        if (head_end != std::string::npos) {
          std::string lower = data.substr(0, head_end);
          for (auto& ch : lower)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          if (const auto at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
            length = std::stoul(lower.substr(at + 17));
          }
        }
      }
      if (head_end != std::string::npos && data.size() >= head_end + 4 + length) return true;
      char buffer[4096];
      const int got = SSL_read(ssl, buffer, sizeof buffer);
      if (got <= 0) return false;
      data.append(buffer, static_cast<std::size_t>(got));
    }
  }

  behaviour behaviour_;
  bool close_notify_;
  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::mutex mutex_;
  std::vector<connection> held_;
  std::thread thread_;
};

struct raw_expect {
  error_category category;
  int attempts;       ///< 0: any number (at least one).
  int peer_requests;  ///< Requests the peer has read by the end; -1: not checked.
};

/// How a call that had to fail ended, and what to say of it in a failure.
struct failed_call {
  unloc::error error;
  milliseconds took;
  std::string what;  // for INFO
};

/// Runs `call`, which must fail within `deadline` (+ margin).
template <typename Call>
failed_call run_failing(Call&& call, milliseconds deadline) {
  const auto started = steady::now();
  auto r = call();
  const auto took = since(started);
  const std::string what = (r ? std::string("success") : unloc::to_string(r.error())) + "; took " +
                           std::to_string(took.count()) + " ms; deadline " +
                           std::to_string(deadline.count()) + " ms";
  INFO(what);
  REQUIRE_FALSE(r.has_value());
  CHECK(took <= deadline + margin);
  return {r.error(), took, what};
}

/// Runs `call` and checks that it ends with `want` within `deadline` (+ margin).
template <typename Call>
void check_raw(Call&& call, const raw_expect& want, const raw_peer* peer, milliseconds deadline) {
  const auto r = run_failing(std::forward<Call>(call), deadline);
  INFO(r.what);
  CHECK(r.error.category == want.category);
  if (want.attempts > 0) CHECK(r.error.attempts == want.attempts);
  CHECK(r.error.attempts >= 1);
  CHECK(r.error.http_status == 0);
  if (r.error.category == error_category::timeout) CHECK(r.took >= deadline - early);
  if (peer != nullptr && want.peer_requests >= 0) CHECK(peer->requests() == want.peer_requests);
}

const std::string raw_hook_url = "https://127.0.0.1:9/raw-peer";

}  // namespace

TEST_CASE("fault matrix: every injected fault, once and for good, on every call",
          "[reliability][matrix]") {
  (void)log_ids();  // recorded once, before any fault
  const auto rows = fault_rows();
  int serial = 0;
  for (const call what : every_call) {
    for (const auto& row : rows) {
      const cell& c = cell_for(row, what);
      ++serial;
      if (!c.applies) continue;
      DYNAMIC_SECTION(name_of(what)
                      << " | " << row.name << " | "
                      << (row.permanent ? "permanent (count -1)" : "transient (count 1)")) {
        INFO("call: " << name_of(what) << "; fault: " << row.fault.dump()
                      << (row.permanent ? " until cleared" : " once") << "; deadline "
                      << deadline_of(row, what).count() << " ms");
        INFO("expected: " << describe(c.want));
        check(c.want, run(what, row, serial), what, row);
      }
    }
  }
}

TEST_CASE("a peer that accepts and never answers: timeout at the deadline",
          "[reliability][peers]") {
  raw_client_options raw;
  SECTION("plain TCP: no TLS handshake ever") {
    raw.deadline = silent_deadline;
    raw_peer peer(raw_peer::behaviour::silent_tcp);
    {
      auto c = raw_client(peer.port(), raw);
      check_raw([&] { return c.list_webhooks(); }, {timeout, 1, -1}, &peer, raw.deadline);
      check_raw([&] { return c.register_webhook(uuid_of(hooks_lock), raw_hook_url); },
                {timeout, 1, -1}, &peer, raw.deadline);  // nothing was sent: not ambiguous
    }
    CHECK(peer.connections() == 2);
    CHECK(peer.held_connections_closed(2s));
  }
  SECTION("TLS: the request is read, no answer comes") {
    raw.deadline = handshake_deadline;  // the request must be out before the deadline
    raw_peer peer(raw_peer::behaviour::silent_tls);
    {
      auto c = raw_client(peer.port(), raw);
      check_raw([&] { return c.list_webhooks(); }, {timeout, 1, 1}, &peer, raw.deadline);
      // A registration may have been applied: the caller must know it is unsettled.
      check_raw([&] { return c.register_webhook(uuid_of(hooks_lock), raw_hook_url); },
                {ambiguous, 1, 2}, &peer, raw.deadline);
    }
    CHECK(peer.held_connections_closed(2s));
  }
}

TEST_CASE("a connect timeout shorter than the deadline", "[reliability][peers]") {
  // The handshake never completes, so each attempt ends at connect_timeout
  // (200 ms), well before the call's 600 ms deadline: the SDK retries within
  // the deadline, as for a refused connection, and stops before overrunning it.
  raw_peer peer(raw_peer::behaviour::silent_tcp);
  {
    raw_client_options raw;
    raw.deadline = silent_deadline;
    raw.connect_timeout = 200ms;
    auto c = raw_client(peer.port(), raw);
    const auto r = run_failing([&] { return c.list_webhooks(); }, raw.deadline);
    INFO(r.what);
    CHECK(r.error.attempts > 1);
    // The last attempt ends at the deadline (timeout), or its connect timeout
    // leaves too little time for another (network).
    if (r.error.category == timeout) {
      CHECK(r.took >= raw.deadline - 20ms);
    } else {
      CHECK(r.error.category == network);
      CHECK(r.error.message.find("no connection within 200 ms") != std::string::npos);
    }
    CHECK(peer.connections() == r.error.attempts);
  }
  CHECK(peer.held_connections_closed(2s));
}

TEST_CASE("a peer that sends half a body and closes", "[reliability][peers]") {
  for (const bool close_notify : {true, false}) {
    DYNAMIC_SECTION((close_notify ? "TLS close_notify after half the body"
                                  : "TCP close without close_notify after half the body")) {
      raw_peer peer(raw_peer::behaviour::half_body, close_notify);
      auto c = raw_client(peer.port());
      check_raw([&] { return c.list_webhooks(); }, {network, 4, 4}, &peer, call_deadline);
      check_raw([&] { return c.register_webhook(uuid_of(hooks_lock), raw_hook_url); },
                {ambiguous, 4, 8}, &peer, call_deadline);
    }
  }
  SECTION("only once: the retry gets the whole answer") {
    raw_peer peer(raw_peer::behaviour::half_body_once);
    {
      auto c = raw_client(peer.port());
      auto r = c.list_webhooks();
      INFO((r ? std::string("success") : unloc::to_string(r.error())));
      REQUIRE(r.has_value());
      CHECK(r->empty());
      CHECK(peer.requests() == 2);
      CHECK(peer.connections() == 2);
    }
    CHECK(peer.held_connections_closed(2s));  // the pooled connection went with the client
  }
}

TEST_CASE("a peer that answers something that is not HTTP", "[reliability][peers]") {
  // libcurl reports it as CURLE_UNSUPPORTED_PROTOCOL; the URL is https (checked
  // at create), so it is the peer's fault: a network error, retried (a fresh
  // connection may answer, as after a stray byte on a kept-alive one).
  raw_peer peer(raw_peer::behaviour::not_http);
  auto c = raw_client(peer.port());
  check_raw([&] { return c.list_webhooks(); }, {network, 4, 4}, &peer, call_deadline);
}

TEST_CASE("a certificate from another CA: tls, nothing sent", "[reliability][peers]") {
  SECTION("a peer whose certificate another CA signed") {
    raw_peer peer(raw_peer::behaviour::wrong_ca);
    raw_client_options raw;
    raw.with_credentials = true;  // the token request would carry the secret
    auto c = raw_client(peer.port(), raw);
    check_raw([&] { return c.list_webhooks(); }, {error_category::tls, 1, 0}, &peer, raw.deadline);
    CHECK(peer.connections() == 1);
  }
  SECTION("the reference server, trusting only the other CA") {
    auto options = options_for(server());
    options.ca_file = unloc_test::test_tls_files().other_ca_cert;
    auto c = unloc::client::create(options).value();
    server().reset_request_counts();
    check_raw([&] { return c.list_webhooks(); }, {error_category::tls, 1, -1}, nullptr,
              options.deadline);
    check_raw([&] { return c.token(); }, {error_category::tls, 1, -1}, nullptr, options.deadline);
    // No CA of its own: the system's CAs alone do not know the test CA.
    options.ca_file.clear();
    auto system_only = unloc::client::create(options).value();
    check_raw([&] { return system_only.list_webhooks(); }, {error_category::tls, 1, -1}, nullptr,
              options.deadline);
    const auto counts = server().request_counts();
    INFO(counts.dump());
    CHECK(counts["api"] == 0);  // neither the secret nor a request went out
  }
}

TEST_CASE("a name that does not resolve, and a refused connection: network errors",
          "[reliability][peers]") {
  SECTION("DNS: a name under .invalid (RFC 6761)") {
    const std::string host = "unloc-fault-matrix.invalid";
    // Needs a resolver that fails fast (/etc/hosts, then an NXDOMAIN, or no
    // DNS at all), as CI's does. Where resolution itself takes seconds, the
    // deadline may pass first, and a timeout at the deadline is right too.
    const auto probe_started = steady::now();
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), "443", nullptr, &found);
    if (found != nullptr) ::freeaddrinfo(found);
    const auto probe = since(probe_started);
    REQUIRE(rc != 0);  // .invalid never resolves
    const bool fast_resolver = probe < 200ms;
    if (!fast_resolver) WARN("getaddrinfo took " << probe.count() << " ms to fail here");

    raw_client_options raw;
    raw.deadline = handshake_deadline;
    auto c = raw_client("https://" + host, raw);
    const auto r = run_failing([&] { return c.list_webhooks(); }, raw.deadline);
    INFO(r.what);
    if (fast_resolver) {
      CHECK(r.error.category == network);
      CHECK(r.error.attempts == 4);  // a resolution failure is retried like a refusal
    } else if (r.error.category == timeout) {
      CHECK(r.took >= raw.deadline - early);
    } else {
      CHECK(r.error.category == network);
    }
  }
  SECTION("refused: a port bound but not listening") {
    int port = 0;
    const int fd = bound_socket(port, false);  // held, so that nobody else takes the port
    auto c = raw_client(port);
    check_raw([&] { return c.list_webhooks(); }, {network, 4, -1}, nullptr, call_deadline);
    check_raw([&] { return c.register_webhook(uuid_of(hooks_lock), raw_hook_url); },
              {network, 4, -1}, nullptr, call_deadline);  // nothing was sent: not ambiguous
    ::close(fd);
  }
}

// `unloc listen`: polls the access log from now on and forwards each new
// Access Event to a local URL as Unloc's delivery would send it.

#include "listen.hpp"

#include "exit_status.hpp"

#include <unloc/unloc.hpp>

#include <curl/curl.h>

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string_view>
#include <thread>
#include <utility>

namespace unloc_cli {
namespace {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

// The platform's delivery, as the reference server does it: 8 attempts, the
// first retry after 200 ms, doubled each time, capped at 30 s.
constexpr int forward_attempts = 8;
constexpr milliseconds first_backoff{200};
constexpr milliseconds max_backoff{30'000};
constexpr milliseconds attempt_timeout{10'000};
// Each poll reads the log from this long before the previous poll began:
// events that tie, arrive a little late or are stamped by a clock a little
// behind ours are still seen; the ids already forwarded are skipped.
constexpr milliseconds lookback{std::chrono::minutes(5)};
// Failed polls in a row (backing off, up to a minute apart) before giving up;
// a rate limit (429) is waited out, never given up on.
constexpr int max_failed_polls = 10;
constexpr milliseconds max_poll_backoff{60'000};
// The SDK sleeps between a page's retries without looking at `stop`: a stop
// waits at most this long, and a second Ctrl-C ends the process at once.
constexpr milliseconds page_deadline{5'000};
constexpr milliseconds poll_deadline{60'000};  // every page of every log of one poll
// A server paging on forever must neither keep one poll going nor fill memory.
constexpr std::size_t max_events_per_poll = 100'000;
// The ids remembered; past it the window's start moves up (a real log holds
// far fewer events in a few minutes).
constexpr std::size_t max_seen = 100'000;
// Longest wait a Retry-After is obeyed for: the longest --interval.
constexpr milliseconds max_retry_after{std::chrono::hours(1)};

// Where events go: the URL without its user info, and the Basic credentials.
struct forward_target {
  std::string url;
  std::optional<unloc::basic_credentials> credentials;
  bool loopback = false;
};

bool is_loopback_host(const std::string& host) {
  // 127.0.0.0/8 as an address only: "127.0.0.1.example.com" is a name like any other.
  return unloc::detail::ascii_iequals(host, "localhost") || host == "[::1]" ||
         (host.rfind("127.", 0) == 0 && unloc::detail::is_ipv4_address(host));
}

// http(s)://[user:password@]host[:port][/path]. The rules of Unloc's webhook
// URLs apply (credentials of unreserved characters only, so nothing to
// percent-decode); http is allowed to a loopback host only.
unloc::result<forward_target> parse_forward_target(const std::string& url) {
  const auto colon = url.find("://");
  const std::string scheme = colon == std::string::npos ? "" : url.substr(0, colon);
  const bool http = unloc::detail::ascii_iequals(scheme, "http");
  if (!http && !unloc::detail::ascii_iequals(scheme, "https")) {
    return unloc::make_error(unloc::error_category::invalid_input,
                             "--forward-to must start with http:// or https://", "forward_to");
  }
  auto parts = unloc::parse_webhook_url("https" + url.substr(colon));
  if (!parts) {
    auto e = parts.error();
    // Positions count in the URL made https: one more than the user's http URL.
    constexpr std::string_view at = " at position ";
    if (const auto p = e.message.find(at); http && p != std::string::npos) {
      const auto digits = p + at.size();
      auto end = e.message.find_first_not_of("0123456789", digits);
      if (end == std::string::npos) end = e.message.size();
      std::size_t n = 0;
      for (auto i = digits; i < end && n < 100000; ++i) n = n * 10 + (e.message[i] - '0');
      if (n > 0) e.message.replace(digits, end - digits, std::to_string(n - 1));
    }
    e.message = "--forward-to: " + e.message;
    return e;
  }
  forward_target target;
  target.loopback = is_loopback_host(parts->host);
  if (http && !target.loopback) {
    return unloc::make_error(unloc::error_category::invalid_input,
                             "--forward-to may use http:// only to a loopback host (localhost, "
                             "127.0.0.1, [::1]), not " +
                                 parts->host + "; use https://",
                             "forward_to");
  }
  target.url = (http ? "http://" : "https://") + parts->host +
               (parts->port.empty() ? "" : ":" + parts->port) + parts->target;
  target.credentials = std::move(parts->credentials);
  return target;
}

bool sleep_unless_stopped(milliseconds duration, const std::atomic<bool>& stop) {
  const auto until = steady::now() + duration;
  while (!stop.load()) {
    const auto left = until - steady::now();
    if (left <= steady::duration::zero()) return true;
    std::this_thread::sleep_for(std::min<steady::duration>(left, milliseconds(20)));
  }
  return false;
}

// `parts` and a newline, to be written in one call: a reader of the stream
// never sees half a line.
std::string line_of(std::initializer_list<std::string_view> parts) {
  std::string line;
  for (const auto part : parts) line += part;
  line += '\n';
  return line;
}

long elapsed_ms(steady::time_point since) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(steady::now() - since).count());
}

struct curl_deleter {
  void operator()(CURL* h) const noexcept { curl_easy_cleanup(h); }
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};

// POSTs bodies to the target over one kept-alive curl handle.
class forwarder {
 public:
  // `ca_pem`: the CAs an https target is verified with (empty: libcurl's own).
  forwarder(forward_target target, std::string ca_pem, std::ostream& err,
            const std::atomic<bool>& stop)
      : target_(std::move(target)),
        ca_pem_(std::move(ca_pem)),
        err_(err),
        stop_(stop),
        handle_(curl_easy_init()) {
    curl_slist* list = curl_slist_append(nullptr, "Content-Type: application/json");
    list = list ? curl_slist_append(list, "Expect:") : nullptr;  // no 100-continue round trip
    if (list && target_.credentials) {
      const std::string auth = "Authorization: " + unloc::basic_authorization(*target_.credentials);
      if (curl_slist* grown = curl_slist_append(list, auth.c_str())) {
        list = grown;
      } else {
        curl_slist_free_all(list);
        list = nullptr;
      }
    }
    headers_.reset(list);
    CURL* h = handle_.get();
    if (h == nullptr || !headers_) return;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_URL, target_.url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers_.get());
    curl_easy_setopt(h, CURLOPT_USERAGENT, "unloc-listen/" UNLOC_VERSION_STRING);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!ca_pem_.empty()) {
      curl_blob blob{ca_pem_.data(), ca_pem_.size(), CURL_BLOB_NOCOPY};  // ca_pem_ outlives h
      curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (target_.loopback) curl_easy_setopt(h, CURLOPT_PROXY, "");  // never via a proxy
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(attempt_timeout.count()));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &discard);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &abort_on_stop);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &stop_);
    ready_ = true;
  }

  [[nodiscard]] bool ready() const { return ready_; }

  // Delivers one body, retrying like the platform: a 2xx is done; a 4xx other
  // than 408 and 429 is not retried; anything else is, until the attempts run out.
  // Each failed attempt that will be repeated is told on `err`.
  std::string deliver(const std::string& id, const std::string& body) {
    const auto start = steady::now();
    std::string outcome;
    int attempt = 0;
    bool done = false;
    while (!done && ++attempt <= forward_attempts) {
      long status = 0;
      outcome = post(body, status);
      done = (status >= 200 && status < 300) ||
             (status >= 400 && status < 500 && status != 408 && status != 429);
      if (done || attempt == forward_attempts) break;
      milliseconds delay = first_backoff;
      for (int i = 1; i < attempt && delay < max_backoff; ++i) delay *= 2;
      delay = std::min(delay, max_backoff);
      err_ << line_of({"unloc: forwarding ", id, ": attempt ", std::to_string(attempt), " of ",
                       std::to_string(forward_attempts), ": ", outcome, "; again in ",
                       std::to_string(delay.count()), " ms"})
           << std::flush;
      if (!sleep_unless_stopped(delay, stop_)) {
        outcome += " (stopped)";
        break;
      }
    }
    std::string line = outcome + " " + std::to_string(elapsed_ms(start)) + " ms";
    if (attempt > 1)
      line += " (" + std::to_string(std::min(attempt, forward_attempts)) + " attempts)";
    return line;
  }

 private:
  // One POST: the status as text, or "error: <why>" (status stays 0).
  std::string post(const std::string& body, long& status) {
    CURL* h = handle_.get();
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
    const CURLcode code = curl_easy_perform(h);
    if (code != CURLE_OK) return std::string("error: ") + curl_easy_strerror(code);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    return std::to_string(status);
  }

  static std::size_t discard(char*, std::size_t size, std::size_t count, void*) {
    return size * count;
  }
  static int abort_on_stop(void* stop, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<const std::atomic<bool>*>(stop)->load() ? 1 : 0;
  }

  forward_target target_;
  std::string ca_pem_;
  std::ostream& err_;
  const std::atomic<bool>& stop_;
  std::unique_ptr<CURL, curl_deleter> handle_;
  std::unique_ptr<curl_slist, curl_deleter> headers_;
  bool ready_ = false;
};

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (!(in && text << in.rdbuf())) return std::nullopt;
  return text.str();
}

// The CAs an https target is verified with: libcurl's own plus `extra_file`,
// as the SDK's transport adds a CA file (a CA blob replaces libcurl's CA file
// but not its CA directory).
std::optional<std::string> ca_pem_with(const std::string& extra_file) {
  if (extra_file.empty()) return std::string();
  auto extra = read_file(extra_file);
  if (!extra) return std::nullopt;
  std::string pem;
  const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
  if (info != nullptr && info->capath == nullptr && info->cainfo != nullptr) {
    if (auto system = read_file(info->cainfo)) pem = std::move(*system) + "\n";
  }
  return pem + *extra;
}

// Worth polling again: the network, a timeout, 408, 429 or a server error.
bool may_recover(const unloc::error& e) {
  switch (e.category) {
    case unloc::error_category::network:
    case unloc::error_category::timeout:
    case unloc::error_category::ambiguous:
    case unloc::error_category::invalid_response: return true;
    case unloc::error_category::api:
      return e.http_status == 408 || e.http_status == 429 || e.http_status >= 500;
    default: return false;
  }
}

// The events of the polled logs created since `from`, oldest first (what was
// read so far once `stop` is set). Page by page, so that `stop`, the poll's
// deadline and its size are checked between pages.
unloc::result<std::vector<unloc::access_event>> read_since(
    unloc::client& client, const std::vector<unloc::access_log_query>& logs, unloc::timestamp from,
    const std::atomic<bool>& stop) {
  std::vector<unloc::access_event> events;
  const auto poll_end = steady::now() + poll_deadline;
  for (auto query : logs) {
    query.from = from;
    std::string cursor;
    for (bool more = true; more && !stop.load();) {
      const auto left = std::chrono::duration_cast<milliseconds>(poll_end - steady::now());
      if (left <= milliseconds(0)) {
        return unloc::make_error(unloc::error_category::timeout,
                                 "the access log's pages took more than " +
                                     std::to_string(poll_deadline.count() / 1000) + " s");
      }
      unloc::call_options per_page;
      per_page.deadline = std::min(page_deadline, left);
      auto page = client.fetch_access_log_page(query, cursor, per_page);
      if (!page) return page.error();
      if (page->events.size() > max_events_per_poll - events.size()) {
        return unloc::make_error(unloc::error_category::invalid_response,
                                 "the access log served more than " +
                                     std::to_string(max_events_per_poll) + " events in one poll");
      }
      std::move(page->events.begin(), page->events.end(), std::back_inserter(events));
      more = page->next_cursor.has_value();
      if (more) cursor = std::move(*page->next_cursor);
    }
  }
  std::sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
    return a.created != b.created ? a.created < b.created : a.id < b.id;
  });
  return events;
}

// id -> created of the events handled in the polled window.
using seen_events = std::map<unloc::uuid, unloc::timestamp>;

// Forgets the events created before `from`, and, past max_seen, the oldest
// ones too; returns the window's start, moved up past those.
unloc::timestamp prune(seen_events& seen, unloc::timestamp from) {
  if (seen.size() > max_seen) {
    std::vector<unloc::timestamp> created;
    created.reserve(seen.size());
    for (const auto& entry : seen) created.push_back(entry.second);
    const auto keep_from = created.end() - static_cast<std::ptrdiff_t>(max_seen / 2);
    std::nth_element(created.begin(), keep_from, created.end());
    from = std::max(from, *keep_from + milliseconds(1));
  }
  for (auto it = seen.begin(); it != seen.end();) {
    it = it->second < from ? seen.erase(it) : std::next(it);
  }
  return from;
}

}  // namespace

int run_listen(unloc::client& client, const listen_options& options, std::ostream& out,
               std::ostream& err, const std::atomic<bool>& stop) {
  auto target = parse_forward_target(options.forward_to);
  if (!target) {
    err << "unloc: " << target.error().message << "\n";
    return bad_usage;
  }
  std::vector<unloc::access_log_query> logs;
  for (const auto& lock : options.locks) {
    auto id = unloc::uuid::parse(lock);
    if (!id) {
      err << "unloc: --lock: " << id.error().message << "\n";
      return bad_usage;
    }
    logs.push_back(unloc::access_log_query::lock(*id));
  }
  if (logs.empty()) logs.push_back(unloc::access_log_query::project());
  if (options.interval < milliseconds(1) || options.interval > std::chrono::hours(1)) {
    err << "unloc: --interval must be more than 0 and at most 3600 seconds\n";
    return bad_usage;
  }
  if (!unloc::detail::curl_initialized()) {
    err << "unloc: libcurl failed to initialize\n";
    return api_failure;
  }
  auto ca_pem = ca_pem_with(options.ca_bundle);
  if (!ca_pem) {
    err << "unloc: cannot read the CA file '" << options.ca_bundle << "'\n";
    return bad_usage;
  }
  forwarder forward(*target, std::move(*ca_pem), err, stop);
  if (!forward.ready()) {
    err << "unloc: cannot set up libcurl\n";
    return api_failure;
  }

  err << "unloc: forwarding new Access Events of "
      << (options.locks.empty() ? std::string("the Project")
                                : std::to_string(options.locks.size()) + " Lock(s)")
      << " to " << unloc::redact_url(options.forward_to) << " (Ctrl-C to stop)\n";

  // Events created before this are not forwarded when the first successful
  // poll finds them, however many polls failed before it.
  const unloc::timestamp started =
      std::chrono::time_point_cast<milliseconds>(std::chrono::system_clock::now());
  seen_events seen;  // every event of the window [from, now + lookback] already handled
  bool first = true;
  int failed_polls = 0;  // in a row, rate limits not counted
  int backoff_step = 0;  // failed polls in a row: each doubles the wait, up to 64 intervals
  milliseconds wait{0};
  // Where the previous successful poll began: the next one covers the time
  // since, however long forwarding or failed polls took.
  unloc::timestamp previous_start = started;
  unloc::timestamp from{};
  while (sleep_unless_stopped(wait, stop)) {
    const auto now = std::chrono::time_point_cast<milliseconds>(std::chrono::system_clock::now());
    // Never back: a wall clock set back must not bring pruned ids again.
    from = std::max(from, previous_start - lookback);
    auto events = read_since(client, logs, from, stop);
    if (stop.load()) break;
    if (!events) {
      const auto& e = events.error();
      // A rate limit never ends it; it only slows the polls down, as any
      // failure does, and at least as much as its Retry-After asks.
      const bool rate_limited = e.http_status == 429;
      if (!may_recover(e) || (!rate_limited && ++failed_polls >= max_failed_polls)) {
        err << "unloc: polling the access log failed: " << unloc::to_string(e) << "\n";
        return status_for(e);
      }
      backoff_step = std::min(backoff_step + 1, 6);
      wait = std::max(options.interval,
                      std::min(max_poll_backoff, options.interval * (1 << backoff_step)));
      wait = std::max(wait, std::min(e.retry_after.value_or(milliseconds(0)), max_retry_after));
      err << "unloc: polling the access log failed: " << unloc::to_string(e) << "; again in "
          << wait.count() << " ms\n";
      continue;
    }
    failed_polls = 0;
    backoff_step = 0;
    previous_start = now;
    wait = options.interval;
    std::size_t earlier = 0;
    std::size_t outside = 0;
    for (const auto& event : *events) {
      if (stop.load()) break;
      // A server that ignores `from`, or dates events far ahead of this clock,
      // would otherwise bring back ids already pruned or never prune them.
      if (event.created < from || event.created > now + lookback) {
        ++outside;
        continue;
      }
      if (!seen.emplace(event.id, event.created).second) continue;
      if (first && event.created < started) {
        ++earlier;
        continue;
      }
      // An action this SDK does not know is untrusted text: quoted, escaped.
      const std::string action = event.action == unloc::access_action::unknown
                                     ? unloc::detail::quoted(event.action_text)
                                     : std::string(to_string(event.action));
      const std::string outcome = forward.deliver(event.id.to_string(), unloc::to_json_text(event));
      out << line_of({event.id.to_string(), " ", action, " ", outcome}) << std::flush;
    }
    if (outside > 0) {
      err << "unloc: " << outside << " event(s) dated before " << unloc::format_timestamp(from)
          << " or more than " << lookback.count() / 60000
          << " min ahead of this machine's clock not forwarded\n";
    }
    if (first) err << "unloc: ready; " << earlier << " earlier event(s) not forwarded\n";
    first = false;
    from = prune(seen, from);
  }
  err << "unloc: stopped\n";
  return ok;
}

}  // namespace unloc_cli

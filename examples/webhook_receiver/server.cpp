#include "server.hpp"

#include <unloc/core.hpp>
#include <unloc/reconciler.hpp>

#include "connection_caps.hpp"
#include "log_limiter.hpp"
#include "metrics.hpp"
#include "session.hpp"
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace receiver {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// Mozilla "intermediate" for TLS 1.2, less its DHE suites: ECDHE and AEAD only.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// A hand-over (printing, the store) this long is slow: a PostgreSQL one takes a
// few ms, SQLite's a tenth of that. Hand-overs count as slow for slow_for after one.
constexpr auto slow_hand_over = 100ms;
constexpr auto slow_for = 5s;

// write(2) until all is written: stdio's buffer could keep half an event line
// after a failed write and glue it to the next one.
bool write_all(int fd, const std::string& text) {
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Whether `fd` can take output before `deadline` (or has failed: the write then says why).
bool writable_by(int fd, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = (std::max)(std::chrono::ceil<std::chrono::milliseconds>(
                                     deadline - std::chrono::steady_clock::now()),
                                 std::chrono::milliseconds::zero());
    pollfd out{fd, POLLOUT, 0};
    const int ready = ::poll(&out, 1, static_cast<int>(left.count()));
    if (ready > 0) return true;
    if (ready == 0) return false;
    if (errno != EINTR) return true;
  }
}

// Whether `fd` is a regular file or the null device, which never wait for room.
bool takes_any_write(int fd) noexcept {
  struct stat out {};
  struct stat null {};
  if (::fstat(fd, &out) != 0) return false;
  if (S_ISREG(out.st_mode)) return true;
  return S_ISCHR(out.st_mode) && ::stat("/dev/null", &null) == 0 && out.st_rdev == null.st_rdev;
}

// Lines to one file descriptor, whole, one at a time; stdout and stderr apart, so
// that a stalled one never holds the other.
struct line_output {
  explicit line_output(int descriptor) noexcept
      : fd(descriptor), always_room(takes_any_write(fd)) {}
  const int fd;
  // A regular file or /dev/null: poll says "room" at once, so a write need not ask.
  const bool always_room;
  std::timed_mutex mutex;
  // A bounded write found it taking nothing: the next bounded ones do not wait, until
  // one gets through. So a stall costs one wait, not one a line (a batch of calls
  // inside one store transaction would otherwise hold it for as many waits).
  std::atomic<bool> stalled{false};
};

line_output stdout_lines(STDOUT_FILENO);
line_output stderr_lines(STDERR_FILENO);

enum class written { whole, failed, took_nothing };

// Writes `line` whole. Waits at most `limit` (not at all while the output is
// stalled) for the lock and for room for the line's start: a pipe with room takes a
// line of up to PIPE_BUF bytes at once; a longer line may wait once started, as it
// must be finished whole.
written write_line(line_output& out, const std::string& line, std::chrono::milliseconds limit) {
  const auto deadline =
      std::chrono::steady_clock::now() + (out.stalled ? std::chrono::milliseconds(0) : limit);
  const std::unique_lock<std::timed_mutex> lock(out.mutex, deadline);
  if (!lock.owns_lock() || (!out.always_room && !writable_by(out.fd, deadline))) {
    out.stalled = true;
    return written::took_nothing;
  }
  out.stalled = false;
  return write_all(out.fd, line) ? written::whole : written::failed;
}

std::string openssl_error() {
  char text[256] = "unknown error";
  if (const unsigned long code = ERR_get_error(); code != 0) {
    ERR_error_string_n(code, text, sizeof text);
  }
  ERR_clear_error();
  return text;
}

std::shared_ptr<ssl::context> make_tls_context(const options& o, std::string& error) {
  std::shared_ptr<ssl::context> ctx;
  try {
    ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  } catch (const std::exception&) {
    error = "cannot set up TLS: " + openssl_error();
    return nullptr;
  }
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  // No compression (CRIME), no client-started renegotiation (a CPU sink).
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_set_cipher_list(native, tls12_ciphers) != 1) {
    error = "cannot set up TLS: " + openssl_error();
  } else if (SSL_CTX_use_certificate_chain_file(native, o.cert_file.c_str()) != 1) {
    error = "cannot load the certificate chain --cert " + o.cert_file + ": " + openssl_error();
  } else if (SSL_CTX_use_PrivateKey_file(native, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
             SSL_CTX_check_private_key(native) != 1) {
    const bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    error = mismatch ? "the --key " + o.key_file + " does not belong to the --cert certificate"
                     : "cannot load the private key --key " + o.key_file + ": " + openssl_error();
    ERR_clear_error();
  }
  return error.empty() ? ctx : nullptr;
}

}  // namespace

void diagnostic(const std::string& line) {
  // Bounded: a stderr nobody reads must not stop the receiver (its I/O threads, or a
  // store transaction, log). Lines it did not take are counted, and said when it does.
  static std::atomic<std::uint64_t> dropped{0};
  if (write_line(stderr_lines, "unloc-webhook-receiver: " + line + "\n", stderr_wait) ==
      written::took_nothing) {
    ++dropped;
    return;
  }
  if (const auto lost = dropped.exchange(0); lost > 0) {
    const std::string count = "unloc-webhook-receiver: " + std::to_string(lost) +
                              " diagnostic lines left out while stderr took nothing\n";
    if (write_line(stderr_lines, count, stderr_wait) == written::took_nothing) dropped += lost;
  }
}

bool print_event(const unloc::access_event& event) {
  std::string line = unloc::to_json_text(event);
  line += '\n';
  const bool was_stalled = stdout_lines.stalled;
  switch (write_line(stdout_lines, line, stdout_wait)) {
    case written::whole:
      if (was_stalled) diagnostic("stdout takes the events' lines again");
      return true;
    case written::took_nothing:
      // Said once a stall; every event refused meanwhile comes again.
      if (!was_stalled) {
        diagnostic("stdout took nothing for " + std::to_string(stdout_wait.count()) +
                   " ms: events are refused (503, to come again) until it takes a line (is "
                   "the program reading the receiver's output?)");
      }
      return false;
    case written::failed: break;
  }
  diagnostic(std::string("cannot write the event to stdout: ") + std::strerror(errno) + " (event " +
             event.id.to_string() + ")");
  return false;
}

// Members are declared in the order they may be destroyed in reverse: the
// connections the io_context still holds at destruction use those above it.
struct server::impl {
  impl(options o, unloc::reconciler& r, std::shared_ptr<unloc::event_store> s)
      : opts(std::move(o)),
        reconciler(r),
        store(std::move(s)),
        validator(policy()),
        caps(opts.max_connections, opts.max_connections_per_client),
        threads(io_threads(opts)),
        handing_slots(static_cast<std::size_t>(threads + hand_over_pool_threads(opts))),
        handing_since(new std::atomic<std::int64_t>[handing_slots]()),
        lanes(make_lanes(threads)),
        handlers(static_cast<std::size_t>(hand_over_pool_threads(opts))),
        keep_alive_value(
            "timeout=" +
            std::to_string(
                std::chrono::duration_cast<std::chrono::seconds>(opts.idle_timeout).count())) {}

  options opts;
  unloc::reconciler& reconciler;  // hands each event over once
  std::shared_ptr<unloc::event_store> store;
  unloc::delivery_validator validator;
  std::string error;
  receiver::metrics stats;
  log_limiter rejections{20, 1s};  // a flood of bad requests writes 20 lines a second, then a count
  connection_caps caps;
  connection_caps metrics_caps{16, 16};  // scrapers: a few
  std::mutex sessions_mutex;
  std::unordered_map<const front::connection*, std::weak_ptr<front::connection>> sessions;
  std::mutex tls_mutex;
  std::shared_ptr<ssl::context> tls;  // for new connections; null with --plain-http
  std::atomic<bool> stopping{false};
  // /healthz: false from a failed hand-over or check to the next good one.
  std::atomic<bool> store_ok{true};
  std::atomic<bool> checking{false};  // a store check on the pool now
  bool last_check_ok = true;          // only by the one check running
  std::atomic<int> inline_hand_overs{0};  // I/O threads handing an event over now
  int threads;
  // When each running hand-over began (steady clock, ns; 0: none): slot i below
  // threads is I/O thread i's, the others are taken by the pool's threads.
  std::size_t handing_slots;
  std::unique_ptr<std::atomic<std::int64_t>[]> handing_since;
  // Till then (steady clock, ns) hand-overs count as slow: one took slow_hand_over or failed.
  std::atomic<std::int64_t> slow_until{0};
  // The listeners, the deadlines' sweep and the store's check, on run()'s own thread:
  // they never wait behind a connection's work.
  asio::io_context io{1};
  // The connections, spread over the I/O threads: each thread runs a context of
  // its own, which it alone polls. On one context shared by all, a ready socket was
  // handed from the thread polling to another one woken for it, which often waited
  // for a core: 9% fewer deliveries a second (median of 8 interleaved rounds).
  std::vector<std::unique_ptr<asio::io_context>> lanes;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> lanes_open;  // to stop
  std::atomic<std::size_t> next_lane{0};
  bool closed = false;  // by close_everything(), on the control thread, as the sweep
  tcp::acceptor acceptor{io};
  tcp::acceptor metrics_acceptor{io};
  asio::steady_timer accept_pause{io};
  asio::steady_timer sweeper{io};  // every connection's deadline, checked 10 times a second
  asio::steady_timer health{io};   // the store checked every second, for /healthz
  // Hand-overs (printing, the state store) from the last free I/O thread while they are slow.
  asio::thread_pool handlers;
  const std::string keep_alive_value;  // "timeout=S": the idle timeout, rounded down

  unloc::delivery_options policy() const {
    unloc::delivery_options p;
    p.path = opts.path;
    p.credentials = opts.credentials;
    p.require_authentication = !opts.no_auth;
    p.max_body_bytes = opts.max_body;
    return p;
  }

  std::shared_ptr<ssl::context> current_tls() {
    const std::lock_guard<std::mutex> lock(tls_mutex);
    return tls;
  }

  static void log_line(const std::string& line) { diagnostic(line); }

  static std::vector<std::unique_ptr<asio::io_context>> make_lanes(int count) {
    std::vector<std::unique_ptr<asio::io_context>> made;
    made.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) made.push_back(std::make_unique<asio::io_context>(1));
    return made;
  }

  // The context of the next connection: in turn.
  asio::io_context& lane() { return *lanes[next_lane++ % lanes.size()]; }

  // The lane of the connections whose executor is `context`'s; lanes.size() for
  // another context's (the metrics listener's connections, which hand nothing over).
  std::size_t lane_of(const asio::io_context& context) const {
    std::size_t i = 0;
    while (i < lanes.size() && lanes[i].get() != &context) ++i;
    return i;
  }

  static std::int64_t steady_ns(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }

  // Frees a slot of handing_since (and, for an I/O thread's, its count) however
  // the hand-over ends.
  struct running_hand_over {
    running_hand_over(impl& s, std::size_t i) : srv(s), slot(i) {}
    running_hand_over(const running_hand_over&) = delete;
    running_hand_over& operator=(const running_hand_over&) = delete;
    ~running_hand_over() {
      if (slot >= srv.handing_slots) return;
      srv.handing_since[slot] = 0;
      if (slot < srv.lanes.size()) --srv.inline_hand_overs;
    }
    impl& srv;
    std::size_t slot;
  };

  // Hands d's event over on I/O thread `lane` (true, `offered` set) unless it is
  // the last I/O thread free and hand-overs are slow (false: for the pool). A
  // hop to the pool and back costs two context switches a delivery (a fifth of
  // a PostgreSQL delivery's CPU here: 0.69 -> 0.81 of the bare client's rate,
  // medians of 6 interleaved rounds); kept for a stall, it leaves one I/O thread
  // serving the other connections, /healthz and the deadlines meanwhile.
  bool hand_over_here(std::size_t lane, unloc::delivery_decision& d,
                      std::optional<unloc::offer_outcome>& offered) {
    if (lane >= lanes.size()) return false;
    const auto now = steady_ns(std::chrono::steady_clock::now());
    if (inline_hand_overs.fetch_add(1) >= threads - 1 && slow(now)) {
      --inline_hand_overs;
      return false;
    }
    handing_since[lane] = now;
    const running_hand_over running{*this, lane};
    offered = hand_over(d);
    return true;
  }

  // Hands d's event over on a thread of the pool, in a slot of its own.
  std::optional<unloc::offer_outcome> hand_over_pooled(unloc::delivery_decision& d) {
    const auto now = steady_ns(std::chrono::steady_clock::now());
    std::size_t slot = lanes.size();
    for (std::int64_t idle = 0; slot < handing_slots; ++slot, idle = 0) {
      if (handing_since[slot].compare_exchange_strong(idle, now)) break;
    }
    // None free (never: there is one a pool thread): the hand-over goes uncounted.
    const running_hand_over running{*this, slot};
    return hand_over(d);
  }

  // Whether hand-overs are slow: one running for slow_hand_over (on an I/O
  // thread or the pool), or one that took that long or failed within slow_for.
  bool slow(std::int64_t now) const {
    if (now < slow_until) return true;
    const auto limit = std::chrono::nanoseconds(slow_hand_over).count();
    for (std::size_t i = 0; i < handing_slots; ++i) {
      const auto since = handing_since[i].load();
      if (since != 0 && now - since >= limit) return true;
    }
    return false;
  }

  // Offers a valid event to the reconciler (which prints it once); turns `d`
  // into a 503 when it could not be taken. Blocks while it prints and stores.
  std::optional<unloc::offer_outcome> hand_over(unloc::delivery_decision& d) {
    const auto began = std::chrono::steady_clock::now();
    std::optional<unloc::offer_outcome> offered;
    bool failed = true;
    try {
      offered = offer(d, failed);
    } catch (const std::exception&) {
      failed = true;
      d = unloc::make_refusal(unloc::delivery_outcome::unavailable, "internal failure");
    }
    const auto now = std::chrono::steady_clock::now();
    if (failed || now - began >= slow_hand_over) slow_until = steady_ns(now + slow_for);
    return offered;
  }
  std::optional<unloc::offer_outcome> offer(unloc::delivery_decision& d, bool& failed) {
    auto handed = reconciler.offer(*d.event);
    failed = !handed;
    if (!handed) {
      store_ok = false;
      // The details go to stderr only: a response never carries an error's text.
      // Rate-limited: a store outage under load fails every delivery.
      rejections.reject("event " + d.event->id.to_string() +
                            " not handed over, answered 503: " + handed.error().message,
                        &log_line);
      d = unloc::make_refusal(unloc::delivery_outcome::unavailable,
                              "the event could not be taken now; deliver it again later");
      return std::nullopt;
    }
    store_ok = true;
    if (*handed == unloc::offer_outcome::held_elsewhere) {
      d = unloc::make_refusal(unloc::delivery_outcome::unavailable,
                              "the event is being handled by another delivery; retry");
      d.headers.add("Retry-After", "1");
      return std::nullopt;
    }
    stats.lag(std::chrono::duration_cast<std::chrono::milliseconds>(d.lag));
    return *handed;
  }

  void add(const std::shared_ptr<front::connection>& c) {
    const std::lock_guard<std::mutex> lock(sessions_mutex);
    sessions.emplace(c.get(), c);
  }
  void remove(const front::connection* c) {
    const std::lock_guard<std::mutex> lock(sessions_mutex);
    sessions.erase(c);
  }

  void accept(tcp::acceptor& on, bool metrics_role);
  void admit(front::socket socket, bool metrics_role);
  bool listen(tcp::acceptor& on, const std::string& host, int port, const char* what);
  void close_everything();
  void sweep();
  void check_store();
  void close_one_idle();
};

void server::impl::accept(tcp::acceptor& on, bool metrics_role) {
  // Scrapes on the control thread: a lane held by a hand-over never holds /metrics.
  on.async_accept(metrics_role ? io.get_executor() : lane().get_executor(),
                  [this, &on, metrics_role](beast::error_code ec, front::socket socket) {
                    if (!on.is_open() || ec == asio::error::operation_aborted) return;  // stopped
                    if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
                        ec == asio::error::no_memory) {
                      // Out of file descriptors: pause rather than spin; the connections open go
                      // on.
                      rejections.reject("cannot accept a connection: " + ec.message(), &log_line);
                      accept_pause.expires_after(100ms);
                      accept_pause.async_wait([this, &on, metrics_role](beast::error_code wait_ec) {
                        if (!wait_ec) accept(on, metrics_role);
                      });
                      return;
                    }
                    if (!ec) admit(std::move(socket), metrics_role);
                    accept(on, metrics_role);
                  });
}

void server::impl::admit(front::socket socket, bool metrics_role) {
  beast::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) return;
  std::string address = peer.address().to_string();
  auto admitted = (metrics_role ? metrics_caps : caps).admit(address);
  if (const auto* cap = std::get_if<std::string_view>(&admitted)) {
    // Closed at once, before any byte is read or any TLS work is done.
    if (!metrics_role) stats.connection_refused(*cap);
    if (!metrics_role && *cap == "total") close_one_idle();
    rejections.reject("connection from " + address + " refused: " +
                          (*cap == "total" ? "--max-connections" : "--max-connections-per-client") +
                          " reached",
                      &log_line);
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  auto ticket = std::move(std::get<connection_caps::ticket>(admitted));
  if (metrics_role || opts.plain_http) {
    std::make_shared<front::session<front::plain_stream, impl>>(
        *this, std::move(ticket), std::move(address), metrics_role, nullptr, std::move(socket))
        ->start();
  } else {
    auto ctx = current_tls();
    std::make_shared<front::session<beast::ssl_stream<front::plain_stream>, impl>>(
        *this, std::move(ticket), std::move(address), false, ctx, std::move(socket), *ctx)
        ->start();
  }
}

bool server::impl::listen(tcp::acceptor& on, const std::string& host, int port, const char* what) {
  beast::error_code ec;
  tcp::resolver resolver(io);
  const auto found = resolver.resolve(host, std::to_string(port),
                                      tcp::resolver::numeric_service | tcp::resolver::passive, ec);
  if (!ec && found.empty()) ec = asio::error::host_not_found;
  if (!ec) {
    const auto endpoint = found.begin()->endpoint();
    on.open(endpoint.protocol(), ec);
    // No SO_REUSEPORT: a second receiver on the port would silently take half the deliveries.
    if (!ec) on.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) on.bind(endpoint, ec);
    if (!ec) on.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    error = std::string("cannot listen on ") + what + host + ":" + std::to_string(port) + ": " +
            ec.message();
    beast::error_code ignored;
    on.close(ignored);
    return false;
  }
  return true;
}

void server::impl::sweep() {
  sweeper.expires_after(100ms);
  sweeper.async_wait([this](beast::error_code ec) {
    if (ec) return;
    std::vector<std::shared_ptr<front::connection>> open;  // released after the lock
    {
      const std::lock_guard<std::mutex> lock(sessions_mutex);
      open.reserve(sessions.size());
      for (const auto& [raw, weak] : sessions) {
        if (auto c = weak.lock()) open.push_back(std::move(c));
      }
    }
    // After a stop it goes on while connections finish (their deadlines still
    // hold: a lingering close, a slow answer), then lets run() return. Only once
    // none is left may the I/O threads end: nothing can post to them then (a
    // connection still open could, and its handler would never run).
    if (closed && open.empty()) {
      for (auto& guard : lanes_open) guard.reset();
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    for (const auto& c : open) c->expire_if_due(now);
    sweep();
  });
}

// On the pool, never an I/O thread: a store that hangs (a database across a
// network) must not take the connections' deadlines with it. One check at a time.
void server::impl::check_store() {
  health.expires_after(1s);
  health.async_wait([this](beast::error_code ec) {
    if (ec || stopping) return;
    if (!checking.exchange(true)) {
      asio::post(handlers, [this, work = asio::make_work_guard(io)] {
        auto checked = store->check();
        if (checked.has_value() != last_check_ok) {
          diagnostic(checked ? std::string("the store works again")
                             : "the store fails its check, /healthz answers 503: " +
                                   checked.error().message);
        }
        last_check_ok = checked.has_value();
        store_ok = last_check_ok;
        checking = false;
      });
    }
    check_store();
  });
}

void server::impl::close_everything() {
  beast::error_code ignored;
  acceptor.close(ignored);
  metrics_acceptor.close(ignored);
  accept_pause.cancel();
  health.cancel();
  closed = true;
  std::vector<std::shared_ptr<front::connection>> open;
  {
    const std::lock_guard<std::mutex> lock(sessions_mutex);
    for (const auto& [raw, weak] : sessions) {
      if (auto c = weak.lock()) open.push_back(std::move(c));
    }
  }
  for (const auto& c : open) c->shut_down();
}

// At the total cap, an idle keep-alive connection gives way to the sender's
// next attempt (the one refused now was closed before it was read).
void server::impl::close_one_idle() {
  std::vector<std::shared_ptr<front::connection>> looked_at;  // released after the lock
  {
    const std::lock_guard<std::mutex> lock(sessions_mutex);
    looked_at.reserve(sessions.size());
    for (const auto& [raw, weak] : sessions) {
      auto c = weak.lock();
      if (!c) continue;
      const bool idle = c->idle();
      looked_at.push_back(std::move(c));
      if (idle) break;
    }
  }
  if (!looked_at.empty() && looked_at.back()->idle()) looked_at.back()->shut_down();
}

server::server(const options& opts, unloc::reconciler& reconciler,
               std::shared_ptr<unloc::event_store> store)
    : impl_(std::make_unique<impl>(opts, reconciler, std::move(store))) {
  if (!opts.plain_http) impl_->tls = make_tls_context(opts, impl_->error);
}

server::~server() = default;

const std::string& server::error() const { return impl_->error; }

int server::bind() {
  auto& i = *impl_;
  if (!i.listen(i.acceptor, i.opts.host, i.opts.port, "")) return 0;
  if (!i.opts.metrics_host.empty() && !i.listen(i.metrics_acceptor, i.opts.metrics_host,
                                                i.opts.metrics_port, "--metrics-listen ")) {
    return 0;
  }
  beast::error_code ec;
  return i.acceptor.local_endpoint(ec).port();
}

bool server::run() {
  auto& i = *impl_;
  if (i.acceptor.is_open()) i.accept(i.acceptor, false);
  if (i.metrics_acceptor.is_open()) i.accept(i.metrics_acceptor, true);
  i.sweep();
  i.check_store();
  const auto serve = [](asio::io_context& context) {
    for (;;) {
      try {
        context.run();
        return;
      } catch (const std::exception& e) {
        diagnostic(std::string("internal failure, serving on: ") + e.what());
      }
    }
  };
  std::vector<std::thread> workers;
  for (auto& lane : i.lanes) {
    i.lanes_open.push_back(asio::make_work_guard(*lane));
    workers.emplace_back(serve, std::ref(*lane));
  }
  serve(i.io);
  for (auto& t : workers) t.join();
  i.handlers.join();
  i.rejections.flush(&impl::log_line);  // the count of the last lines held back
  return true;
}

void server::stop() {
  impl_->stopping = true;
  asio::post(impl_->io, [i = impl_.get()] { i->close_everything(); });
}

std::string server::reload_tls() {
  if (impl_->opts.plain_http) return "--plain-http: no certificate to reload";
  std::string why;
  auto fresh = make_tls_context(impl_->opts, why);
  if (!fresh) return why;
  const std::lock_guard<std::mutex> lock(impl_->tls_mutex);
  impl_->tls = std::move(fresh);
  return {};
}

}  // namespace receiver

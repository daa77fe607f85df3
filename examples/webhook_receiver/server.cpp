#include "server.hpp"

#include <unloc/beast.hpp>
#include <unloc/core.hpp>
#include <unloc/reconciler.hpp>

#include "connection_caps.hpp"
#include "log_limiter.hpp"
#include "metrics.hpp"
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
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
using response = http::response<http::string_body>;

// Fixed bounds that need no option.
constexpr std::size_t read_size = 4096;            // bytes asked of the socket at a time
constexpr std::size_t max_rejections_in_row = 32;  // then a rejecting-only client is closed
// Read and dropped after a refusal that closes, so that the sender reads the
// answer rather than a reset: more for a body (a 413) than for a head.
constexpr std::size_t body_drain_limit = 1 << 20;
constexpr std::size_t head_drain_limit = 64 << 10;
constexpr auto drain_time = 2s;

// Mozilla "intermediate" for TLS 1.2, less its DHE suites: ECDHE and AEAD only.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::mutex output_mutex;  // one whole line at a time, on stdout and on stderr

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

std::string openssl_error() {
  char text[256] = "unknown error";
  if (const unsigned long code = ERR_get_error(); code != 0) {
    ERR_error_string_n(code, text, sizeof text);
  }
  ERR_clear_error();
  return text;
}

// A rejection the validator cannot see: the request's framing or timing.
unloc::delivery_decision refusal(int status, const char* code, std::string message) {
  unloc::delivery_decision d;
  d.outcome = unloc::delivery_outcome::malformed_body;
  d.status = status;
  d.headers.add("Content-Type", "application/json");
  d.body = nlohmann::json{{"error", code}, {"message", message}}.dump();
  d.message = std::move(message);
  return d;
}

// Framing that Beast reads one way and another parser (a proxy in front) could
// read another: refused, so that no request can hide in another's body.
std::optional<unloc::delivery_decision> ambiguous_framing(
    std::string_view head, const http::request_parser<http::string_body>& parser) {
  for (std::size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\0') return refusal(400, "malformed_request", "a NUL byte in the head");
    if (head[i] != '\n') continue;
    if (i == 0 || head[i - 1] != '\r') return refusal(400, "malformed_request", "a bare LF");
    if (i + 1 < head.size() && (head[i + 1] == ' ' || head[i + 1] == '\t')) {
      return refusal(400, "malformed_request", "a folded header line (obs-fold)");
    }
  }
  const auto& req = parser.get();
  const auto lengths = req.count(http::field::content_length);
  const auto encodings = req.count(http::field::transfer_encoding);
  if (lengths > 1 || (lengths == 1 && req[http::field::content_length].find(',') !=
                                          beast::string_view::npos)) {
    return refusal(400, "malformed_request", "more than one Content-Length");
  }
  if (encodings > 0 && lengths > 0) {
    return refusal(400, "malformed_request", "Content-Length with Transfer-Encoding");
  }
  if (encodings > 0 &&
      (encodings > 1 || !parser.chunked() ||
       !unloc::detail::ascii_iequals(unloc::detail::trim_ows(unloc::to_string_view(
                                         req[http::field::transfer_encoding])),
                                     "chunked"))) {
    // Its body cannot be delimited: as ambiguous as two lengths (RFC 9112 allows 501 too).
    return refusal(400, "malformed_request", "a Transfer-Encoding other than chunked");
  }
  return std::nullopt;
}

// The peer went away (or a stop cancelled the read): nothing to answer.
bool peer_gone(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message ||
         ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::operation_aborted || ec == asio::error::broken_pipe ||
         ec == ssl::error::stream_truncated || ec == beast::error::timeout;
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

class connection {
 public:
  virtual ~connection() = default;
  // On stop: an idle connection closes now, a busy one after its answer.
  virtual void shut_down() = 0;
};

}  // namespace

void diagnostic(const std::string& line) {
  const std::lock_guard<std::mutex> lock(output_mutex);
  write_all(STDERR_FILENO, "unloc-webhook-receiver: " + line + "\n");
}

bool print_event(const unloc::access_event& event) {
  std::string line = unloc::to_json_text(event);
  line += '\n';
  {
    const std::lock_guard<std::mutex> lock(output_mutex);
    if (write_all(STDOUT_FILENO, line)) return true;
  }
  diagnostic(std::string("cannot write the event to stdout: ") + std::strerror(errno) +
             " (event " + event.id.to_string() + ")");
  return false;
}

// Members are declared in the order they may be destroyed in reverse: the
// connections the io_context still holds at destruction use those above it.
struct server::impl {
  impl(options o, unloc::reconciler* r)
      : opts(std::move(o)),
        own_reconciler(r ? nullptr : make_printing_reconciler()),
        reconciler(r ? r : own_reconciler.get()),
        validator(policy()),
        caps(opts.max_connections, opts.max_connections_per_client),
        threads(opts.threads > 0 ? opts.threads
                                 : static_cast<int>(std::max(1U, std::thread::hardware_concurrency()))),
        handlers(static_cast<std::size_t>(threads)),
        keep_alive_value(
            "timeout=" +
            std::to_string(
                std::chrono::duration_cast<std::chrono::seconds>(opts.idle_timeout).count())) {}

  options opts;
  std::unique_ptr<unloc::reconciler> own_reconciler;  // without --reconcile
  unloc::reconciler* reconciler;                      // prints each event once
  unloc::delivery_validator validator;
  std::string error;
  receiver::metrics stats;
  log_limiter rejections{20, 1s};  // a flood of bad requests writes 20 lines a second, then a count
  connection_caps caps;
  connection_caps metrics_caps{16, 16};  // scrapers: a few
  std::mutex sessions_mutex;
  std::unordered_map<const connection*, std::weak_ptr<connection>> sessions;
  std::mutex tls_mutex;
  std::shared_ptr<ssl::context> tls;  // for new connections; null with --plain-http
  std::atomic<bool> stopping{false};
  std::atomic<bool> store_ok{true};  // false from a failed hand-over to the next good one
  int threads;
  asio::io_context io{threads};
  tcp::acceptor acceptor{io};
  tcp::acceptor metrics_acceptor{io};
  asio::steady_timer accept_pause{io};
  // Hand-overs (printing, the state store) block: they run here, never on the I/O threads.
  asio::thread_pool handlers;
  const std::string keep_alive_value;  // "timeout=S": the idle timeout, rounded down

  static std::unique_ptr<unloc::reconciler> make_printing_reconciler() {
    // Without --reconcile: events are remembered in memory only (100,000 ids, 31 days).
    return std::make_unique<unloc::reconciler>(
        std::make_shared<unloc::memory_event_store>(),
        [](const unloc::access_event& event, const unloc::handover&) {
          return print_event(event);
        });
  }

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

  // Offers a valid event to the reconciler (which prints it once); turns `d`
  // into a 503 when it could not be taken. Blocks: runs on `handlers`.
  std::optional<unloc::offer_outcome> hand_over(unloc::delivery_decision& d) {
    auto handed = reconciler->offer(*d.event);
    if (!handed) {
      store_ok = false;
      // The details go to stderr only: a response never carries an error's text.
      diagnostic("event " + d.event->id.to_string() +
                 " not handed over, answered 503: " + handed.error().message);
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

  void add(const std::shared_ptr<connection>& c) {
    const std::lock_guard<std::mutex> lock(sessions_mutex);
    sessions.emplace(c.get(), c);
  }
  void remove(const connection* c) {
    const std::lock_guard<std::mutex> lock(sessions_mutex);
    sessions.erase(c);
  }

  void accept(tcp::acceptor& on, bool metrics_role);
  void admit(tcp::socket socket, bool metrics_role);
  bool listen(tcp::acceptor& on, const std::string& host, int port, const char* what);
  void close_everything();
};

namespace {

// One connection: TLS handshake, then requests one after the other (pipelined
// ones in order), each with its deadlines and limits. All of its handlers run
// on its own strand (the socket's executor). Front: server::impl (a private name).
template <class Stream, class Front>
class session final : public connection,
                      public std::enable_shared_from_this<session<Stream, Front>> {
 public:
  static constexpr bool tls = !std::is_same_v<Stream, beast::tcp_stream>;

  template <class... StreamArgs>
  session(Front& srv, connection_caps::ticket ticket, std::string peer, bool metrics_role,
          std::shared_ptr<ssl::context> tls_context, StreamArgs&&... stream_args)
      : srv_(srv),
        ticket_(std::move(ticket)),
        peer_(std::move(peer)),
        metrics_role_(metrics_role),
        tls_context_(std::move(tls_context)),
        stream_(std::forward<StreamArgs>(stream_args)...),
        deadline_(stream_.get_executor()) {
    if (!metrics_role_) srv_.stats.connection_opened();
  }
  ~session() override {
    srv_.remove(this);
    if (!metrics_role_) srv_.stats.connection_closed();
  }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  void start() {
    srv_.add(this->shared_from_this());
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->begin(); });
  }

  void shut_down() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      self->closing_ = true;
      if (self->idle_) self->lowest().cancel();
    });
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  std::shared_ptr<session> self() { return this->shared_from_this(); }

  void begin() {
    if constexpr (tls) {
      idle_ = true;  // no request yet: a stop closes it
      lowest().expires_after(srv_.opts.handshake_timeout);
      stream_.async_handshake(ssl::stream_base::server, [self = self()](beast::error_code ec) {
        self->idle_ = false;
        if (ec) return self->close_now();
        self->next_request();
      });
    } else {
      next_request();
    }
  }

  // Waits for the next request's first byte (idle keep-alive), unless pipelined bytes wait.
  void next_request() {
    parser_.reset();
    early_.reset();
    if (closing_ || srv_.stopping || requests_ >= srv_.opts.max_requests_per_connection) {
      return close_now();
    }
    if (buffer_.size() > 0) return begin_head();
    idle_ = true;
    lowest().expires_after(srv_.opts.idle_timeout);
    stream_.async_read_some(buffer_.prepare(read_size),
                            [self = self()](beast::error_code ec, std::size_t n) {
                              self->idle_ = false;
                              if (ec) return self->close_now();  // idle timeout, EOF or a stop
                              self->buffer_.commit(n);
                              self->begin_head();
                            });
  }

  // The header deadline counts from the head's first byte.
  void begin_head() {
    parser_.emplace();
    head_.clear();
    parser_->header_limit(static_cast<std::uint32_t>(srv_.opts.max_header_bytes));
    // The validator decides 413 from Content-Length first (boost::none would refuse any body).
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    arm(srv_.opts.header_timeout);
    parse_head();
  }

  // Beast takes the request line as soon as it is whole, the header fields once
  // all have come: the head is kept (a few KiB) to check its raw bytes.
  void parse_head() {
    beast::error_code ec;
    const std::size_t used = parser_->put(buffer_.data(), ec);
    head_.append(static_cast<const char*>(buffer_.data().data()), used);
    buffer_.consume(used);
    const auto limit = srv_.opts.max_header_bytes;
    if (ec == http::error::need_more) {
      if (head_.size() + buffer_.size() >= limit) return head_too_large();
      lowest().expires_never();  // the header deadline is arm()'s, which can answer 408
      stream_.async_read_some(buffer_.prepare(std::min(read_size, limit - head_.size())),
                              [self = self()](beast::error_code ec2, std::size_t n) {
                                if (self->timed_out_) {
                                  return self->reject(408, "request_timeout",
                                                      "the head did not arrive within "
                                                      "--header-timeout");
                                }
                                if (ec2) return self->close_now();
                                self->buffer_.commit(n);
                                self->parse_head();
                              });
      return;
    }
    if (ec == http::error::header_limit || (!ec && head_.size() > limit)) return head_too_large();
    if (ec) return reject(400, "malformed_request", "malformed request head: " + ec.message());
    disarm();
    const auto target = unloc::to_string_view(parser_->get().target());
    path_ = std::string(target.substr(0, target.find('?')));
    if (auto framing = ambiguous_framing(head_, *parser_)) return send_rejection(*framing);
    on_head();
  }

  void head_too_large() {
    // The request line is taken whole or not at all: none taken, it alone did not fit.
    if (head_.empty()) {
      return reject(414, "uri_too_long", "the request line is over --max-header-bytes");
    }
    reject(431, "request_header_fields_too_large", "the request head is over --max-header-bytes");
  }

  void on_head() {
    ++requests_;
    started_ = std::chrono::steady_clock::now();
    const auto& req = parser_->get();
    const bool has_body = parser_->chunked() || parser_->content_length().value_or(0) > 0;
    if (metrics_role_ || (req.method() == http::verb::get && path_ == "/healthz")) {
      return answer_operations(has_body);
    }
    early_ = unloc::beast::check_headers(srv_.validator, req.base());
    const bool expects_100 = unloc::detail::ascii_iequals(
        unloc::to_string_view(req[http::field::expect]), "100-continue");
    if (early_) {
      // An unread body would be taken for the next request: a refusal that cannot
      // read it (100-continue not sent, or too large) closes the connection.
      if (!has_body) return answer(*early_, true);
      if (expects_100 || parser_->content_length().value_or(0) > srv_.opts.max_body) {
        return answer(*early_, false);
      }
      return read_body();  // to drop it, and keep the connection
    }
    if (expects_100 && has_body && req.version() >= 11) {
      continue_ = http::response<http::empty_body>(http::status::continue_, req.version());
      lowest().expires_after(srv_.opts.body_timeout);
      http::async_write(stream_, continue_,
                        [self = self()](beast::error_code ec, std::size_t) {
                          if (ec) return self->close_now();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) return on_body({});
    parser_->body_limit(srv_.opts.max_body);
    arm(srv_.opts.body_timeout);
    lowest().expires_never();
    http::async_read(stream_, buffer_, *parser_,
                     [self = self()](beast::error_code ec, std::size_t) {
                       self->disarm();
                       self->on_body(ec);
                     });
  }

  void on_body(beast::error_code ec) {
    if (timed_out_) {
      return reject(408, "request_timeout", "the body did not arrive within --body-timeout");
    }
    if (ec == http::error::body_limit) {
      if (early_) return answer(*early_, false);
      auto d = unloc::make_refusal(unloc::delivery_outcome::payload_too_large,
                                   "body over the limit of " + std::to_string(srv_.opts.max_body) +
                                       " bytes");
      return answer(d, false);
    }
    if (ec && peer_gone(ec)) return close_now();
    if (ec) return reject(400, "malformed_request", "malformed body framing: " + ec.message());
    if (early_) return answer(*early_, true);
    auto d = unloc::beast::validate(srv_.validator, parser_->get());
    if (!d.ok()) return answer(d, true);
    // Off the I/O threads; the work guard keeps run() going until the answer is sent.
    asio::post(srv_.handlers, [self = self(), d = std::move(d),
                               work = asio::make_work_guard(srv_.io)]() mutable {
      std::optional<unloc::offer_outcome> offered;
      try {
        offered = self->srv_.hand_over(d);
      } catch (const std::exception&) {
        d = unloc::make_refusal(unloc::delivery_outcome::unavailable, "internal failure");
      }
      const auto executor = self->stream_.get_executor();
      asio::post(executor, [self = std::move(self), d = std::move(d), offered,
                            work = std::move(work)]() mutable {
        self->srv_.stats.handled(std::chrono::steady_clock::now() - self->started_);
        self->answer(d, true, offered);
      });
    });
  }

  // GET /healthz on the delivery listener; /metrics on the metrics listener.
  void answer_operations(bool has_body) {
    const auto& req = parser_->get();
    response res;
    if (metrics_role_ && path_ == "/metrics" && req.method() == http::verb::get) {
      res.result(http::status::ok);
      res.set(http::field::content_type, beast::string_view(receiver::metrics::content_type.data(),
                                                            receiver::metrics::content_type.size()));
      res.body() = srv_.stats.render();
    } else if (metrics_role_) {
      return send_rejection(refusal(404, "not_found", "only GET /metrics is served here"));
    } else {
      const bool healthy = !srv_.stopping && srv_.store_ok;
      res.result(healthy ? http::status::ok : http::status::service_unavailable);
      res.set(http::field::content_type, "application/json");
      res.body() = healthy ? R"({"status":"ok"})" : R"({"status":"unavailable"})";
    }
    res.version(req.version());
    res.prepare_payload();
    if (req.method() == http::verb::head) res.body().clear();
    rejections_in_row_ = 0;
    send(std::move(res), !has_body);
  }

  void log(const unloc::delivery_decision& d, std::optional<unloc::offer_outcome> offered) {
    using std::chrono::duration_cast;
    if (offered == unloc::offer_outcome::handed_over && d.late) {
      const auto s = duration_cast<std::chrono::seconds>(d.lag).count();
      diagnostic("late event " + d.event->id.to_string() + ": received " +
                 std::to_string(s / 3600) + " h " + std::to_string(s / 60 % 60) + " min " +
                 std::to_string(s % 60) + " s after it happened");
    } else if (offered == unloc::offer_outcome::duplicate) {
      diagnostic("event " + d.event->id.to_string() +
                 " delivered again: acknowledged, not printed");
    } else if (!d.ok()) {
      srv_.rejections.reject(std::to_string(d.status) + " " + describe() + ": " + d.message,
                             &Front::log_line);
    }
  }

  std::string describe() const {
    std::string who = "request";
    if (parser_ && parser_->is_header_done()) {
      const auto& req = parser_->get();
      who = unloc::detail::quoted(unloc::to_string_view(req.method_string()), 16) + " " +
            unloc::detail::quoted(path_, 128);
    }
    return who + " from " + peer_;
  }

  // A decision of the validator's: logged, counted, answered.
  void answer(const unloc::delivery_decision& d, bool keep,
              std::optional<unloc::offer_outcome> offered = std::nullopt) {
    log(d, offered);
    srv_.stats.delivery(offered == unloc::offer_outcome::duplicate
                            ? std::string_view("duplicate")
                            : std::string_view(unloc::to_string(d.outcome)));
    rejections_in_row_ = d.ok() ? 0 : rejections_in_row_ + 1;
    send(to_response(d), keep);
  }

  // A request refused for its framing or timing: answered, then the connection closed.
  void reject(int status, const char* code, std::string message) {
    send_rejection(refusal(status, code, std::move(message)));
  }
  void send_rejection(const unloc::delivery_decision& d) {
    log(d, std::nullopt);
    send(to_response(d), false);
  }

  response to_response(const unloc::delivery_decision& d) const {
    if (parser_ && parser_->is_header_done()) return unloc::beast::to_response(d, parser_->get());
    return unloc::beast::to_response(d, http::request_header<>());  // no head: HTTP/1.1
  }

  // Writes `res` (its payload prepared); then the next request when `keep`,
  // else a graceful close.
  void send(response res, bool keep) {
    keep = keep && parser_ && parser_->is_header_done() && parser_->keep_alive() && !closing_ &&
           !srv_.stopping && requests_ < srv_.opts.max_requests_per_connection &&
           rejections_in_row_ < max_rejections_in_row;
    res_ = std::move(res);
    res_.keep_alive(keep);
    // Tells the client when an idle connection will be closed, so that it does
    // not send on one being closed (and gives a 204 a header: wrk needs one).
    if (keep) res_.set(http::field::keep_alive, srv_.keep_alive_value);
    lowest().expires_after(srv_.opts.body_timeout);
    http::async_write(stream_, res_, [self = self(), keep](beast::error_code ec, std::size_t) {
      if (ec) return self->close_now();
      if (!keep) return self->linger();
      self->next_request();
    });
  }

  // Half-closes, then reads and drops what the peer still sends (a bounded
  // amount, for a bounded time) so that it reads the answer instead of a reset.
  void linger() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close_now();
    lowest().expires_after(drain_time);
    drain_limit_ = parser_ && parser_->is_header_done() ? body_drain_limit : head_drain_limit;
    drain();
  }
  void drain() {
    lowest().async_read_some(buffer_.prepare(read_size),
                             [self = self()](beast::error_code ec, std::size_t n) {
                               self->drained_ += n;
                               if (ec || self->drained_ >= self->drain_limit_) return self->close_now();
                               self->drain();
                             });
  }

  void close_now() {
    disarm();
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close();
  }

  // A deadline that answers 408 (a tcp_stream timeout would close without a word).
  void arm(std::chrono::steady_clock::duration limit) {
    timed_out_ = false;
    const unsigned generation = ++generation_;
    deadline_.expires_after(limit);
    deadline_.async_wait([self = self(), generation](beast::error_code ec) {
      if (ec || generation != self->generation_) return;
      self->timed_out_ = true;
      beast::error_code ignored;
      self->lowest().socket().cancel(ignored);
    });
  }
  void disarm() {
    ++generation_;
    deadline_.cancel();
  }

  Front& srv_;
  connection_caps::ticket ticket_;
  std::string peer_;
  bool metrics_role_;
  std::shared_ptr<ssl::context> tls_context_;  // outlives the stream that uses it
  Stream stream_;
  asio::steady_timer deadline_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string head_;  // the raw request line and header fields
  std::string path_;
  std::optional<unloc::delivery_decision> early_;  // decided from the head; the body is dropped
  http::response<http::empty_body> continue_;
  response res_;
  std::chrono::steady_clock::time_point started_;
  std::size_t requests_ = 0;
  std::size_t rejections_in_row_ = 0;
  std::size_t drained_ = 0;
  std::size_t drain_limit_ = 0;
  unsigned generation_ = 0;
  bool timed_out_ = false;
  bool idle_ = false;
  bool closing_ = false;
};

}  // namespace

void server::impl::accept(tcp::acceptor& on, bool metrics_role) {
  on.async_accept(asio::make_strand(io), [this, &on, metrics_role](beast::error_code ec,
                                                                   tcp::socket socket) {
    if (!on.is_open() || ec == asio::error::operation_aborted) return;  // stopped
    if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
        ec == asio::error::no_memory) {
      // Out of file descriptors: pause rather than spin; the connections open go on.
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

void server::impl::admit(tcp::socket socket, bool metrics_role) {
  beast::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) return;
  std::string address = peer.address().to_string();
  auto admitted = (metrics_role ? metrics_caps : caps).admit(address);
  if (const auto* cap = std::get_if<std::string_view>(&admitted)) {
    // Closed at once, before any byte is read or any TLS work is done.
    if (!metrics_role) stats.connection_refused(*cap);
    rejections.reject("connection from " + address + " refused: " +
                          (*cap == "total" ? "--max-connections" : "--max-connections-per-client") +
                          " reached",
                      &log_line);
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  auto ticket = std::move(std::get<connection_caps::ticket>(admitted));
  if (metrics_role || opts.plain_http) {
    std::make_shared<session<beast::tcp_stream, impl>>(*this, std::move(ticket), std::move(address),
                                                 metrics_role, nullptr, std::move(socket))
        ->start();
  } else {
    auto ctx = current_tls();
    std::make_shared<session<beast::ssl_stream<beast::tcp_stream>, impl>>(
        *this, std::move(ticket), std::move(address), false, ctx, std::move(socket), *ctx)
        ->start();
  }
}

bool server::impl::listen(tcp::acceptor& on, const std::string& host, int port,
                          const char* what) {
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

void server::impl::close_everything() {
  beast::error_code ignored;
  acceptor.close(ignored);
  metrics_acceptor.close(ignored);
  accept_pause.cancel();
  std::vector<std::shared_ptr<connection>> open;
  {
    const std::lock_guard<std::mutex> lock(sessions_mutex);
    for (const auto& [raw, weak] : sessions) {
      if (auto c = weak.lock()) open.push_back(std::move(c));
    }
  }
  for (const auto& c : open) c->shut_down();
}

server::server(const options& opts, unloc::reconciler* reconciler)
    : impl_(std::make_unique<impl>(opts, reconciler)) {
  if (!opts.plain_http) impl_->tls = make_tls_context(opts, impl_->error);
}

server::~server() = default;

const std::string& server::error() const { return impl_->error; }

int server::bind() {
  auto& i = *impl_;
  if (!i.listen(i.acceptor, i.opts.host, i.opts.port, "")) return 0;
  if (!i.opts.metrics_host.empty() &&
      !i.listen(i.metrics_acceptor, i.opts.metrics_host, i.opts.metrics_port,
                "--metrics-listen ")) {
    return 0;
  }
  beast::error_code ec;
  return i.acceptor.local_endpoint(ec).port();
}

bool server::run() {
  auto& i = *impl_;
  if (i.acceptor.is_open()) i.accept(i.acceptor, false);
  if (i.metrics_acceptor.is_open()) i.accept(i.metrics_acceptor, true);
  const auto serve = [&i] {
    for (;;) {
      try {
        i.io.run();
        return;
      } catch (const std::exception& e) {
        diagnostic(std::string("internal failure, serving on: ") + e.what());
      }
    }
  };
  std::vector<std::thread> more;
  for (int t = 1; t < i.threads; ++t) more.emplace_back(serve);
  serve();
  for (auto& t : more) t.join();
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

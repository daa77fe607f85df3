#pragma once

// One connection of the receiver's HTTP front: its TLS handshake, then its
// requests one after the other, each read within its limits and deadlines,
// judged (framing here, the rest by unloc::delivery_validator) and answered.
// Included by server.cpp only.

#include <unloc/beast.hpp>
#include <unloc/core.hpp>
#include <unloc/reconciler.hpp>

#include "connection_caps.hpp"
#include "metrics.hpp"
#include "server.hpp"  // diagnostic()
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace receiver::front {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using response = http::response<http::string_body>;
// A connection's executor: its I/O thread's io_context, which that thread alone
// runs, so its handlers never run at once and need no strand (the pool, the sweep
// and a stop post to it from other threads; a strand cost 5% of the rate). As its
// concrete type: behind asio's type-erased any_io_executor (beast::tcp_stream's),
// each async step copied and re-wrapped it, a heap allocation each, some 15 a request.
using executor = asio::io_context::executor_type;
using socket = asio::basic_stream_socket<tcp, executor>;
using plain_stream = beast::basic_stream<tcp, executor>;

// Fixed bounds that need no option.
inline constexpr std::size_t read_size = 4096;            // bytes asked of the socket at a time
inline constexpr std::size_t max_rejections_in_row = 32;  // then a rejecting-only client is closed
// Read and dropped after a refusal that closes, so that the sender reads the
// answer rather than a reset: more for a body (a 413) than for a head.
inline constexpr std::size_t body_drain_limit = 1 << 20;
inline constexpr std::size_t head_drain_limit = 64 << 10;
inline constexpr auto drain_time = std::chrono::seconds(2);

// A rejection the validator cannot see: the request's framing or timing.
inline unloc::delivery_decision refusal(int status, const char* code, std::string message) {
  unloc::delivery_decision d;
  d.outcome = unloc::delivery_outcome::malformed_body;
  d.status = status;
  d.headers.add("Content-Type", "application/json");
  d.body = nlohmann::json{{"error", code}, {"message", message}}.dump();
  d.message = std::move(message);
  return d;
}

// The fields that frame a request, found in one pass over the head (Beast's
// lookup by field compares names as text, a tree walk each).
struct framing_fields {
  std::size_t lengths = 0;    // Content-Length fields
  std::size_t encodings = 0;  // Transfer-Encoding fields
  beast::string_view length, encoding, expect;

  explicit framing_fields(const http::fields& fields) {
    for (const auto& f : fields) {
      if (f.name() == http::field::content_length) {
        length = f.value();
        ++lengths;
      } else if (f.name() == http::field::transfer_encoding) {
        encoding = f.value();
        ++encodings;
      } else if (f.name() == http::field::expect) {
        expect = f.value();
      }
    }
  }
};

// Framing that Beast reads one way and another parser (a proxy in front) could
// read another: refused, so that no request can hide in another's body.
inline std::optional<unloc::delivery_decision> ambiguous_framing(
    std::string_view head, const framing_fields& fields, bool chunked) {
  if (head.find('\0') != std::string_view::npos) {
    return refusal(400, "malformed_request", "a NUL byte in the head");
  }
  for (auto i = head.find('\n'); i != std::string_view::npos; i = head.find('\n', i + 1)) {
    if (i == 0 || head[i - 1] != '\r') return refusal(400, "malformed_request", "a bare LF");
    if (i + 1 < head.size() && (head[i + 1] == ' ' || head[i + 1] == '\t')) {
      return refusal(400, "malformed_request", "a folded header line (obs-fold)");
    }
  }
  if (fields.lengths > 1 ||
      (fields.lengths == 1 && fields.length.find(',') != beast::string_view::npos)) {
    return refusal(400, "malformed_request", "more than one Content-Length");
  }
  if (fields.encodings > 0 && fields.lengths > 0) {
    return refusal(400, "malformed_request", "Content-Length with Transfer-Encoding");
  }
  if (fields.encodings > 0 &&
      (fields.encodings > 1 || !chunked ||
       !unloc::detail::ascii_iequals(
           unloc::detail::trim_ows(unloc::to_string_view(fields.encoding)), "chunked"))) {
    // Its body cannot be delimited: as ambiguous as two lengths (RFC 9112 allows 501 too).
    return refusal(400, "malformed_request", "a Transfer-Encoding other than chunked");
  }
  return std::nullopt;
}

// The peer went away (or a stop cancelled the read): nothing to answer.
inline bool peer_gone(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message ||
         ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::operation_aborted || ec == asio::error::broken_pipe ||
         ec == ssl::error::stream_truncated || ec == beast::error::timeout;
}

/// A connection as the server sees it, to stop it.
class connection {
 public:
  virtual ~connection() = default;
  // On stop: an idle connection closes now, a busy one after its answer.
  virtual void shut_down() = 0;
  // Between requests (or before its first): closing it loses nothing. Any thread.
  [[nodiscard]] virtual bool idle() const = 0;
  // Called by the server's sweep (any thread, a few times a second): when the
  // connection's deadline has passed, its thread cancels what it waits for.
  virtual void expire_if_due(std::chrono::steady_clock::time_point now) = 0;
};

// One connection: TLS handshake, then requests one after the other (pipelined
// ones in order), each with its deadlines and limits. All of its handlers run
// on its I/O thread (the socket's executor). Front: server::impl (a private name).
template <class Stream, class Front>
class session final : public connection,
                      public std::enable_shared_from_this<session<Stream, Front>> {
 public:
  static constexpr bool tls = !std::is_same_v<Stream, plain_stream>;

  template <class... StreamArgs>
  session(Front& srv, connection_caps::ticket ticket, std::string peer, bool metrics_role,
          std::shared_ptr<ssl::context> tls_context, StreamArgs&&... stream_args)
      : srv_(srv),
        ticket_(std::move(ticket)),
        peer_(std::move(peer)),
        metrics_role_(metrics_role),
        tls_context_(std::move(tls_context)),
        stream_(std::forward<StreamArgs>(stream_args)...),
        lane_(srv.lane_of(stream_.get_executor().context())) {
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

  [[nodiscard]] bool idle() const override { return idle_; }

  void expire_if_due(std::chrono::steady_clock::time_point now) override {
    const auto due = due_.load(std::memory_order_relaxed);
    if (now.time_since_epoch().count() < due) return;
    asio::post(stream_.get_executor(), [self = this->shared_from_this(), due] {
      if (self->due_.load(std::memory_order_relaxed) != due) return;  // re-armed meanwhile
      // Due again at the next sweep, until the phase's handler arms or disarms: a read
      // that completed just before this cancel (its handler queued on its thread) lets
      // a composed operation (a body, a handshake, a write) start another that the
      // cancel missed, and that read would otherwise wait with no deadline at all.
      self->due_.store(due + retry_ticks, std::memory_order_relaxed);
      self->timed_out_ = true;
      beast::error_code ignored;
      self->lowest().socket().cancel(ignored);
    });
  }

  void shut_down() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      self->closing_ = true;
      if (self->idle_) self->lowest().cancel();
    });
  }

 private:
  plain_stream& lowest() { return beast::get_lowest_layer(stream_); }
  std::shared_ptr<session> self() { return this->shared_from_this(); }

  void begin() {
    if constexpr (tls) {
      idle_ = true;  // no request yet: a stop closes it
      arm(srv_.opts.handshake_timeout);
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
    arm(srv_.opts.idle_timeout);
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
    const framing_fields fields(parser_->get());
    if (auto framing = ambiguous_framing(head_, fields, parser_->chunked())) {
      return send_rejection(*framing);
    }
    on_head(fields);
  }

  void head_too_large() {
    // The request line is taken whole or not at all: none taken, it alone did not fit.
    if (head_.empty()) {
      return reject(414, "uri_too_long", "the request line is over --max-header-bytes");
    }
    reject(431, "request_header_fields_too_large", "the request head is over --max-header-bytes");
  }

  void on_head(const framing_fields& fields) {
    ++requests_;
    started_ = std::chrono::steady_clock::now();
    const auto& req = parser_->get();
    const auto length = parser_->content_length();
    const bool has_body = parser_->chunked() || length.value_or(0) > 0;
    if (metrics_role_ || (req.method() == http::verb::get && path_ == "/healthz")) {
      return answer_operations(has_body);
    }
    const bool expects_100 =
        unloc::detail::ascii_iequals(unloc::to_string_view(fields.expect), "100-continue");
    // Deciding from the head pays while the body is still to come; a body already
    // here (most deliveries: head and body in one read) is judged once, whole.
    const bool body_here =
        length && *length <= srv_.opts.max_body && buffer_.size() >= *length && !expects_100;
    if (!body_here) early_ = unloc::beast::check_headers(srv_.validator, req.base());
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
      arm(srv_.opts.body_timeout);
      http::async_write(stream_, continue_, [self = self()](beast::error_code ec, std::size_t) {
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
    // A body read with its head (most deliveries) is parsed here: async_read would
    // complete without I/O through a post, another trip through the scheduler that
    // often woke the other I/O thread (an epoll_wait and a context switch more).
    beast::error_code ec;
    while (!parser_->is_done() && buffer_.size() > 0) {
      const std::size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec || used == 0) break;
    }
    if (ec == http::error::need_more) ec = {};
    if (parser_->is_done() || ec) {
      disarm();
      return on_body(ec);
    }
    arm(srv_.opts.body_timeout);
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
      auto d = unloc::make_refusal(
          unloc::delivery_outcome::payload_too_large,
          "body over the limit of " + std::to_string(srv_.opts.max_body) + " bytes");
      return answer(d, false);
    }
    if (ec && peer_gone(ec)) return close_now();
    if (ec) return reject(400, "malformed_request", "malformed body framing: " + ec.message());
    if (early_) return answer(*early_, true);
    auto d = unloc::beast::validate(srv_.validator, parser_->get());
    if (!d.ok()) return answer(d, true);
    // On this I/O thread, as a rule; on the pool when the store or stdout stalls
    // and this thread is the last free (srv_.hand_over_here says why). Meanwhile
    // this thread's own connections wait, their deadlines too (bounded: stdout
    // 1 s, the stores' own timeouts).
    if (std::optional<unloc::offer_outcome> offered; srv_.hand_over_here(lane_, d, offered)) {
      srv_.stats.handled(std::chrono::steady_clock::now() - started_);
      return answer(d, true, offered);
    }
    // The work guard keeps run() going until the answer is sent.
    asio::post(srv_.handlers,
               [self = self(), d = std::move(d),
                work = asio::make_work_guard(stream_.get_executor())]() mutable {
                 const auto offered = self->srv_.hand_over_pooled(d);
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
      res.set(http::field::content_type,
              beast::string_view(receiver::metrics::content_type.data(),
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
    // Every 204 a kept connection answers is the same (status, version, Keep-Alive):
    // its bytes are kept and written again, neither built (a field is a heap allocation
    // in Beast) nor serialized anew (Beast's serializer cost ~4,000 instructions a write).
    const bool plain_204 = d.status == 204 && d.headers.empty();
    if (plain_204 && !kept_204_.empty() && keeps(keep) &&
        res_.version() == parser_->get().version()) {
      return write_kept_204();
    }
    const bool kept = send(to_response(d), keep);
    if (plain_204 && kept) kept_204_ = wire(res_);
  }

  static std::string wire(const response& res) {
    std::ostringstream out;
    out << res;
    return out.str();
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

  // Whether the connection stays open after this answer (`keep`: the decision lets it).
  bool keeps(bool keep) const {
    return keep && parser_ && parser_->is_header_done() && parser_->keep_alive() && !closing_ &&
           !srv_.stopping && requests_ < srv_.opts.max_requests_per_connection &&
           rejections_in_row_ < max_rejections_in_row;
  }

  // Writes `res` (its payload prepared); then the next request when `keep`,
  // else a graceful close. Returns whether the connection is kept.
  bool send(response res, bool keep) {
    keep = keeps(keep);
    res_ = std::move(res);
    res_.keep_alive(keep);
    // Tells the client when an idle connection will be closed, so that it does
    // not send on one being closed (and gives a 204 a header: wrk needs one).
    if (keep) res_.set(http::field::keep_alive, srv_.keep_alive_value);
    kept_204_.clear();  // answer() says when res_ may be written again
    write(keep);
    return keep;
  }

  // Writes kept_204_ again, then reads the next request.
  void write_kept_204() {
    arm(srv_.opts.body_timeout);
    asio::async_write(stream_, asio::buffer(kept_204_),
                      [self = self()](beast::error_code ec, std::size_t) {
                        if (ec) return self->close_now();
                        self->next_request();
                      });
  }

  // Writes res_ as it is.
  void write(bool keep) {
    arm(srv_.opts.body_timeout);
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
    arm(drain_time);
    drain_limit_ = parser_ && parser_->is_header_done() ? body_drain_limit : head_drain_limit;
    drain();
  }
  void drain() {
    lowest().async_read_some(buffer_.prepare(read_size),
                             [self = self()](beast::error_code ec, std::size_t n) {
                               self->drained_ += n;
                               if (ec || self->drained_ >= self->drain_limit_)
                                 return self->close_now();
                               self->drain();
                             });
  }

  void close_now() {
    disarm();
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close();
  }

  // Every deadline (handshake, idle, head, body, write, drain) is a time that
  // the server's sweep compares with the clock, not a timer: a timer per phase,
  // or tcp_stream's per operation, took a lock shared by all threads several
  // times a request and cost a third of the throughput. When it passes, the
  // operation waiting is cancelled and `timed_out_` says why (408 where an
  // answer is due). The sweep runs every 100 ms: a deadline is late by at most that.
  void arm(std::chrono::steady_clock::duration limit) {
    timed_out_ = false;
    due_.store((std::chrono::steady_clock::now() + limit).time_since_epoch().count(),
               std::memory_order_relaxed);
  }
  void disarm() { due_.store(no_deadline, std::memory_order_relaxed); }

  Front& srv_;
  connection_caps::ticket ticket_;
  std::string peer_;
  bool metrics_role_;
  std::shared_ptr<ssl::context> tls_context_;  // outlives the stream that uses it
  Stream stream_;
  const std::size_t lane_;  // its I/O thread's, among srv_.lanes
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string head_;  // the raw request line and header fields
  std::string path_;
  std::optional<unloc::delivery_decision> early_;  // decided from the head; the body is dropped
  http::response<http::empty_body> continue_;
  response res_;
  std::string kept_204_;  // res_'s bytes, when a 204 sent on a kept connection (sent again)
  std::chrono::steady_clock::time_point started_;
  std::size_t requests_ = 0;
  std::size_t rejections_in_row_ = 0;
  std::size_t drained_ = 0;
  std::size_t drain_limit_ = 0;
  static constexpr auto no_deadline = std::numeric_limits<std::chrono::steady_clock::rep>::max();
  static constexpr auto retry_ticks =  // a missed cancel is tried again this much later
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::milliseconds(100))
          .count();
  std::atomic<std::chrono::steady_clock::rep> due_{no_deadline};  // steady_clock ticks
  bool timed_out_ = false;
  std::atomic<bool> idle_{false};  // read by other threads through idle()
  bool closing_ = false;
};

}  // namespace receiver::front

#include "server.hpp"

#include <unloc/core.hpp>
#include <unloc/reconciler.hpp>

#include "task_queue.hpp"
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>

namespace receiver {
namespace {

using httplib::Request;
using httplib::Response;
using handler_response = httplib::Server::HandlerResponse;

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

// httplib's server with access to its listening socket.
template <typename Base>
class listener final : public Base {
 public:
  using Base::Base;
  // httplib listens with a backlog of 5: too few when many deliveries connect at once.
  void raise_backlog() { ::listen(this->svr_sock_, SOMAXCONN); }
  // Base::stop() does nothing until listen_after_bind() has started; this also
  // works before, so that a signal that comes early is not lost.
  void close_listener() {
    const int sock = this->svr_sock_.exchange(INVALID_SOCKET);
    if (sock == INVALID_SOCKET) return;
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
  }
};

std::string openssl_error() {
  char text[256] = "unknown error";
  if (const unsigned long code = ERR_get_error(); code != 0) {
    ERR_error_string_n(code, text, sizeof text);
  }
  ERR_clear_error();
  return text;
}

// A rejection the validator cannot see: the request's framing, or httplib's own refusal.
unloc::delivery_decision refusal(int status, const char* code, std::string message) {
  unloc::delivery_decision d;
  d.outcome = unloc::delivery_outcome::malformed_body;
  d.status = status;
  d.body = nlohmann::json{{"error", code}, {"message", message}}.dump();
  d.message = std::move(message);
  return d;
}

// A request that says a body follows: unread, its bytes would be taken for the next request.
bool announces_body(const Request& req) {
  return req.has_header("Transfer-Encoding") ||
         (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0");
}

std::string describe(const Request& req) {
  std::string who = req.method.empty() ? "request" : unloc::detail::quoted(req.method, 16);
  who += " " + unloc::detail::quoted(req.path.empty() ? req.target : req.path, 128);
  if (!req.remote_addr.empty()) who += " from " + req.remote_addr;
  return who;
}

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

struct server::impl {
  impl(options o, unloc::reconciler* r)
      : opts(std::move(o)),
        own_reconciler(r ? nullptr : make_printing_reconciler()),
        reconciler(r ? r : own_reconciler.get()),
        validator(policy()) {}

  options opts;
  std::unique_ptr<unloc::reconciler> own_reconciler;  // without --reconcile
  unloc::reconciler* reconciler;                      // prints each event once
  unloc::delivery_validator validator;
  std::unique_ptr<httplib::Server> http;
  std::function<void()> raise_backlog;
  std::function<void()> close_listener;
  std::string error;

  // Without --reconcile: events are remembered in memory only (100,000 ids, 31 days).
  static std::unique_ptr<unloc::reconciler> make_printing_reconciler() {
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

  template <typename Server>
  void adopt(std::unique_ptr<listener<Server>> s) {
    raise_backlog = [raw = s.get()] { raw->raise_backlog(); };
    close_listener = [raw = s.get()] { raw->close_listener(); };
    http = std::move(s);
  }

  bool load_tls(SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(&ctx, opts.cert_file.c_str()) != 1) {
      error = "cannot load the certificate chain --cert " + opts.cert_file + ": " + openssl_error();
    } else if (SSL_CTX_use_PrivateKey_file(&ctx, opts.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
               SSL_CTX_check_private_key(&ctx) != 1) {
      const bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
      error = mismatch
                  ? "the --key " + opts.key_file + " does not belong to the --cert certificate"
                  : "cannot load the private key --key " + opts.key_file + ": " + openssl_error();
      ERR_clear_error();
    }
    return error.empty();
  }

  void configure() {
    // httplib's defaults stall each new TLS connection ~44 ms (Nagle's algorithm
    // against delayed ACKs) and reopen connections every 5 requests.
    http->set_tcp_nodelay(true);
    http->set_keep_alive_max_count(10000);
    // Idle keep-alive connections hold a worker and delay a stop: 2 s. A client
    // that stalls mid-request holds one for at most 5 s per read or write.
    http->set_keep_alive_timeout(2);
    http->set_read_timeout(5);
    http->set_write_timeout(5);
    http->set_payload_max_length(opts.max_body);
    // httplib's default adds SO_REUSEPORT: a second receiver on the port would
    // silently take half the deliveries (each with its own event store).
    http->set_socket_options([](int sock) {
      const int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    const int threads = opts.threads;
    http->new_task_queue = [threads] { return new bounded_task_queue(threads, 1024); };

    // Every request meets the validator before its body is read: the
    // Expect: 100-continue hook, then the pre-routing hook (any method, any path).
    http->set_expect_100_continue_handler([this](const Request& req, Response& res) {
      auto early = validator.check_headers(req.method, req.path, headers_of(req));
      if (!early) return 100;
      // Closing: the client may send the body anyway. httplib writes no
      // Content-Length on this path.
      res.set_header("Content-Length", std::to_string(answer(req, res, *early, true)));
      return early->status;
    });
    http->set_pre_routing_handler([this](const Request& req, Response& res) {
      auto early = validator.check_headers(req.method, req.path, headers_of(req));
      if (!early) return handler_response::Unhandled;  // POST to the path: on to read_delivery
      answer(req, res, *early, announces_body(req));
      return handler_response::Handled;
    });
    http->Post(".*", [this](const Request& req, Response& res, const httplib::ContentReader& read) {
      read_delivery(req, res, read);
    });
    http->set_error_handler(
        httplib::Server::HandlerWithResponse([this](const Request& req, Response& res) {
          if (res.has_header("Content-Type")) return handler_response::Unhandled;  // ours
          refused_by_httplib(req, res);
          return handler_response::Handled;
        }));
    http->set_exception_handler([this](const Request& req, Response& res,
                                       const std::exception_ptr&) {
      answer(req, res,
             unloc::make_refusal(unloc::delivery_outcome::unavailable, "internal failure"), true);
    });
  }

  static unloc::http_headers headers_of(const Request& req) {
    return unloc::http_headers::from(req.headers);
  }

  void read_delivery(const Request& req, Response& res, const httplib::ContentReader& read) {
    const auto headers = headers_of(req);  // once; its lookups are cheaper than httplib's
    std::string body;  // at most max_body + 1 bytes: one more than allowed decides 413
    bool complete = true;
    // No Content-Length and no Transfer-Encoding: no body (httplib would read to EOF).
    if (headers.get("Content-Length") || headers.get("Transfer-Encoding")) {
      complete = read([&](const char* data, std::size_t size) {
        body.append(data, std::min(size, opts.max_body + 1 - body.size()));
        return body.size() <= opts.max_body;
      });
    }
    auto d = !complete && body.size() <= opts.max_body
                 ? unloc::make_refusal(unloc::delivery_outcome::malformed_body,
                                       "the body could not be read: it ended early, or its "
                                       "chunked framing or Content-Encoding is malformed")
                 : validator.validate({req.method, req.path, headers, body});
    std::optional<unloc::offer_outcome> offered;
    if (d.ok()) {
      auto handed = reconciler->offer(*d.event);
      if (!handed) {
        // The details go to stderr only: a response never carries an error's text.
        diagnostic("event " + d.event->id.to_string() +
                   " not handed over, answered 503: " + handed.error().message);
        d = unloc::make_refusal(unloc::delivery_outcome::unavailable,
                                "the event could not be taken now; deliver it again later");
      } else if (*handed == unloc::offer_outcome::held_elsewhere) {
        d = unloc::make_refusal(unloc::delivery_outcome::unavailable,
                                "the event is being handled by another delivery; retry");
        d.headers.add("Retry-After", "1");
      } else {
        offered = *handed;
      }
    }
    answer(req, res, d, !complete, offered);
  }

  // httplib answered before any handler (an unknown method, a malformed request
  // line or header, an over-long target): the validator decides what it can.
  void refused_by_httplib(const Request& req, Response& res) {
    std::optional<unloc::delivery_decision> d;
    const bool http1 = req.version == "HTTP/1.1" || req.version == "HTTP/1.0";
    if (res.status == 400 && http1 && req.method != "POST" && req.headers.empty() &&
        req.target.rfind('/', 0) == 0) {
      d = validator.check_headers(req.method, req.target, {});  // an unknown method: 404 or 405
    }
    answer(req, res,
           d ? std::move(*d)
             : refusal(res.status, "malformed_request", "malformed request line or header"),
           true);
  }

  void log(const Request& req, const unloc::delivery_decision& d,
           std::optional<unloc::offer_outcome> offered) {
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
      diagnostic(std::to_string(d.status) + " " + describe(req) + ": " + d.message);
    }
  }

  // Fills in the response (closing the connection after it when `close`); the body's size.
  std::size_t answer(const Request& req, Response& res, const unloc::delivery_decision& d,
                     bool close, std::optional<unloc::offer_outcome> offered = std::nullopt) {
    log(req, d, offered);
    res.status = d.status;
    for (const auto& h : d.headers) {
      if (!unloc::detail::ascii_iequals(h.name, "Content-Type")) res.set_header(h.name, h.value);
    }
    std::string body = d.body;  // an error always has a JSON body (the error hook relies on it)
    if (body.empty() && d.status >= 400) {
      body = nlohmann::json{{"error", unloc::to_string(d.outcome)}, {"message", d.message}}.dump();
    }
    if (!close) {
      if (!body.empty()) res.set_content(body, "application/json");
      return body.size();
    }
    // httplib 0.11 keeps the connection whatever the response says; a content
    // provider that fails once it has written the body is its one way to close it.
    res.set_header("Connection", "close");
    res.set_content_provider(
        body.size(), "application/json",
        [body](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
          sink.write(body.data() + offset, length);
          return false;
        });
    return body.size();
  }
};

server::server(const options& opts, unloc::reconciler* reconciler)
    : impl_(std::make_unique<impl>(opts, reconciler)) {
  if (opts.plain_http) {
    impl_->adopt(std::make_unique<listener<httplib::Server>>());
  } else {
    impl_->adopt(std::make_unique<listener<httplib::SSLServer>>(
        [this](SSL_CTX& ctx) { return impl_->load_tls(ctx); }));
  }
  if (!impl_->error.empty()) return;
  if (!impl_->http->is_valid()) {
    impl_->error = "cannot set up TLS: " + openssl_error();
    return;
  }
  impl_->configure();
}

server::~server() = default;

const std::string& server::error() const { return impl_->error; }

int server::bind() {
  const auto& o = impl_->opts;
  const int port = o.port == 0 ? impl_->http->bind_to_any_port(o.host)
                               : (impl_->http->bind_to_port(o.host, o.port) ? o.port : -1);
  if (port <= 0) {
    impl_->error =
        "cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " + std::strerror(errno);
    return 0;
  }
  impl_->raise_backlog();
  return port;
}

bool server::run() { return impl_->http->listen_after_bind(); }

void server::stop() { impl_->close_listener(); }

}  // namespace receiver

// An existing Boost.Beast service that also takes Unloc webhook deliveries.
// It already answers GET /status; <unloc/beast.hpp> adds POST /accessEvents:
// the head is checked before the body is read (check_headers), the body is read
// with Beast's body_limit at the validator's max_body_bytes, and each decision
// goes back as a Beast response (to_response). Each new Access Event is printed
// once, as one JSON line; an unloc::memory_event_store remembers them.
//
//   UNLOC_WEBHOOK_USER=... UNLOC_WEBHOOK_PASSWORD=... beast_service [PORT [PORT_FILE]]
//
// Plain HTTP on 127.0.0.1, to stay short: Unloc delivers over HTTPS only, so put
// it behind your TLS terminator, or wrap the stream in an asio::ssl::stream as
// your service may already do. unloc-webhook-receiver is the production version.

#include <unloc/beast.hpp>
#include <unloc/core.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// What every connection shares: the validator (immutable) and the events handled.
struct service {
  explicit service(unloc::delivery_validator v) : validator(std::move(v)) {}
  unloc::delivery_validator validator;
  unloc::memory_event_store events;  // or a store over your own database
};

// Your work for a valid event, once: claim it, act, mark it handled.
unloc::delivery_decision handle_event(service& s, unloc::delivery_decision decision) {
  const unloc::access_event& event = *decision.event;
  const auto claim = s.events.claim(event.id, event.created);
  if (!claim || claim->status == unloc::claim_status::held_elsewhere) {
    auto busy = unloc::make_refusal(unloc::delivery_outcome::unavailable, "try again later");
    busy.headers.add("Retry-After", "1");
    return busy;
  }
  if (claim->status == unloc::claim_status::mine) {
    std::cout << unloc::to_json_text(event) << std::endl;  // the work: here, a line, flushed
    (void)s.events.mark_handled(event.id, claim->token);
  }
  return decision;  // 204, for a repeat too
}

// One connection: requests one after another, each under one deadline.
class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, service& s) : stream_(std::move(socket)), service_(s) {}

  void read_head() {
    parser_.emplace();
    parser_->header_limit(8 * 1024);
    // No limit yet: Beast would refuse a long Content-Length (413) before the
    // credentials are checked (401). read_body() sets it.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());  // boost::none fails in 1.74
    stream_.expires_after(std::chrono::seconds(30));  // the whole request, head and body
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_head(ec); });
  }

 private:
  void on_head(beast::error_code ec) {
    if (ec) return close();
    const auto& head = parser_->get();
    if (head.method() == http::verb::get && head.target() == "/status") {  // the service's own
      http::response<http::string_body> res{http::status::ok, head.version()};
      res.set(http::field::content_type, "text/plain");
      res.body() = "up\n";
      res.keep_alive(head.keep_alive());
      res.prepare_payload();
      return write(std::move(res));
    }
    // 404, 405, 401, 415, or 413 from Content-Length: answered before any body is read.
    if (auto early = unloc::beast::check_headers(service_.validator, head)) {
      return write(unloc::beast::to_response(*early, head));
    }
    if (beast::iequals(head[http::field::expect], "100-continue")) {
      // Only now that the head passed: the sender waits for this to send the body.
      auto go_on = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                      head.version());
      http::async_write(stream_, *go_on,
                        [self = shared_from_this(), go_on](beast::error_code ec, std::size_t) {
                          if (ec) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    parser_->body_limit(service_.validator.options().max_body_bytes);  // a chunked body too
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
  }

  void on_body(beast::error_code ec) {
    if (ec == http::error::body_limit) {  // a chunked body, refused as it grew past the limit
      return write(unloc::beast::to_response(
          unloc::make_refusal(unloc::delivery_outcome::payload_too_large, "body over the limit"),
          parser_->get()));
    }
    if (ec) return close();
    auto decision = unloc::beast::validate(service_.validator, parser_->get());
    if (decision.ok()) decision = handle_event(service_, std::move(decision));
    write(unloc::beast::to_response(decision, parser_->get()));
  }

  void write(http::response<http::string_body> res) {
    if (!parser_->is_done()) res.keep_alive(false);  // an unread body would pass for a request
    auto shared = std::make_shared<http::response<http::string_body>>(std::move(res));
    http::async_write(stream_, *shared,
                      [self = shared_from_this(), shared](beast::error_code ec, std::size_t) {
                        if (ec || !shared->keep_alive()) return self->close();
                        self->read_head();
                      });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  service& service_;
};

void accept(tcp::acceptor& acceptor, service& s) {
  acceptor.async_accept([&acceptor, &s](beast::error_code ec, tcp::socket socket) {
    if (!ec) std::make_shared<session>(std::move(socket), s)->read_head();
    if (acceptor.is_open()) accept(acceptor, s);
  });
}

}  // namespace

int main(int argc, char** argv) try {
  // Once, at start-up: the credentials in the URL you registered with Unloc.
  const char* user = std::getenv("UNLOC_WEBHOOK_USER");
  const char* password = std::getenv("UNLOC_WEBHOOK_PASSWORD");
  if (user == nullptr || password == nullptr) {
    std::cerr << "beast_service: set UNLOC_WEBHOOK_USER and UNLOC_WEBHOOK_PASSWORD\n";
    return 2;
  }
  unloc::delivery_options options;
  options.credentials = {{user, password}};
  auto validator = unloc::delivery_validator::create(options);
  if (!validator) {
    std::cerr << "beast_service: " << unloc::to_string(validator.error()) << "\n";
    return 2;
  }
  service s(std::move(*validator));

  const auto port = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 8080;
  if (port > 65535) {
    std::cerr << "usage: beast_service [PORT [PORT_FILE]]\n";
    return 2;
  }
  asio::io_context io;
  tcp::acceptor acceptor(io,
                         {asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  if (argc > 2) {  // the port it listens on, for a test that asked for port 0
    const std::string ready = std::string(argv[2]) + ".tmp";
    std::ofstream(ready) << acceptor.local_endpoint().port() << "\n";
    std::rename(ready.c_str(), argv[2]);
  }
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](beast::error_code, int) { io.stop(); });
  accept(acceptor, s);
  io.run();
  return 0;
} catch (const std::exception& e) {
  std::cerr << "beast_service: " << e.what() << "\n";
  return 1;
}

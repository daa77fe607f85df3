// unloc_bench_bare_beast_server: the baseline of receiver_load. A bare Boost.Beast
// HTTPS server with the receiver's settings (a thread a core, a strand a
// connection, TLS 1.2+ with ECDHE and AEAD suites only, TCP_NODELAY, keep-alive,
// the strand's concrete executor type rather than asio's type-erased
// any_io_executor), its threads sharing one io_context as in Beast's examples
// (the receiver gives each its own; made so, this server ran at 0.91 of itself).
// It answers 204 to any request after reading its body, and writes one line a
// request to stdout, flushed, as the receiver writes each event. No validation,
// no limits beyond Beast's own, no deadlines.
//
//   unloc_bench_bare_beast_server CERT KEY PORT_FILE     (stops on SIGINT or SIGTERM)

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using strand = asio::strand<asio::io_context::executor_type>;
using socket_type = asio::basic_stream_socket<tcp, strand>;

namespace {

std::mutex out_mutex;

class session : public std::enable_shared_from_this<session> {
 public:
  session(socket_type socket, ssl::context& tls) : stream_(std::move(socket), tls) {}

  void start() {
    stream_.async_handshake(ssl::stream_base::server,
                            [self = shared_from_this()](beast::error_code ec) {
                              if (!ec) self->read();
                            });
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(65536);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (!ec) self->answer();
                     });
  }

  void answer() {
    const auto& request = parser_->get();
    {
      const std::lock_guard<std::mutex> lock(out_mutex);
      std::fwrite(request.body().data(), 1, request.body().size(), stdout);
      std::fputc('\n', stdout);
      std::fflush(stdout);
    }
    response_.emplace(http::status::no_content, request.version());
    response_->keep_alive(request.keep_alive());
    http::async_write(stream_, *response_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (!ec && self->response_->keep_alive()) self->read();
                      });
  }

  beast::ssl_stream<beast::basic_stream<tcp, strand>> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> response_;
};

void accept(asio::io_context& io, tcp::acceptor& acceptor, ssl::context& tls) {
  acceptor.async_accept(asio::make_strand(io),
                        [&io, &acceptor, &tls](beast::error_code ec, socket_type socket) {
                          if (!ec) {
                            socket.set_option(tcp::no_delay(true), ec);
                            std::make_shared<session>(std::move(socket), tls)->start();
                          }
                          if (acceptor.is_open()) accept(io, acceptor, tls);
                        });
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s CERT KEY PORT_FILE\n", argv[0]);
    return 2;
  }
  ssl::context tls(ssl::context::tls_server);
  tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                  ssl::context::single_dh_use);
  // Mozilla "intermediate" without its DHE suites: ECDHE and AEAD only (TLS 1.3's are all AEAD).
  if (SSL_CTX_set_cipher_list(tls.native_handle(),
                              "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                              "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                              "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") != 1) {
    std::fprintf(stderr, "bare beast server: cipher list refused\n");
    return 1;
  }
  tls.use_certificate_chain_file(argv[1]);
  tls.use_private_key_file(argv[2], ssl::context::pem);

  const unsigned threads = std::max(1U, std::thread::hardware_concurrency());
  asio::io_context io(static_cast<int>(threads));
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  {
    const std::string temporary = std::string(argv[3]) + ".tmp";
    std::ofstream(temporary) << acceptor.local_endpoint().port() << "\n";
    std::rename(temporary.c_str(), argv[3]);
  }
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](beast::error_code, int) { io.stop(); });
  accept(io, acceptor, tls);
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : pool) t.join();
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bare beast server: %s\n", e.what());
  return 1;
}

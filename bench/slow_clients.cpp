// unloc_bench_slow_clients: the attack of receiver_under_attack. COUNT TLS
// connections to 127.0.0.1:PORT, each from its own loopback address
// (127.0.0.2, .3, ...: a distributed attack, which a per-client cap alone does
// not stop), each sending a request head without credentials one header line a
// second, never finishing it. A connection the server closes is opened again,
// as an attacker would. After the first pass writes READY_FILE with how many
// the server let in; on SIGINT or SIGTERM prints "info ..." counters and exits.
//
//   unloc_bench_slow_clients PORT COUNT READY_FILE

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

volatile std::sig_atomic_t stopping = 0;
void on_signal(int) { stopping = 1; }

struct dripper {
  int fd = -1;
  SSL* ssl = nullptr;
  int lines = 0;
  steady::time_point due;
};

void drop(dripper& d) {
  if (d.ssl != nullptr) SSL_free(d.ssl);
  if (d.fd >= 0) ::close(d.fd);
  d = dripper{};
}

bool send_all(dripper& d, const std::string& text) {
  return SSL_write(d.ssl, text.data(), static_cast<int>(text.size())) ==
         static_cast<int>(text.size());
}

// Connects from 127.0.0.<2 + index % 250>, shakes hands (5 s at most), sends the request line.
bool open(dripper& d, SSL_CTX* tls, int port, std::size_t index) {
  d.fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (d.fd < 0) return false;
  timeval timeout{5, 0};
  ::setsockopt(d.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(d.fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  from.sin_addr.s_addr = htonl(0x7f000002U + static_cast<std::uint32_t>(index % 250));
  (void)::bind(d.fd, reinterpret_cast<sockaddr*>(&from), sizeof from);  // else 127.0.0.1
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(d.fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return false;
  d.ssl = SSL_new(tls);
  SSL_set_fd(d.ssl, d.fd);
  if (SSL_connect(d.ssl) != 1) return false;
  ::fcntl(d.fd, F_SETFL, ::fcntl(d.fd, F_GETFL) | O_NONBLOCK);  // for answered() below
  d.due = steady::now() + 1s;
  return send_all(d, "POST /accessEvents HTTP/1.1\r\nHost: 127.0.0.1\r\n");
}

// True when the server answered or closed; false for TLS 1.3 session tickets alone.
bool answered(dripper& d) {
  char data[512];
  const int n = SSL_read(d.ssl, data, sizeof data);
  if (n > 0) return true;
  const int error = SSL_get_error(d.ssl, n);
  ERR_clear_error();
  return error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s PORT COUNT READY_FILE\n", argv[0]);
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const auto count = static_cast<std::size_t>(std::atoi(argv[2]));
  if (port <= 0 || port > 65535 || count == 0 || count > 10000) return 2;
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  SSL_CTX* tls = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(tls, SSL_VERIFY_NONE, nullptr);  // an attacker checks nothing

  std::vector<dripper> clients(count);
  std::vector<pollfd> watched;
  std::vector<std::size_t> owners;  // watched[k] is clients[owners[k]]
  long opened = 0, cut = 0, failed = 0;
  bool ready = false;
  while (stopping == 0) {
    std::size_t open_now = 0;
    const auto now = steady::now();
    for (std::size_t i = 0; i < clients.size() && stopping == 0; ++i) {
      auto& d = clients[i];
      if (d.ssl == nullptr) {
        if (!open(d, tls, port, i)) {
          drop(d);
          ERR_clear_error();
          ++failed;
          continue;
        }
        ++opened;
      } else if (now >= d.due) {
        d.due += 1s;
        if (!send_all(d, "X-Drip-" + std::to_string(++d.lines) + ": a\r\n")) {
          drop(d);
          ERR_clear_error();
          ++cut;
          continue;
        }
      }
      ++open_now;
    }
    if (!ready) {  // after one pass: as many as the server let in
      const std::string temporary = std::string(argv[3]) + ".tmp";
      std::ofstream(temporary) << open_now << "\n";
      std::rename(temporary.c_str(), argv[3]);
      ready = true;
    }
    // Sleep until the server answers or closes one (then open it again), or 50 ms.
    watched.clear();
    owners.clear();
    for (std::size_t i = 0; i < clients.size(); ++i) {
      if (clients[i].ssl == nullptr) continue;
      watched.push_back(pollfd{clients[i].fd, POLLIN, 0});
      owners.push_back(i);
    }
    if (::poll(watched.data(), watched.size(), 50) <= 0) continue;
    for (std::size_t k = 0; k < watched.size(); ++k) {
      if (watched[k].revents == 0 || !answered(clients[owners[k]])) continue;
      drop(clients[owners[k]]);
      ++cut;
    }
  }
  std::printf(
      "info %zu slow clients: %ld connections opened, %ld cut by the server, "
      "%ld refused or failed\n",
      count, opened, cut, failed);
  for (auto& d : clients) drop(d);
  SSL_CTX_free(tls);
  return 0;
}

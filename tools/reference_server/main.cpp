// unloc-reference-server: the Unloc API on loopback over HTTPS (see --help).
// This file: startup (options, TLS listener, port file) and a clean stop on
// SIGINT/SIGTERM.

#include "api.hpp"
#include "delivery.hpp"
#include "faults.hpp"
#include "options.hpp"
#include "seed.hpp"
#include "stats.hpp"
#include "store.hpp"
#include <arpa/inet.h>
#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>

namespace refserver {
namespace {

// httplib's TLS server, with access to its listening socket.
class tls_listener : public httplib::SSLServer {
 public:
  using httplib::SSLServer::SSLServer;
  // httplib listens with a backlog of 5: too few when many clients connect at once.
  void raise_backlog() { ::listen(svr_sock_, SOMAXCONN); }
};

int local_port(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return -1;
  if (address.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
  }
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
  }
  return -1;
}

// Ends the kept-alive connections that clients accepted by the listener still
// hold open, so that httplib's threads, each waiting on one, finish now rather
// than after the keep-alive timeout.
void shut_down_accepted_connections(int port) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (const dirent* entry = ::readdir(dir)) {
    const int fd = std::atoi(entry->d_name);
    if (fd <= 2 || fd == ::dirfd(dir)) continue;
    sockaddr_storage peer{};
    socklen_t length = sizeof peer;
    if (local_port(fd) == port &&
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) == 0) {
      ::shutdown(fd, SHUT_RDWR);
    }
  }
  ::closedir(dir);
}

bool write_port_file(const std::string& path, int port) {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  std::FILE* file = std::fopen(temporary.c_str(), "w");
  if (file == nullptr) return false;
  const bool written = std::fprintf(file, "%d\n", port) > 0;
  const bool flushed = std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0;
  const bool closed = std::fclose(file) == 0;
  if (!written || !flushed || !closed || std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    return false;
  }
  return true;
}

void print_configuration(const server_options& options) {
  std::fprintf(stderr, "unloc-reference-server: project %s%s, client id %s%s, client secret %s\n",
               options.project_id.c_str(), options.uses_default_project ? " (default)" : "",
               options.client_id.c_str(), options.uses_default_client_id ? " (default)" : "",
               options.uses_default_secret
                   ? "the default development secret (UNLOC_CLIENT_SECRET is not set)"
                   : "from UNLOC_CLIENT_SECRET");
}

int run(const server_options& options) {
  // Every thread inherits this mask; only sigwait below receives the stop signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A peer that closes first must not kill the server through a TLS write.
  std::signal(SIGPIPE, SIG_IGN);

  print_configuration(options);
  store state;
  if (!options.seed_file.empty()) {
    if (auto problem = load_seed(state, options.seed_file, options.allow_http_loopback_webhooks);
        !problem.empty()) {
      std::fprintf(stderr, "unloc-reference-server: %s\n", problem.c_str());
      return 1;
    }
  }
  request_stats stats;
  fault_registry faults;
  delivery_settings settings;
  settings.attempts = options.delivery_attempts;
  settings.backoff = options.delivery_backoff;
  settings.workers = options.delivery_workers;
  settings.ca_file = options.webhook_ca;
  settings.allow_http_loopback = options.allow_http_loopback_webhooks;
  settings.seed = options.random_seed;
  settings.log = options.log_requests;
  settings.is_registered = [&state](const unloc::uuid& id) { return state.has_webhook(id); };
  delivery_service delivery(std::move(settings));

  tls_listener server(options.cert_file.c_str(), options.key_file.c_str());
  if (!server.is_valid()) {
    std::fprintf(stderr, "unloc-reference-server: cannot load the certificate '%s' or key '%s'\n",
                 options.cert_file.c_str(), options.key_file.c_str());
    return 1;
  }
  const auto threads = static_cast<std::size_t>(options.threads);
  server.new_task_queue = [threads, &stats] { return new counting_thread_pool(threads, stats); };
  // SO_REUSEADDR only: httplib's default SO_REUSEPORT would let a second server
  // bind the same port and silently share its connections.
  server.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(10000);
  server.set_keep_alive_timeout(options.keep_alive_timeout_seconds);
  server.set_payload_max_length(1 << 20);
  server.set_read_timeout(10);
  server.set_write_timeout(10);
  SSL_CTX* tls = server.ssl_context();
  stats.set_tls_counters([tls] {
    return std::pair<long, long>{SSL_CTX_sess_accept_good(tls), SSL_CTX_sess_hits(tls)};
  });

  server_context context{options, state, faults, delivery, stats};
  add_common_handlers(server, context);
  add_api_routes(server, context);
  add_admin_routes(server, context);

  int port = options.port;
  if (port == 0) {
    port = server.bind_to_any_port(options.host);
  } else if (!server.bind_to_port(options.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    std::fprintf(stderr, "unloc-reference-server: cannot listen on %s:%d\n", options.host.c_str(),
                 options.port);
    return 1;
  }
  server.raise_backlog();
  delivery.start();
  std::thread listener([&server] { server.listen_after_bind(); });

  // The socket listens already: connections made from now on are accepted.
  const std::string host =
      options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host;
  int status = 0;
  if (!options.port_file.empty() && !write_port_file(options.port_file, port)) {
    std::fprintf(stderr, "unloc-reference-server: cannot write the port file '%s'\n",
                 options.port_file.c_str());
    status = 1;
  } else {
    std::printf("listening on https://%s:%d\n", host.c_str(), port);
    std::fflush(stdout);
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    std::fprintf(stderr, "unloc-reference-server: stopping (%s)\n",
                 signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  }
  server.stop();
  faults.interrupt();
  delivery.stop();  // also wakes /_admin/deliveries/wait
  shut_down_accepted_connections(port);
  listener.join();
  return status;
}

}  // namespace
}  // namespace refserver

int main(int argc, char** argv) {
  auto parsed = refserver::parse_command_line(argc, argv);
  if (!parsed.options) return parsed.exit_code;
  try {
    return refserver::run(*parsed.options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unloc-reference-server: %s\n", e.what());
    return 1;
  }
}

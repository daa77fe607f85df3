// unloc_bench_bare_server: the baseline of receiver_load. A bare cpp-httplib
// HTTPS server with TCP_NODELAY and a high keep-alive limit that answers 204 to
// any POST without looking at the body (httplib still reads it off the wire).
//
//   unloc_bench_bare_server CERT KEY PORT_FILE     (stops on SIGINT or SIGTERM)

#include <httplib.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s CERT KEY PORT_FILE\n", argv[0]);
    return 2;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // every thread inherits it; sigwait takes them
  std::signal(SIGPIPE, SIG_IGN);

  httplib::SSLServer server(argv[1], argv[2]);
  if (!server.is_valid()) {
    std::fprintf(stderr, "bare server: cannot load %s and %s\n", argv[1], argv[2]);
    return 1;
  }
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(100000);
  server.Post(".*", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  const int port = server.bind_to_any_port("127.0.0.1");
  if (port <= 0) return 1;
  std::thread listener([&server] { server.listen_after_bind(); });
  {
    const std::string temporary = std::string(argv[3]) + ".tmp";
    std::ofstream(temporary) << port << "\n";
    std::rename(temporary.c_str(), argv[3]);
  }
  int signal = 0;
  sigwait(&stop, &signal);
  server.stop();
  listener.join();
  return 0;
}

// unloc-webhook-receiver: a ready HTTPS endpoint for Unloc's Access Event
// webhooks. A thin shell over unloc::delivery_validator (which decides every
// status) on Debian's cpp-httplib: it prints each new event as a JSON line.

#include "options.hpp"

#include <unloc/core.hpp>

#include <httplib.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <sys/socket.h>
#include <unistd.h>

namespace {

int signal_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int /*signal*/) {
  const char byte = 1;
  (void)!write(signal_pipe[1], &byte, 1);  // async-signal-safe; the watcher does the rest
}

// httplib's server with access to its listening socket: httplib listens with a
// backlog of 5, too few when many clients connect at once.
template <typename Base>
class listener final : public Base {
 public:
  using Base::Base;
  void raise_backlog() { ::listen(this->svr_sock_, SOMAXCONN); }
};

std::mutex output_mutex;  // one line at a time on stdout and on stderr

void diagnostic(const std::string& line) {
  const std::lock_guard<std::mutex> lock(output_mutex);
  std::cerr << "unloc-webhook-receiver: " << line << std::endl;
}

void answer(const unloc::delivery_decision& d, httplib::Response& res, bool body_left_unread) {
  res.status = d.status;
  for (const auto& h : d.headers) {
    if (!unloc::detail::ascii_iequals(h.name, "Content-Type")) res.set_header(h.name, h.value);
  }
  if (!d.body.empty()) res.set_content(d.body, "application/json");
  // Bytes of a body we refused to read would be taken for the next request.
  if (body_left_unread) res.set_header("Connection", "close");
  if (d.is_new()) {
    const std::string line = unloc::to_json_text(*d.event);
    const std::lock_guard<std::mutex> lock(output_mutex);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
}

void log_decision(const httplib::Request& req, const unloc::delivery_decision& d) {
  if (d.is_new()) {
    if (d.late) {
      const auto minutes = std::chrono::duration_cast<std::chrono::minutes>(d.lag).count();
      diagnostic("event " + d.event->id.to_string() + " arrived " + std::to_string(minutes / 60) +
                 " h " + std::to_string(minutes % 60) + " min after it happened (late, accepted)");
    }
  } else if (d.ok()) {
    diagnostic("event " + d.event->id.to_string() + " delivered again: acknowledged, not printed");
  } else {
    diagnostic(std::to_string(d.status) + " " + req.method + " " + req.path + ": " + d.message);
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = receiver::parse_options(argc, argv);
  if (parsed.exit_now >= 0) return parsed.exit_now;
  const receiver::options& o = parsed.opts;
  std::signal(SIGPIPE, SIG_IGN);  // a peer that hangs up must not kill the process

  unloc::delivery_options policy;
  policy.path = o.path;
  policy.credentials = o.credentials;
  policy.require_authentication = !o.no_auth;
  policy.max_body_bytes = o.max_body;
  policy.duplicates = std::make_shared<unloc::memory_duplicate_store>();  // bounded: 100,000 ids
  const unloc::delivery_validator validator(policy);

  std::unique_ptr<httplib::Server> server;
  std::function<void()> raise_backlog;
  if (o.plain_http) {
    diagnostic("WARNING: --plain-http: deliveries and credentials travel in clear; loopback tests only");
    auto plain = std::make_unique<listener<httplib::Server>>();
    raise_backlog = [s = plain.get()] { s->raise_backlog(); };
    server = std::move(plain);
  } else {
    auto tls = std::make_unique<listener<httplib::SSLServer>>(o.cert_file.c_str(), o.key_file.c_str());
    raise_backlog = [s = tls.get()] { s->raise_backlog(); };
    server = std::move(tls);
  }
  if (!server->is_valid()) {
    diagnostic("cannot load the certificate or key (--cert, --key)");
    return 1;
  }
  if (o.no_auth) diagnostic("WARNING: --no-auth: deliveries are accepted without credentials");

  // httplib's defaults stall every new TLS connection (Nagle) and reopen connections every 5 requests.
  server->set_tcp_nodelay(true);
  server->set_keep_alive_max_count(10000);
  // Short idle and read timeouts: a stop waits for idle keep-alive connections, and a
  // client that stalls mid-request (slowloris) holds a worker only this long.
  server->set_keep_alive_timeout(2);
  server->set_read_timeout(5);
  server->set_write_timeout(5);
  server->set_payload_max_length(o.max_body + 1);  // bodies of other methods, read by httplib
  server->new_task_queue = [] { return new httplib::ThreadPool(32); };

  const auto without_body = [&](const httplib::Request& req, httplib::Response& res) {
    const auto headers = unloc::http_headers::from(req.headers);
    const auto d = validator.validate({req.method, req.path, headers, req.body});
    log_decision(req, d);
    answer(d, res, false);
  };
  const auto with_body = [&](const httplib::Request& req, httplib::Response& res,
                             const httplib::ContentReader& read) {
    const auto headers = unloc::http_headers::from(req.headers);
    if (auto early = validator.check_headers(req.method, req.path, headers)) {
      log_decision(req, *early);
      answer(*early, res, true);
      return;
    }
    std::string body;  // at most max_body + 1 bytes: one more than allowed is enough to refuse
    bool complete = read([&](const char* data, std::size_t size) {
      body.append(data, std::min(size, o.max_body + 1 - body.size()));
      return body.size() <= o.max_body;
    });
    const auto d = validator.validate({req.method, req.path, headers, body});
    log_decision(req, d);
    answer(d, res, !complete);
  };
  for (const char* pattern : {R"(.*)"}) {
    server->Get(pattern, without_body);
    server->Options(pattern, without_body);
    server->Post(pattern, with_body);
    server->Put(pattern, with_body);
    server->Patch(pattern, with_body);
    server->Delete(pattern, with_body);
  }

  const int port = o.port == 0 ? server->bind_to_any_port(o.host) : o.port;
  if (port <= 0 || (o.port != 0 && !server->bind_to_port(o.host, o.port))) {
    diagnostic("cannot listen on " + o.host + ":" + std::to_string(o.port));
    return 1;
  }
  raise_backlog();
  if (!o.port_file.empty()) {
    const std::string temporary = o.port_file + ".tmp";
    std::ofstream(temporary) << port << "\n";
    std::rename(temporary.c_str(), o.port_file.c_str());
  }
  diagnostic(std::string("listening on ") + (o.plain_http ? "http" : "https") + "://" + o.host +
             ":" + std::to_string(port) + o.path);

  if (pipe(signal_pipe) != 0) return 1;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::thread watcher([&server] {
    char byte = 0;
    while (read(signal_pipe[0], &byte, 1) < 0) {
    }
    server->stop();
  });

  server->listen_after_bind();
  const char byte = 0;
  (void)!write(signal_pipe[1], &byte, 1);  // the server stopped on its own: release the watcher
  watcher.join();
  diagnostic("stopped");
  return 0;
}

// unloc-webhook-receiver: a ready HTTPS endpoint for Unloc's Access Event
// webhooks, a thin shell over unloc::delivery_validator (which decides every
// status). It prints each new event as one JSON line on stdout and, with
// --store, writes it to the store's events table.

#include "options.hpp"
#include "reconciliation.hpp"
#include "server.hpp"
#include "store.hpp"
#include "systemd.hpp"
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

namespace {

int signal_pipe[2] = {-1, -1};
std::atomic<bool> stopping{false};  // once the server stopped: a log read in progress ends

// Async-signal-safe: only writes the signal's number; the watcher thread does the rest.
extern "C" void on_stop_signal(int signal) {
  const int saved_errno = errno;
  const auto byte = static_cast<char>(signal);
  (void)!::write(signal_pipe[1], &byte, 1);
  errno = saved_errno;
}

bool install_stop_signals() {
  if (::pipe2(signal_pipe, O_CLOEXEC) != 0) return false;
  // A full pipe must not block the handler: a stop is already pending then.
  ::fcntl(signal_pipe[1], F_SETFL, O_NONBLOCK);
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  return ::sigaction(SIGINT, &action, nullptr) == 0 &&
         ::sigaction(SIGTERM, &action, nullptr) == 0 && ::sigaction(SIGHUP, &action, nullptr) == 0;
}

// Waits for a signal (or for wake_watcher()); the signal's number, 0 for a wake-up.
int wait_for_stop() {
  char byte = 0;
  while (::read(signal_pipe[0], &byte, 1) < 0 && errno == EINTR) {
  }
  return byte;
}

void wake_watcher() {
  const char byte = 0;
  (void)!::write(signal_pipe[1], &byte, 1);
}

// Each connection takes a file descriptor: the soft limit (often 1024) up to
// the hard one, so that --max-connections, not EMFILE, is what refuses.
// The limit now in force.
rlim_t raise_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return RLIM_INFINITY;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

// Written whole or not at all (a temporary file renamed), so a script polling
// for the file never reads half a number.
bool write_port_file(const std::string& file, int port) {
  const std::string temporary = file + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << port << "\n";
    if (!out.flush()) return false;
  }
  return std::rename(temporary.c_str(), file.c_str()) == 0;
}

// --import-state: the file journal's state into the store, said on stderr.
bool import_state(const receiver::options& o, unloc::event_store& store) {
  auto imported = receiver::import_file_journal(o.import_state, store);
  if (!imported) {
    receiver::diagnostic(imported.error().message);
    return false;
  }
  if (imported->already_imported) {
    receiver::diagnostic("--import-state: " + o.import_state +
                         " was imported before (" + o.import_state + ".imported): nothing to do");
    return true;
  }
  for (const auto& id : imported->in_doubt) {
    receiver::diagnostic("--import-state: event " + id.to_string() +
                         " was being printed when the file journal's receiver last stopped: if it "
                         "comes again, it is taken again (it may have been printed then)");
  }
  receiver::diagnostic("--import-state: " + std::to_string(imported->handled) +
                       " events handled and " + std::to_string(imported->checkpoints) +
                       " access log checkpoints carried into the store; " +
                       std::to_string(imported->unreadable) +
                       " unreadable lines skipped (their events are taken again if they come "
                       "again); " + o.import_state + " renamed " + o.import_state + ".imported");
  return true;
}

// Each new event: printed (unless --no-print); the reconciler writes it to the store.
// Deliveries under --no-print have no handler (main): the store records them alone.
unloc::reconciler::handler_function event_handler(const receiver::options& o) {
  return [print = o.print](const unloc::access_event& event, const unloc::handover& how) {
    // Refusing once stopping ends a long log read at once, its checkpoint unmoved.
    if (stopping) return false;
    if (how.possibly_repeated) {
      receiver::diagnostic("event " + event.id.to_string() +
                           (print ? " possibly printed before" : " possibly taken before") +
                           ": an earlier handling of it was left unsettled (a receiver stopped, "
                           "or the database failed, between its claim and its mark)");
    }
    return !print || receiver::print_event(event);
  };
}

}  // namespace

int main(int argc, char** argv) {
  const auto parsed = receiver::parse_options(argc, argv);
  if (parsed.exit_status >= 0) return parsed.exit_status;
  const receiver::options& o = parsed.opts;
  std::signal(SIGPIPE, SIG_IGN);  // a peer that hangs up must not kill the process
  // Room for the listeners, the state files and the metrics connections too.
  if (const rlim_t files = raise_file_limit(); files < o.max_connections + 64) {
    receiver::diagnostic("WARNING: --max-connections " + std::to_string(o.max_connections) +
                         " is near or over the open-file limit " + std::to_string(files) +
                         " (ulimit -n): past it, connections wait in the kernel's queue");
  }

  if (o.plain_http) {
    receiver::diagnostic(
        "WARNING: --plain-http: no TLS, credentials and events travel in clear; loopback tests "
        "only");
  }
  if (o.no_auth) {
    receiver::diagnostic("WARNING: --no-auth: deliveries are accepted without credentials");
  }
  auto store = receiver::open_store(o);
  if (!store) {
    receiver::diagnostic("--store: " + store.error().message);
    return 1;
  }
  if (!o.import_state.empty() && !import_state(o, **store)) return 1;
  // With --no-print a delivery's only work is the store's record: one transaction (no handler).
  // Else, on SQLite, the line is printed inside that transaction: one commit a delivery, not a
  // claim's and then the mark's.
  unloc::reconciler_options settings;
  settings.handler_in_store_transaction = receiver::handles_inside_transaction(o);
  unloc::reconciler reconciler(*store, o.print ? event_handler(o) : nullptr, settings);
  std::unique_ptr<receiver::log_poller> poller;
  if (o.reconcile) {
    poller = std::make_unique<receiver::log_poller>(o, *store, event_handler(o));
    if (!poller->error().empty()) {
      receiver::diagnostic(poller->error());
      return 1;
    }
  }
  receiver::server server(o, reconciler, *store);
  // Before the port file exists: a script may signal as soon as it sees it.
  if (!server.error().empty() || !install_stop_signals()) {
    receiver::diagnostic(server.error().empty() ? "cannot install the signal handlers"
                                                : server.error());
    return 1;
  }
  const int port = server.bind();
  if (port == 0) {
    receiver::diagnostic(server.error());
    return 1;
  }
  const bool ipv6 = o.host.find(':') != std::string::npos;
  receiver::diagnostic(std::string("listening on ") + (o.plain_http ? "http" : "https") + "://" +
                       (ipv6 ? "[" + o.host + "]" : o.host) + ":" + std::to_string(port) + o.path);
  if (!o.port_file.empty() && !write_port_file(o.port_file, port)) {
    receiver::diagnostic("cannot write the port file " + o.port_file);
    return 1;
  }

  receiver::notify_ready();

  if (poller) poller->start(port);
  std::thread watcher([&server] {
    int signal = wait_for_stop();
    for (; signal == SIGHUP; signal = wait_for_stop()) {
      receiver::notify("RELOADING=1");
      const std::string why = server.reload_tls();
      receiver::diagnostic(why.empty() ? "SIGHUP: certificate and key reloaded for new connections"
                                       : "SIGHUP: " + why + "; the previous ones stay in use");
      receiver::notify_ready();
    }
    if (signal != 0) {
      receiver::notify("STOPPING=1");
      receiver::diagnostic(std::string(signal == SIGINT ? "SIGINT" : "SIGTERM") +
                           ": stopping (finishing the requests in progress)");
    }
    server.stop();
  });
  const bool served = server.run();
  wake_watcher();  // when the server stopped by itself
  watcher.join();
  stopping = true;
  if (poller) poller->stop();
  if (!served) {
    receiver::diagnostic("stopped: accepting connections failed");
    return 1;
  }
  receiver::diagnostic("stopped");
  return 0;
}

#pragma once

// The receiver's HTTP(S) front on Boost.Beast, event-driven on an io_context per
// I/O thread: limits, deadlines and framing rules in front of
// unloc::delivery_validator, which decides every delivery's status.

#include "options.hpp"

#include <unloc/access_event.hpp>
#include <unloc/event_store.hpp>

#include <chrono>
#include <memory>
#include <string>

UNLOC_BEGIN_NAMESPACE
class reconciler;
UNLOC_END_NAMESPACE

namespace receiver {

/// Writes one line to stderr, prefixed with the program's name. Thread-safe:
/// lines from several threads never interleave. Waits at most `stderr_wait` for
/// stderr to take it (not at all while stderr is taking nothing), else leaves it
/// out and says how many were left out once stderr takes lines again. Never give
/// it a secret.
void diagnostic(const std::string& line);

/// How long a diagnostic waits for stderr.
inline constexpr std::chrono::milliseconds stderr_wait{1000};

/// How long an event's line waits for stdout: past it the event is refused (503,
/// delivered again later), so that a reader that stopped reading never holds an
/// I/O thread, and the connections it serves, for long; nor, inside the SQLite
/// store's write transaction, the file's other writers (they wait 5 s, the
/// store's busy_timeout, then fail).
inline constexpr std::chrono::milliseconds stdout_wait{1000};

/// Writes one event as a JSON line on stdout, whole (never interleaved with
/// another line); false when stdout failed, or took nothing for `stdout_wait`
/// (then, until a line gets through, the next prints do not wait).
bool print_event(const unloc::access_event& event);

/// Serves deliveries: each new Access Event is handed over (printed, written
/// to the store) before the delivery is acknowledged. Construct, `bind`, then
/// `run`; `stop` may be called from any thread at any time after construction.
class server {
 public:
  /// Sets the server up (loading the TLS files unless --plain-http); on
  /// failure `error()` says why. Every valid event is offered to `reconciler`
  /// (which outlives the server: it hands each over once and records it in
  /// `store`); `store` is checked every second for /healthz.
  server(const options& opts, unloc::reconciler& reconciler,
         std::shared_ptr<unloc::event_store> store);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Why the server cannot go on; empty while it can.
  [[nodiscard]] const std::string& error() const;

  /// Binds and listens on --listen (and --metrics-listen); the port bound,
  /// or 0 (see `error()`). Connections are queued by the kernel from then on.
  int bind();

  /// Serves on --threads threads (the connections) and the calling one (the
  /// listeners and the deadlines) until `stop()`, then lets the requests in
  /// progress finish (idle keep-alive connections are closed at once).
  /// False when serving failed.
  bool run();

  /// Stops accepting and makes `run` return; also when called before `run`.
  void stop();

  /// Loads --cert and --key again for the connections accepted from now on
  /// (those open keep theirs); on failure keeps the old ones. Any thread.
  /// An empty string when loaded, else why not.
  std::string reload_tls();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace receiver

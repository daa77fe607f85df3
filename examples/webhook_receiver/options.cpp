#include "options.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace receiver {
namespace {

constexpr const char* help_text =
    R"(usage: unloc-webhook-receiver --listen HOST:PORT --cert CERT.pem --key KEY.pem [options]

A ready HTTPS endpoint for Unloc's Access Event webhooks. Prints each new
Access Event as one JSON line on stdout (the shape of `unloc --format jsonl`),
flushed at once; a repeated delivery is acknowledged, not printed again.
Diagnostics (rejected requests, late and repeated events) go to stderr.

options:
  --listen HOST:PORT  where to listen (default 127.0.0.1:8443; port 0 picks a free
                      port; an IPv6 host in brackets: [::1]:8443)
  --cert FILE         the TLS certificate chain (PEM), server certificate first
  --key FILE          its private key (PEM)
  --plain-http        no TLS, for loopback tests only (prints a warning)
  --path PATH         the path that receives deliveries (default /accessEvents)
  --max-body BYTES    the largest body accepted (default 65536)
  --no-auth           accept deliveries without Basic credentials (prints a warning)
  --port-file FILE    once listening, write the port to FILE (atomically), for scripts
  --threads N         threads serving the connections (default: the number of cores);
                      each serves many connections at once
  --metrics-listen HOST:PORT
                      also serve Prometheus metrics at /metrics on this address
                      (plain HTTP: keep it on a private network)
  --store URL         where it keeps what it handled and writes each new event:
                      sqlite:PATH (one machine; created when missing) or
                      postgresql://USER@HOST:PORT/DB (shared by several receivers;
                      the password from PGPASSWORD or ~/.pgpass, never in URL);
                      default: in memory, forgotten when it stops
  --no-print          with --store: do not print the events on stdout
  --claim-lease S     with --store: an event whose handling a stop or a store
                      failure left unsettled is taken again (flagged) after S
                      seconds (default 300)
  --reconcile         with --store: never miss an event, never handle one twice:
                      also read the access log (on start, then every
                      --poll-interval), one receiver at a time (a lease in the
                      store), and take each event once, whether it came by
                      webhook, from the log or both; needs the API variables below
  --import-state FILE
                      with --store: carry over the state of the retired file
                      journal (`--reconcile FILE` before 0.1): the events handled
                      and the log checkpoints of FILE and FILE.journal go into the
                      store, then both are renamed *.imported (a second run finds
                      them so)
  --lock ID           with --reconcile: a Lock whose access log is read (repeatable);
                      default: the Project's whole access log
  --poll-interval S   with --reconcile: seconds between reads of the log (default 300)
  --overlap S         with --reconcile: each read starts S seconds before where the
                      last one ended, to catch events reported late (default 86400)
  --log-lease S       with --reconcile: how long a receiver's hold on reading a log
                      lasts unrenewed; when it stops, another takes over after at
                      most S seconds (default 120)
  --help              this text
  --version           the version

limits (S: seconds, fractions allowed, such as 0.5):
  --max-header-bytes N      request line and headers (default 8192); over it: 431,
                            or 414 when the request line alone does not fit
  --header-timeout S        the whole head, from its first byte (default 10); 408
  --body-timeout S          the whole body (default 30); 408
  --handshake-timeout S     the TLS handshake (default 10)
  --idle-timeout S          an idle keep-alive connection is closed (default 30)
  --max-connections N       connections open at once (default 1024); more are
                            closed at once, and an idle one to make room
  --max-connections-per-client N
                            connections from one address (default 128)
  --max-requests-per-connection N
                            then the connection is closed (default 1000)

environment:
  UNLOC_WEBHOOK_USER, UNLOC_WEBHOOK_PASSWORD
      the Basic credentials every delivery must carry (the user name and password
      of the registered webhook URL); required unless --no-auth
  UNLOC_WEBHOOK_USER_NEXT, UNLOC_WEBHOOK_PASSWORD_NEXT
      a second pair, accepted as well: to rotate, start with the new pair here,
      re-register the webhook with it, then make it the only pair
  UNLOC_PROJECT_ID, UNLOC_CLIENT_ID, UNLOC_CLIENT_SECRET, UNLOC_API_URL (default
  https://api.unloc.app), UNLOC_CA_BUNDLE (PEM file of extra trusted CAs)
      with --reconcile: the API access that reads the access log
  PGPASSWORD, PGPASSFILE (default ~/.pgpass), and libpq's other PG* variables
      with --store postgresql://: the database password and connection settings

answers:
  204  a valid Access Event, new or already seen
  401  credentials missing, malformed or wrong (WWW-Authenticate: Basic realm="unloc")
  404  another path          405  another method than POST
  413  a body over --max-body, refused from Content-Length before it is read
  415  a content type other than application/json
  400  a body that is not JSON, or not UTF-8
  422  JSON that is not a valid Access Event (the body names the field)
  503  the event could not be written to stdout, or the store could not record
       it (down, slow, or busy): the platform delivers it again
  414/431  a request line or header block over --max-header-bytes (then closed)
  408  the head or body not received within its deadline (then closed)
  400  ambiguous framing: Content-Length with Transfer-Encoding, two
       Content-Lengths, a Transfer-Encoding other than chunked, obs-fold,
       a bare LF (then closed)
  GET /healthz (no credentials): 200 while it serves and its store works (checked
       every second), else 503 with the reason

A rejected request that was read whole keeps its connection; a connection is
closed after 32 rejections in a row.

SIGINT and SIGTERM stop it cleanly: it stops accepting, finishes the requests
in progress and exits 0. SIGHUP reloads --cert and --key for new connections.
Once listening it sends READY=1 to $NOTIFY_SOCKET (systemd Type=notify). Exit status: 0 stopped by a signal, 1 could not start
(TLS files, address in use), 2 bad usage.
)";

int usage_error(const std::string& message) {
  std::cerr << "unloc-webhook-receiver: " << message << " (see --help)\n";
  return 2;
}

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// A decimal number in [min, max], nothing else.
std::optional<unsigned long long> parse_number(const std::string& text, unsigned long long min,
                                               unsigned long long max) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  unsigned long long n = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<unsigned long long>(c - '0');
  }
  if (n < min || n > max) return std::nullopt;
  return n;
}

// A number of seconds, fractions allowed ("0.5"), in (0, 86400].
std::optional<std::chrono::milliseconds> parse_seconds(const std::string& text) {
  const auto dot = text.find('.');
  const std::string whole = text.substr(0, dot);
  std::string fraction = dot == std::string::npos ? "" : text.substr(dot + 1);
  if (dot != std::string::npos && (fraction.empty() || fraction.size() > 3)) return std::nullopt;
  const auto s = parse_number(whole.empty() ? "0" : whole, 0, 86400);
  fraction.resize(3, '0');
  const auto ms = parse_number(fraction, 0, 999);
  if (!s || !ms || (*s == 0 && *ms == 0) || (*s == 86400 && *ms != 0)) return std::nullopt;
  return std::chrono::milliseconds(*s * 1000 + *ms);
}

// 127.0.0.0/8, ::1 or localhost: where --plain-http may listen. An address, not
// a name that merely starts like one (127.0.0.1.example.com resolves anywhere).
bool is_loopback(const std::string& host) {
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return ntohl(v4.s_addr) >> 24 == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return host == "localhost";
}

// HOST:PORT or [IPV6]:PORT into `host` and `port`; an error message when malformed.
std::optional<std::string> parse_address(const std::string& name, const std::string& text,
                                         std::string& host_out, int& port_out) {
  const auto colon = text.rfind(':');
  const auto port =
      colon == std::string::npos ? std::nullopt : parse_number(text.substr(colon + 1), 0, 65535);
  std::string host = colon == std::string::npos ? std::string() : text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    host.clear();  // an IPv6 address needs its brackets
  }
  if (!port || host.empty()) {
    return name + " takes HOST:PORT (port 0 to 65535), got " + unloc::detail::quoted(text);
  }
  host_out = host;
  port_out = static_cast<int>(*port);
  return std::nullopt;
}

// `sqlite:PATH` or `postgresql://…` without a password; an error message otherwise.
std::optional<std::string> check_store_url(const std::string& url) {
  if (url.rfind("sqlite:", 0) == 0) {
    if (url.size() == 7) return std::string("--store sqlite:PATH needs a file name");
    return std::nullopt;
  }
  for (const std::string_view scheme : {"postgresql://", "postgres://"}) {
    if (url.compare(0, scheme.size(), scheme) != 0) continue;
    const auto end = url.find_first_of("/?", scheme.size());
    const auto authority =
        url.substr(scheme.size(), end == std::string::npos ? end : end - scheme.size());
    const auto at = authority.rfind('@');
    // Never echoed: it may hold the very password refused.
    if ((at != std::string::npos && authority.find(':') < at) ||
        url.find("password=") != std::string::npos) {
      return std::string("--store takes no password: give it in PGPASSWORD or ~/.pgpass");
    }
    return std::nullopt;
  }
  // Only the scheme is echoed: the rest may hold a password.
  return "--store takes sqlite:PATH or postgresql://USER@HOST:PORT/DB, not " +
         unloc::detail::quoted(url.substr(0, url.find(':')), 32) + ":...";
}

// The credentials of the environment, checked; an error message when unusable.
std::optional<std::string> read_credentials(options& o) {
  for (const auto& [user_var, password_var] :
       {std::pair{"UNLOC_WEBHOOK_USER", "UNLOC_WEBHOOK_PASSWORD"},
        std::pair{"UNLOC_WEBHOOK_USER_NEXT", "UNLOC_WEBHOOK_PASSWORD_NEXT"}}) {
    unloc::basic_credentials pair{env(user_var), env(password_var)};
    if (pair.user.empty() && pair.password.empty()) continue;
    if (pair.user.empty() || pair.password.empty()) {
      return std::string(user_var) + " and " + password_var + " must be set together";
    }
    // Credentials a webhook URL cannot carry could never match a delivery. The
    // message names the variable and the position, never the text.
    for (const auto& [value, name] :
         {std::pair{&pair.user, user_var}, {&pair.password, password_var}}) {
      if (auto ok = unloc::check_credential(*value, name); !ok) return ok.error().message;
    }
    o.credentials.push_back(std::move(pair));
  }
  if (o.credentials.empty() && !o.no_auth) {
    return "set UNLOC_WEBHOOK_USER and UNLOC_WEBHOOK_PASSWORD, or give --no-auth to accept "
           "deliveries without credentials";
  }
  return std::nullopt;
}

}  // namespace

int io_threads(const options& o) {
  if (o.threads > 0) return o.threads;
  return static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
}

int hand_over_pool_threads(const options& o) { return 2 * io_threads(o); }

parsed_options parse_options(int argc, const char* const* argv) {
  parsed_options result;
  options& o = result.opts;
  const auto fail = [&](const std::string& message) {
    result.exit_status = usage_error(message);
    return result;
  };
  bool saw_reconcile_option = false;
  bool saw_store_option = false;
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i];
    std::optional<std::string> value;  // from --name=value, or the next argument
    if (const auto eq = name.find('='); name.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    const bool is_switch = name == "--help" || name == "--version" || name == "--plain-http" ||
                           name == "--no-auth" || name == "--no-print" || name == "--reconcile";
    const bool takes_value = name == "--listen" || name == "--cert" || name == "--key" ||
                             name == "--path" || name == "--max-body" || name == "--port-file" ||
                             name == "--threads" || name == "--store" || name == "--lock" ||
                             name == "--poll-interval" || name == "--overlap" ||
                             name == "--log-lease" || name == "--claim-lease" ||
                             name == "--metrics-listen" || name == "--max-header-bytes" ||
                             name == "--header-timeout" || name == "--body-timeout" ||
                             name == "--handshake-timeout" || name == "--idle-timeout" ||
                             name == "--max-connections" || name == "--max-connections-per-client" ||
                             name == "--max-requests-per-connection" || name == "--import-state";
    if (!is_switch && !takes_value) return fail("unknown argument " + unloc::detail::quoted(name));
    // Before 0.1, `--reconcile FILE` named a state file of the file journal, now retired.
    if (name == "--reconcile" && (value || (i + 1 < argc && argv[i + 1][0] != '-'))) {
      const std::string file = value ? *value : argv[i + 1];
      return fail("--reconcile takes no file now: the state lives in --store; to keep the state "
                  "of the file journal " + unloc::detail::quoted(file) +
                  ", start once with --store sqlite:PATH --import-state " +
                  unloc::detail::quoted(file) + " --reconcile");
    }
    if (is_switch && value) return fail(name + " takes no value");
    saw_reconcile_option = saw_reconcile_option || name == "--poll-interval" ||
                           name == "--overlap" || name == "--lock" || name == "--log-lease";
    if (takes_value && !value) {
      if (i + 1 >= argc) return fail(name + " needs a value");
      value = argv[++i];
    }

    if (name == "--help" || name == "--version") {
      std::cout << (name == "--help" ? help_text
                                     : "unloc-webhook-receiver " UNLOC_VERSION_STRING
                                       " (unloc-cpp)\n");
      result.exit_status = 0;
      return result;
    }
    if (name == "--plain-http") {
      o.plain_http = true;
    } else if (name == "--no-auth") {
      o.no_auth = true;
    } else if (name == "--listen") {
      if (auto error = parse_address(name, *value, o.host, o.port)) return fail(*error);
    } else if (name == "--metrics-listen") {
      if (auto error = parse_address(name, *value, o.metrics_host, o.metrics_port)) {
        return fail(*error);
      }
    } else if (name == "--max-header-bytes") {
      const auto n = parse_number(*value, 256, 1 << 20);
      if (!n) return fail("--max-header-bytes takes a number of bytes from 256 to 1048576");
      o.max_header_bytes = static_cast<std::size_t>(*n);
    } else if (name == "--header-timeout" || name == "--body-timeout" ||
               name == "--handshake-timeout" || name == "--idle-timeout") {
      const auto t = parse_seconds(*value);
      if (!t) return fail(name + " takes seconds (such as 10 or 0.5), up to 86400");
      (name == "--header-timeout"    ? o.header_timeout
       : name == "--body-timeout"    ? o.body_timeout
       : name == "--handshake-timeout" ? o.handshake_timeout
                                       : o.idle_timeout) = *t;
    } else if (name == "--max-connections" || name == "--max-connections-per-client" ||
               name == "--max-requests-per-connection") {
      const auto n = parse_number(*value, 1, 1000000);
      if (!n) return fail(name + " takes a number from 1 to 1000000");
      (name == "--max-connections"              ? o.max_connections
       : name == "--max-connections-per-client" ? o.max_connections_per_client
                                                : o.max_requests_per_connection) =
          static_cast<std::size_t>(*n);
    } else if (name == "--cert") {
      o.cert_file = *value;
    } else if (name == "--key") {
      o.key_file = *value;
    } else if (name == "--path") {
      if (value->empty() || value->front() != '/' || value->find('?') != std::string::npos) {
        return fail("--path must start with '/' and hold no query, got " +
                    unloc::detail::quoted(*value));
      }
      o.path = *value;
    } else if (name == "--max-body") {
      const auto n = parse_number(*value, 1, 1ULL << 30);
      if (!n) return fail("--max-body takes a number of bytes from 1 to 1073741824");
      o.max_body = static_cast<std::size_t>(*n);
    } else if (name == "--threads") {
      const auto n = parse_number(*value, 1, 1024);
      if (!n) return fail("--threads takes a number from 1 to 1024");
      o.threads = static_cast<int>(*n);
    } else if (name == "--port-file") {
      if (value->empty()) return fail("--port-file needs a file name");
      o.port_file = *value;
    } else if (name == "--reconcile") {
      o.reconcile = true;
    } else if (name == "--no-print") {
      o.print = false;
    } else if (name == "--store") {
      if (auto error = check_store_url(*value)) return fail(*error);
      o.store = *value;
    } else if (name == "--import-state") {
      if (value->empty()) return fail("--import-state needs a file name");
      o.import_state = *value;
    } else if (name == "--lock") {
      auto lock = unloc::uuid::parse(*value);
      if (!lock) return fail("--lock takes a Lock id (a UUID), got " + unloc::detail::quoted(*value));
      o.locks.push_back(*lock);
    } else if (name == "--claim-lease") {
      const auto n = parse_number(*value, 1, 24ULL * 3600);
      if (!n) return fail("--claim-lease takes a number of seconds up to a day");
      o.claim_lease = std::chrono::seconds(*n);
      saw_store_option = true;
    } else if (name == "--poll-interval" || name == "--overlap" || name == "--log-lease") {
      const auto n = parse_number(*value, name == "--overlap" ? 0 : 1, 30ULL * 24 * 3600);
      if (!n) return fail(name + " takes a number of seconds up to 30 days");
      (name == "--overlap" ? o.overlap : name == "--log-lease" ? o.log_lease : o.poll_interval) =
          std::chrono::seconds(*n);
    }
  }
  if (!o.reconcile && saw_reconcile_option) {
    return fail("--lock, --poll-interval, --overlap and --log-lease go with --reconcile");
  }
  if (o.store.empty() && (o.reconcile || !o.print || !o.import_state.empty() || saw_store_option)) {
    return fail(std::string(o.reconcile    ? "--reconcile"
                            : !o.print     ? "--no-print"
                            : saw_store_option ? "--claim-lease"
                                               : "--import-state") +
                " goes with --store (sqlite:PATH, or postgresql://USER@HOST:PORT/DB)");
  }
  if (o.reconcile) {
    o.api.api_url = env("UNLOC_API_URL").empty() ? o.api.api_url : env("UNLOC_API_URL");
    o.api.project_id = env("UNLOC_PROJECT_ID");
    o.api.client_id = env("UNLOC_CLIENT_ID");
    o.api.client_secret = env("UNLOC_CLIENT_SECRET");
    o.api.ca_file = env("UNLOC_CA_BUNDLE");
    if (o.api.project_id.empty() || o.api.client_id.empty() || o.api.client_secret.empty()) {
      return fail("--reconcile reads the access log: set UNLOC_PROJECT_ID, UNLOC_CLIENT_ID and "
                  "UNLOC_CLIENT_SECRET");
    }
  }
  if (o.plain_http && (!o.cert_file.empty() || !o.key_file.empty())) {
    return fail("--plain-http serves without TLS: give it no --cert or --key");
  }
  if (o.plain_http && !is_loopback(o.host)) {
    return fail("--plain-http listens on loopback only (127.0.0.1, ::1), not " + o.host +
                ": serve TLS with --cert and --key");
  }
  if (!o.plain_http && (o.cert_file.empty() || o.key_file.empty())) {
    return fail("--cert and --key are required (or --plain-http, for loopback tests only)");
  }
  if (auto error = read_credentials(o)) return fail(*error);
  return result;
}

}  // namespace receiver

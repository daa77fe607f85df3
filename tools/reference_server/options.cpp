#include "options.hpp"

#include <unloc/version.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace refserver {
namespace {

constexpr const char* help_text =
    R"(unloc-reference-server: the Unloc API (v2) on loopback, over HTTPS.

The role stripe-mock plays for Stripe's SDKs: develop and test an Unloc
integration without the real platform. Serves exactly the contract of
unloc-api.md (Part A + Part B) from in-memory state, delivers Access Events to
registered webhooks, and injects faults on request.

Usage:
  unloc-reference-server --cert CERT.pem --key KEY.pem [options]

Options:
  --listen HOST:PORT        where to listen (default 127.0.0.1:12111; [::1]:PORT
                            for IPv6). Port 0 picks a free port.
  --cert FILE, --key FILE   the TLS certificate chain and private key (PEM); required
  --port-file FILE          write the chosen port there (atomically: temp + rename)
                            once the server accepts connections
  --project ID              the Project (default d45031c2-be07-4d20-adbe-4e51e6ad0fed)
  --client-id ID            the OAuth client id (default unloc-dev-client)
  (environment) UNLOC_CLIENT_SECRET
                            the OAuth client secret (default unloc-dev-secret);
                            never a flag, never printed
  --token-lifetime SECONDS  lifetime of issued tokens, 0-31536000 (default 3600)
  --seed FILE.json          initial state: {"webhooks":[...],"accessEvents":[...]},
                            both in the API's shapes
  --webhook-ca FILE         PEM CAs trusted when delivering to webhooks (default:
                            the system's); verification is always on
  --allow-http-loopback-webhooks
                            also accept webhooks at http:// URLs to a loopback
                            host (localhost, 127.x.x.x, [::1]) and deliver there
                            in plain HTTP: a plain-HTTP receiver on a laptop.
                            Unloc itself takes https only; without it, neither
                            does this server
  --delivery-attempts N     attempts per delivery, 1-100 (default 8)
  --delivery-backoff-ms MS  first retry delay, doubled per attempt, capped at 30 s
                            (default 200)
  --delivery-workers N      concurrent delivery workers, 1-64 (default 4)
  --threads N               HTTP worker threads, 4-1024 (default 64); a keep-alive
                            connection holds one while it is open
  --keep-alive-timeout S    seconds an idle keep-alive connection stays open (default 5)
  --random-seed N           seed of the offline-release shuffle and duplicate
                            deliveries (default 20230901)
  --log-requests            one line per request on stderr (no bodies, no secrets)
  --help, --version

Once listening it prints "listening on https://HOST:PORT" on stdout.
SIGINT/SIGTERM stop it cleanly. Exit status: 0 stopped, 1 failed to start, 2 bad usage.

The API (all JSON; every response has an x-request-id header; errors are
{"error":code,"message":text}):
  POST   /v2/auth/token/                              client credentials -> token
  POST   /v2/projects/{p}/webhooks                    register (201; 409 + existing)
  GET    /v2/projects/{p}/webhooks                    {"webhooks":[...]}
  DELETE /v2/projects/{p}/webhooks/{id}               204
  GET    /v2/projects/{p}/locks/{lock}/logs/access    ?from=&to=&limit=&cursor=
  GET    /v2/projects/{p}/logs/access                 ?lockId=&from=&to=&limit=&cursor=
  Logs: newest first (created desc, then id); window [from, to); from is clamped
  to 30 days ago; limit 1-1000 (default 100); nextCursor is null on the last page.

Simulation and test control (not Unloc's API; same listener, no authentication):
  GET    /_admin/health                 {"ok":true}
  POST   /_admin/events                 record Access Events and deliver them:
         {"lockId":uuid, "id"?:uuid (count 1), "action"?:"unlocked", "keyId"?,
          "lockName"?, "appUserId"?:"+1212..." (null: anonymized), "userName"?,
          "created"?:RFC3339, "count"?:1, "spacingMs"?:1000, "offline"?:false,
          "deliverTwice"?:false, "extra"?:{unknown fields to add}}
         count events go back in time from created (default now), spacingMs
         apart; an id already recorded gives 409. offline:true holds them: not in the log, not delivered, until
         released. -> {"count","first","last","accessEvents":[ids] (count<=10000)}
  GET    /_admin/offline                {"held":n}
  POST   /_admin/offline/release        {"lockId"?} records the held events and
         delivers them in a shuffled order -> {"released":n,"accessEvents":[ids]}
  GET    /_admin/deliveries             {"queued","delivered","failedAttempts",
                                         "gaveUp","cancelled","duplicated","pending","held"}
  POST   /_admin/deliveries/wait        {"timeoutMs"?:10000} blocks until nothing is
                                        queued or in flight -> counts + "idle":bool
  POST   /_admin/deliveries/duplicate   {"probability":0.05} deliver that share twice
  POST   /_admin/faults                 {"endpoint":"token"|"webhooks"|"logs"|"any",
         "kind":"500"|"502"|"503"|"504"|"429"|"slow"|"drop"|"reset"|"half_body"|
                "malformed_json"|"html"|"expire_token"|"echo_authorization",
         "count"?:1 (-1: until cleared), "after"?:0 (let that many matching
         requests pass first), "retryAfter"?:"2" or an HTTP date, "delayMs"?:1000}
         drop: 200 headers then the connection closes (chunked body never ends);
         reset: the connection closes before any byte of a response;
         half_body: Content-Length announced, half the body sent, closed;
         malformed_json: the real answer cut in half; html: 502 text/html page;
         slow: the real answer after delayMs; expire_token: revokes every token,
         so that request (and any other until a new token) gets 401 invalid_token;
         echo_authorization: 400 whose message repeats the Authorization header.
  GET    /_admin/faults                 the pending faults
  DELETE /_admin/faults                 clear them
  GET    /_admin/requests               requests per endpoint ("token","webhooks",
         "logs","other","api","admin","faultsServed"), accepted TCP
         "connections", "tlsHandshakes", "tlsResumed", "apiConnections"
  DELETE /_admin/requests               zero those counters
  POST   /_admin/tokens/revoke          revoke every token now
  POST   /_admin/reset                  forget events, held events, webhooks, faults,
                                        queued deliveries and counters
)";

[[noreturn]] void usage_error_exit(const std::string& message) {
  std::fprintf(stderr, "unloc-reference-server: %s\n(see --help)\n", message.c_str());
  std::exit(2);
}

long long parse_integer(std::string_view flag, const std::string& text, long long low,
                        long long high) {
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || errno != 0 || end == nullptr || *end != '\0' || value < low || value > high) {
    usage_error_exit(std::string(flag) + " must be an integer from " + std::to_string(low) +
                     " to " + std::to_string(high) + ", got '" + text + "'");
  }
  return value;
}

void parse_listen(const std::string& text, server_options& options) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      usage_error_exit("--listen must be HOST:PORT or [IPV6]:PORT, got '" + text + "'");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      usage_error_exit("--listen must be HOST:PORT, got '" + text + "'");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  options.host = host;
  options.port = static_cast<int>(parse_integer("--listen's port", port, 0, 65535));
}

}  // namespace

parse_outcome parse_command_line(int argc, char** argv) {
  server_options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error_exit(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(help_text, stdout);
      return {std::nullopt, 0};
    }
    if (arg == "--version") {
      std::printf("unloc-reference-server %s\n", UNLOC_VERSION_STRING);
      return {std::nullopt, 0};
    }
    if (arg == "--listen") {
      parse_listen(value(), options);
    } else if (arg == "--cert") {
      options.cert_file = value();
    } else if (arg == "--key") {
      options.key_file = value();
    } else if (arg == "--port-file") {
      options.port_file = value();
    } else if (arg == "--project") {
      options.project_id = value();
      options.uses_default_project = false;
    } else if (arg == "--client-id") {
      options.client_id = value();
      options.uses_default_client_id = false;
    } else if (arg == "--client-secret") {
      usage_error_exit("the client secret is read from UNLOC_CLIENT_SECRET, never from a flag");
    } else if (arg == "--token-lifetime") {
      options.token_lifetime = std::chrono::seconds(parse_integer(arg, value(), 0, 31536000));
    } else if (arg == "--seed") {
      options.seed_file = value();
    } else if (arg == "--webhook-ca") {
      options.webhook_ca = value();
    } else if (arg == "--allow-http-loopback-webhooks") {
      options.allow_http_loopback_webhooks = true;
    } else if (arg == "--delivery-attempts") {
      options.delivery_attempts = static_cast<int>(parse_integer(arg, value(), 1, 100));
    } else if (arg == "--delivery-backoff-ms") {
      options.delivery_backoff = std::chrono::milliseconds(parse_integer(arg, value(), 0, 60000));
    } else if (arg == "--delivery-workers") {
      options.delivery_workers = static_cast<int>(parse_integer(arg, value(), 1, 64));
    } else if (arg == "--threads") {
      options.threads = static_cast<int>(parse_integer(arg, value(), 4, 1024));
    } else if (arg == "--keep-alive-timeout") {
      options.keep_alive_timeout_seconds = static_cast<int>(parse_integer(arg, value(), 1, 3600));
    } else if (arg == "--random-seed") {
      options.random_seed =
          static_cast<std::uint64_t>(parse_integer(arg, value(), 0, 9007199254740991LL));
    } else if (arg == "--log-requests") {
      options.log_requests = true;
    } else {
      usage_error_exit("unknown argument '" + std::string(arg) + "'");
    }
  }
  if (options.cert_file.empty() || options.key_file.empty()) {
    usage_error_exit("--cert and --key are required (the server speaks HTTPS only)");
  }
  if (options.project_id.empty() || options.client_id.empty()) {
    usage_error_exit("--project and --client-id must not be empty");
  }
  if (const char* secret = std::getenv("UNLOC_CLIENT_SECRET"); secret != nullptr && *secret) {
    options.client_secret = secret;
    options.uses_default_secret = false;
  }
  return {std::move(options), 0};
}

}  // namespace refserver

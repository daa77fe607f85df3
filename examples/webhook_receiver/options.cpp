#include "options.hpp"

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string_view>

namespace receiver {
namespace {

constexpr const char* help_text = R"(usage: unloc-webhook-receiver --listen HOST:PORT --cert CERT.pem --key KEY.pem [options]

A ready HTTPS endpoint for Unloc's Access Event webhooks. Prints each accepted
new Access Event as one JSON line on stdout; diagnostics go to stderr.

options:
  --listen HOST:PORT  where to listen (default 127.0.0.1:8443; port 0 picks a free one)
  --cert FILE         the TLS certificate chain (PEM)
  --key FILE          its private key (PEM)
  --plain-http        no TLS, for loopback tests only (prints a warning)
  --path PATH         the path that receives deliveries (default /accessEvents)
  --max-body BYTES    the largest body accepted (default 65536)
  --no-auth           accept deliveries without Basic credentials
  --port-file FILE    write the port there once listening (for scripts and tests)
  --help, --version

environment:
  UNLOC_WEBHOOK_USER, UNLOC_WEBHOOK_PASSWORD   the Basic credentials deliveries must carry
                                               (required unless --no-auth)
  UNLOC_WEBHOOK_USER_NEXT, UNLOC_WEBHOOK_PASSWORD_NEXT
                                               a second pair, accepted too while rotating

answers: 204 a valid Access Event (a repeated one is acknowledged, not printed again);
401 credentials missing, malformed or wrong; 404 another path; 405 another method;
413 a body over --max-body; 415 not application/json; 400 not JSON or not UTF-8;
422 not a valid Access Event. SIGINT and SIGTERM stop it cleanly.
)";

int usage_error(const std::string& message) {
  std::cerr << "unloc-webhook-receiver: " << message << "\n(see --help)\n";
  return 2;
}

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

}  // namespace

parsed parse_options(int argc, char** argv) {
  parsed result;
  options& o = result.opts;
  bool listen_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&](std::string& out) {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    std::string text;
    if (arg == "--help") {
      std::cout << help_text;
      result.exit_now = 0;
      return result;
    } else if (arg == "--version") {
      std::cout << "unloc-webhook-receiver (unloc-cpp " << UNLOC_VERSION_STRING << ")\n";
      result.exit_now = 0;
      return result;
    } else if (arg == "--plain-http") {
      o.plain_http = true;
    } else if (arg == "--no-auth") {
      o.no_auth = true;
    } else if (arg == "--listen" && value(text)) {
      const auto colon = text.rfind(':');
      char* end = nullptr;
      const long port = colon == std::string::npos ? -1 : std::strtol(text.c_str() + colon + 1, &end, 10);
      if (colon == std::string::npos || colon == 0 || end == nullptr || *end != '\0' || port < 0 ||
          port > 65535 || colon + 1 == text.size()) {
        result.exit_now = usage_error("--listen must be HOST:PORT, got '" + text + "'");
        return result;
      }
      o.host = text.substr(0, colon);
      o.port = static_cast<int>(port);
      listen_given = true;
    } else if (arg == "--cert" && value(o.cert_file)) {
    } else if (arg == "--key" && value(o.key_file)) {
    } else if (arg == "--path" && value(o.path)) {
      if (o.path.empty() || o.path.front() != '/') {
        result.exit_now = usage_error("--path must start with '/'");
        return result;
      }
    } else if (arg == "--port-file" && value(o.port_file)) {
    } else if (arg == "--max-body" && value(text)) {
      char* end = nullptr;
      const unsigned long long n = std::strtoull(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || text.front() == '-' || n == 0 || n > (1ULL << 30)) {
        result.exit_now = usage_error("--max-body must be a number of bytes from 1 to 2^30");
        return result;
      }
      o.max_body = static_cast<std::size_t>(n);
    } else {
      result.exit_now = usage_error("unknown option or missing value: '" + std::string(arg) + "'");
      return result;
    }
  }
  (void)listen_given;
  if (!o.plain_http && (o.cert_file.empty() || o.key_file.empty())) {
    result.exit_now = usage_error("--cert and --key are required (or --plain-http for loopback tests)");
    return result;
  }
  for (const auto& [user_var, password_var] :
       {std::pair{"UNLOC_WEBHOOK_USER", "UNLOC_WEBHOOK_PASSWORD"},
        std::pair{"UNLOC_WEBHOOK_USER_NEXT", "UNLOC_WEBHOOK_PASSWORD_NEXT"}}) {
    const std::string user = env(user_var);
    const std::string password = env(password_var);
    if (user.empty() && password.empty()) continue;
    if (user.empty() || password.empty()) {
      result.exit_now = usage_error(std::string(user_var) + " and " + password_var + " go together");
      return result;
    }
    o.credentials.push_back({user, password});
  }
  if (o.credentials.empty() && !o.no_auth) {
    result.exit_now = usage_error(
        "set UNLOC_WEBHOOK_USER and UNLOC_WEBHOOK_PASSWORD (or give --no-auth to accept "
        "unauthenticated deliveries)");
  }
  return result;
}

}  // namespace receiver

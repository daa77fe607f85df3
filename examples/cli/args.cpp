#include "args.hpp"

#include <cmath>
#include <initializer_list>
#include <tuple>
#include <cstdlib>
#include <string_view>
#include <utility>

namespace unloc_cli {

const char* usage_text() {
  return R"(usage: unloc [global options] <command> [arguments]

commands:
  webhooks register --lock ID --url URL   register a webhook (prints the existing one on 409)
  webhooks list                           list the project's webhooks
  webhooks delete WEBHOOK_ID              delete a webhook
  access-log --lock ID [--from T] [--to T]
                                          a lock's access events, every page followed
  access-log --project [--lock ID] [--from T] [--to T]
                                          the project's access events (optionally of one lock)
  credentials generate                    random Basic credentials for a webhook URL

global options (a flag wins over its environment variable):
  --api-url URL      UNLOC_API_URL      base URL (default https://api.unloc.app)
  --project ID       UNLOC_PROJECT_ID   the project (after access-log, --project is the
                                        switch to the project-wide log)
  --client-id ID     UNLOC_CLIENT_ID    OAuth client id
                     UNLOC_CLIENT_SECRET  OAuth client secret (environment only)
  --ca-bundle FILE   UNLOC_CA_BUNDLE    PEM file of extra trusted CAs
  --format F         table (default), json, jsonl, csv
  --timeout SECONDS  overall deadline of the command

T is an RFC 3339 timestamp, such as 2024-05-01T00:00:00Z.
exit status: 0 success, 1 the API answered with an error, 2 bad usage or invalid input,
3 a network or TLS failure.
)";
}

namespace {

unloc::error usage(std::string message) {
  return unloc::make_error(unloc::error_category::invalid_input, std::move(message));
}

// A global option that takes a value; `after_access_log` makes --project a switch.
bool is_global_with_value(std::string_view name, bool after_access_log) {
  return name == "--api-url" || name == "--client-id" || name == "--ca-bundle" ||
         name == "--format" || name == "--timeout" || (name == "--project" && !after_access_log);
}

}  // namespace

unloc::result<invocation> parse_arguments(const std::vector<std::string>& args, environment env) {
  invocation inv;
  inv.api_url = env("UNLOC_API_URL").empty() ? inv.api_url : env("UNLOC_API_URL");
  inv.project_id = env("UNLOC_PROJECT_ID");
  inv.client_id = env("UNLOC_CLIENT_ID");
  inv.client_secret = env("UNLOC_CLIENT_SECRET");
  inv.ca_bundle = env("UNLOC_CA_BUNDLE");

  std::vector<std::string> words;
  std::string lock_text, from_text, to_text, format_text, timeout_text;
  bool saw_url = false;
  bool help = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::optional<std::string> inline_value;
    if (name.rfind("--", 0) == 0) {
      if (const auto eq = name.find('='); eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        name.resize(eq);
      }
    } else {
      words.push_back(name);
      continue;
    }
    const bool after_access_log = !words.empty() && words[0] == "access-log";
    if (name == "--help" || name == "-h") {
      help = true;
      continue;
    }
    if (name == "--project" && after_access_log) {
      if (inline_value) return usage("--project after access-log takes no value");
      inv.project_wide = true;
      continue;
    }
    const bool takes_value = is_global_with_value(name, after_access_log) || name == "--lock" ||
                             name == "--url" || name == "--from" || name == "--to";
    if (!takes_value) return usage("unknown option " + unloc::detail::quoted(name));
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return usage(name + " needs a value");
    }
    if (name == "--api-url") inv.api_url = value;
    else if (name == "--project") inv.project_id = value;
    else if (name == "--client-id") inv.client_id = value;
    else if (name == "--ca-bundle") inv.ca_bundle = value;
    else if (name == "--format") format_text = value;
    else if (name == "--timeout") timeout_text = value;
    else if (name == "--lock") lock_text = value;
    else if (name == "--url") { inv.url = value; saw_url = true; }
    else if (name == "--from") from_text = value;
    else if (name == "--to") to_text = value;
  }

  if (help || words.empty()) {
    inv.what = command::help;
    return inv;
  }
  const auto command_is = [&words](std::initializer_list<std::string_view> expected,
                                   std::size_t operands) {
    if (words.size() != expected.size() + operands) return false;
    std::size_t i = 0;
    for (const auto w : expected) {
      if (words[i++] != w) return false;
    }
    return true;
  };
  if (command_is({"webhooks", "register"}, 0)) inv.what = command::webhooks_register;
  else if (command_is({"webhooks", "list"}, 0)) inv.what = command::webhooks_list;
  else if (command_is({"webhooks", "delete"}, 1)) inv.what = command::webhooks_delete;
  else if (command_is({"access-log"}, 0)) inv.what = command::access_log;
  else if (command_is({"credentials", "generate"}, 0)) inv.what = command::credentials_generate;
  else {
    std::string given;
    for (const auto& w : words) given += (given.empty() ? "" : " ") + w;
    return usage("unknown command " + unloc::detail::quoted(given) + " (see unloc --help)");
  }

  if (!format_text.empty()) {
    if (format_text == "table") inv.format = output_format::table;
    else if (format_text == "json") inv.format = output_format::json;
    else if (format_text == "jsonl") inv.format = output_format::jsonl;
    else if (format_text == "csv") inv.format = output_format::csv;
    else return usage("--format must be table, json, jsonl or csv");
  }
  if (!timeout_text.empty()) {
    char* end = nullptr;
    const double seconds = std::strtod(timeout_text.c_str(), &end);
    if (end == timeout_text.c_str() || *end != '\0' || !std::isfinite(seconds) || seconds <= 0 ||
        seconds > 86400) {
      return usage("--timeout must be a number of seconds, more than 0");
    }
    inv.timeout = std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
  }
  if (!lock_text.empty()) {
    auto id = unloc::uuid::parse(lock_text);
    if (!id) return usage("--lock: " + id.error().message);
    inv.lock_id = *id;
  }
  for (auto [text, target, name] : {std::tuple{&from_text, &inv.from, "--from"},
                                    std::tuple{&to_text, &inv.to, "--to"}}) {
    if (text->empty()) continue;
    auto t = unloc::parse_timestamp(*text);
    if (!t) return usage(std::string(name) + ": " + t.error().message);
    *target = *t;
  }

  const bool uses_api = inv.what != command::credentials_generate;
  switch (inv.what) {
    case command::webhooks_register: {
      if (!inv.lock_id) return usage("webhooks register needs --lock ID");
      if (!saw_url) return usage("webhooks register needs --url URL");
      if (auto valid = unloc::validate_webhook_url(inv.url); !valid) {
        return usage(valid.error().message);
      }
      break;
    }
    case command::webhooks_delete: {
      auto id = unloc::uuid::parse(words.back());
      if (!id) return usage("WEBHOOK_ID: " + id.error().message);
      inv.webhook_id = *id;
      break;
    }
    case command::access_log:
      if (!inv.project_wide && !inv.lock_id) return usage("access-log needs --lock ID or --project");
      if (inv.from && inv.to && *inv.from > *inv.to) return usage("--from is after --to");
      break;
    default:
      break;
  }
  if (uses_api) {
    if (inv.project_id.empty()) return usage("no project: give --project ID or UNLOC_PROJECT_ID");
    if (inv.client_id.empty()) return usage("no client id: give --client-id ID or UNLOC_CLIENT_ID");
    if (inv.client_secret.empty()) return usage("no client secret: set UNLOC_CLIENT_SECRET");
  }
  return inv;
}

}  // namespace unloc_cli

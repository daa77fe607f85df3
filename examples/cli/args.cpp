#include "args.hpp"

#include <unloc/client.hpp>

#include "completion.hpp"
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <tuple>
#include <utility>

namespace unloc_cli {

namespace {

const char* const footer = R"(T is an RFC 3339 timestamp, such as 2024-05-01T00:00:00Z.
The client secret is read from UNLOC_CLIENT_SECRET, else from the file named by
UNLOC_CLIENT_SECRET_FILE (container secrets); never from a flag, never printed.
Global options may also follow the command; -- ends the options.
Exit status: 0 success, 1 the API answered with an error, 2 bad usage or invalid
input, 3 a network or TLS failure.)";

const char* const command_footer = "Global options (unloc --help) may also follow the command.";

// The deepest command given, as typed: `unloc webhooks register`.
std::string command_path(const CLI::App& app) {
  std::string path = "unloc";
  for (const CLI::App* at = &app; !at->get_subcommands().empty();) {
    at = at->get_subcommands().front();
    path += " " + at->get_name();
  }
  return path;
}

std::string help_hint(const CLI::App& app) { return "\ntry '" + command_path(app) + " --help'"; }

// Whether the deepest command given has commands of its own (`webhooks`).
bool expects_command(const CLI::App& app) {
  const CLI::App* at = &app;
  while (!at->get_subcommands().empty()) at = at->get_subcommands().front();
  return !at->get_subcommands([](const CLI::App* sub) { return !sub->get_name().empty(); }).empty();
}

// Text that quotes what was typed, with the password of every URL in it
// (`scheme://user:password@`) REDACTED: a stray or misplaced URL argument.
std::string without_passwords(std::string_view text) {
  std::string out;
  for (std::size_t at = text.find("://"); at != std::string_view::npos; at = text.find("://")) {
    // The URL starts after the last blank or quote before its "://".
    const auto begin = text.find_last_of(" \t'\"=", at);
    const std::size_t start = begin == std::string_view::npos ? 0 : begin + 1;
    const auto end = std::min(text.find_first_of(" \t'\"", at), text.size());
    out.append(text.substr(0, start));
    out += unloc::redact_url(text.substr(start, end - start));
    text.remove_prefix(end);
  }
  return out.append(text);
}

// A CLI11 message quotes the arguments as typed: passwords in URLs are
// redacted, control bytes (a terminal's escape sequences) written as \xHH,
// and a long message is cut.
std::string printable(std::string_view typed) {
  static constexpr char hex[] = "0123456789abcdef";
  const std::string message = without_passwords(typed);
  std::string out;
  for (const char c : std::string_view(message).substr(0, 512)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte != 0x7f) {
      out += c;
    } else {
      out += {'\\', 'x', hex[byte >> 4], hex[byte & 0xf]};
    }
  }
  return message.size() > 512 ? out + "..." : out;
}

unloc::error usage(std::string message, const CLI::App& app) {
  message += help_hint(app);
  return unloc::make_error(unloc::error_category::invalid_input, std::move(message));
}

std::optional<std::chrono::milliseconds> parse_seconds(const std::string& text) {
  char* end = nullptr;
  const double seconds = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !std::isfinite(seconds) || seconds <= 0 ||
      seconds > 86400) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(std::max(1LL, static_cast<long long>(seconds * 1000)));
}

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// A container secret: a regular file (a FIFO or a device would hang or never
// end), small, its trailing line break dropped. Errors name the file, never
// its content.
unloc::result<std::string> read_secret_file(const std::string& path) {
  const auto fail = [&path](const std::string& why) {
    return unloc::make_error(
        unloc::error_category::invalid_input,
        "UNLOC_CLIENT_SECRET_FILE " + unloc::detail::quoted(path) + ": " + why);
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return fail(std::strerror(errno));
  struct stat info {};
  std::string secret;
  std::string why;
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    why = "not a regular file";
  } else {
    char buffer[4097];
    ssize_t n = 0;
    // A secret of more than 4 KiB is a wrong file, not a secret.
    while (secret.size() < sizeof buffer && (n = ::read(fd, buffer, sizeof buffer)) > 0) {
      secret.append(buffer, static_cast<std::size_t>(n));
    }
    if (n < 0)
      why = std::strerror(errno);
    else if (secret.size() >= sizeof buffer)
      why = "larger than 4 KiB";
  }
  ::close(fd);
  if (!why.empty()) return fail(why);
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) return fail("empty");
  return secret;
}

// The values CLI11 fills, checked into an invocation afterwards.
struct raw_values {
  std::string format = "table";
  std::string timeout, register_lock, log_lock, from, to, webhook_id, interval, shell;
  std::vector<std::string> listen_locks;
};

// Checks the values of the command given into `inv`; what is wrong, if anything.
std::optional<std::string> check_values(invocation& inv, const raw_values& raw) {
  if (raw.format == "json")
    inv.format = output_format::json;
  else if (raw.format == "jsonl")
    inv.format = output_format::jsonl;
  else if (raw.format == "csv")
    inv.format = output_format::csv;
  if (inv.csv_safe && inv.format != output_format::csv) {
    return "--csv-safe applies to --format csv only";
  }
  if (!raw.timeout.empty()) {
    inv.timeout = parse_seconds(raw.timeout);
    if (!inv.timeout) return "--timeout must be a number of seconds, more than 0";
  }
  for (const auto* text : {&raw.register_lock, &raw.log_lock}) {
    if (text->empty()) continue;
    auto id = unloc::uuid::parse(*text);
    if (!id) return "--lock: " + id.error().message;
    inv.lock_id = *id;
  }
  for (auto [text, target, name] :
       {std::tuple{&raw.from, &inv.from, "--from"}, std::tuple{&raw.to, &inv.to, "--to"}}) {
    if (text->empty()) continue;
    auto t = unloc::parse_timestamp(*text);
    if (!t) return std::string(name) + ": " + t.error().message;
    *target = *t;
  }

  switch (inv.what) {
    case command::webhooks_register:
      if (auto valid = unloc::validate_webhook_url(inv.url); !valid) {
        return valid.error().message;
      }
      break;
    case command::webhooks_delete: {
      auto id = unloc::uuid::parse(raw.webhook_id);
      if (!id) return "WEBHOOK_ID: " + id.error().message;
      inv.webhook_id = *id;
      break;
    }
    case command::access_log:
      if (!inv.project_wide && !inv.lock_id) return "access-log needs --lock ID or --project";
      if (inv.from && inv.to && *inv.from > *inv.to) return "--from is after --to";
      break;
    case command::listen:
      for (const auto& lock : raw.listen_locks) {
        auto id = unloc::uuid::parse(lock);
        if (!id) return "--lock: " + id.error().message;
        inv.listen.locks.push_back(id->to_string());
      }
      if (!raw.interval.empty()) {
        // At least a second: a shorter interval only hammers the API.
        auto interval = parse_seconds(raw.interval);
        if (!interval || *interval < std::chrono::seconds(1) || *interval > std::chrono::hours(1)) {
          return "--interval must be 1 to 3600 seconds";
        }
        inv.listen.interval = *interval;
      }
      // One private CA may sign both the API (a reference server) and the receiver.
      inv.listen.ca_bundle = inv.ca_bundle;
      break;
    default: break;
  }
  return std::nullopt;
}

// The commands, in the order of `unloc --help`.
struct commands {
  CLI::App *webhooks, *reg, *list, *del, *log, *credentials, *generate, *listen, *completion;
};

// Declares every option and command of `app`, bound to `inv` and `raw`.
commands define_commands(CLI::App& app, invocation& inv, raw_values& raw) {
  app.fallthrough();           // inherited: an option a command does not know goes to its parent
  app.footer(command_footer);  // inherited by the commands; the top level's is set below
  app.set_help_flag("-h,--help", "Print this help (after a command, that command's help) and exit");
  app.set_version_flag(
      "--version",
      std::string("unloc ") + UNLOC_VERSION_STRING + "\n" + unloc::detail::curl_version_token(),
      "Print the versions of unloc and of libcurl and exit");
  const char* const global = "Global options";
  app.add_option("--api-url", inv.api_url, "Base URL")
      ->envname("UNLOC_API_URL")
      ->capture_default_str()
      ->group(global);
  app.add_option("--project", inv.project_id, "The Project (UUID)")
      ->envname("UNLOC_PROJECT_ID")
      ->group(global);
  app.add_option("--client-id", inv.client_id, "OAuth client id")
      ->envname("UNLOC_CLIENT_ID")
      ->group(global);
  app.add_option("--ca-bundle", inv.ca_bundle, "PEM file of extra trusted CAs")
      ->envname("UNLOC_CA_BUNDLE")
      ->type_name("FILE")
      ->group(global);
  app.add_option("--format", raw.format, "Output format: table for people, the others for scripts")
      ->check(CLI::IsMember({"table", "json", "jsonl", "csv"}))
      ->capture_default_str()
      ->group(global);
  app.add_flag("--csv-safe", inv.csv_safe,
               "With --format csv: prefix ' to cells starting with = + - @, which a spreadsheet "
               "runs as formulas (it changes data: +47 phone numbers)")
      ->group(global);
  app.add_option("--timeout", raw.timeout, "Overall deadline of the command (listen: stops then)")
      ->type_name("SECONDS")
      ->group(global);

  commands c{};
  c.webhooks = app.add_subcommand("webhooks", "The Project's webhooks");
  c.reg =
      c.webhooks->add_subcommand("register", "Register a webhook (on 409, print the existing one)");
  c.reg->add_option("--lock", raw.register_lock, "The Lock (UUID)")->required();
  c.reg->add_option("--url", inv.url, "https://USER:PASSWORD@host/path")->required();
  c.list = c.webhooks->add_subcommand("list", "List the Project's webhooks");
  c.del = c.webhooks->add_subcommand("delete", "Delete a webhook");
  c.del->add_option("WEBHOOK_ID", raw.webhook_id, "The webhook (UUID)")->required();

  c.log =
      app.add_subcommand("access-log", "Access Events, every page followed, in the order served");
  c.log->add_option("--lock", raw.log_lock, "The Lock (UUID)");
  c.log->add_flag("--project", inv.project_wide,
                  "The Project's log (a switch here: the Project is the --project before the "
                  "command, or UNLOC_PROJECT_ID)");
  c.log->add_option("--from", raw.from, "Events from T (the API clamps it to 30 days ago)")
      ->type_name("T");
  c.log->add_option("--to", raw.to, "Events up to T (default: now)")->type_name("T");
  c.log->footer(std::string("T is an RFC 3339 timestamp, such as 2024-05-01T00:00:00Z.\n") +
                command_footer);

  c.credentials = app.add_subcommand("credentials", "Credentials for webhook URLs");
  c.generate = c.credentials->add_subcommand(
      "generate", "Random Basic credentials, valid under the reserved-character rule");

  c.listen = app.add_subcommand(
      "listen",
      "Poll the access log from now on and POST each new Access Event to URL, as Unloc "
      "delivers it; one line a forward; runs until SIGINT or SIGTERM");
  c.listen
      ->add_option("--forward-to", inv.listen.forward_to,
                   "http(s)://USER:PASSWORD@host:port/path (http: loopback only)")
      ->required();
  c.listen
      ->add_option("--lock", raw.listen_locks,
                   "A Lock to poll (repeatable; default: the Project's log)")
      ->allow_extra_args(false);  // one value per --lock
  c.listen
      ->add_option("--interval", raw.interval, "Seconds between two polls, 1 to 3600 (default 3)")
      ->type_name("SECONDS");

  c.completion = app.add_subcommand("completion",
                                    "Print a completion script: source <(unloc completion bash)");
  c.completion->add_option("SHELL", raw.shell, "The shell")
      ->check(CLI::IsMember({"bash", "zsh"}))
      ->required();

  app.footer(footer);
  app.allow_extras();  // named below, saying what was meant
  // One command a line: `credentials generate webhooks list` is not two.
  for (auto* parent : {&app, c.webhooks, c.credentials}) parent->require_subcommand(0, 1);

  return c;
}

}  // namespace

unloc::result<invocation> parse_arguments(const std::vector<std::string>& args) {
  invocation inv;
  raw_values raw;

  CLI::App app("unloc: the command-line client of the Unloc API", "unloc");
  const commands c = define_commands(app, inv, raw);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 pops from the back
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    inv.text = app.help();
    return inv;
  } catch (const CLI::CallForAllHelp&) {
    inv.text = app.help("", CLI::AppFormatMode::All);
    return inv;
  } catch (const CLI::CallForVersion& e) {
    inv.text = std::string(e.what()) + "\n";
    return inv;
  } catch (const CLI::Error& e) {  // every parse error; the others are programming errors
    return usage(printable(e.what()), app);
  }

  auto extras = app.remaining(true);
  while (extras.size() > app.remaining_size(true)) {  // CLI11 keeps the `--` it consumed
    extras.erase(std::find(extras.begin(), extras.end(), "--"));
  }
  if (!extras.empty()) {
    const std::string& first = extras.front();
    if (c.log->parsed() && inv.project_wide && unloc::uuid::parse(first)) {
      return usage(
          "after access-log, --project is the switch to the project-wide log and takes no "
          "value; name the Project before the command or in UNLOC_PROJECT_ID: unloc --project " +
              first + " access-log --project",
          app);
    }
    const std::string shown = without_passwords(first);
    if (first.rfind('-', 0) == 0)
      return usage("unknown option " + unloc::detail::quoted(shown), app);
    if (expects_command(app)) {
      std::string given = command_path(app) + " " + shown;
      return usage("unknown command " + unloc::detail::quoted(given.substr(given.find(' ') + 1)),
                   app);
    }
    return usage("unexpected argument " + unloc::detail::quoted(shown), app);
  }

  if (c.completion->parsed()) {
    inv.text = completion_script(app, raw.shell);
    return inv;
  }
  const std::pair<const CLI::App*, command> chosen[] = {
      {c.reg, command::webhooks_register},         {c.list, command::webhooks_list},
      {c.del, command::webhooks_delete},           {c.log, command::access_log},
      {c.generate, command::credentials_generate}, {c.listen, command::listen}};
  const auto* const given = std::find_if(std::begin(chosen), std::end(chosen),
                                         [](const auto& choice) { return choice.first->parsed(); });
  if (given == std::end(chosen)) {
    if (c.webhooks->parsed())
      return usage("webhooks needs a command: register, list or delete", app);
    if (c.credentials->parsed()) return usage("credentials needs a command: generate", app);
    inv.text = app.help();
    return inv;
  }
  inv.what = given->second;
  if (auto bad = check_values(inv, raw)) return usage(*bad, app);
  if (inv.what == command::credentials_generate) return inv;
  if (inv.project_id.empty())
    return usage("no project: give --project ID or UNLOC_PROJECT_ID", app);
  if (inv.client_id.empty())
    return usage("no client id: give --client-id ID or UNLOC_CLIENT_ID", app);
  inv.client_secret = env("UNLOC_CLIENT_SECRET");
  if (inv.client_secret.empty()) {
    const std::string file = env("UNLOC_CLIENT_SECRET_FILE");
    if (file.empty()) {
      return usage("no client secret: set UNLOC_CLIENT_SECRET or UNLOC_CLIENT_SECRET_FILE", app);
    }
    auto secret = read_secret_file(file);
    if (!secret) return secret.error();
    inv.client_secret = std::move(*secret);
  }
  return inv;
}

}  // namespace unloc_cli

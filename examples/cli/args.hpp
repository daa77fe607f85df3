#pragma once

// The `unloc` CLI's command line, parsed with CLI11: global options (each also
// read from the environment, the flag winning; they may follow the command),
// one command and its arguments. Everything is checked here, before any
// request is sent.

#include <unloc/core.hpp>

#include "listen.hpp"
#include "output.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace unloc_cli {

/// What the command line asks for.
enum class command {
  print,  // help, --version or a completion script: print `text`, exit 0
  webhooks_register,
  webhooks_list,
  webhooks_delete,
  access_log,
  credentials_generate,
  listen,
};

/// A parsed and checked command line.
struct invocation {
  command what = command::print;
  std::string text;  // what command::print prints
  // Global options.
  std::string api_url = "https://api.unloc.app";
  std::string project_id;
  std::string client_id;
  std::string client_secret;  // UNLOC_CLIENT_SECRET or UNLOC_CLIENT_SECRET_FILE only
  std::string ca_bundle;
  output_format format = output_format::table;
  bool csv_safe = false;
  std::optional<std::chrono::milliseconds> timeout;
  // Command arguments.
  std::optional<unloc::uuid> lock_id;
  std::string url;
  std::optional<unloc::uuid> webhook_id;
  bool project_wide = false;
  std::optional<unloc::timestamp> from;
  std::optional<unloc::timestamp> to;
  listen_options listen;
};

/// Parses `args` (without the program name); an error of category
/// invalid_input says what is wrong with the usage and where to find help.
unloc::result<invocation> parse_arguments(const std::vector<std::string>& args);

}  // namespace unloc_cli

#pragma once

// The `unloc` CLI's command line: global options (each also read from the
// environment, the flag winning), one command, and its arguments. Everything
// is checked here, before any request is sent.

#include "output.hpp"

#include <unloc/core.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace unloc_cli {

enum class command {
  help,
  webhooks_register,
  webhooks_list,
  webhooks_delete,
  access_log,
  credentials_generate,
};

/// A parsed and checked command line.
struct invocation {
  command what = command::help;
  // Global options.
  std::string api_url = "https://api.unloc.app";
  std::string project_id;
  std::string client_id;
  std::string client_secret;  // from UNLOC_CLIENT_SECRET only
  std::string ca_bundle;
  output_format format = output_format::table;
  std::optional<std::chrono::milliseconds> timeout;
  // Command arguments.
  std::optional<unloc::uuid> lock_id;
  std::string url;
  std::optional<unloc::uuid> webhook_id;
  bool project_wide = false;
  std::optional<unloc::timestamp> from;
  std::optional<unloc::timestamp> to;
};

/// Reads a value of the environment (empty when unset).
using environment = std::string (*)(const char* name);

/// Parses `args` (without the program name); an error of category
/// invalid_input names what is wrong with the usage.
unloc::result<invocation> parse_arguments(const std::vector<std::string>& args, environment env);

/// The help text.
const char* usage_text();

}  // namespace unloc_cli

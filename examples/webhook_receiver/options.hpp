#pragma once

// The command line of unloc-webhook-receiver, fixed by shared/cli-and-receiver.md.

#include <unloc/core.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace receiver {

struct options {
  std::string host = "127.0.0.1";
  int port = 8443;
  std::string cert_file;
  std::string key_file;
  bool plain_http = false;
  std::string path = "/accessEvents";
  std::size_t max_body = 65536;
  bool no_auth = false;
  std::string port_file;
  std::vector<unloc::basic_credentials> credentials;  // from the environment
};

/// What parsing decided: run, or exit now with a status (after printing).
struct parsed {
  options opts;
  int exit_now = -1;  // -1: run
};

/// Parses the arguments and the environment; prints usage errors and --help.
parsed parse_options(int argc, char** argv);

}  // namespace receiver

#pragma once

// The exit statuses of `unloc` (docs/cli.md), shared by its commands and `listen`.

#include <unloc/error.hpp>

namespace unloc_cli {

enum exit_status { ok = 0, api_failure = 1, bad_usage = 2, network_failure = 3 };

// What a failed call exits with: bad input 2, the network or TLS 3, the API 1.
inline exit_status status_for(const unloc::error& e) {
  switch (e.category) {
    case unloc::error_category::invalid_input: return bad_usage;
    case unloc::error_category::network:
    case unloc::error_category::tls:
    case unloc::error_category::timeout: return network_failure;
    default: return api_failure;
  }
}

}  // namespace unloc_cli

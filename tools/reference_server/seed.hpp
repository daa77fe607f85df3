#pragma once

// Initial state from a JSON file: {"webhooks":[...],"accessEvents":[...]}.

#include "store.hpp"

#include <string>

namespace refserver {

/// Loads the seed file into `state`; returns an empty string on success, else
/// what is wrong (naming the entry at fault). Webhook URLs follow
/// `parse_delivery_url` with `allow_http_loopback`.
std::string load_seed(store& state, const std::string& path, bool allow_http_loopback);

}  // namespace refserver

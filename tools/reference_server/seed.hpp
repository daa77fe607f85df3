#pragma once

// Initial state from a JSON file: {"webhooks":[...],"accessEvents":[...]}.

#include "store.hpp"

#include <string>

namespace refserver {

/// Loads the seed file into `state`; returns an empty string on success, else
/// what is wrong (naming the entry at fault).
std::string load_seed(store& state, const std::string& path);

}  // namespace refserver

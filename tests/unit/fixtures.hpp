#pragma once

// Small pieces several unit tests share.

#include <unloc/uuid.hpp>

#include "catch.hpp"

#include <array>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <system_error>

namespace unit {

/// Whether `needle` occurs in `haystack` (an error's message, a printed form).
inline bool has_text(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

/// A distinct id for each n.
inline unloc::uuid numbered_id(std::uint32_t n) {
  std::array<std::uint8_t, 16> bytes{};
  bytes[0] = 0xae;
  bytes[12] = static_cast<std::uint8_t>(n >> 24);
  bytes[13] = static_cast<std::uint8_t>(n >> 16);
  bytes[14] = static_cast<std::uint8_t>(n >> 8);
  bytes[15] = static_cast<std::uint8_t>(n);
  return unloc::uuid(bytes);
}

/// A fresh directory in the system's temporary directory for a reconciliation
/// state file (`path()`), removed with everything in it (std::filesystem, not
/// mkdtemp: the unit tests also run on Windows).
struct state_dir {
  std::string dir;
  state_dir() {
    std::error_code error;
    const auto base = std::filesystem::temp_directory_path(error);
    std::random_device entropy;
    for (int attempt = 0; attempt < 100 && dir.empty() && !error; ++attempt) {
      const auto candidate = base / ("unloc-state-" + std::to_string(entropy()));
      if (std::filesystem::create_directory(candidate, error)) dir = candidate.string();
    }
    REQUIRE(!dir.empty());
  }
  ~state_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  state_dir(const state_dir&) = delete;
  state_dir& operator=(const state_dir&) = delete;
  [[nodiscard]] std::string path() const { return dir + "/state"; }
};

}  // namespace unit

#pragma once

// Small pieces several unit tests share.

#include <unloc/uuid.hpp>

#include "catch.hpp"
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>

namespace unit {

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

/// A fresh directory under /tmp for a reconciliation state file (`path()`),
/// removed with the state's files.
struct state_dir {
  std::string dir;
  state_dir() {
    std::string pattern = "/tmp/unloc-state-XXXXXX";
    dir = ::mkdtemp(pattern.data()) != nullptr ? pattern : "";
    REQUIRE(!dir.empty());
  }
  ~state_dir() {
    for (const char* name : {"/state", "/state.journal", "/state.tmp"}) {
      std::remove((dir + name).c_str());
    }
    ::rmdir(dir.c_str());
  }
  state_dir(const state_dir&) = delete;
  state_dir& operator=(const state_dir&) = delete;
  [[nodiscard]] std::string path() const { return dir + "/state"; }
};

}  // namespace unit

// Windows only: the SDK first, then <windows.h> and <bcrypt.h> (see windows_h_first.cpp).
#include <unloc/core.hpp>

#include <windows.h>

// windows.h first: bcrypt.h needs its types.
#include <bcrypt.h>

#include <string>

// Replaces the file twice: the second MoveFileExA must replace an existing file.
bool unloc_replace_twice(const std::string& path) {
  return unloc::detail::state_file::replace(path, "one\n") &&
         unloc::detail::state_file::replace(path, "two\n");
}

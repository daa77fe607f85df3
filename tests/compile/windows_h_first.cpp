// Windows only: <windows.h> without NOMINMAX (min and max are macros) and
// <bcrypt.h> before the SDK; tests/compile/windows_h_after.cpp includes them after
// it. Run, it draws random bytes and replaces a file the way the reconciliation
// store does, through the SDK's declarations of BCryptGenRandom and MoveFileExA.
// windows.h first (bcrypt.h needs its types), both before the SDK.
// clang-format off
#include <windows.h>
#include <bcrypt.h>
#include <unloc/core.hpp>
// clang-format on

#include <cstdio>
#include <string>

bool unloc_replace_twice(const std::string& path);

int main() {
  unsigned char bytes[300] = {};
  if (!unloc::detail::random_bytes(bytes, sizeof bytes)) return 1;
  char directory[MAX_PATH + 1] = {};
  if (GetTempPathA(sizeof directory, directory) == 0) return 2;
  const std::string path = std::string(directory) + "unloc-windows-h-check";
  if (!unloc_replace_twice(path)) return 3;
  std::remove(path.c_str());
  std::printf("the SDK compiles beside <windows.h> and <bcrypt.h>, and its Win32 calls work\n");
  return 0;
}

#pragma once

// Everything the SDK asks of the operating system, and the only header that
// includes a platform header: bytes from the system's CSPRNG, and the few file
// operations of file_event_store. Internal: not part of the API.
//
// On Windows it includes no <windows.h>: that would hand the user's code its
// min/max and other macros, and defining WIN32_LEAN_AND_MEAN or NOMINMAX here
// would change what the user's own later #include <windows.h> declares. The two
// Win32 functions used are declared below exactly as the Windows SDK and
// MinGW-w64 declare them (Boost.WinAPI does the same), so either header may
// come before or after this one. Link bcrypt (the CMake targets, unloc-core.pc
// and the recipes do).

#include <unloc/version.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

#if defined(_WIN32)
#include <fcntl.h>
#include <io.h>
#include <sys/stat.h>
extern "C" {
// bcrypt.h: NTSTATUS WINAPI BCryptGenRandom(BCRYPT_ALG_HANDLE, PUCHAR, ULONG, ULONG).
long __stdcall BCryptGenRandom(void* algorithm, unsigned char* buffer, unsigned long size,
                               unsigned long flags);
// winbase.h: WINBASEAPI BOOL WINAPI MoveFileExA(LPCSTR, LPCSTR, DWORD).
__declspec(dllimport) int __stdcall MoveFileExA(const char* existing, const char* replacement,
                                                unsigned long flags);
}
#elif defined(__APPLE__)
#include <fcntl.h>
#include <sys/types.h>
// sys/types.h first: older SDKs' sys/random.h does not include it.
#include <sys/random.h>
#include <unistd.h>
#else
#include <fcntl.h>
// glibc 2.25+, musl, FreeBSD 12+, OpenBSD, NetBSD 10+ and Android API 28+
// declare getentropy here.
#include <unistd.h>
#endif

UNLOC_BEGIN_NAMESPACE
namespace detail {

/// Fills `out` with `n` bytes from the operating system's cryptographically
/// secure generator (never std::random_device, which may be a deterministic
/// engine, and never rand()); false when the system could not provide them (the
/// contents of `out` are then unspecified). Thread-safe.
[[nodiscard]] inline bool random_bytes(void* out, std::size_t n) noexcept {
  auto* p = static_cast<unsigned char*>(out);
#if defined(_WIN32)
  // BCryptGenRandom takes a ULONG length: ask in chunks that fit.
  constexpr std::size_t max_chunk = 0x10000000;
  constexpr unsigned long use_system_preferred_rng = 0x00000002;  // BCRYPT_USE_SYSTEM_PREFERRED_RNG
  while (n > 0) {
    const std::size_t chunk = n < max_chunk ? n : max_chunk;
    const long status =
        ::BCryptGenRandom(nullptr, p, static_cast<unsigned long>(chunk), use_system_preferred_rng);
    if (status < 0) return false;  // a negative NTSTATUS is an error (BCRYPT_SUCCESS)
    p += chunk;
    n -= chunk;
  }
  return true;
#else
  // getentropy fails with EIO for more than 256 bytes a call.
  constexpr std::size_t max_chunk = 256;
  while (n > 0) {
    const std::size_t chunk = n < max_chunk ? n : max_chunk;
    if (::getentropy(p, chunk) != 0) return false;
    p += chunk;
    n -= chunk;
  }
  return true;
#endif
}

/// One file opened for writing, with the durability each operation promises:
/// what file_event_store needs and nothing more. Not thread-safe.
class state_file {
 public:
  state_file() = default;
  state_file(const state_file&) = delete;
  state_file& operator=(const state_file&) = delete;
  ~state_file() { close(); }

  /// Opens `path` for appending, creating it (owner read and write only).
  bool open_append(const std::string& path) {
    fd_ = open_for_writing(path, false);
    return fd_ >= 0;
  }

  /// One write(2) per record where the system allows: a killed process leaves
  /// whole lines, or at worst one torn last line, which loading ignores.
  bool write_all(std::string_view text) {
    while (!text.empty()) {
#if defined(_WIN32)
      const int n = ::_write(fd_, text.data(), static_cast<unsigned>(text.size()));
#else
      const auto n = ::write(fd_, text.data(), text.size());
#endif
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      text.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  /// Returns once what was written is on the disk.
  bool sync() {
#if defined(_WIN32)
    return ::_commit(fd_) == 0;
#else
    return ::fsync(fd_) == 0;
#endif
  }

  /// Empties the file.
  bool truncate() {
#if defined(_WIN32)
    return ::_chsize_s(fd_, 0) == 0;
#else
    return ::ftruncate(fd_, 0) == 0;
#endif
  }

  /// Closes the file; harmless when none is open.
  void close() {
    if (fd_ < 0) return;
#if defined(_WIN32)
    ::_close(fd_);
#else
    ::close(fd_);
#endif
    fd_ = -1;
  }

  /// Replaces `path` with `text` atomically: a temporary file, synced, renamed
  /// over it, and (POSIX) the directory synced so that the rename survives a power cut.
  static bool replace(const std::string& path, std::string_view text) {
    const std::string temporary = path + ".tmp";
    state_file out;
    out.fd_ = open_for_writing(temporary, true);
    if (out.fd_ < 0 || !out.write_all(text) || !out.sync()) return false;
    out.close();
#if defined(_WIN32)
    constexpr unsigned long replace_existing = 0x1;  // MOVEFILE_REPLACE_EXISTING
    constexpr unsigned long write_through = 0x8;     // MOVEFILE_WRITE_THROUGH
    return ::MoveFileExA(temporary.c_str(), path.c_str(), replace_existing | write_through) != 0;
#else
    if (std::rename(temporary.c_str(), path.c_str()) != 0) return false;
    const auto slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_CLOEXEC);
    if (dir_fd < 0) return false;
    const bool synced = ::fsync(dir_fd) == 0;
    ::close(dir_fd);
    return synced;
#endif
  }

 private:
  // Opens `path` for writing, creating it: appending, or emptied first (`truncate`).
  static int open_for_writing(const std::string& path, bool truncate) {
#if defined(_WIN32)
    const int mode = truncate ? _O_TRUNC : _O_APPEND;
    return ::_open(path.c_str(), _O_WRONLY | _O_CREAT | _O_BINARY | mode, _S_IREAD | _S_IWRITE);
#else
    const int mode = truncate ? O_TRUNC : O_APPEND;
    return ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | mode, 0600);
#endif
  }

  int fd_ = -1;
};

}  // namespace detail
UNLOC_END_NAMESPACE

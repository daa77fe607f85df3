#pragma once

/// @file
/// The file operations `unloc::file_event_store` needs, with the durability
/// each promises (kept apart from it: the only platform-specific code).

#include <unloc/version.hpp>

#if defined(_WIN32)
#include <io.h>
#include <windows.h>
#else
#include <fcntl.h>
#include <unistd.h>
#endif

#include <cerrno>
#include <cstdio>
#include <string>
#include <string_view>

UNLOC_BEGIN_NAMESPACE

namespace detail {

// The few file operations the store needs, with the durability each promises.
class state_file {
 public:
  state_file() = default;
  state_file(const state_file&) = delete;
  state_file& operator=(const state_file&) = delete;
  ~state_file() { close(); }

  // Opens `path` for appending, creating it.
  bool open_append(const std::string& path) {
#if defined(_WIN32)
    fd_ = ::_open(path.c_str(), _O_WRONLY | _O_APPEND | _O_CREAT | _O_BINARY, 0600);
#else
    fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
#endif
    return fd_ >= 0;
  }

  // One write(2) per record where the system allows: a killed process leaves
  // whole lines, or at worst one torn last line, which loading ignores.
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

  bool sync() {
#if defined(_WIN32)
    return ::_commit(fd_) == 0;
#else
    return ::fsync(fd_) == 0;
#endif
  }

  bool truncate() {
#if defined(_WIN32)
    return ::_chsize_s(fd_, 0) == 0;
#else
    return ::ftruncate(fd_, 0) == 0;
#endif
  }

  void close() {
    if (fd_ < 0) return;
#if defined(_WIN32)
    ::_close(fd_);
#else
    ::close(fd_);
#endif
    fd_ = -1;
  }

  // Replaces `path` with `text` atomically: a temporary file, synced, renamed
  // over it, and (POSIX) the directory synced so that the rename survives a power cut.
  static bool replace(const std::string& path, std::string_view text) {
    const std::string temporary = path + ".tmp";
    state_file out;
#if defined(_WIN32)
    out.fd_ = ::_open(temporary.c_str(), _O_WRONLY | _O_CREAT | _O_TRUNC | _O_BINARY, 0600);
#else
    out.fd_ = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
#endif
    if (out.fd_ < 0 || !out.write_all(text) || !out.sync()) return false;
    out.close();
#if defined(_WIN32)
    return ::MoveFileExA(temporary.c_str(), path.c_str(),
                         MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH) != 0;
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
  int fd_ = -1;
};

}  // namespace detail

UNLOC_END_NAMESPACE

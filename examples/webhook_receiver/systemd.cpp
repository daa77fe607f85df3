#include "systemd.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace receiver {

bool notify(std::string_view state) noexcept {
  const char* name = std::getenv("NOTIFY_SOCKET");
  if (name == nullptr || name[0] == '\0') return true;
  const std::size_t length = std::strlen(name);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  // Only paths and abstract names (systemd also knows vsock:, which a receiver never gets).
  if ((name[0] != '/' && name[0] != '@') || length > sizeof address.sun_path) return false;
  if (name[0] == '/' && length == sizeof address.sun_path) return false;  // no room for the NUL
  std::memcpy(address.sun_path, name, length);
  if (name[0] == '@') address.sun_path[0] = '\0';
  // An abstract name's length is exact (no NUL terminator); a path's includes its NUL.
  const auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length +
                                           (name[0] == '/' ? 1 : 0));

  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&address), size);
  ::close(fd);
  return sent >= 0 && static_cast<std::size_t>(sent) == state.size();
}

bool notify_ready() noexcept { return notify("READY=1"); }

}  // namespace receiver

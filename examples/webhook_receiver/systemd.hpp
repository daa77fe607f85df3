#pragma once

// systemd's readiness protocol (sd_notify), written without libsystemd: one
// datagram to the unix socket named by $NOTIFY_SOCKET.

#include <string_view>

namespace receiver {

/// Sends `state` (e.g. "READY=1", "RELOADING=1", "STOPPING=1") to
/// $NOTIFY_SOCKET, a socket path or an abstract name written "@name". True when
/// sent, and when NOTIFY_SOCKET is unset or empty (not run by systemd); false
/// when it could not be sent. Never throws; never blocks for long.
bool notify(std::string_view state) noexcept;

/// notify("READY=1"): the receiver listens (Type=notify in the unit file).
bool notify_ready() noexcept;

}  // namespace receiver

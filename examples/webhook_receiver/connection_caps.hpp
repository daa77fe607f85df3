#pragma once

// The receiver's caps on open connections: in total, and per client address,
// so that one client cannot take the connections that deliveries need.

#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

namespace receiver {

/// Counts open connections against a total cap and a per-client cap. A client
/// is an IPv4 address (an IPv4-mapped IPv6 address counts as its IPv4 address)
/// or an IPv6 /64, the block one subscriber usually holds; any other text is a
/// client of its own. A cap of 0 means no cap. Thread-safe; must outlive its tickets.
class connection_caps {
 public:
  /// Caps of `max_total` connections and `max_per_client` from one client.
  connection_caps(std::size_t max_total, std::size_t max_per_client);
  connection_caps(const connection_caps&) = delete;
  connection_caps& operator=(const connection_caps&) = delete;

  /// One admitted connection's slot: movable, released on destruction.
  class ticket {
   public:
    ticket(ticket&& other) noexcept;
    ticket& operator=(ticket&& other) noexcept;
    ticket(const ticket&) = delete;
    ticket& operator=(const ticket&) = delete;
    ~ticket();

   private:
    friend class connection_caps;
    ticket(connection_caps* caps, std::string client) noexcept;
    void release() noexcept;
    connection_caps* caps_;  // null once moved from
    std::string client_;
  };

  /// A ticket for a connection from `address` (an IP address as text), or the
  /// cap that refused it: "total" or "per_client". Never throws on any text.
  std::variant<ticket, std::string_view> admit(const std::string& address);

  /// The connections admitted and not yet released.
  [[nodiscard]] std::size_t open() const;

 private:
  void release(const std::string& client) noexcept;

  const std::size_t max_total_;
  const std::size_t max_per_client_;
  mutable std::mutex mutex_;
  std::size_t open_ = 0;
  std::unordered_map<std::string, std::size_t> per_client_;
};

}  // namespace receiver

#include "connection_caps.hpp"

#include <arpa/inet.h>

#include <array>
#include <cstring>
#include <utility>

namespace receiver {

namespace {

// The key `address` is counted under: "4:" and 4 bytes, "6:" and the first 8 bytes
// (the /64), or the text itself after "?:" when it is no IP address.
std::string client_key(const std::string& address) {
  std::array<unsigned char, 16> bytes{};
  if (::inet_pton(AF_INET, address.c_str(), bytes.data()) == 1) {
    return "4:" + std::string(reinterpret_cast<const char*>(bytes.data()), 4);
  }
  if (::inet_pton(AF_INET6, address.c_str(), bytes.data()) == 1) {
    constexpr std::array<unsigned char, 12> v4_mapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(bytes.data(), v4_mapped.data(), v4_mapped.size()) == 0) {
      return "4:" + std::string(reinterpret_cast<const char*>(bytes.data()) + 12, 4);
    }
    return "6:" + std::string(reinterpret_cast<const char*>(bytes.data()), 8);
  }
  return "?:" + address;
}

}  // namespace

connection_caps::connection_caps(std::size_t max_total, std::size_t max_per_client)
    : max_total_(max_total), max_per_client_(max_per_client) {}

std::variant<connection_caps::ticket, std::string_view> connection_caps::admit(
    const std::string& address) {
  using result = std::variant<ticket, std::string_view>;
  std::string client = client_key(address);
  const std::lock_guard<std::mutex> lock(mutex_);
  if (max_total_ != 0 && open_ >= max_total_) return result(std::in_place_index<1>, "total");
  auto& count = per_client_[client];
  if (max_per_client_ != 0 && count >= max_per_client_) {
    return result(std::in_place_index<1>, "per_client");
  }
  ++count;
  ++open_;
  return result(std::in_place_index<0>, ticket(this, std::move(client)));
}

std::size_t connection_caps::open() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return open_;
}

void connection_caps::release(const std::string& client) noexcept {
  const std::lock_guard<std::mutex> lock(mutex_);
  const auto it = per_client_.find(client);
  if (it == per_client_.end()) return;
  --open_;
  if (--it->second == 0) per_client_.erase(it);
}

connection_caps::ticket::ticket(connection_caps* caps, std::string client) noexcept
    : caps_(caps), client_(std::move(client)) {}

connection_caps::ticket::ticket(ticket&& other) noexcept
    : caps_(std::exchange(other.caps_, nullptr)), client_(std::move(other.client_)) {}

connection_caps::ticket& connection_caps::ticket::operator=(ticket&& other) noexcept {
  if (this != &other) {
    release();
    caps_ = std::exchange(other.caps_, nullptr);
    client_ = std::move(other.client_);
  }
  return *this;
}

connection_caps::ticket::~ticket() { release(); }

void connection_caps::ticket::release() noexcept {
  if (caps_ != nullptr) std::exchange(caps_, nullptr)->release(client_);
}

}  // namespace receiver

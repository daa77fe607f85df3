#pragma once

// The reference server's state: tokens, webhooks, the access log and the
// events an offline app still holds. All in memory, behind one mutex; every
// member function is safe to call from any thread.

#include <unloc/access_event.hpp>
#include <unloc/uuid.hpp>
#include <unloc/webhook.hpp>

#include "event_log.hpp"

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace refserver {

/// What a bearer token turned out to be.
enum class token_state { valid, expired, unknown };

/// Everything the server remembers.
class store {
 public:
  /// A token for the project, valid for `lifetime` from now.
  std::string issue_token(const std::string& client_id, const std::string& project_id,
                          std::chrono::seconds lifetime);
  /// Whether `token` is one this server issued, has not revoked and has not expired.
  [[nodiscard]] token_state check_token(std::string_view token) const;
  /// Forgets every issued token, so every current one is refused.
  void revoke_tokens();

  /// The outcome of registering a webhook.
  struct registration {
    unloc::webhook hook;  ///< The new webhook, or the existing one for the same url and Lock.
    bool created = false;
  };
  /// Registers `url` for `lock_id` unless that pair is registered already.
  registration register_webhook(const std::string& url, std::optional<unloc::uuid> lock_id);
  /// Adds a webhook as it is (from a seed file); false when its id is taken.
  bool add_webhook(unloc::webhook hook);
  /// Every webhook, oldest first.
  [[nodiscard]] std::vector<unloc::webhook> webhooks() const;
  /// Deletes a webhook; false when there is none with that id.
  bool delete_webhook(const unloc::uuid& id);
  /// Whether a webhook with that id is registered.
  [[nodiscard]] bool has_webhook(const unloc::uuid& id) const;
  /// The webhooks an event of `lock_id` goes to: that Lock's and those without a Lock.
  [[nodiscard]] std::vector<unloc::webhook> webhooks_for(const unloc::uuid& lock_id) const;

  /// Adds events to the access log; returns how many were new (ids already known are skipped).
  std::size_t record(const std::vector<unloc::access_event>& events);
  /// One page of the access log.
  [[nodiscard]] log_page page(const log_query& query) const;
  /// How many events the access log holds.
  [[nodiscard]] std::size_t event_count() const;

  /// Holds events that an offline app has not reported yet.
  void hold(std::vector<unloc::access_event> events);
  /// Takes the held events (of one Lock, or all).
  std::vector<unloc::access_event> take_held(const std::optional<unloc::uuid>& lock_id);
  /// How many events are held.
  [[nodiscard]] std::size_t held_count() const;

  /// Forgets events, held events and webhooks (tokens stay valid).
  void reset();

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> tokens_;
  std::vector<unloc::webhook> webhooks_;
  event_log log_;
  std::vector<unloc::access_event> held_;
};

}  // namespace refserver

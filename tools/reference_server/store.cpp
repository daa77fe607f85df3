#include "store.hpp"

#include "util.hpp"
#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

namespace refserver {

std::string store::issue_token(const std::string& client_id, const std::string& project_id,
                               std::chrono::seconds lifetime) {
  // Shaped like the JWT Unloc issues (header.payload.signature), but opaque:
  // the server only looks it up.
  const auto issued = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const nlohmann::json header = {{"alg", "HS256"}, {"typ", "JWT"}};
  const nlohmann::json payload = {
      {"sub", client_id}, {"project_id", project_id},         {"scope", "project.admin"},
      {"iat", issued},    {"exp", issued + lifetime.count()}, {"jti", random_hex(16)}};
  std::string signature(32, '\0');
  random_fill(signature.data(), signature.size());
  std::string token = base64url_encode(header.dump()) + "." + base64url_encode(payload.dump()) +
                      "." + base64url_encode(signature);

  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mutex_);
  // Forget tokens long expired, so that a long run does not grow without bound.
  if (tokens_.size() > 10000) {
    for (auto it = tokens_.begin(); it != tokens_.end();) {
      it = it->second < now ? tokens_.erase(it) : std::next(it);
    }
  }
  tokens_[token] = now + lifetime;
  return token;
}

token_state store::check_token(std::string_view token) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = tokens_.find(std::string(token));
  if (it == tokens_.end()) return token_state::unknown;
  return std::chrono::steady_clock::now() < it->second ? token_state::valid : token_state::expired;
}

void store::revoke_tokens() {
  std::lock_guard<std::mutex> lock(mutex_);
  tokens_.clear();
}

store::registration store::register_webhook(const std::string& url,
                                            std::optional<unloc::uuid> lock_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& hook : webhooks_) {
    if (hook.url == url && hook.lock_id == lock_id) return {hook, false};
  }
  unloc::webhook hook;
  hook.id = random_uuid();
  hook.trigger = std::string(unloc::access_event_trigger);
  hook.url = url;
  hook.lock_id = lock_id;
  hook.created = now_ms();
  webhooks_.push_back(hook);
  return {std::move(hook), true};
}

bool store::add_webhook(unloc::webhook hook) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& existing : webhooks_) {
    if (existing.id == hook.id) return false;
  }
  webhooks_.push_back(std::move(hook));
  return true;
}

std::vector<unloc::webhook> store::webhooks() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return webhooks_;
}

bool store::delete_webhook(const unloc::uuid& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = std::find_if(webhooks_.begin(), webhooks_.end(),
                               [&id](const unloc::webhook& hook) { return hook.id == id; });
  if (it == webhooks_.end()) return false;
  webhooks_.erase(it);
  return true;
}

bool store::has_webhook(const unloc::uuid& id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::any_of(webhooks_.begin(), webhooks_.end(),
                     [&id](const unloc::webhook& hook) { return hook.id == id; });
}

std::vector<unloc::webhook> store::webhooks_for(const unloc::uuid& lock_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<unloc::webhook> out;
  for (const auto& hook : webhooks_) {
    if (!hook.lock_id || *hook.lock_id == lock_id) out.push_back(hook);
  }
  return out;
}

std::size_t store::record(const std::vector<unloc::access_event>& events) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::size_t added = 0;
  for (const auto& event : events) {
    if (log_.add(event)) ++added;
  }
  return added;
}

log_page store::page(const log_query& query) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return log_.page(query);
}

std::size_t store::event_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return log_.size();
}

void store::hold(std::vector<unloc::access_event> events) {
  std::lock_guard<std::mutex> lock(mutex_);
  held_.insert(held_.end(), std::make_move_iterator(events.begin()),
               std::make_move_iterator(events.end()));
}

std::vector<unloc::access_event> store::take_held(const std::optional<unloc::uuid>& lock_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<unloc::access_event> taken;
  std::vector<unloc::access_event> kept;
  for (auto& event : held_) {
    (!lock_id || event.lock_id == *lock_id ? taken : kept).push_back(std::move(event));
  }
  held_ = std::move(kept);
  return taken;
}

std::size_t store::held_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return held_.size();
}

void store::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  webhooks_.clear();
  log_.clear();
  held_.clear();
}

}  // namespace refserver

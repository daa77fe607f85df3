#pragma once

// The README Quickstart's integrator, shared by the unit test of its path and
// the example test that runs it behind an HTTPS server fed by the reference
// server: a database of one row an event, keyed by its id, whose next insert
// can be made to fail once ("database is locked"), and the handler as written
// in the README (validate, claim, insert, mark; release and 503 on failure).

#include <unloc/access_event.hpp>
#include <unloc/delivery.hpp>
#include <unloc/event_store.hpp>

#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace unloc_test {

class quickstart_database {
 public:
  bool insert(const unloc::access_event& event) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (fail_next_insert_) {
      fail_next_insert_ = false;
      return false;
    }
    rows_.emplace(event.id.to_string(), unloc::to_json_text(event));
    return true;
  }
  void fail_next_insert() {
    const std::lock_guard<std::mutex> lock(mutex_);
    fail_next_insert_ = true;
  }
  [[nodiscard]] std::map<std::string, std::string> rows() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return rows_;
  }

 private:
  mutable std::mutex mutex_;
  bool fail_next_insert_ = false;
  std::map<std::string, std::string> rows_;
};

// The README's handle_once and on_delivery, line for line.
inline unloc::delivery_decision quickstart_handle_once(unloc::event_store& events,
                                                       quickstart_database& db,
                                                       unloc::delivery_decision decision) {
  const unloc::access_event& event = *decision.event;
  auto claim = events.claim(event.id, event.created);
  if (!claim) return unloc::make_refusal(unloc::delivery_outcome::unavailable, "try again later");
  switch (claim->status) {
    case unloc::claim_status::already_handled:
      return decision;  // a repeat: 204, not acted on
    case unloc::claim_status::held_elsewhere: {
      auto busy = unloc::make_refusal(unloc::delivery_outcome::unavailable, "try again later");
      busy.headers.add("Retry-After", "1");
      return busy;
    }
    case unloc::claim_status::mine:
      break;
  }
  if (!db.insert(event)) {
    (void)events.release(event.id, claim->token);  // the platform's retry claims it again
    return unloc::make_refusal(unloc::delivery_outcome::unavailable, "try again later");
  }
  (void)events.mark_handled(event.id, claim->token);
  return decision;
}

inline unloc::delivery_decision quickstart_handler(const unloc::delivery_validator& validator,
                                                   unloc::event_store& events,
                                                   quickstart_database& db,
                                                   const unloc::delivery_request& request) {
  auto decision = validator.validate(request);
  if (!decision.ok()) return decision;  // 4xx, with its JSON body
  return quickstart_handle_once(events, db, std::move(decision));
}

}  // namespace unloc_test

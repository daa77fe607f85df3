// Validate a webhook delivery and handle its event once: the few lines an
// integrator puts in the handler of whatever HTTP server they already run.
// Here the delivery is the one of Unloc's webhooks guide, built by
// unloc::testing, and "your database" is a map.

#include <unloc/core.hpp>
#include <unloc/testing.hpp>

#include <iostream>
#include <map>
#include <string>

namespace {

// Your database: one row an event, keyed by its id (a repeat is then harmless).
std::map<std::string, std::string> database;

bool insert_event(const unloc::access_event& event) {
  database.emplace(event.id.to_string(), unloc::to_string(event));
  return true;  // false when your insert failed
}

}  // namespace

int main() {
  // Once, at start-up: the credentials in the URL you registered (an error
  // when one is empty), and the store that remembers which events were handled.
  unloc::delivery_options options;
  options.credentials = {{"myuser", "mypasswoord"}};
  auto validator = unloc::delivery_validator::create(options);
  if (!validator) {
    std::cerr << unloc::to_string(validator.error()) << "\n";
    return 2;
  }
  unloc::memory_event_store events;  // or a store over your own database

  // In your request handler: method, path, headers and body, as your server has them.
  const auto request = unloc::testing::make_test_delivery(
      unloc::testing::sample_access_event(), unloc::basic_credentials{"myuser", "mypasswoord"});
  auto decision = validator->validate({request.method, request.path, request.headers, request.body});

  if (decision.ok()) {
    const unloc::access_event& event = *decision.event;
    const auto claim = events.claim(event.id, event.created);
    if (claim && claim->status == unloc::claim_status::mine) {
      if (insert_event(event)) {
        // In your insert's transaction, if the store can; not_owner: another took it over.
        (void)events.mark_handled(event.id, claim->token);
        std::cout << "new event: " << unloc::to_string(event) << "\n";
      } else {
        (void)events.release(event.id, claim->token);  // the platform's retry claims it again
        decision = unloc::make_refusal(unloc::delivery_outcome::unavailable, "try again later");
      }
    } else if (!claim || claim->status == unloc::claim_status::held_elsewhere) {
      decision = unloc::make_refusal(unloc::delivery_outcome::unavailable, "try again later");
      decision.headers.add("Retry-After", "1");
    }  // already_handled: a repeat, acknowledged with the 204 and not acted on
  } else {
    std::cout << "rejected " << decision.status << ": " << decision.message << "\n";
  }
  // Answer decision.status with decision.headers and decision.body.
  std::cout << "answered " << decision.status << "\n";
  return decision.ok() ? 0 : 1;
}

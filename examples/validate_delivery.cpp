// Validate a webhook delivery: the few lines an integrator puts in the
// handler of whatever HTTP server they already run. Here the delivery is the
// one of Unloc's webhooks guide, built by unloc::testing.

#include <unloc/core.hpp>
#include <unloc/testing.hpp>

#include <iostream>
#include <memory>

int main() {
  // Once, at start-up: the credentials in the URL you registered, and a store
  // that remembers event ids so that a repeated delivery is not acted on twice.
  unloc::delivery_options options;
  options.credentials = {{"myuser", "mypasswoord"}};
  options.duplicates = std::make_shared<unloc::memory_duplicate_store>();
  const unloc::delivery_validator validator(options);

  // In your request handler: method, path, headers and body, as your server has them.
  const auto request = unloc::testing::make_test_delivery(
      unloc::testing::sample_access_event(), unloc::basic_credentials{"myuser", "mypasswoord"});
  const auto decision =
      validator.validate({request.method, request.path, request.headers, request.body});

  // Answer decision.status with decision.headers and decision.body, then act on new events.
  if (decision.is_new()) {
    std::cout << "new event: " << unloc::to_string(*decision.event) << "\n";
  } else if (!decision.ok()) {
    std::cout << "rejected " << decision.status << ": " << decision.message << "\n";
  }
  std::cout << "answered " << decision.status << "\n";
  return decision.ok() ? 0 : 1;
}

// Register a webhook for a Lock, then print the Lock's access log: the two
// calls most integrations start with. Configuration comes from the same
// environment variables as the `unloc` CLI.
//
//   export UNLOC_API_URL=https://127.0.0.1:8443 UNLOC_PROJECT_ID=… UNLOC_CLIENT_ID=…
//   export UNLOC_CLIENT_SECRET=… UNLOC_CA_BUNDLE=ca.pem
//   register_and_read_log LOCK_ID https://user:password@example.com/accessEvents

#include <unloc/unloc.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

namespace {

std::string env(const char* name, const char* fallback = "") {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: register_and_read_log LOCK_ID WEBHOOK_URL\n";
    return 2;
  }
  const auto lock_id = unloc::uuid::parse(argv[1]);
  if (!lock_id) {
    std::cerr << unloc::to_string(lock_id.error()) << "\n";
    return 2;
  }

  unloc::client_options options;
  options.api_url = env("UNLOC_API_URL", "https://api.unloc.app");
  options.project_id = env("UNLOC_PROJECT_ID");
  options.client_id = env("UNLOC_CLIENT_ID");
  options.client_secret = env("UNLOC_CLIENT_SECRET");
  options.ca_file = env("UNLOC_CA_BUNDLE");  // only for a private or test server
  auto client = unloc::client::create(options);
  if (!client) {
    std::cerr << unloc::to_string(client.error()) << "\n";
    return 2;
  }

  // Safe to run on every start: registers only when this webhook is missing.
  unloc::webhook_registration registration;
  registration.lock_id = *lock_id;
  registration.url = argv[2];
  auto hook = client->ensure_webhook(registration);
  if (!hook) {
    std::cerr << unloc::to_string(hook.error()) << "\n";
    return 1;
  }
  std::cout << (hook->created ? "registered " : "already registered ")
            << unloc::to_string(hook->hook) << "\n";  // the URL's password is REDACTED

  // Every page followed, newest first; memory stays bounded by one page.
  auto read = client->read_access_log(unloc::access_log_query::lock(*lock_id),
                                      [](unloc::access_event&& event) {
                                        std::cout << unloc::to_string(event) << "\n";
                                        return true;
                                      });
  if (!read) {
    std::cerr << unloc::to_string(read.error()) << "\n";
    return 1;
  }
  std::cout << read->events << " access events\n";
  return 0;
}

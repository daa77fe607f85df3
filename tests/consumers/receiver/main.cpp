// A receiver-only consumer of the installed package: unloc::core validates a
// webhook delivery, and libcurl is neither included nor linked.
#include <unloc/core.hpp>

#include <cstdio>
#include <memory>

int main() {
  unloc::delivery_options options;
  options.credentials = {{"myuser", "mypasswoord"}};
  const unloc::delivery_validator validator(options);

  const unloc::http_headers headers{{"Content-Type", "application/json"}};
  const auto decision = validator.validate({"POST", "/accessEvents", headers, "{}"});
  if (decision.status != 401 || decision.outcome != unloc::delivery_outcome::unauthorized) {
    std::fprintf(stderr, "a delivery without credentials got %d\n", decision.status);
    return 1;
  }
  std::printf("receiver of unloc %s without libcurl: %d for no credentials\n",
              unloc::version_string, decision.status);
  return 0;
}

// A consumer of the whole installed SDK: <unloc/unloc.hpp> and unloc::unloc; with
// UNLOC_ROUND_TRIP, also the nlohmann/json round trip (the consumer's own nlohmann).
#include <unloc/unloc.hpp>

#ifdef UNLOC_ROUND_TRIP
#include "round_trip.hpp"
#endif

#include <cstdio>

int main() {
  std::printf("consumer of the full unloc %s\n", unloc::version_string);
#ifdef UNLOC_ROUND_TRIP
  return unloc_consumer::round_trip();
#else
  return 0;
#endif
}

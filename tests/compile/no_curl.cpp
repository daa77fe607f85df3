// Compiled with tests/no_curl first on the include path, where <curl/curl.h> is
// an #error: <unloc/core.hpp> (models and delivery validation) never includes
// libcurl, so a service that only receives webhooks does not need it.
#include <unloc/core.hpp>

#include <cstdio>

int main() {
  const auto id = unloc::uuid::parse("AE832E61-C8FA-4ED9-8196-61210CB4207B");
  if (!id) return 1;
  std::printf("<unloc/core.hpp> compiles without libcurl: %s\n", id->to_string().c_str());
  return 0;
}

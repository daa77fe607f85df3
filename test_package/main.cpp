// The smallest consumer of the packaged SDK: the whole SDK with the client, or
// the core alone when the package was built without it.
#ifdef UNLOC_TEST_PACKAGE_CLIENT
#include <unloc/unloc.hpp>
#define UNLOC_TEST_PACKAGE_PART "with the client"
#else
#include <unloc/core.hpp>
#define UNLOC_TEST_PACKAGE_PART "core"
#endif

#include <cstdio>

int main() {
  const auto id = unloc::uuid::parse("AE832E61-C8FA-4ED9-8196-61210CB4207B");
  if (!id) return 1;
  std::printf("unloc %s test_package (%s): %s\n", unloc::version_string, UNLOC_TEST_PACKAGE_PART,
              id->to_string().c_str());
  return 0;
}

// The smallest consumer of the packaged SDK: the whole SDK, with the client.
#include <unloc/unloc.hpp>

#include <cstdio>

int main() {
  const auto id = unloc::uuid::parse("AE832E61-C8FA-4ED9-8196-61210CB4207B");
  if (!id) return 1;
  std::printf("unloc %s test_package: %s\n", unloc::version_string, id->to_string().c_str());
  return 0;
}

// A receiver-only consumer of the installed package: unloc::core, no libcurl.
#include <unloc/core.hpp>

#include <cstdio>
#include <cstring>

int main() {
  if (std::strcmp(unloc::version_string, UNLOC_EXPECTED_VERSION) != 0) {
    std::fprintf(stderr, "header says %s, package config says %s\n", unloc::version_string,
                 UNLOC_EXPECTED_VERSION);
    return 1;
  }
  const unloc::result<unloc::uuid> id = unloc::uuid::parse("AE832E61-C8FA-4ED9-8196-61210CB4207B");
  if (!id || id->to_string() != "ae832e61-c8fa-4ed9-8196-61210cb4207b") return 1;
  const unloc::result<unloc::timestamp> impossible = unloc::parse_timestamp("2022-02-30T00:00:00Z");
  if (impossible.has_value()) return 1;
  std::printf("consumer of unloc %s: %s; rejected: %s\n", unloc::version_string,
              id->to_string().c_str(), impossible.error().message.c_str());
  return 0;
}

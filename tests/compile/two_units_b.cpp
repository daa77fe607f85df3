// The other translation unit of the missing-inline check; see two_units_a.cpp.
#include <unloc/unloc.hpp>

#include <cstdio>
#include <string>

std::string unloc_two_units_a();

int main() {
  const std::string b = unloc::version_string;
  if (unloc_two_units_a() != b) return 1;
  std::printf("two translation units including <unloc/unloc.hpp> link: unloc %s\n", b.c_str());
  return 0;
}

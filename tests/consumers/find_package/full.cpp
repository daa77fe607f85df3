// A consumer of the whole installed SDK: <unloc/unloc.hpp> and unloc::unloc.
#include <unloc/unloc.hpp>

#include <cstdio>

int main() {
  std::printf("consumer of the full unloc %s\n", unloc::version_string);
  return 0;
}

// Catch2's main, compiled once for every test program. v3 links Catch2WithMain instead.
#if __has_include(<catch2/catch_test_macros.hpp>)
int unloc_catch_v3_has_its_own_main = 0;
#else
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#endif

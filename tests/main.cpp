// Catch2 v2's main, where no prebuilt one fits (tests/CMakeLists.txt): compiled once
// for every test program.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

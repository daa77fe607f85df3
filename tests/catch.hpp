#pragma once

// The only place that knows whether the tests build with Catch2 v2 (Debian) or
// v3 (vcpkg, Conan): every test file includes this header and nothing else of Catch2.

#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#define UNLOC_CATCH_VERSION 3
#else
#include <catch2/catch.hpp>
#define UNLOC_CATCH_VERSION 2
#endif

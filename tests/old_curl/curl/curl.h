// Stands in for libcurl 7.76's header in the minimum-version check
// (tests/compile/old_curl.cpp): the client must refuse it with a clear #error.
#pragma once
#define LIBCURL_VERSION "7.76.1"      // NOLINT(readability-identifier-naming): curl.h's own names
#define LIBCURL_VERSION_NUM 0x074c01  // NOLINT(readability-identifier-naming)

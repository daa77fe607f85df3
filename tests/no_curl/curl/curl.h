// Stands in for libcurl's header in the no-curl check (tests/compile/no_curl.cpp).
#error "unloc::core must not include libcurl"

// Compiled with tests/old_curl first on the include path, where <curl/curl.h>
// says 7.76.1: the client needs 7.77 (CURLOPT_CAINFO_BLOB) and must say so with
// its own #error, not with an undeclared identifier deep in the transport.
#include <unloc/client.hpp>

int main() { return 0; }

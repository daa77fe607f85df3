// The baseline of compile_full_*: nlohmann/json and libcurl, and one parse.
#include <curl/curl.h>
#include <nlohmann/json.hpp>

int main(int argc, char** argv) {
  const auto doc = nlohmann::json::parse(argc > 1 ? argv[1] : "{}", nullptr, false);
  return doc.is_discarded() ? 1 : 0;
}

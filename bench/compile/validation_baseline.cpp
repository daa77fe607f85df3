// The baseline of compile_validation_*: nlohmann/json only, and one parse.
#include <nlohmann/json.hpp>

int main(int argc, char** argv) {
  const auto doc = nlohmann::json::parse(argc > 1 ? argv[1] : "{}", nullptr, false);
  return doc.is_discarded() ? 1 : 0;
}

// compile_validation_*: the validation headers only, and one validation.
#include <unloc/delivery.hpp>

int main(int argc, char** argv) {
  unloc::delivery_options options;
  options.credentials = {{"user", "password"}};
  const unloc::delivery_validator validator(options);
  const unloc::http_headers headers{{"Content-Type", "application/json"}};
  const auto decision =
      validator.validate({"POST", "/accessEvents", headers, argc > 1 ? argv[1] : "{}"});
  return decision.ok() ? 0 : 1;
}

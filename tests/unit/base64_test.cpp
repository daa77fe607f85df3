#include <unloc/detail/base64.hpp>

#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "catch.hpp"

using unloc::detail::base64_decode;
using unloc::detail::base64_encode;

namespace {

// RFC 4648 section 10.
const std::vector<std::pair<std::string, std::string>> rfc4648_vectors = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

}  // namespace

TEST_CASE("base64 encodes the RFC 4648 test vectors", "[base64]") {
  for (const auto& [text, encoded] : rfc4648_vectors) {
    CAPTURE(text);
    CHECK(base64_encode(text) == encoded);
  }
}

TEST_CASE("base64 decodes the RFC 4648 test vectors", "[base64]") {
  for (const auto& [text, encoded] : rfc4648_vectors) {
    CAPTURE(encoded);
    const auto decoded = base64_decode(encoded);
    REQUIRE(decoded.has_value());
    CHECK(*decoded == text);
  }
}

TEST_CASE("base64 encodes the Basic credentials of Unloc's webhook guide", "[base64]") {
  CHECK(base64_encode("myuser:mypasswoord") == "bXl1c2VyOm15cGFzc3dvb3Jk");
  CHECK(base64_decode("bXl1c2VyOm15cGFzc3dvb3Jk") ==
        std::optional<std::string>("myuser:mypasswoord"));
}

TEST_CASE("base64 uses the standard alphabet with + and /, not the URL-safe one", "[base64]") {
  CHECK(base64_encode(std::string("\xfb\xef\xbe", 3)) == "++++");
  CHECK(base64_encode(std::string("\xfb\xff", 2)) == "+/8=");
  CHECK(base64_decode("+/8=") == std::optional<std::string>(std::string("\xfb\xff", 2)));
  CHECK_FALSE(base64_decode("-_8=").has_value());
}

TEST_CASE("base64 round-trips every byte value and every length up to 300", "[base64]") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  std::mt19937 rng(20240601);
  std::string random;
  for (int i = 0; i < 300; ++i) random += static_cast<char>(rng() & 0xff);
  for (const std::string& source : {all, random}) {
    for (std::size_t n = 0; n <= source.size(); ++n) {
      const std::string text = source.substr(0, n);
      const std::string encoded = base64_encode(text);
      CAPTURE(n);
      REQUIRE(encoded.size() == (n + 2) / 3 * 4);
      const auto decoded = base64_decode(encoded);
      REQUIRE(decoded.has_value());
      REQUIRE(*decoded == text);
    }
  }
}

TEST_CASE("base64 rejects a length that is not a multiple of 4", "[base64]") {
  for (const char* bad : {"Z", "Zg", "Zg=", "Zm9", "Zm9vY", "Zm9vYg", "Zm9vYg="}) {
    CAPTURE(bad);
    CHECK_FALSE(base64_decode(bad).has_value());
  }
}

TEST_CASE("base64 rejects whitespace anywhere", "[base64]") {
  for (const char* bad : {"Zm9v\n", " Zm9", "Zm 9", "Zm9v\r\nYmFy", "Zm9\tv", "Zm9v    "}) {
    CAPTURE(bad);
    CHECK_FALSE(base64_decode(bad).has_value());
  }
}

TEST_CASE("base64 rejects padding that is not at the end or is too long", "[base64]") {
  for (const char* bad : {"====", "Z===", "=Zg=", "Zg==Zg==", "Z=g=", "Zm=v", "Zm9v====", "Zg=A"}) {
    CAPTURE(bad);
    CHECK_FALSE(base64_decode(bad).has_value());
  }
}

TEST_CASE("base64 rejects characters outside the standard alphabet", "[base64]") {
  for (const std::string& bad :
       {std::string("Zm9*"), std::string("Zm9."), std::string("Zm9_"), std::string("Zm9-"),
        std::string("Zm9\xc3", 4), std::string("Zm\0v", 4), std::string("Zm9v\x80YmFy", 9)}) {
    CAPTURE(bad);
    CHECK_FALSE(base64_decode(bad).has_value());
  }
}

TEST_CASE("base64 rejects non-zero bits after the last encoded byte", "[base64]") {
  // "Zg==" and "Zm8=" are the canonical forms; these decode to the same bytes plus stray bits.
  for (const char* bad : {"Zh==", "Zv==", "Zm9=", "Zm/="}) {
    CAPTURE(bad);
    CHECK_FALSE(base64_decode(bad).has_value());
  }
  CHECK(base64_decode("Zg==") == std::optional<std::string>("f"));
  CHECK(base64_decode("Zm8=") == std::optional<std::string>("fo"));
}

TEST_CASE("base64 decodes the empty string to the empty string", "[base64]") {
  const auto decoded = base64_decode("");
  REQUIRE(decoded.has_value());
  CHECK(decoded->empty());
}

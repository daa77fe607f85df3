#include <unloc/uuid.hpp>

#include "catch.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace {

constexpr std::string_view access_event_id = "ae832e61-c8fa-4ed9-8196-61210cb4207b";
// Unloc's own documented id: its version nibble is 'a' and its variant bits are not RFC 4122's.
constexpr std::string_view unloc_example_id = "def32263-a884-aed0-f167-f1a1ccbd297a";

unloc::uuid parse_ok(std::string_view text) {
  auto parsed = unloc::uuid::parse(text);
  INFO(text);
  REQUIRE(parsed.has_value());
  return *parsed;
}

// The error message of a parse that must fail.
std::string uuid_error(std::string_view text) {
  auto parsed = unloc::uuid::parse(text);
  REQUIRE_FALSE(parsed.has_value());
  CHECK(parsed.error().category == unloc::error_category::invalid_input);
  return parsed.error().message;
}

}  // namespace

static_assert(unloc::uuid{}.is_nil(), "the default uuid is nil");
static_assert(!unloc::uuid{std::array<std::uint8_t, 16>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                        1}}
                   .is_nil(),
              "a uuid with any bit set is not nil");

TEST_CASE("parses the documented Access Event id and writes it back unchanged", "[uuid]") {
  const auto id = parse_ok(access_event_id);
  CHECK(id.to_string() == access_event_id);
  const std::array<std::uint8_t, 16> expected = {0xae, 0x83, 0x2e, 0x61, 0xc8, 0xfa, 0x4e, 0xd9,
                                                 0x81, 0x96, 0x61, 0x21, 0x0c, 0xb4, 0x20, 0x7b};
  CHECK(id.bytes() == expected);
  CHECK_FALSE(id.is_nil());
}

TEST_CASE("accepts Unloc's example id whose version and variant bits are not RFC 4122", "[uuid]") {
  const auto id = parse_ok(unloc_example_id);
  CHECK(id.to_string() == unloc_example_id);
  CHECK(id.bytes()[6] == 0xae);  // version nibble 'a'
  CHECK(id.bytes()[8] == 0xf1);  // variant bits 111
}

TEST_CASE("accepts uppercase input and writes it lowercase", "[uuid]") {
  const auto upper = parse_ok("AE832E61-C8FA-4ED9-8196-61210CB4207B");
  const auto mixed = parse_ok("Ae832e61-C8fA-4eD9-8196-61210Cb4207B");
  CHECK(upper.to_string() == access_event_id);
  CHECK(mixed.to_string() == access_event_id);
  CHECK(upper == parse_ok(access_event_id));
  CHECK(parse_ok("DEF32263-A884-AED0-F167-F1A1CCBD297A").to_string() == unloc_example_id);
}

TEST_CASE("writes every hex digit value in lowercase", "[uuid]") {
  CHECK(parse_ok("01234567-89AB-CDEF-0123-456789abcdef").to_string() ==
        "01234567-89ab-cdef-0123-456789abcdef");
  CHECK(parse_ok("ffffffff-ffff-ffff-ffff-ffffffffffff").to_string() ==
        "ffffffff-ffff-ffff-ffff-ffffffffffff");
}

TEST_CASE("writes every byte value at every position as two lowercase digits", "[uuid]") {
  for (std::size_t at = 0; at < 16; ++at) {
    for (unsigned value = 0; value < 256; ++value) {
      std::array<std::uint8_t, 16> bytes{};
      bytes[at] = static_cast<std::uint8_t>(value);
      std::string expected;
      for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) expected += '-';
        char digits[3];
        std::snprintf(digits, sizeof digits, "%02x", static_cast<unsigned>(bytes[i]));
        expected += digits;
      }
      const unloc::uuid u(bytes);
      REQUIRE(u.to_string() == expected);
      REQUIRE(parse_ok(expected) == u);
    }
  }
}

TEST_CASE("a default-constructed uuid is the nil uuid and only all-zero bytes are nil", "[uuid]") {
  const unloc::uuid nil;
  CHECK(nil.is_nil());
  CHECK(nil.to_string() == "00000000-0000-0000-0000-000000000000");
  CHECK(parse_ok("00000000-0000-0000-0000-000000000000") == nil);
  CHECK_FALSE(parse_ok("00000000-0000-0000-0000-000000000001").is_nil());
  CHECK_FALSE(parse_ok("10000000-0000-0000-0000-000000000000").is_nil());
}

TEST_CASE("keeps the bytes it is constructed from", "[uuid]") {
  std::array<std::uint8_t, 16> bytes{};
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 17);
  const unloc::uuid id(bytes);
  CHECK(id.bytes() == bytes);
  CHECK(id.to_string() == "00112233-4455-6677-8899-aabbccddeeff");
  CHECK(parse_ok(id.to_string()) == id);
}

TEST_CASE("the free to_string matches the member", "[uuid]") {
  const auto id = parse_ok(unloc_example_id);
  CHECK(to_string(id) == id.to_string());
  CHECK(unloc::to_string(unloc::uuid{}) == "00000000-0000-0000-0000-000000000000");
}

TEST_CASE("rejects an empty UUID", "[uuid]") {
  CHECK(uuid_error("") == "invalid UUID '': expected 36 characters, got 0");
}

TEST_CASE("rejects text that is not exactly 36 characters", "[uuid]") {
  CHECK(uuid_error("ae832e61-c8fa-4ed9-8196-61210cb4207") ==
        "invalid UUID 'ae832e61-c8fa-4ed9-8196-61210cb4207': expected 36 characters, got 35");
  CHECK(uuid_error("ae832e61-c8fa-4ed9-8196-61210cb4207b0") ==
        "invalid UUID 'ae832e61-c8fa-4ed9-8196-61210cb4207b0': expected 36 characters, got 37");
  CHECK(uuid_error("ae832e61c8fa4ed9819661210cb4207b") ==
        "invalid UUID 'ae832e61c8fa4ed9819661210cb4207b': expected 36 characters, got 32");
  CHECK(uuid_error("ae832e61-c8f") ==
        "invalid UUID 'ae832e61-c8f': expected 36 characters, got 12");
  CHECK(uuid_error("{ae832e61-c8fa-4ed9-8196-61210cb4207b}").find("got 38") != std::string::npos);
  CHECK(uuid_error(" ae832e61-c8fa-4ed9-8196-61210cb4207b").find("got 37") != std::string::npos);
  CHECK(uuid_error("urn:uuid:ae832e61-c8fa-4ed9-8196-61210cb4207b").find("got 45") !=
        std::string::npos);
}

TEST_CASE("rejects a missing hyphen at each of the four hyphen positions", "[uuid]") {
  for (const std::size_t pos : {8, 13, 18, 23}) {
    std::string text(access_event_id);
    text[pos] = '0';
    INFO(text);
    CHECK(uuid_error(text) == "invalid UUID '" + text + "': character " + std::to_string(pos + 1) +
                                   " must be a hyphen");
  }
}

TEST_CASE("rejects hyphens in the wrong places", "[uuid]") {
  // The first group one digit short: the hyphen lands where a hex digit belongs.
  CHECK(uuid_error("ae832e6-1c8fa-4ed9-8196-61210cb4207b") ==
        "invalid UUID 'ae832e6-1c8fa-4ed9-8196-61210cb4207b': character 8 is not a hex digit");
  // Same characters, grouped 8-4-4-4-12 in the wrong order (12 at the front).
  CHECK(uuid_error("61210cb4207b-c8fa-4ed9-8196-ae832e61").find("character 9 must be a hyphen") !=
        std::string::npos);
}

TEST_CASE("rejects a non-hex character at every hex position", "[uuid]") {
  for (std::size_t pos = 0; pos < 36; ++pos) {
    if (pos == 8 || pos == 13 || pos == 18 || pos == 23) continue;
    for (const char bad : {'g', 'G', 'z', ' ', '-', '+', 'x'}) {
      std::string text(access_event_id);
      text[pos] = bad;
      INFO(text);
      CHECK(uuid_error(text) == "invalid UUID '" + text + "': character " +
                                     std::to_string(pos + 1) + " is not a hex digit");
    }
  }
}

TEST_CASE("rejects a UUID with an embedded NUL and writes the NUL escaped in the message",
          "[uuid]") {
  std::string text(access_event_id);
  text[2] = '\0';
  const std::string message = uuid_error(text);
  CHECK(message ==
        "invalid UUID 'ae\\x0032e61-c8fa-4ed9-8196-61210cb4207b': character 3 is not a hex "
        "digit");
  CHECK(message.find('\0') == std::string::npos);
}

TEST_CASE("accepts exactly the 22 hex digit characters out of all 256 byte values", "[uuid]") {
  int accepted = 0;
  for (int byte = 0; byte < 256; ++byte) {
    std::string text(access_event_id);
    text[0] = static_cast<char>(byte);
    CHECK_NOTHROW((void)unloc::uuid::parse(text));
    if (unloc::uuid::parse(text).has_value()) ++accepted;
  }
  CHECK(accepted == 22);
}

TEST_CASE("cuts an overlong input short in the error message", "[uuid]") {
  const std::string text(10000, 'a');
  const std::string message = uuid_error(text);
  CHECK(message.find("got 10000") != std::string::npos);
  CHECK(message.size() < 200);
}

TEST_CASE("compares uuids by their bytes", "[uuid]") {
  const auto a = parse_ok("00000000-0000-0000-0000-0000000000ff");
  const auto b = parse_ok("00000000-0000-0000-0000-000000000100");
  const auto c = parse_ok("ff000000-0000-0000-0000-000000000000");
  CHECK(a == parse_ok("00000000-0000-0000-0000-0000000000FF"));
  CHECK_FALSE(a != parse_ok("00000000-0000-0000-0000-0000000000FF"));
  CHECK(a != b);
  CHECK_FALSE(a == b);
  CHECK(a < b);
  CHECK(b < c);
  CHECK(a < c);
  CHECK_FALSE(b < a);
  CHECK_FALSE(a < a);
  CHECK(unloc::uuid{} < a);
}

TEST_CASE("orders uuids as their lowercase text sorts", "[uuid]") {
  std::vector<std::string> texts = {
      std::string(access_event_id),           std::string(unloc_example_id),
      "3f97fafb-1b6a-42d0-85fa-ae2ef338cc45", "c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef",
      "df50a61f-9e1f-4e1c-9e89-8395c908065a", "00000000-0000-0000-0000-000000000000"};
  std::vector<unloc::uuid> ids;
  ids.reserve(texts.size());
  for (const auto& text : texts) ids.push_back(parse_ok(text));
  std::sort(texts.begin(), texts.end());
  std::sort(ids.begin(), ids.end());
  for (std::size_t i = 0; i < ids.size(); ++i) CHECK(ids[i].to_string() == texts[i]);
}

TEST_CASE("hashes equal uuids equally so an unordered_set keeps one of each", "[uuid]") {
  std::unordered_set<unloc::uuid> seen;
  CHECK(seen.insert(parse_ok(access_event_id)).second);
  CHECK_FALSE(seen.insert(parse_ok("AE832E61-C8FA-4ED9-8196-61210CB4207B")).second);
  CHECK(seen.insert(parse_ok(unloc_example_id)).second);
  CHECK(seen.size() == 2);
  CHECK(seen.count(parse_ok("Def32263-a884-aed0-f167-f1a1ccbd297a")) == 1);
  CHECK(seen.count(unloc::uuid{}) == 0);
  CHECK(std::hash<unloc::uuid>{}(parse_ok(access_event_id)) ==
        std::hash<unloc::uuid>{}(parse_ok("AE832E61-C8FA-4ED9-8196-61210CB4207B")));
}

TEST_CASE("hashes uuids that differ in a single byte of either half differently", "[uuid]") {
  for (std::size_t byte = 0; byte < 16; ++byte) {
    std::unordered_set<std::size_t> hashes;
    for (int value = 0; value < 256; ++value) {
      std::array<std::uint8_t, 16> bytes{};
      bytes[byte] = static_cast<std::uint8_t>(value);
      hashes.insert(std::hash<unloc::uuid>{}(unloc::uuid(bytes)));
    }
    INFO("byte " << byte);
    CHECK(hashes.size() == 256);
  }
}

TEST_CASE("round-trips through nlohmann::json as its canonical string", "[uuid]") {
  const auto id = parse_ok("DEF32263-A884-AED0-F167-F1A1CCBD297A");
  const nlohmann::json j = id;
  CHECK(j.is_string());
  CHECK(j == std::string(unloc_example_id));
  CHECK(j.get<unloc::uuid>() == id);

  const nlohmann::json object = {{"id", id}, {"lockId", unloc::uuid{}}};
  CHECK(object.dump() == R"({"id":"def32263-a884-aed0-f167-f1a1ccbd297a",)"
                         R"("lockId":"00000000-0000-0000-0000-000000000000"})");
  const auto reread = nlohmann::json::parse(object.dump());
  CHECK(reread.at("id").get<unloc::uuid>() == id);
  CHECK(reread.at("lockId").get<unloc::uuid>().is_nil());
}

TEST_CASE("from_json throws invalid_argument with the parse message on a bad string", "[uuid]") {
  const nlohmann::json j = "not-a-uuid";
  try {
    (void)j.get<unloc::uuid>();
    FAIL("expected std::invalid_argument");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()) == "invalid UUID 'not-a-uuid': expected 36 characters, got 10");
  }
}

TEST_CASE("from_json throws nlohmann's type_error when the value is not a string", "[uuid]") {
  CHECK_THROWS_AS(nlohmann::json(42).get<unloc::uuid>(), nlohmann::json::type_error);
  CHECK_THROWS_AS(nlohmann::json(nullptr).get<unloc::uuid>(), nlohmann::json::type_error);
}

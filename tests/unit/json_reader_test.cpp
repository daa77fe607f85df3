#include "allocation_failure.hpp"
#include "catch.hpp"

#include <unloc/json_member.hpp>
#include <unloc/parse.hpp>

#include "support/same_json.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The strict JSON reader of every body (detail/json_reader.hpp), held to RFC
// 8259 and to what nlohmann::json reads from the same text, through the Access
// Event and access-log page descriptions (access_event.hpp, parse.hpp).

namespace {

using namespace std::string_literals;
using json = nlohmann::json;
using unloc::detail::read_status;

// A valid event, all required fields, open for more members: `event_head + "}"` is complete.
const std::string event_head =
    R"({"id":"ae832e61-c8fa-4ed9-8196-61210cb4207b","action":"unlocked",)"
    R"("created":"2022-01-01T10:35:24.083Z","keyId":"3f97fafb-1b6a-42d0-85fa-ae2ef338cc45",)"
    R"("lockId":"c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef","lockName":"North gate")";
const std::string event_text = event_head + "}";

// An event whose last member is `"x": <value>`; the value starts at byte x_at.
const std::string x_member = ",\"x\":";
const std::size_t x_at = event_head.size() + x_member.size();
std::string event_with_x(const std::string& value) { return event_head + x_member + value + "}"; }

// The event with `"lockName": <value>` instead, then the given members.
const std::string event_without_lock_name = event_head.substr(0, event_head.find(",\"lockName\""));
std::string event_with_lock_name(const std::string& value, const std::string& more = "") {
  return event_without_lock_name + ",\"lockName\":" + value + more + "}";
}

struct outcome {
  read_status failure = read_status::ok;
  std::string message;
  std::string field;
  std::optional<unloc::access_event> event;
};

outcome read_event(const std::string& body, unloc::parse_limits limits = {}) {
  outcome out;
  auto event = unloc::detail::read_access_event(body, limits, out.failure);
  if (event) {
    out.event = std::move(*event);
  } else {
    out.message = event.error().message;
    out.field = event.error().field;
    CHECK(event.error().category == unloc::error_category::invalid_input);
  }
  return out;
}

// The events of a page, in the order handed over, and how reading ended.
struct page_outcome {
  read_status failure = read_status::ok;
  std::string message;
  std::string field;
  std::vector<unloc::access_event> events;
  std::optional<std::string> cursor;
};

page_outcome read_page(const std::string& body, unloc::parse_limits limits = {},
                       bool also_public = true) {
  page_outcome out;
  auto on_event = [&out](unloc::access_event&& e) {
    out.events.push_back(std::move(e));
    return true;
  };
  const auto err = unloc::detail::read_events(body, limits, on_event, out.cursor);
  out.failure = err.status;
  out.message = err.message;
  out.field = err.field;
  if (also_public) {
    const auto page = unloc::parse_access_log_page(body, limits);
    CHECK(page.has_value() == (out.failure == read_status::ok));
  }
  return out;
}

std::string page_with(const std::string& members) { return "{\"accessEvents\":[]" + members + "}"; }

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The N of "... at byte N", or npos without one.
std::size_t byte_offset(const std::string& message) {
  const std::string marker = " at byte ";
  const auto at = message.find(marker);
  if (at == std::string::npos) return std::string::npos;
  std::size_t n = 0;
  std::size_t i = at + marker.size();
  if (i >= message.size() || message[i] < '0' || message[i] > '9') return std::string::npos;
  for (; i < message.size() && message[i] >= '0' && message[i] <= '9'; ++i) {
    n = n * 10 + static_cast<std::size_t>(message[i] - '0');
  }
  return n;
}

using unloc_test::extra_json;
using unloc_test::same_json;
using members = std::vector<unloc::json_member>;

std::string printable(const std::string& text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7F) {
      out += c;
    } else {
      static const char hex[] = "0123456789ABCDEF";
      out += "\\x";
      out += hex[byte >> 4];
      out += hex[byte & 0xF];
    }
  }
  return out;
}

bool nlohmann_accepts(const std::string& text) {
  return !json::parse(text, nullptr, false).is_discarded();
}

struct syntax_case {
  std::string value;  // the text after "x": (the body ends with "}" after it)
  const char* says;   // "not valid JSON" or "not valid UTF-8"
  std::size_t first;  // the offset reported, relative to the value's first byte,
  std::size_t last;   // lies in [first, last]: at the fault or the end of its token
};

void check_syntax_error(const std::string& body, const char* says, std::size_t first,
                        std::size_t last) {
  INFO("body: " << printable(body));
  REQUIRE_FALSE(nlohmann_accepts(body));  // the case itself is invalid JSON
  const auto read = read_event(body);
  REQUIRE_FALSE(read.event.has_value());
  CHECK(read.failure == read_status::syntax);
  INFO("message: " << read.message);
  CHECK(read.message.rfind(std::string("body is ") + says + " at byte ", 0) == 0);
  const std::size_t at = byte_offset(read.message);
  CHECK(at >= first);
  CHECK(at <= last);
  CHECK(read.field.empty());
}

}  // namespace

TEST_CASE("reports each kind of malformed value as not valid JSON at a byte offset",
          "[json_reader]") {
  const syntax_case cases[] = {
      // Strings.
      {"\"abc", "not valid JSON", 5, 5},  // unterminated: the event's "}" is inside it
      {"\"abc\\", "not valid JSON", 4, 6},
      {R"("\x")", "not valid JSON", 1, 3},
      {R"("\U0041")", "not valid JSON", 1, 3},
      {R"("\'")", "not valid JSON", 1, 3},
      {R"("\u12")", "not valid JSON", 1, 5},
      {R"("\u12G4")", "not valid JSON", 1, 5},
      {R"("\uD800")", "not valid JSON", 1, 7},         // high surrogate alone
      {"\"\\uDBFF", "not valid JSON", 1, 8},           // high surrogate, then the end
      {R"("\uDC00")", "not valid JSON", 1, 7},         // low surrogate alone
      {R"("\uDFFF\uDC00")", "not valid JSON", 1, 7},   // low then low
      {R"("\uD800\u0041")", "not valid JSON", 1, 13},  // high, then not a low
      {R"("\uD800\uD800")", "not valid JSON", 1, 13},  // high, then high
      {R"("\uD800x")", "not valid JSON", 1, 7},        // high, then a character
      {R"("\uD800\n")", "not valid JSON", 1, 9},       // high, then another escape
      {"\"a\x01z\"", "not valid JSON", 2, 2},
      {"\"a\tz\"", "not valid JSON", 2, 2},
      {"\"a\nz\"", "not valid JSON", 2, 2},
      {"\"a\x1Fz\"", "not valid JSON", 2, 2},
      {"\"a\0z\""s, "not valid JSON", 2, 2},
      // Keys are strings too.
      {"{\"a\x01\":1}", "not valid JSON", 3, 3},
      {R"({"\q":1})", "not valid JSON", 2, 4},
      {"{\"\xC0\x80\":1}", "not valid UTF-8", 2, 2},
      // Not UTF-8 (RFC 3629): stray continuations, overlong forms, surrogates, beyond U+10FFFF.
      {"\"a\x80\"", "not valid UTF-8", 2, 2},
      {"\"a\xBF\"", "not valid UTF-8", 2, 2},
      {"\"a\xC0\x80\"", "not valid UTF-8", 2, 2},
      {"\"a\xC1\xBF\"", "not valid UTF-8", 2, 2},
      {"\"a\xE0\x80\x80\"", "not valid UTF-8", 2, 2},
      {"\"a\xE0\x9F\xBF\"", "not valid UTF-8", 2, 2},
      {"\"a\xF0\x80\x80\x80\"", "not valid UTF-8", 2, 2},
      {"\"a\xF0\x8F\xBF\xBF\"", "not valid UTF-8", 2, 2},
      {"\"a\xED\xA0\x80\"", "not valid UTF-8", 2, 2},      // U+D800
      {"\"a\xED\xBF\xBF\"", "not valid UTF-8", 2, 2},      // U+DFFF
      {"\"a\xF4\x90\x80\x80\"", "not valid UTF-8", 2, 2},  // U+110000
      {"\"a\xF5\x80\x80\x80\"", "not valid UTF-8", 2, 2},
      {"\"a\xF8\x88\x80\x80\x80\"", "not valid UTF-8", 2, 2},
      {"\"a\xFE\"", "not valid UTF-8", 2, 2},
      {"\"a\xFF\"", "not valid UTF-8", 2, 2},
      // Truncated sequences: cut by the closing quote, by ASCII, by a new lead byte.
      {"\"a\xC3\"", "not valid UTF-8", 2, 2},
      {"\"a\xE2\x82\"", "not valid UTF-8", 2, 2},
      {"\"a\xF0\x9F\x98\"", "not valid UTF-8", 2, 2},
      {"\"a\xE2\x82z\"", "not valid UTF-8", 2, 2},
      {"\"a\xC3\xC3\xA9\"", "not valid UTF-8", 2, 2},
      // Numbers.
      {"01", "not valid JSON", 1, 2},
      {"-01", "not valid JSON", 2, 3},
      {"00", "not valid JSON", 1, 2},
      {"-", "not valid JSON", 1, 1},
      {"-a", "not valid JSON", 1, 1},
      {"1.", "not valid JSON", 2, 2},
      {"1.e5", "not valid JSON", 2, 2},
      {"1e", "not valid JSON", 2, 2},
      {"1e+", "not valid JSON", 3, 3},
      {"1E-", "not valid JSON", 3, 3},
      {".5", "not valid JSON", 0, 0},
      {"+1", "not valid JSON", 0, 0},
      {"0x10", "not valid JSON", 1, 1},
      {"1e400", "not valid JSON", 0, 5},  // not finite as a double
      {"-1e400", "not valid JSON", 0, 6},
      // 2^1024 - 2^970, halfway between the largest double and 2^1024: ties to even, infinity
      {"1797693134862315807937289714053034150799341327100378269361737789804449682927647509466490179"
       "7758720709633028641669288791094655554785194040263065748867150582068190890200070838367627385"
       "4845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342"
       "711559699508093042880177904174497792",
       "not valid JSON", 0, 309},
      {"1.797693134862315808e308", "not valid JSON", 0, 24},
      {"1.8e308", "not valid JSON", 0, 7},
      {"[1, 2e999]", "not valid JSON", 4, 9},
      {"NaN", "not valid JSON", 0, 0},
      {"Infinity", "not valid JSON", 0, 0},
      // Literals.
      {"tru", "not valid JSON", 0, 3},
      {"nul", "not valid JSON", 0, 3},
      {"True", "not valid JSON", 0, 0},
      {"falsy", "not valid JSON", 0, 5},
      {"nulll", "not valid JSON", 4, 4},
      // Structure.
      {"{\"a\":1,}", "not valid JSON", 6, 7},
      {"[1,]", "not valid JSON", 3, 3},
      {"[,1]", "not valid JSON", 1, 1},
      {"[1 2]", "not valid JSON", 3, 3},
      {"{\"a\" 1}", "not valid JSON", 5, 5},
      {"{\"a\"}", "not valid JSON", 4, 4},
      {"{\"a\":}", "not valid JSON", 5, 5},
      {"{\"a\"::1}", "not valid JSON", 5, 5},
      {"{a:1}", "not valid JSON", 1, 1},
      {"{'a':1}", "not valid JSON", 1, 1},
      {"'a'", "not valid JSON", 0, 0},
      {"[1}", "not valid JSON", 2, 2},
      {"{\"a\":1]", "not valid JSON", 6, 6},
      {"[[[]]", "not valid JSON", 5, 6},
      {"", "not valid JSON", 0, 0},
      {"\f1", "not valid JSON", 0, 0},  // a form feed is no JSON whitespace
  };
  for (const auto& c : cases) {
    check_syntax_error(event_with_x(c.value), c.says, x_at + c.first, x_at + c.last);
  }
}

TEST_CASE("reports malformed text around the value as not valid JSON at a byte offset",
          "[json_reader]") {
  const std::size_t end = event_text.size();
  const std::string bom = "\xEF\xBB\xBF";
  struct whole_case {
    std::string body;
    std::size_t first, last;
  };
  const whole_case cases[] = {
      {"", 0, 0},
      {" \n\t\r", 4, 4},
      {"{", 1, 1},
      {"{\"id\"", 5, 5},
      {"{\"id\":", 6, 6},
      {event_head, end - 1, end - 1},
      {event_head + ",}", end, end},  // trailing comma after the last member
      {event_head + ",,\"x\":1}", end, end},
      {event_head + " \"x\":1}", end, end},   // missing comma between members
      {event_text + " x", end + 1, end + 1},  // trailing garbage
      {event_text + "}", end, end},
      {event_text + event_text, end, end},  // two values
      {event_text + "\n,", end + 1, end + 1},
      {event_text + " /* */", end + 1, end + 1},
      {"\xEF\xBB" + event_text, 0, 0},             // a truncated byte order mark
      {" " + bom + event_text, 1, 1},              // a BOM after whitespace
      {bom + bom + event_text, 3, 3},              // two BOMs
      {bom + event_text + "x", end + 3, end + 3},  // offsets count the BOM
      {"\xFE\xFF" + event_text, 0, 0},             // a UTF-16 BOM
  };
  for (const auto& c : cases) check_syntax_error(c.body, "not valid JSON", c.first, c.last);
}

TEST_CASE("rejects a NUL byte after the value, which nlohmann reads as the end of input",
          "[json_reader]") {
  for (const std::string& tail : {"\0"s, " \0"s, "\0 "s, "\0garbage"s, "\0}"s}) {
    const std::string body = event_text + tail;
    INFO(printable(body));
    CHECK(nlohmann_accepts(body));  // the one documented difference in what is JSON
    const auto read = read_event(body);
    REQUIRE_FALSE(read.event.has_value());
    CHECK(read.failure == read_status::syntax);
    CHECK(contains(read.message, "not valid JSON at byte " + std::to_string(body.find('\0'))));
  }
}

TEST_CASE("accepts a leading UTF-8 byte order mark, as nlohmann does", "[json_reader]") {
  const std::string bom = "\xEF\xBB\xBF";
  for (const std::string& body : {bom + event_text, bom + " \n" + event_text}) {
    INFO(printable(body));
    CHECK(nlohmann_accepts(body));
    const auto read = read_event(body);
    REQUIRE(read.event.has_value());
    CHECK(read.event->lock_name == "North gate");
  }
  const auto page = read_page(bom + page_with(R"(,"nextCursor":"c")"));
  CHECK(page.failure == read_status::ok);
  CHECK(page.cursor == std::optional<std::string>("c"));
}

TEST_CASE("reads every byte value inside a string as nlohmann does, wherever it falls",
          "[json_reader]") {
  // Every byte at each of 16 positions, so that every lane of the eight-byte scan
  // meets it, in a page's cursor and in an event's lock name.
  int accepted = 0;
  for (int byte = 0; byte < 256; ++byte) {
    for (std::size_t at = 0; at < 16; ++at) {
      const std::string text =
          std::string(at, 'a') + static_cast<char>(byte) + std::string(17 - at, 'z');
      const std::string page = page_with(R"(,"nextCursor":")" + text + "\"");
      const json expected = json::parse(page, nullptr, false);
      const auto read = read_page(page);
      INFO("byte " << byte << " at " << at);
      REQUIRE((read.failure == read_status::ok) == !expected.is_discarded());
      if (expected.is_discarded()) {
        CHECK(read.failure == read_status::syntax);
        continue;
      }
      ++accepted;
      CHECK(read.cursor == text);
      const auto event = read_event(event_with_lock_name("\"" + text + "\""));
      REQUIRE(event.event.has_value());
      CHECK(event.event->lock_name == text);
    }
  }
  CHECK(accepted == (0x80 - 0x20 - 2) * 16);  // printable ASCII and DEL, bar '"' and '\\'
}

TEST_CASE("checks every lead byte of a multi-byte sequence as RFC 3629 and nlohmann do",
          "[json_reader]") {
  // RFC 3629's table: the lead bytes of each length and the range of the byte
  // after them (any further byte is 80-BF).
  struct utf8_row {
    int first_lead, last_lead, low, high;
    std::size_t length;
  };
  const utf8_row rfc3629[] = {
      {0xC2, 0xDF, 0x80, 0xBF, 2}, {0xE0, 0xE0, 0xA0, 0xBF, 3}, {0xE1, 0xEC, 0x80, 0xBF, 3},
      {0xED, 0xED, 0x80, 0x9F, 3}, {0xEE, 0xEF, 0x80, 0xBF, 3}, {0xF0, 0xF0, 0x90, 0xBF, 4},
      {0xF1, 0xF3, 0x80, 0xBF, 4}, {0xF4, 0xF4, 0x80, 0x8F, 4},
  };
  // Every byte from 80 as a lead, then each edge of those ranges (and bytes that
  // are no continuation), then 0, 1 or 2 more continuation bytes.
  const int nexts[] = {0x00, 0x22, 0x41, 0x5C, 0x7F, 0x80, 0x8F, 0x90,
                       0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xE0, 0xF0, 0xFF};
  int accepted = 0;
  for (const std::string continuation : {"", "\x80", "\x80\x80"}) {
    for (int lead = 0x80; lead < 0x100; ++lead) {
      for (const int next : nexts) {
        bool valid = false;
        for (const auto& row : rfc3629) {
          valid = valid || (lead >= row.first_lead && lead <= row.last_lead && next >= row.low &&
                            next <= row.high && row.length == 2 + continuation.size());
        }
        const std::string text = "abc"s + static_cast<char>(lead) + static_cast<char>(next) +
                                 continuation + "defghijklm";
        const std::string page = page_with(R"(,"nextCursor":")" + text + "\"");
        const json expected = json::parse(page, nullptr, false);
        const auto read = read_page(page, {}, false);
        // Asserted only when something disagrees: the loop runs 6,144 times.
        bool agrees = valid != expected.is_discarded();
        if (valid) {
          ++accepted;
          agrees = agrees && read.failure == read_status::ok && read.cursor == text;
        } else {
          const std::size_t at = byte_offset(read.message);
          agrees = agrees && read.failure == read_status::syntax &&
                   contains(read.message, "not valid UTF-8 at byte ") && at >= 36 &&
                   at <= 36 + 3;  // "abc" ends at 35
        }
        if (!agrees) {
          FAIL_CHECK("bytes " << lead << " " << next << " and " << continuation.size()
                              << " more: RFC 3629 " << (valid ? "accepts" : "rejects")
                              << ", nlohmann " << (expected.is_discarded() ? "rejects" : "accepts")
                              << ", the reader: "
                              << (read.message.empty() ? "accepts" : read.message));
        }
      }
    }
  }
  CHECK(accepted == 30 * 6 + (2 + 12 * 6 + 4 + 2 * 6) + (4 + 3 * 6 + 2));
}

TEST_CASE("decodes escapes, surrogate pairs included, into UTF-8", "[json_reader]") {
  struct escape_case {
    std::string json_text;  // inside the quotes
    std::string expected;
  };
  const escape_case cases[] = {
      {"\\u00e9", "\xC3\xA9"},
      {"\\u00E9", "\xC3\xA9"},
      {"caf\\u00e9!", "caf\xC3\xA9!"},
      {"\\u0041\\u0062", "Ab"},
      {"\\u007f\\u0080", "\x7F\xC2\x80"},
      {"\\u07FF\\u0800", "\xDF\xBF\xE0\xA0\x80"},
      {"\\u20AC", "\xE2\x82\xAC"},
      {"\\uFFFF", "\xEF\xBF\xBF"},
      {"\\uD83D\\uDE00", "\xF0\x9F\x98\x80"},
      {"\\ud83d\\ude00", "\xF0\x9F\x98\x80"},
      {"\\uD800\\uDC00", "\xF0\x90\x80\x80"},
      {"\\uDBFF\\uDFFF", "\xF4\x8F\xBF\xBF"},
      {"\\u0000", "\0"s},
      {"a\\u0000b", "a\0b"s},
      {"\\/", "/"},
      {"http:\\/\\/x", "http://x"},
      {R"(\"\\\b\f\n\r\t)", "\"\\\b\f\n\r\t"},
      {"\xC3\xA9\\u00e9\xE2\x82\xAC\\n\xF0\x9F\x98\x80",
       "\xC3\xA9\xC3\xA9\xE2\x82\xAC\n\xF0\x9F\x98\x80"},
      {"a long run of plain text before the escape \\t and after it, past eight bytes",
       "a long run of plain text before the escape \t and after it, past eight bytes"},
  };
  for (const auto& c : cases) {
    const std::string literal = "\"" + c.json_text + "\"";
    INFO(literal);
    // The table agrees with nlohmann.
    REQUIRE(json::parse(literal).get<std::string>() == c.expected);

    const auto known = read_event(event_with_lock_name(literal, ",\"userName\":" + literal));
    REQUIRE(known.event.has_value());
    CHECK(known.event->lock_name == c.expected);
    CHECK(known.event->user_name == std::optional<std::string>(c.expected));

    const auto extra = read_event(event_with_x("{" + literal + ":[" + literal + "]}"));
    REQUIRE(extra.event.has_value());
    const json expected_x{{c.expected, json::array({c.expected})}};
    CHECK(same_json(extra_json(extra.event->extra).at("x"), expected_x));
    // Kept as text escaped again as nlohmann writes it.
    CHECK(extra.event->extra == members{{"x", expected_x.dump()}});

    const auto page = read_page(page_with(",\"nextCursor\":" + literal));
    CHECK(page.cursor == std::optional<std::string>(c.expected));
  }
}

TEST_CASE("reads each hex digit of a \\u escape as nlohmann does", "[json_reader]") {
  for (int byte = 0; byte < 256; ++byte) {
    for (std::size_t digit = 0; digit < 4; ++digit) {
      std::string escape = "\\u00e9";
      escape[2 + digit] = static_cast<char>(byte);
      const std::string body = event_with_x("\"" + escape + "\"");
      const json expected = json::parse(body, nullptr, false);
      const auto read = read_event(body);
      INFO("byte " << byte << " as digit " << digit);
      REQUIRE(read.event.has_value() == !expected.is_discarded());
      if (read.event) {
        CHECK(same_json(extra_json(read.event->extra).at("x"), expected.at("x")));
        CHECK(read.event->extra == members{{"x", expected.at("x").dump()}});
      } else {
        CHECK(read.failure == read_status::syntax);
      }
    }
  }
}

TEST_CASE("decodes escapes in the keys and values of known fields", "[json_reader]") {
  const auto read = read_event(
      R"({"\u0069d":"\u0061e832e61-c8fa-4ed9-8196-61210cb4207b","act\u0069on":"\u0075nlocked",)"
      R"("created":"2022-01-01T10:35:24.083\u005A","keyId":"3f97fafb-1b6a-42d0-85fa-ae2ef338cc45",)"
      R"("lockId":"c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef","\u006cockName":"N\u00f8rth",)"
      R"("appUserId":"\u002b12125552390","i\u0000d":1})");
  REQUIRE(read.event.has_value());
  CHECK(read.event->id.to_string() == "ae832e61-c8fa-4ed9-8196-61210cb4207b");
  CHECK(read.event->action == unloc::access_action::unlocked);
  CHECK(unloc::format_timestamp(read.event->created) == "2022-01-01T10:35:24.083Z");
  CHECK(read.event->lock_name == "N\xC3\xB8rth");
  CHECK(read.event->app_user_id == std::optional<std::string>("+12125552390"));
  CHECK(same_json(extra_json(read.event->extra), json::parse(R"({"i\u0000d":1})")));
  CHECK(read.event->extra == members{{"i\0d"s, "1"}});
}

TEST_CASE("keeps unknown fields as compact text in the order received", "[json_reader]") {
  const std::string body =
      event_head +
      R"(, "zone" : "A" , "big":1E2,"neg":-0,"price":1.50,"tiny":1e-400,"name":"caf\u00e9",)"
      R"("url":"http:\/\/x","ctl":"\u001f\n\"","loc": { "lat" : 59.91 , "lon":10.75 },)"
      R"("list":[ 1 , true , null , [ ] , { } ],"\u0061a":false})";
  const auto read = read_event(body);
  REQUIRE(read.event.has_value());
  const members expected = {
      {"zone", R"("A")"},
      {"big", "1E2"},  // numbers as written, not as nlohmann would write them
      {"neg", "-0"},
      {"price", "1.50"},
      {"tiny", "1e-400"},
      {"name", "\"caf\xC3\xA9\""},  // strings escaped again as nlohmann writes them
      {"url", R"("http://x")"},
      {"ctl", R"("\u001f\n\"")"},
      {"loc", R"({"lat":59.91,"lon":10.75})"},  // keys in the order received
      {"list", R"([1,true,null,[],{}])"},
      {"aa", "false"},
  };
  CHECK(read.event->extra == expected);
  // Each text reads as the value received, of the same type.
  const json original = json::parse(body);
  for (const auto& member : read.event->extra) {
    INFO(member.name << ": " << member.value);
    CHECK(same_json(json::parse(member.value), original.at(member.name)));
  }

  const auto& extra = read.event->extra;
  CHECK(unloc::find_member(extra, "big") == std::optional<std::string_view>("1E2"));
  CHECK(unloc::find_member(extra, "aa") == std::optional<std::string_view>("false"));
  CHECK_FALSE(unloc::find_member(extra, "lat").has_value());       // nested: not a member
  CHECK_FALSE(unloc::find_member(extra, "id").has_value());        // known: not in extra
  CHECK_FALSE(unloc::find_member(extra, "\\u0061a").has_value());  // names are decoded
  CHECK_FALSE(unloc::find_member({}, "x").has_value());

  const auto none = read_event(event_text);
  REQUIRE(none.event.has_value());
  CHECK(none.event->extra.empty());
}

TEST_CASE("reads numbers in unknown fields exactly as nlohmann::json::parse does",
          "[json_reader]") {
  struct number_case {
    std::string text;
    json::value_t type;
  };
  using t = json::value_t;
  const number_case cases[] = {
      {"0", t::number_unsigned},
      {"-0", t::number_integer},
      {"0.0", t::number_float},
      {"-0.0", t::number_float},
      {"7", t::number_unsigned},
      {"-7", t::number_integer},
      {"9223372036854775807", t::number_unsigned},
      {"9223372036854775808", t::number_unsigned},
      {"18446744073709551615", t::number_unsigned},  // uint64 max
      {"18446744073709551616", t::number_float},     // over it: a double
      {"123456789012345678901234567890", t::number_float},
      {"-9223372036854775808", t::number_integer},  // int64 min
      {"-9223372036854775809", t::number_float},    // under it: a double
      {"-18446744073709551616", t::number_float},
      {"1.5", t::number_float},
      {"-1.5e-3", t::number_float},
      {"1e2", t::number_float},
      {"1E2", t::number_float},
      {"1e+2", t::number_float},
      {"1e-2", t::number_float},
      {"0.1", t::number_float},
      {"0.30000000000000004", t::number_float},
      {"100000000000000000000000000000e-10", t::number_float},
      {"1.7976931348623157e308", t::number_float},   // the largest double
      {"1.7976931348623158e308", t::number_float},   // rounds down to it
      {"179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791", t::number_float},  // 2^1024 - 2^970 - 1: still rounds down
      {"0.00017976931348623157e312", t::number_float},  // the largest double, leading zeros
      {"2.2250738585072014e-308", t::number_float},  // the smallest normal one
      {"4.9e-324", t::number_float},                 // a subnormal
      {"2.4703282292062328e-324", t::number_float},  // rounds up to the least subnormal
      {"1e-400", t::number_float},                   // underflows to 0.0
      {"-1e-400", t::number_float},                  // and to -0.0
      {"0.0000000000000000000000000000001e-330", t::number_float},
      {"1.00000000000000011102230246251565404236316680908203125", t::number_float},
      {"9007199254740993", t::number_unsigned},
      {"9007199254740993.0", t::number_float},
      {"0e400", t::number_float},  // zero, whatever the exponent
      {"0.000e999999999", t::number_float},
      {"-0.0e+99999999999999999999", t::number_float},
      {"1e-99999999999999999999", t::number_float},
      {"0." + std::string(400, '0') + "1e100", t::number_float},  // 1e-301
      {"1" + std::string(400, '0') + "e-500", t::number_float},   // 1e-100
  };
  for (const auto& c : cases) {
    INFO(c.text);
    const json expected = json::parse(c.text);
    REQUIRE(expected.type() == c.type);  // the table agrees with nlohmann

    const auto alone = read_event(event_with_x(c.text));
    INFO((alone.event ? extra_json(alone.event->extra).dump() : alone.message) << " / "
                                                                                << expected.dump());
    REQUIRE(alone.event.has_value());
    CHECK(same_json(extra_json(alone.event->extra).at("x"), expected));
    CHECK(alone.event->extra == members{{"x", c.text}});  // the number's text as written

    const std::string nested_text = "{\"a\":[" + c.text + "," + c.text + "]}";
    const auto nested = read_event(event_with_x(nested_text));
    REQUIRE(nested.event.has_value());
    CHECK(same_json(extra_json(nested.event->extra).at("x"), json::parse(nested_text)));
    CHECK(nested.event->extra == members{{"x", nested_text}});
  }
}

TEST_CASE("rejects a number no double holds as a syntax error, even where it is not kept",
          "[json_reader]") {
  const std::string bodies[] = {
      event_with_x("1e400"),
      event_with_x("[1e400]"),
      event_with_x("-1.8e308"),
      event_with_x("1e99999999999999999999"),
      event_with_x("0." + std::string(100, '0') + "1e500"),
      event_with_x("1" + std::string(400, '0') + "e-90"),
      event_head + ",\"lockName\":1e400}",   // a known field of the wrong type
      "[1e400]",                             // not an object
      page_with(",\"nextCursor\":1e400"),    // the cursor of the wrong type
      page_with(R"(,"other":{"n":1e400})"),  // an unknown page field
      "{\"accessEvents\":[1e400]}",
      "{\"accessEvents\":[" + event_with_x("1E999") + "]}",
  };
  for (const auto& body : bodies) {
    INFO(body);
    REQUIRE_FALSE(nlohmann_accepts(body));
    const auto read = read_page(body);
    CHECK(read.failure == read_status::syntax);
    CHECK(contains(read.message, "not valid JSON at byte "));
    if (body.front() != '{' || body.find("accessEvents") == std::string::npos) {
      const auto event = read_event(body);
      CHECK(event.failure == read_status::syntax);
      CHECK(contains(event.message, "not valid JSON at byte "));
    }
  }
}

TEST_CASE("judges a number's range by its value, however many digits and exponent digits",
          "[json_reader]") {
  // Over a million digits before an exponent of eight digits: the value of
  // 0.000…0001e10000000 is 1e8999999 (no double: nlohmann rejects it), that of
  // 1000…000e-10000000 is 1e-8999999 (0.0 for nlohmann).
  const std::string zeros(1'000'001, '0');
  const std::string too_large = event_with_x("0." + zeros + "1e10000000");
  const std::string too_small = event_with_x("1" + zeros + "e-10000000");
  // MinGW-w64's strtod reads these two as 0 and infinity, and nlohmann with it:
  // there, the SDK's reader is checked without nlohmann's opinion.
#if !defined(__MINGW32__)
  REQUIRE_FALSE(nlohmann_accepts(too_large));
#endif
  const auto large = read_event(too_large);
  CHECK(large.failure == read_status::syntax);
  CHECK(contains(large.message, "not valid JSON at byte "));

#if !defined(__MINGW32__)
  const json small_expected = json::parse(too_small);
  REQUIRE(same_json(small_expected.at("x"), json(0.0)));
#endif
  const auto small = read_event(too_small);
  INFO(small.message);
  REQUIRE(small.event.has_value());
#if !defined(__MINGW32__)
  CHECK(same_json(extra_json(small.event->extra).at("x"), json(0.0)));
#endif
  REQUIRE(small.event->extra.size() == 1);
  CHECK(small.event->extra[0].value == "1" + zeros + "e-10000000");
}

TEST_CASE("keeps the nesting limit of parse_limits and reports it as an error", "[json_reader]") {
  const unloc::parse_limits four{4};
  // The event is level 1: "x" may hold three more levels under a limit of 4.
  const auto fits = read_event(event_with_x("[{\"a\":[]}]"), four);
  CHECK(fits.event.has_value());
  for (const std::string& deeper : {R"([{"a":[[]]}])"s, R"([{"a":[{}]}])"s, "[[[[1]]]]"s}) {
    INFO(deeper);
    const auto read = read_event(event_with_x(deeper), four);
    REQUIRE_FALSE(read.event.has_value());
    CHECK(read.failure == read_status::syntax);
    CHECK(contains(read.message, "nesting is deeper than 4"));
  }
  // A page is 1, its array 2, its events 3.
  const std::string page = "{\"accessEvents\":[" + event_text + "]}";
  CHECK(read_page(page, unloc::parse_limits{3}).failure == read_status::ok);
  const auto shallow = read_page(page, unloc::parse_limits{2});
  CHECK(shallow.failure == read_status::syntax);
  CHECK(contains(shallow.message, "nesting is deeper than 2"));
  CHECK(shallow.events.empty());
  const auto flat = read_event(event_text, unloc::parse_limits{0});
  CHECK(flat.failure == read_status::syntax);
  CHECK(contains(flat.message, "nesting is deeper than 0"));
}

TEST_CASE("reads 100,000 levels of nesting without using the stack for them", "[json_reader]") {
  constexpr std::size_t levels = 100'000;
  const std::string arrays = std::string(levels, '[') + std::string(levels, ']');
  const std::string objects = [] {
    std::string text;
    for (std::size_t i = 0; i < levels; ++i) text += "{\"a\":";
    return text + "1" + std::string(levels, '}');
  }();

  SECTION("under the default limit: an error") {
    for (const std::string* deep : {&arrays, &objects}) {
      for (const std::string& body : {*deep, event_with_x(*deep), std::string(levels, '[')}) {
        const auto read = read_event(body);
        CHECK(read.failure == read_status::syntax);
        CHECK(contains(read.message, "nesting is deeper than 32"));
      }
      const auto page = read_page(page_with(",\"more\":" + *deep));
      CHECK(page.failure == read_status::syntax);
    }
  }
  SECTION("under a limit above it: read, kept in extra or only checked") {
    const unloc::parse_limits deep_enough{levels + 10};
    for (const std::string* deep : {&arrays, &objects}) {
      const auto kept = read_event(event_with_x(*deep), deep_enough);
      REQUIRE(kept.event.has_value());
      CHECK(kept.event->extra == members{{"x", *deep}});
      const json extra = extra_json(kept.event->extra);
      const json* inner = &extra.at("x");
      std::size_t depth = 0;
      while (inner->is_structured() && !inner->empty()) {
        inner = inner->is_array() ? &inner->at(0) : &inner->at("a");
        ++depth;
      }
      CHECK(depth == (deep == &arrays ? levels - 1 : levels));
    }
    // Not an event: read to its end without being kept.
    const auto checked = read_event(arrays, deep_enough);
    CHECK(checked.failure == read_status::schema);
    CHECK(contains(checked.message, "must be a JSON object"));
    CHECK(read_page(page_with(",\"more\":" + arrays), deep_enough, false).failure ==
          read_status::ok);
  }
}

TEST_CASE("rejects duplicate keys at every level as a schema error naming the key",
          "[json_reader]") {
  struct duplicate_case {
    std::string body;
    std::string key;
  };
  const duplicate_case event_cases[] = {
      {event_head + R"(,"id":"ae832e61-c8fa-4ed9-8196-61210cb4207b"})", "id"},
      {event_head + R"(,"lockName":"North gate"})", "lockName"},
      {event_head + R"(,"userName":null,"userName":null})", "userName"},
      {event_head + R"(,"\u006cockName":"x"})", "lockName"},  // the same key once decoded
      {event_head + R"(,"x":1,"x":1})", "x"},
      {event_head + R"(,"x":1,"y":2,"\u0078":1})", "x"},
      {event_with_x(R"({"y":1,"y":2})"), "y"},
      {event_with_x(R"({"y":{"z":[],"z":[]}})"), "z"},
      {event_with_x(R"([0,{"y":1,"\u0079":2}])"), "y"},
      {event_with_x(R"({"y":1,"z":{"y":1},"y":3})"), "y"},
  };
  for (const auto& c : event_cases) {
    INFO(c.body);
    REQUIRE(nlohmann_accepts(c.body));  // JSON, but two parsers could read it differently
    const auto read = read_event(c.body);
    REQUIRE_FALSE(read.event.has_value());
    CHECK(read.failure == read_status::schema);
    CHECK(read.field == c.key);
    CHECK(contains(read.message, "duplicate key '" + c.key + "'"));

    const auto page = read_page("{\"accessEvents\":[" + event_text + "," + c.body + "]}");
    CHECK(page.failure == read_status::schema);
    CHECK(page.field == c.key);
  }
  const duplicate_case page_cases[] = {
      {R"({"accessEvents":[],"accessEvents":[]})", "accessEvents"},
      {R"({"nextCursor":null,"accessEvents":[],"nextCursor":"a"})", "nextCursor"},
      {R"({"accessEvents":[],"n":1,"n":1})", "n"},
      {R"({"accessEvents":[],"n":{"m":1,"m":1}})", "m"},
  };
  for (const auto& c : page_cases) {
    INFO(c.body);
    REQUIRE(nlohmann_accepts(c.body));
    const auto read = read_page(c.body);
    CHECK(read.failure == read_status::schema);
    CHECK(read.field == c.key);
    CHECK(contains(read.message, "duplicate key '" + c.key + "'"));
  }
  // Keys that differ, if only after decoding, are no duplicates.
  const auto distinct =
      read_event(event_head + R"(,"x":1,"X":2,"x\u0000":3,"y":{"x":4},"z":[{"x":5},{"x":6}]})");
  REQUIRE(distinct.event.has_value());
  CHECK(distinct.event->extra == members{{"x", "1"},
                                         {"X", "2"},
                                         {"x\0"s, "3"},
                                         {"y", R"({"x":4})"},
                                         {"z", R"([{"x":5},{"x":6}])"}});
}

TEST_CASE("reports a body with a schema error and then a syntax error as a syntax error",
          "[json_reader]") {
  const std::string bodies[] = {
      "{\"id\":5,",
      "{\"id\":5} x",
      R"({"id":"not a uuid","x":tru})",
      R"({"lockName":[1,2,{}],"lockName":"a","x":})",  // wrong type, duplicate, then no value
      event_head + R"(,"x":1,"x":2} x)",
      event_head + ",\"x\":1,\"x\":2,\"y\":\"\xC0\x80\"}",  // ... then not UTF-8
      "{} extra",                                           // fields missing, then text
      "[1, 2",
      R"("event" "again")",
      "null,",
      "{\"accessEvents\":[]}}",
  };
  for (const auto& body : bodies) {
    INFO(printable(body));
    const auto read = read_event(body);
    REQUIRE_FALSE(read.event.has_value());
    CHECK(read.failure == read_status::syntax);
    CHECK((contains(read.message, "not valid JSON at byte ") ||
           contains(read.message, "not valid UTF-8 at byte ")));
  }
  const std::string pages[] = {
      R"({"accessEvents":5,"nextCursor":})",      // not an array, then no value
      R"({"accessEvents":[1,{"a" 1}]})",          // not an event, then no colon
      R"({"accessEvents":[{"id":1},]})",          // a bad event, then a trailing comma
      R"({"nextCursor":7,"accessEvents":[] x)",   // a bad cursor, then trailing text
      "{\"accessEvents\":{},\"more\":\"\xFF\"}",  // not an array, then not UTF-8
  };
  for (const auto& body : pages) {
    INFO(printable(body));
    const auto read = read_page(body);
    CHECK(read.failure == read_status::syntax);
    CHECK((contains(read.message, "not valid JSON at byte ") ||
           contains(read.message, "not valid UTF-8 at byte ")));
  }
}

TEST_CASE("reports the first schema error of a body that is otherwise JSON", "[json_reader]") {
  struct schema_case {
    std::string body;
    std::string field;
    std::string says;
  };
  const schema_case cases[] = {
      {"[]", "", "must be a JSON object, got an array"},
      {"  \"event\"", "", "must be a JSON object, got a string"},
      {"-1", "", "must be a JSON object, got a number"},
      {"false", "", "must be a JSON object, got a boolean"},
      {R"({"lockName":1,"id":true})", "lockName", "must be a string, got a number"},
      {R"({"id":{"a":[1e300]},"lockName":1})", "id", "must be a string, got an object"},
      {R"({"action":[],"id":null})", "action", "must be a string, got an array"},
      {"{\"created\":true}", "created", "must be a string, got a boolean"},
      {"{\"keyId\":null}", "keyId", "must be a string, got null"},
      {"{\"appUserId\":0}", "appUserId", "must be a string or null, got a number"},
      {"{\"userName\":false}", "userName", "must be a string or null, got a boolean"},
      {R"({"x":1,"x":2,"id":3})", "x", "duplicate key 'x'"},
      {"{\"x\":1}", "id", "is missing"},
  };
  for (const auto& c : cases) {
    INFO(c.body);
    REQUIRE(nlohmann_accepts(c.body));
    const auto read = read_event(c.body);
    REQUIRE_FALSE(read.event.has_value());
    CHECK(read.failure == read_status::schema);
    CHECK(read.field == c.field);
    CHECK(contains(read.message, c.says));
  }
}

TEST_CASE("hands over a page's events in order, with its cursor", "[json_reader]") {
  const char* const ids[] = {"00000000-0000-4000-8000-000000000001",
                             "00000000-0000-4000-8000-000000000002",
                             "00000000-0000-4000-8000-000000000003"};
  std::string events;
  for (const char* id : ids) {
    std::string event = event_text;
    event.replace(event.find("ae832e61"), 36, id);
    events += (events.empty() ? "" : " ,\n ") + event;
  }
  const auto read = read_page(R"({"before":{"a":[1,{"b":null}]},"accessEvents":[ )" + events +
                              R"( ],"nextCursor":"c\u00e9","after":[true,"x",-1.5]})");
  REQUIRE(read.failure == read_status::ok);
  REQUIRE(read.events.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(read.events[i].id.to_string() == ids[i]);
  CHECK(read.cursor == std::optional<std::string>("c\xC3\xA9"));
}

TEST_CASE("reads a page with 200,000 unknown keys and finds the one repeated", "[json_reader]") {
  // Page keys are checked for repeats in a set: a list scan took minutes here.
  std::string members;
  for (int i = 0; i < 200000; ++i) members += ",\"k" + std::to_string(i) + "\":0";
  CHECK(read_page(page_with(members)).failure == read_status::ok);
  const auto repeated = read_page(page_with(members + ",\"k4711\":1"));
  CHECK(repeated.failure == read_status::schema);
  CHECK(contains(repeated.message, "duplicate key 'k4711'"));
}

TEST_CASE("reads nextCursor as a string, null or absent, and nothing else", "[json_reader]") {
  CHECK(read_page(page_with(",\"nextCursor\":\"abc\"")).cursor ==
        std::optional<std::string>("abc"));
  CHECK(read_page(page_with(",\"nextCursor\":\"\"")).cursor == std::optional<std::string>(""));
  CHECK(read_page("{\"nextCursor\":\"first\",\"accessEvents\":[]}").cursor ==
        std::optional<std::string>("first"));
  for (const std::string& none : {page_with(",\"nextCursor\":null"), page_with("")}) {
    const auto read = read_page(none);
    CHECK(read.failure == read_status::ok);
    CHECK_FALSE(read.cursor.has_value());
  }
  for (const std::string& wrong :
       {"1"s, "true"s, "false"s, "[]"s, R"(["a"])"s, "{}"s, R"({"a":"b"})"s, "-0.5"s}) {
    INFO(wrong);
    const auto read = read_page(page_with(",\"nextCursor\":" + wrong));
    CHECK(read.failure == read_status::schema);
    CHECK(read.field == "nextCursor");
    CHECK(contains(read.message, "must be a string or null"));
  }
  CHECK(read_page(page_with(",\"nextCursor\":nul")).failure == read_status::syntax);
  CHECK(read_page(page_with(",\"nextCursor\":\"a")).failure == read_status::syntax);
}

TEST_CASE("rejects a page whose accessEvents is missing, not an array or holds non-objects",
          "[json_reader]") {
  for (const std::string& wrong : {"{}"s, "null"s, R"("[]")"s, "5"s, "true"s, R"({"0":{}})"s}) {
    INFO(wrong);
    const auto read = read_page("{\"accessEvents\":" + wrong + ",\"nextCursor\":null}");
    CHECK(read.failure == read_status::schema);
    CHECK(read.field == "accessEvents");
    CHECK(contains(read.message, "must be an array"));
  }
  for (const std::string& item : {"1"s, "null"s, "[]"s, R"("e")"s}) {
    INFO(item);
    const auto read = read_page("{\"accessEvents\":[" + event_text + "," + item + "]}");
    CHECK(read.failure == read_status::schema);
    CHECK(read.field == "accessEvents");
  }
  const auto missing = read_page(R"({"nextCursor":"a","accessevents":[]})");
  CHECK(missing.failure == read_status::schema);
  CHECK(missing.field == "accessEvents");
  CHECK(contains(missing.message, "is missing"));
}

TEST_CASE("runs out of memory at any allocation and says so, without terminating",
          "[json_reader]") {
  // Every kind of value, kept and checked: escapes, numbers, nesting, a repeated-key check.
  const std::string body = event_with_lock_name(
      R"("Nor\u00f0 gate")", R"(,"battery":{"level":[1,-2.5e3,"\u00e9t\u00e9"],"ok":true})");
  REQUIRE(read_event(body).event.has_value());
  long failures = 0;
  for (long succeeding = 0;; ++succeeding) {
    INFO("allocations before memory runs out: " << succeeding);
    unloc::access_event event;
    unloc_test::allocations_left = succeeding;
    unloc::detail::read_error e =
        unloc::detail::read_json(body, unloc::detail::event_object, &event, 32);
    unloc_test::allocations_left = -1;
    if (!e.failed()) break;
    ++failures;
    REQUIRE(e.status == read_status::internal);
    const unloc::error error = unloc::detail::input_error(std::move(e));
    CHECK(error.category == unloc::error_category::internal);
    CHECK(error.message == "out of memory while reading JSON");
  }
  CHECK(failures > 5);
}

TEST_CASE("a page callback that throws when memory has run out is an internal error",
          "[json_reader]") {
  const std::string body = "{\"accessEvents\":[" + event_text + "]}";
  auto on_event = [](unloc::access_event&&) -> bool {
    unloc_test::allocations_left = 0;
    throw 7;  // not ours to describe
  };
  std::optional<std::string> cursor;
  unloc::detail::read_error e = unloc::detail::read_events(body, {}, on_event, cursor);
  unloc_test::allocations_left = -1;
  REQUIRE(e.status == read_status::internal);
  const unloc::error error = unloc::detail::input_error(std::move(e));
  CHECK(error.category == unloc::error_category::internal);
  CHECK(error.message == "unexpected exception while reading JSON");
}

TEST_CASE("json_whole_number allocates nothing, however long the number", "[json_reader]") {
  const std::string_view numbers[] = {"12345678901234567890.5e-3", "0.000000000000000000001e21",
                                      "18446744073709551615.00000000000000000000",
                                      "1.0000000000000000000000001e1"};
  const std::optional<std::uint64_t> expected[] = {
      12345678901234567, 1, 18446744073709551615ULL, std::nullopt};
  for (std::size_t i = 0; i < std::size(numbers); ++i) {
    INFO(numbers[i]);
    unloc_test::allocations_left = 0;
    const auto whole = unloc::detail::json_whole_number(numbers[i], i == 3 ? 10 : UINT64_MAX);
    unloc_test::allocations_left = -1;
    CHECK(whole == expected[i]);
  }
}

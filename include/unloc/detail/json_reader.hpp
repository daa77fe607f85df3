#pragma once

// A strict JSON reader (RFC 8259, UTF-8 only) for untrusted text: no
// exceptions, no DOM, a nesting limit that costs heap rather than stack.
// Callers walk the text with it (read_members, read_elements, read_string) and
// keep whatever they do not know as compact JSON text (read_value). The SDK
// reads every body it receives with it: webhook deliveries and access-log
// pages (event_reader.hpp), webhooks, tokens and API errors.
//
// It is not nlohmann's SAX parser on purpose: that lexer copies every string
// character by character (an out-of-line std::string::push_back per byte), so
// that reading an event through it costs more than nlohmann's own DOM parse.
// Here a string without escapes is a view of the input. And not including
// nlohmann at all keeps the SDK's headers cheap to compile: that header alone
// costs more than the whole of them.

#include <unloc/detail/text.hpp>
#include <unloc/error.hpp>
#include <unloc/json_member.hpp>
#include <unloc/version.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE
namespace detail {

// How reading went. A schema error does not stop the reader, so that a body that
// is not JSON at all is reported as such (400) even when its start broke a schema
// rule (422); a syntax error, the nesting limit and the caller's stop do.
enum class reader_state : std::uint8_t { ok, schema_error, syntax_error, stopped };

class json_reader {
 public:
  json_reader(std::string_view text, std::size_t max_depth) noexcept
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()), max_depth_(max_depth) {}

  // Skips a UTF-8 byte order mark (as nlohmann does) and whitespace: p_ at the value.
  void begin() noexcept {
    if (end_ - p_ >= 3 && std::string_view(p_, 3) == "\xEF\xBB\xBF") p_ += 3;
    skip_whitespace();
  }

  // After the value: nothing but whitespace may follow.
  bool finish() {
    skip_whitespace();
    return p_ == end_ || syntax_error("unexpected text after the JSON value");
  }

  [[nodiscard]] reader_state state() const noexcept { return state_; }
  [[nodiscard]] bool ok() const noexcept { return state_ == reader_state::ok; }
  [[nodiscard]] error take_error() { return std::move(error_); }
  [[nodiscard]] const char* position() const noexcept { return p_; }

  // The byte at p_, or NUL at the end (never valid where a token is expected).
  [[nodiscard]] char peek() const noexcept { return p_ != end_ ? *p_ : '\0'; }

  // The whole text: one JSON object, read by read_object() with p_ at its `{`,
  // then nothing but whitespace. Any other value is a schema error naming
  // `what`, and is still checked, so that text that is not JSON says so.
  template <typename ReadObject>
  void read_document(std::string_view what, ReadObject&& read_object) {
    begin();
    if (peek() != '{') {
      fail_schema(std::string(what) + " must be a JSON object, got " + kind_at(peek()), {});
      if (!read_value(nullptr, 0)) return;
    } else if (!read_object()) {
      return;
    }
    finish();
  }

  // An unknown member at p_, kept in `extra` as compact text. A name already in
  // `names` is a duplicate (a schema error); its value is then only checked.
  bool keep_member(std::string_view key, std::size_t depth, std::unordered_set<std::string>& names,
                   std::vector<json_member>& extra) {
    // insert(std::string): the one set instantiation read_value uses too.
    if (!names.insert(std::string(key)).second) {
      return fail_duplicate(key) && read_value(nullptr, depth);
    }
    json_member member{std::string(key), {}};
    if (!read_value(&member.value, depth)) return false;
    extra.push_back(std::move(member));
    return true;
  }

  // `{` at p_ (an object `depth` deep): each member's key goes to on_member(key)
  // with p_ at its value, which on_member must read. The key stays valid while
  // the value is read, up to the next key read (at any depth).
  template <typename OnMember>
  bool read_members(std::size_t depth, OnMember&& on_member) {
    if (!open(depth)) return false;
    skip_whitespace();
    if (peek() == '}') return close();
    for (;;) {
      std::string_view key;
      if (!read_key(key)) return false;
      if (!on_member(key)) return false;
      skip_whitespace();
      if (peek() == '}') return close();
      if (!expect(',')) return false;
      skip_whitespace();
    }
  }

  // `[` at p_ (an array `depth` deep): on_element() reads each element at p_.
  template <typename OnElement>
  bool read_elements(std::size_t depth, OnElement&& on_element) {
    if (!open(depth)) return false;
    skip_whitespace();
    if (peek() == ']') return close();
    for (;;) {
      if (!on_element()) return false;
      skip_whitespace();
      if (peek() == ']') return close();
      if (!expect(',')) return false;
      skip_whitespace();
    }
  }

  // Any value, iteratively: nesting costs heap, not stack. Its compact JSON text
  // is appended to *out unless out is null (then it is only checked); a kept
  // object with a repeated key is a schema error. `depth`: that of the parent.
  UNLOC_DETAIL_NOINLINE bool read_value(std::string* out, std::size_t depth) {
    std::string closers;  // '}' or ']' for each open container, innermost last
    // When kept: each open container's number (its bytes, in a string as
    // closers are), and the keys of every object met, each after its object's
    // number. One set and no vector<size_t>, not one set per object: it compiles smaller.
    constexpr std::size_t width = sizeof(std::size_t);
    std::string numbers;
    std::size_t containers = 0;
    std::unordered_set<std::string> keys;
    const auto next_key = [&]() {
      std::string_view key;
      if (!read_key(key)) return false;
      if (out != nullptr) {
        std::string numbered = numbers.substr(numbers.size() - width);
        numbered.append(key);
        if (!keys.insert(std::move(numbered)).second) fail_duplicate(key);
        append_json_string(*out, key);
        *out += ':';
      }
      return true;
    };
    for (;;) {
      skip_whitespace();
      const char c = peek();
      if (c == '{' || c == '[') {
        if (!open(++depth)) return false;
        closers.push_back(c == '{' ? '}' : ']');
        if (out != nullptr) {
          *out += c;
          numbers.append(reinterpret_cast<const char*>(&containers), width);
          ++containers;
        }
        skip_whitespace();
        if (peek() != closers.back()) {
          if (c == '{' && !next_key()) return false;
          continue;  // on to the first element
        }
      } else if (c == '"') {
        std::string_view text;
        if (!read_string(text)) return false;
        if (out != nullptr) append_json_string(*out, text);
      } else if (c == 't' || c == 'f' || c == 'n') {
        const char* word = c == 't' ? "true" : c == 'f' ? "false" : "null";
        if (!read_literal(word)) return false;
        if (out != nullptr) *out += word;
      } else if (!read_number(out)) {
        return false;
      }
      // The value is complete: close what it completes, then find the next one.
      for (;;) {
        if (closers.empty()) return true;
        skip_whitespace();
        if (peek() == closers.back()) {
          ++p_;
          if (out != nullptr) {
            *out += closers.back();
            numbers.resize(numbers.size() - width);
          }
          closers.pop_back();
          --depth;
          continue;
        }
        if (!expect(',')) return false;
        if (out != nullptr) *out += ',';
        if (closers.back() == '}') {
          skip_whitespace();
          if (!next_key()) return false;
        }
        break;
      }
    }
  }

  // Records a schema error (the first one is kept) and lets reading go on: true.
  UNLOC_DETAIL_COLD bool fail_schema(std::string message, std::string field) {
    return apply(make_error(error_category::invalid_input, std::move(message), std::move(field)));
  }

  bool fail_duplicate(std::string_view key) {
    return fail_schema("duplicate key " + detail::quoted(key), std::string(key));
  }

  // A schema error is recorded once and reading goes on: returns true.
  bool apply(result<void>&& r) {
    if (!r && state_ == reader_state::ok) {
      state_ = reader_state::schema_error;
      error_ = r.error();
    }
    return true;
  }

  // The caller stops reading: returns false.
  bool stop() {
    state_ = reader_state::stopped;
    error_ = make_error(error_category::invalid_input, "reading stopped by the caller");
    return false;
  }

  // The type of the value starting with `c`, for messages (the next bytes are not checked).
  static const char* kind_at(char c) noexcept {
    switch (c) {
      case '{': return "an object";
      case '[': return "an array";
      case '"': return "a string";
      case 't':
      case 'f': return "a boolean";
      case 'n': return "null";
      default: return "a number";
    }
  }

  // --- Tokens.

  // A string at p_ (its opening quote): a view of the input, or of scratch_
  // when it holds escapes. Checks UTF-8 and escapes; no control characters.
  UNLOC_DETAIL_NOINLINE bool read_string(std::string_view& out) {
    if (peek() != '"') return syntax_error("expected a string");
    const char* start = ++p_;
    bool escaped = false;
    for (;;) {
      const char* run = p_;
      skip_plain_ascii();
      if (escaped) scratch_.append(run, p_);
      if (p_ == end_) return syntax_error("unterminated string");
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') break;
      if (c == '\\') {
        if (!escaped) scratch_.assign(start, p_);
        escaped = true;
        if (!read_escape()) return false;
      } else if (c < 0x20) {
        return syntax_error("control character in a string");
      } else {
        const char* character = p_;
        if (!skip_utf8()) return utf8_error();
        if (escaped) scratch_.append(character, p_);
      }
    }
    out = escaped ? std::string_view(scratch_)
                  : std::string_view(start, static_cast<std::size_t>(p_ - start));
    ++p_;
    return true;
  }

  // Skips printable ASCII other than the quote and the backslash, eight bytes at
  // a time while it can: most of a body is such text.
  void skip_plain_ascii() noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101ULL;
    constexpr std::uint64_t highs = 0x8080808080808080ULL;
    const auto has_zero_byte = [](std::uint64_t v) { return (v - ones) & ~v & highs; };
    while (end_ - p_ >= 8) {
      std::uint64_t v = 0;
      std::memcpy(&v, p_, 8);
      const std::uint64_t special = (v & highs) | has_zero_byte(v ^ (ones * '"')) |
                                    has_zero_byte(v ^ (ones * '\\')) |
                                    ((v - ones * 0x20) & ~v & highs);
      if (special != 0) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        // The lowest flagged byte is a real one (a borrow only flags bytes above it).
        p_ += __builtin_ctzll(special) / 8;
        return;
#else
        break;
#endif
      }
      p_ += 8;
    }
    while (p_ != end_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return;
      ++p_;
    }
  }

  // One multi-byte UTF-8 character at p_ (RFC 3629: no overlong forms, no surrogates).
  bool skip_utf8() noexcept {
    std::size_t length = 0;
    if (!utf8_sequence(std::string_view(p_, static_cast<std::size_t>(end_ - p_)), length)) {
      return false;
    }
    p_ += length;
    return true;
  }

  // A backslash escape at p_, appended to scratch_ (\uXXXX as UTF-8, pairs joined).
  UNLOC_DETAIL_NOINLINE bool read_escape() {
    if (end_ - p_ < 2) return syntax_error("unterminated string");
    const char c = p_[1];
    p_ += 2;
    switch (c) {
      case '"':
      case '\\':
      case '/': scratch_ += c; return true;
      case 'b': scratch_ += '\b'; return true;
      case 'f': scratch_ += '\f'; return true;
      case 'n': scratch_ += '\n'; return true;
      case 'r': scratch_ += '\r'; return true;
      case 't': scratch_ += '\t'; return true;
      case 'u': break;
      default: return syntax_error("invalid escape in a string");
    }
    std::uint32_t code = 0;
    if (!read_hex4(code)) return false;
    if (code >= 0xDC00 && code <= 0xDFFF) return syntax_error("unpaired UTF-16 surrogate escape");
    if (code >= 0xD800 && code <= 0xDBFF) {
      std::uint32_t low = 0;
      if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') {
        return syntax_error("unpaired UTF-16 surrogate escape");
      }
      p_ += 2;
      if (!read_hex4(low)) return false;
      if (low < 0xDC00 || low > 0xDFFF) return syntax_error("unpaired UTF-16 surrogate escape");
      code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    }
    const auto byte = [](std::uint32_t v) { return static_cast<char>(v); };
    if (code < 0x80) {
      scratch_ += byte(code);
    } else if (code < 0x800) {
      scratch_ += byte(0xC0 | (code >> 6));
      scratch_ += byte(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      scratch_ += byte(0xE0 | (code >> 12));
      scratch_ += byte(0x80 | ((code >> 6) & 0x3F));
      scratch_ += byte(0x80 | (code & 0x3F));
    } else {
      scratch_ += byte(0xF0 | (code >> 18));
      scratch_ += byte(0x80 | ((code >> 12) & 0x3F));
      scratch_ += byte(0x80 | ((code >> 6) & 0x3F));
      scratch_ += byte(0x80 | (code & 0x3F));
    }
    return true;
  }

  bool read_hex4(std::uint32_t& code) {
    if (end_ - p_ < 4) return syntax_error("invalid \\u escape");
    for (int i = 0; i < 4; ++i, ++p_) {
      const int digit = hex_digit_value(*p_);
      if (digit < 0) return syntax_error("invalid \\u escape");
      code = code * 16 + static_cast<std::uint32_t>(digit);
    }
    return true;
  }

  // A number at p_ (RFC 8259 grammar), its text appended to *out unless out is
  // null. Rejected as nlohmann rejects it: beyond the double range (a number
  // below it reads as zero).
  UNLOC_DETAIL_NOINLINE bool read_number(std::string* out) {
    const char* start = p_;
    const auto digits = [this] {
      const char* first = p_;
      while (p_ != end_ && is_digit(*p_)) ++p_;
      return p_ != first;
    };
    const bool negative = peek() == '-';
    if (negative) ++p_;
    if (peek() == '0') {
      ++p_;
    } else if (!digits()) {
      return syntax_error(p_ == start ? "expected a JSON value" : "invalid number");
    }
    const char* fraction = p_;
    if (peek() == '.' && (++p_, !digits())) return syntax_error("invalid number");
    const char* exponent = p_;
    if (peek() == 'e' || peek() == 'E') {
      ++p_;
      if (peek() == '+' || peek() == '-') ++p_;
      if (!digits()) return syntax_error("invalid number");
    }
    // An integer of up to 18 digits fits int64 and uint64: nothing to check.
    if ((fraction != p_ || fraction - start > 18 + (negative ? 1 : 0)) &&
        beyond_double_range(start + (negative ? 1 : 0), fraction, exponent, p_)) {
      return syntax_error("number out of range");
    }
    if (out != nullptr) out->append(start, p_);
    return true;
  }

  // True when a number's magnitude rounds to infinity as a double, decided on
  // its digits: std::from_chars for double is missing from libc++ (and Apple's),
  // and strtod depends on the locale.
  static bool beyond_double_range(const char* integer, const char* fraction, const char* exponent,
                                  const char* end) noexcept {
    if (std::find_if(integer, exponent, [](char c) { return c >= '1' && c <= '9'; }) == exponent) {
      return false;  // zero, whatever the exponent
    }
    const long long power = magnitude(integer, fraction, exponent, end);
    if (power != 308) return power > 308;
    // 2^1024 - 2^970, halfway between the largest double and 2^1024, without
    // its trailing zeros: it rounds to infinity (ties to even), as does anything larger.
    constexpr std::string_view halfway =
        "17976931348623158079372897140530341507993413271003782693617377898044496829276475094664901"
        "79775872070963302864166928879109465555478519404026306574886715058206819089020007083836762"
        "73854845817711531764475730270069855571366959622842914819860834936475292719074168444365510"
        "704342711559699508093042880177904174497792";
    std::size_t at = 0;
    for (const char* c = integer; c != exponent; ++c) {
      if (*c == '.' || (at == 0 && *c == '0')) continue;  // the point, and leading zeros
      if (at == halfway.size()) return true;
      if (*c != halfway[at]) return *c > halfway[at];
      ++at;
    }
    return at == halfway.size();
  }

  // The power of ten of a number's first significant digit. The exponent is
  // saturated at 10^15, beyond any count of digits a text in memory can hold.
  static long long magnitude(const char* integer, const char* fraction, const char* exponent,
                             const char* end) noexcept {
    constexpr long long limit = 1'000'000'000'000'000;
    long long power = 0;
    if (exponent != end) {
      const char* digit = exponent + 1;
      const bool minus = *digit == '-';
      if (*digit == '-' || *digit == '+') ++digit;
      for (; digit != end && power < limit; ++digit) power = power * 10 + (*digit - '0');
      if (minus) power = -power;
    }
    if (*integer != '0') return power + static_cast<long long>(fraction - integer) - 1;
    const char* digit = fraction + 1;  // 0.000d…: the zeros after the point
    while (digit < exponent && *digit == '0') ++digit;
    return power - static_cast<long long>(digit - fraction);
  }

  bool read_literal(const char* word) {
    const std::string_view w(word);
    if (static_cast<std::size_t>(end_ - p_) < w.size() || std::string_view(p_, w.size()) != w) {
      return syntax_error("invalid literal");
    }
    p_ += w.size();
    return true;
  }

  // A member's key, then its colon; p_ ends at the value.
  // A key with escapes is moved out of scratch_, which the value's strings reuse.
  bool read_key(std::string_view& key) {
    if (peek() != '"') return syntax_error("expected a string as object key");
    if (!read_string(key)) return false;
    if (!scratch_.empty() && key.data() == scratch_.data()) {
      key_scratch_.assign(key.data(), key.size());
      key = key_scratch_;
    }
    skip_whitespace();
    if (!expect(':')) return false;
    skip_whitespace();
    return true;
  }

  bool open(std::size_t depth) {
    if (depth > max_depth_) {
      // A parser limit, not a schema rule: reported like a syntax error.
      state_ = reader_state::syntax_error;
      error_ = make_error(error_category::invalid_input,
                          "JSON nesting is deeper than " + std::to_string(max_depth_) + " levels");
      return false;
    }
    ++p_;
    return true;
  }

  bool close() {
    ++p_;
    return true;
  }

  bool expect(char c) {
    if (peek() != c) return syntax_error(std::string("expected '") + c + "'");
    ++p_;
    return true;
  }

  void skip_whitespace() noexcept {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  // 0-15 for a hex digit, -1 for any other byte.
  static int hex_digit_value(char c) noexcept {
    static constexpr auto table = [] {
      std::array<signed char, 256> t{};
      for (auto& v : t) v = -1;
      for (int i = 0; i < 10; ++i)
        t[static_cast<std::size_t>('0' + i)] = static_cast<signed char>(i);
      for (int i = 0; i < 6; ++i) {
        t[static_cast<std::size_t>('a' + i)] = static_cast<signed char>(10 + i);
        t[static_cast<std::size_t>('A' + i)] = static_cast<signed char>(10 + i);
      }
      return t;
    }();
    return table[static_cast<unsigned char>(c)];
  }

  // --- Outcomes.

  UNLOC_DETAIL_COLD bool syntax_error(std::string_view what) {
    if (state_ == reader_state::stopped) return false;
    state_ = reader_state::syntax_error;  // wins over an earlier schema error
    error_ = make_error(error_category::invalid_input,
                        "body is not valid JSON at byte " + std::to_string(p_ - begin_) + ": " +
                            std::string(p_ == end_ ? "unexpected end of input" : what));
    return false;
  }

  UNLOC_DETAIL_COLD bool utf8_error() {
    if (state_ == reader_state::stopped) return false;
    state_ = reader_state::syntax_error;
    error_ = make_error(error_category::invalid_input,
                        "body is not valid UTF-8 at byte " + std::to_string(p_ - begin_));
    return false;
  }

 private:
  const char* begin_;
  const char* p_;
  const char* end_;
  std::size_t max_depth_;
  std::string scratch_;      // a string that held escapes, decoded
  std::string key_scratch_;  // a key that held escapes, decoded
  reader_state state_ = reader_state::ok;
  error error_;
};

/// The whole part of a JSON number's text (as read_number checked it) when
/// the number is from 0 to `max`; a fraction is dropped. None otherwise.
/// Decided on its digits, as beyond_double_range is, without from_chars or strtod.
[[nodiscard]] inline std::optional<std::uint64_t> json_whole_number(std::string_view number,
                                                                    std::uint64_t max) noexcept {
  const bool negative = !number.empty() && number.front() == '-';
  std::string_view digits;  // the integer and fraction digits, the point left out
  std::string joined;
  long long point = 0;      // where the point goes in `digits`
  {
    const auto e = number.find_first_of("eE");
    std::string_view mantissa = number.substr(negative ? 1 : 0, e == std::string_view::npos
                                                                  ? std::string_view::npos
                                                                  : e - (negative ? 1 : 0));
    const auto dot = mantissa.find('.');
    point = static_cast<long long>(dot == std::string_view::npos ? mantissa.size() : dot);
    if (dot == std::string_view::npos) {
      digits = mantissa;
    } else {
      joined.assign(mantissa.substr(0, dot)).append(mantissa.substr(dot + 1));
      digits = joined;
    }
    if (e != std::string_view::npos) {
      std::string_view power = number.substr(e + 1);
      const bool minus = !power.empty() && power.front() == '-';
      if (!power.empty() && (power.front() == '-' || power.front() == '+')) power.remove_prefix(1);
      long long exponent = 0;
      for (const char c : power) {
        if (exponent < 1'000'000'000) exponent = exponent * 10 + (c - '0');  // saturated
      }
      point += minus ? -exponent : exponent;
    }
  }
  while (!digits.empty() && digits.front() == '0') {
    digits.remove_prefix(1);
    --point;
  }
  if (digits.empty()) return std::uint64_t{0};  // zero, -0 too
  if (negative) return std::nullopt;
  if (point <= 0) return std::uint64_t{0};  // below one
  if (point > 20) return std::nullopt;
  std::uint64_t value = 0;
  for (long long i = 0; i < point; ++i) {
    const auto digit =
        static_cast<std::uint64_t>(i < static_cast<long long>(digits.size()) ? digits[static_cast<std::size_t>(i)] - '0' : 0);
    if (value > (max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  if (value == max && static_cast<std::size_t>(point) < digits.size() &&
      digits.find_first_not_of('0', static_cast<std::size_t>(point)) != std::string_view::npos) {
    return std::nullopt;  // max and a fraction
  }
  return value;
}

/// Nesting accepted in the API's responses (a webhook list is 3 deep).
inline constexpr std::size_t max_response_depth = 32;

/// An API response that is not what the contract says.
[[nodiscard]] inline error response_error(std::string message, std::string field = {}) {
  return make_error(error_category::invalid_response, std::move(message), std::move(field));
}

/// A response body that did not read: the reader's message, as an invalid response.
[[nodiscard]] inline error response_error(json_reader& reader) {
  const bool syntax = reader.state() == reader_state::syntax_error;
  error e = reader.take_error();
  e.category = error_category::invalid_response;
  if (syntax) e.message = "response " + e.message;
  return e;
}

}  // namespace detail
UNLOC_END_NAMESPACE

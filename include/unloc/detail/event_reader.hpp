#pragma once

// A strict JSON reader (RFC 8259, UTF-8 only) that reads untrusted text
// straight into access_event values: no DOM for the known fields, no
// exceptions, a nesting limit that costs heap rather than stack, duplicate keys
// rejected (two parsers could read such a body differently). Serves a single
// event (a webhook delivery) and an access-log page, event by event.
//
// It is not nlohmann's SAX parser on purpose: that lexer copies every string
// character by character (an out-of-line std::string::push_back per byte), so
// that reading an event through it costs more than nlohmann's own DOM parse.
// Here a string without escapes is a view of the input, and a UUID or a
// timestamp is read from that view without a copy. Unknown fields still become
// nlohmann::json values (access_event::extra), numbers converted as nlohmann
// converts them.

#include <unloc/access_event.hpp>
#include <unloc/detail/text.hpp>
#include <unloc/error.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/uuid.hpp>
#include <unloc/version.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE
namespace detail {

enum class reader_shape : std::uint8_t { event, page };

// How reading went. A schema error does not stop the reader, so that a body that
// is not JSON at all is reported as such (400) even when its start broke a schema
// rule (422); a syntax error, the nesting limit and the caller's stop do.
enum class reader_state : std::uint8_t { ok, schema_error, syntax_error, stopped };

// Where complete events go: `handle(context, event)`, false to stop reading. A
// function pointer rather than a template parameter, so that the reader is
// compiled once per translation unit, not once per caller's callback.
struct event_sink {
  void* context;
  bool (*handle)(void* context, access_event&& event);
};

class event_reader {
 public:
  using json = nlohmann::json;

  event_reader(std::string_view text, reader_shape shape, std::size_t max_depth, event_sink sink)
      : begin_(text.data()),
        p_(text.data()),
        end_(text.data() + text.size()),
        shape_(shape),
        max_depth_(max_depth),
        sink_(sink) {}

  // Reads the whole text: one JSON value, then nothing but whitespace.
  void read() {
    if (end_ - p_ >= 3 && std::string_view(p_, 3) == "\xEF\xBB\xBF") p_ += 3;  // as nlohmann does
    skip_whitespace();
    if (peek() != '{') {
      fail_schema(std::string(shape_ == reader_shape::event
                                  ? "an Access Event must be a JSON object, got "
                                  : "an access-log page must be a JSON object, got ") +
                      kind_at(peek()),
                  {});
      if (!read_value(nullptr, 0)) return;
    } else if (!(shape_ == reader_shape::event ? read_event(1) : read_page())) {
      return;
    }
    skip_whitespace();
    if (p_ != end_) syntax_error("unexpected text after the JSON value");
  }

  [[nodiscard]] reader_state state() const noexcept { return state_; }
  [[nodiscard]] error take_error() { return std::move(error_); }
  [[nodiscard]] std::optional<std::string>& next_cursor() noexcept { return next_cursor_; }
  // After a successful read: whether the page carried its events array.
  [[nodiscard]] bool saw_events() const noexcept { return saw_events_; }

 private:
  // --- Structure: page, events, event fields. Each returns false when reading must stop.

  bool read_page() {
    if (!open(1)) return false;
    return read_members([this](std::string_view key) {
      if (!page_keys_.emplace(key).second) return fail_duplicate(key) && read_value(nullptr, 1);
      if (key == "accessEvents") {
        if (peek() != '[') {
          return fail_schema("field 'accessEvents' must be an array", "accessEvents") &&
                 read_value(nullptr, 1);
        }
        saw_events_ = true;
        return read_events();
      }
      if (key == "nextCursor") {
        if (peek() == '"') {
          std::string_view cursor;
          if (!read_string(cursor)) return false;
          next_cursor_ = std::string(cursor);
          return true;
        }
        if (peek() != 'n') {
          return fail_schema("field 'nextCursor' must be a string or null", "nextCursor") &&
                 read_value(nullptr, 1);
        }
        return read_literal("null");
      }
      json dropped;  // an unknown page field: read, checked, dropped
      return read_value(state_ == reader_state::ok ? &dropped : nullptr, 1);
    });
  }

  bool read_events() {
    if (!open(2)) return false;
    skip_whitespace();
    if (peek() == ']') return close();
    for (;;) {
      if (peek() == '{') {
        if (!read_event(3)) return false;
      } else if (!fail_schema("accessEvents must hold objects", "accessEvents") ||
                 !read_value(nullptr, 2)) {
        return false;
      }
      skip_whitespace();
      if (peek() == ']') return close();
      if (!expect(',')) return false;
      skip_whitespace();
    }
  }

  bool read_event(std::size_t depth) {
    if (!open(depth)) return false;
    event_ = access_event{};
    seen_ = 0;
    const bool read =
        read_members([this, depth](std::string_view key) { return read_event_field(key, depth); });
    if (!read || state_ != reader_state::ok) return read;
    if (auto required = check_required_event_fields(seen_); !required) {
      return apply(std::move(required));
    }
    if (!sink_.handle(sink_.context, std::move(event_))) {
      state_ = reader_state::stopped;
      error_ = make_error(error_category::invalid_input, "reading stopped by the caller");
      return false;
    }
    return true;
  }

  bool read_event_field(std::string_view key, std::size_t depth) {
    if (state_ != reader_state::ok) return read_value(nullptr, depth);
    const event_field field = event_field_from_key(key);
    if (field == event_field::unknown) {
      std::string name(key);
      if (event_.extra.is_object() && event_.extra.contains(name)) {
        return fail_duplicate(key) && read_value(nullptr, depth);
      }
      json value;
      if (!read_value(&value, depth)) return false;
      if (!event_.extra.is_object()) event_.extra = json::object();
      event_.extra[std::move(name)] = std::move(value);
      return true;
    }
    const unsigned bit = 1U << static_cast<unsigned>(field);
    if ((seen_ & bit) != 0) return fail_duplicate(key) && read_value(nullptr, depth);
    seen_ |= bit;
    switch (peek()) {
      case '"': {
        std::string_view text;
        return read_string(text) && apply(set_field(field, text));
      }
      case 'n': return read_literal("null") && apply(set_event_field_null(event_, field));
      default:
        return apply(event_field_error(field,
                                       std::string("must be a string, got ") + kind_at(peek()))) &&
               read_value(nullptr, depth);
    }
  }

  // UUIDs and timestamps straight from the input; anything else (and every
  // failure, for its message) through the table that from_json uses too.
  result<void> set_field(event_field field, std::string_view text) {
    uuid* target = field == event_field::id        ? &event_.id
                   : field == event_field::key_id  ? &event_.key_id
                   : field == event_field::lock_id ? &event_.lock_id
                                                   : nullptr;
    if (target != nullptr) {
      if (read_canonical_uuid(text, *target)) return {};
    } else if (field == event_field::created) {
      if (auto parsed = parse_timestamp(text)) {
        event_.created = *parsed;
        return {};
      }
    }
    return set_event_field(event_, field, std::string(text));
  }

  // The 36-character form (either case), a table lookup a digit: an event holds
  // three. False for anything else, which uuid::parse then reads or names.
  static bool read_canonical_uuid(std::string_view text, uuid& out) noexcept {
    if (text.size() != 36) return false;
    std::array<std::uint8_t, 16> bytes{};
    std::size_t at = 0;
    for (auto& byte : bytes) {
      if (at == 8 || at == 13 || at == 18 || at == 23) {
        if (text[at++] != '-') return false;
      }
      const int high = hex_digit_value(text[at]);
      const int low = hex_digit_value(text[at + 1]);
      if (high < 0 || low < 0) return false;
      byte = static_cast<std::uint8_t>((high << 4) | low);
      at += 2;
    }
    out = uuid(bytes);
    return true;
  }

  // `{` at p_: each member's key goes to on_member(key) with p_ at its value. The
  // key may be a view of scratch_: on_member uses it before it reads the value.
  template <typename OnMember>
  bool read_members(OnMember&& on_member) {
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

  // --- Any value, iteratively: nesting costs heap, not stack. Built into *out
  // unless out is null (then only checked). `depth`: that of the value's parent.

  bool read_value(json* out, std::size_t depth) {
    std::vector<json*> open_values;  // the containers being built, innermost last
    std::string closers;             // '}' or ']' for each open container
    std::string key;                 // the key of the member being read
    const auto place = [&](json&& v) -> json* {
      if (out == nullptr) return nullptr;
      if (open_values.empty()) return &(*out = std::move(v));
      json& parent = *open_values.back();
      if (parent.is_array()) {
        parent.push_back(std::move(v));
        return &parent.back();
      }
      return &(parent[key] = std::move(v));
    };
    const auto next_key = [&]() {
      std::string_view text;
      if (!read_key(text)) return false;
      key.assign(text.data(), text.size());
      if (open_values.back() != nullptr && open_values.back()->contains(key)) fail_duplicate(key);
      return true;
    };
    for (;;) {
      skip_whitespace();
      const char c = peek();
      if (c == '{' || c == '[') {
        if (!open(++depth)) return false;
        open_values.push_back(place(c == '{' ? json::object() : json::array()));
        closers.push_back(c == '{' ? '}' : ']');
        skip_whitespace();
        if (peek() != closers.back()) {
          if (c == '{' && !next_key()) return false;
          continue;  // on to the first element
        }
      } else if (c == '"') {
        std::string_view text;
        if (!read_string(text)) return false;
        place(json(std::string(text)));
      } else if (c == 't' || c == 'f' || c == 'n') {
        const char* word = c == 't' ? "true" : c == 'f' ? "false" : "null";
        if (!read_literal(word)) return false;
        place(c == 'n' ? json(nullptr) : json(c == 't'));
      } else if (!read_number(out != nullptr ? place(json()) : nullptr)) {
        return false;
      }
      // The value is complete: close what it completes, then find the next one.
      for (;;) {
        if (closers.empty()) return true;
        skip_whitespace();
        if (peek() == closers.back()) {
          ++p_;
          closers.pop_back();
          open_values.pop_back();
          --depth;
          continue;
        }
        if (!expect(',')) return false;
        if (closers.back() == '}') {
          skip_whitespace();
          if (!next_key()) return false;
        }
        break;
      }
    }
  }

  // --- Tokens.

  // A string at p_ (its opening quote): a view of the input, or of scratch_
  // when it holds escapes. Checks UTF-8 and escapes; no control characters.
  bool read_string(std::string_view& out) {
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
  bool read_escape() {
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

  // A number at p_ (RFC 8259 grammar), into *out unless out is null, as nlohmann
  // reads it: an integer that fits stays an integer (int64 when negative, else
  // uint64), any other number is a double, and one beyond the double range is an
  // error (one below it is zero). from_chars: exact and independent of the locale.
  bool read_number(json* out) {
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
    if (fraction == p_) {  // no fraction, no exponent: an integer
      if (negative) {
        std::int64_t value = 0;
        if (std::from_chars(start, p_, value).ec == std::errc()) return keep(out, json(value));
      } else {
        std::uint64_t value = 0;
        if (std::from_chars(start, p_, value).ec == std::errc()) return keep(out, json(value));
      }
    }
    double value = 0;
    if (std::from_chars(start, p_, value).ec == std::errc()) return keep(out, json(value));
    // Out of range: beyond the largest double (an error, as for nlohmann) or
    // below the smallest (zero), told apart by the first significant digit's
    // power of ten.
    if (magnitude(start + (negative ? 1 : 0), fraction, exponent, p_) > 0) {
      return syntax_error("number out of range");
    }
    return keep(out, json(negative ? -0.0 : 0.0));
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

  static bool keep(json* out, json&& value) {
    if (out != nullptr) *out = std::move(value);
    return true;
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
  bool read_key(std::string_view& key) {
    if (peek() != '"') return syntax_error("expected a string as object key");
    if (!read_string(key)) return false;
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

  // The byte at p_, or NUL at the end (never valid where a token is expected).
  [[nodiscard]] char peek() const noexcept { return p_ != end_ ? *p_ : '\0'; }

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

  // --- Outcomes.

  bool syntax_error(std::string_view what) {
    if (state_ == reader_state::stopped) return false;
    state_ = reader_state::syntax_error;  // wins over an earlier schema error
    error_ = make_error(error_category::invalid_input,
                        "body is not valid JSON at byte " + std::to_string(p_ - begin_) + ": " +
                            std::string(p_ == end_ ? "unexpected end of input" : what));
    return false;
  }

  bool utf8_error() {
    if (state_ == reader_state::stopped) return false;
    state_ = reader_state::syntax_error;
    error_ = make_error(error_category::invalid_input,
                        "body is not valid UTF-8 at byte " + std::to_string(p_ - begin_));
    return false;
  }

  // A schema error is recorded once and reading goes on: both return true.
  bool apply(result<void>&& r) {
    if (!r && state_ == reader_state::ok) {
      state_ = reader_state::schema_error;
      error_ = r.error();
    }
    return true;
  }

  bool fail_duplicate(std::string_view key) {
    return fail_schema("duplicate key " + detail::quoted(key), std::string(key));
  }

  bool fail_schema(std::string message, std::string field) {
    return apply(make_error(error_category::invalid_input, std::move(message), std::move(field)));
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  reader_shape shape_;
  std::size_t max_depth_;
  event_sink sink_;

  access_event event_;
  unsigned seen_ = 0;
  std::string scratch_;  // a string that held escapes, decoded
  std::unordered_set<std::string> page_keys_;  // a set: a page may hold many unknown keys
  bool saw_events_ = false;
  std::optional<std::string> next_cursor_;
  reader_state state_ = reader_state::ok;
  error error_;
};

}  // namespace detail
UNLOC_END_NAMESPACE

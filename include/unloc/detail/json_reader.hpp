#pragma once

// The one reader of untrusted JSON: a strict tokenizer (RFC 8259, UTF-8 only,
// no exceptions, no DOM, a nesting limit that costs heap rather than stack)
// driven by a declarative description of each body (json_object: its fields,
// required or optional, nullable, and how each is stored). The same rules hold
// for every body the SDK reads: duplicate keys refused, required fields asked
// for, unknown members kept as compact JSON text (or checked and dropped),
// syntax (not JSON) told apart from schema (JSON of the wrong shape). The
// descriptions live beside their models; the public layer turns a read_error
// into an unloc::error.
//
// It is not nlohmann's SAX parser on purpose: that lexer copies every string
// character by character, so that reading an event through it costs more than
// nlohmann's own DOM parse. Here a string without escapes is a view of the
// input. And not including nlohmann at all keeps the SDK's headers cheap to
// compile: that header alone costs more than the whole of them.

#include <unloc/detail/text.hpp>
#include <unloc/version.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE
namespace detail {

// How reading ended. A schema error does not stop the reader, so that a body
// that is not JSON at all is reported as such (400) even when its start broke
// a schema rule (422); a syntax error (the nesting limit included) does.
// stopped: a sink asked to stop; internal: out of memory, or a sink threw.
enum class read_status : std::uint8_t { ok, schema, syntax, stopped, internal };

// The reader's one error channel: how reading ended, why, and the field at fault.
struct read_error {
  read_status status = read_status::ok;
  std::string message;  // empty when `fixed_message` says why
  std::string field;
  // Why, as a literal, when nothing could be allocated to say it (out of memory).
  const char* fixed_message = nullptr;

  [[nodiscard]] bool failed() const noexcept { return status != read_status::ok; }

  // The message, moved out (the literal copied, now that memory may be back).
  [[nodiscard]] std::string take_message() {
    return fixed_message != nullptr ? std::string(fixed_message) : std::move(message);
  }
};

// --- Descriptions.

// What a field's value must be.
enum class json_kind : std::uint8_t {
  string,   // a string
  number,   // a number, stored as its text as written
  strings,  // a string, or an array of strings: each string stored in turn
  objects,  // an array of objects, each read by `element` into element_target()
  wrapper,  // an object holding the enclosing one itself ({"webhook":{…}}): it is
            // read into the same target with the fields before this one (so it
            // comes last), it must be the enclosing object's only member, and
            // that object's required fields are waived
};

// What a store function gets: a string's decoded text, a number's text, or null.
struct json_scalar {
  bool null;
  std::string_view text;
};

struct json_object;

// One known member of an object, and how its value is stored.
struct json_field {
  std::string_view name;
  json_kind kind;
  bool required;
  bool nullable;  // null accepted, and stored (store gets null)
  // string, number, strings: stores the value in the target; returns why it
  // cannot ("is not a UUID: '…'"), empty when stored.
  std::string (*store)(void* target, json_scalar value) = nullptr;
  // objects: how each element reads, where it goes (given the target), and what
  // happens once it read without error (false: stop reading).
  const json_object* element = nullptr;
  void* (*element_target)(void* target) = nullptr;
  bool (*element_read)(void* target) = nullptr;
};

// An object: its known fields (at most 32) and what becomes of unknown members.
struct json_object {
  std::string_view what;  // "an Access Event", in messages
  const json_field* fields;
  std::size_t field_count;
  // Keeps an unknown member (its name and compact JSON text); null: checked, dropped.
  void (*keep)(void* target, std::string&& name, std::string&& value) = nullptr;
  // A field whose array may stand alone as the whole text (`[…]` for `{"webhooks":[…]}`).
  const json_field* or_bare_array = nullptr;
};

// The field named `name`, looked for from field `from` on, then from the first:
// members mostly come in the order of the fields, so `from` (the one after the
// last found) is most often the one.
[[nodiscard]] inline const json_field* find_field(const json_object& object, std::string_view name,
                                                  std::size_t from = 0) noexcept {
  for (std::size_t i = from; i < object.field_count; ++i) {
    if (object.fields[i].name == name) return &object.fields[i];
  }
  for (std::size_t i = 0; i < from && i < object.field_count; ++i) {
    if (object.fields[i].name == name) return &object.fields[i];
  }
  return nullptr;
}

// "field 'id' is missing": every schema message names its field so.
[[nodiscard]] UNLOC_DETAIL_COLD inline std::string field_message(std::string_view name,
                                                                 std::string_view why) {
  std::string out = "field '";
  out.append(name).append("' ").append(why);
  return out;
}

// The first required field of `object` not in `seen` (a bit per field), if any.
[[nodiscard]] inline const json_field* missing_field(const json_object& object,
                                                     std::uint32_t seen) noexcept {
  for (std::size_t i = 0; i < object.field_count; ++i) {
    if (object.fields[i].required && (seen & (std::uint32_t{1} << i)) == 0)
      return &object.fields[i];
  }
  return nullptr;
}

// The type of the value starting with `c`, for messages (the next bytes are not checked).
[[nodiscard]] constexpr const char* json_kind_at(char c) noexcept {
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

// 0-15 for a hex digit, -1 for any other byte.
[[nodiscard]] inline int hex_digit_value(char c) noexcept {
  static constexpr auto table = [] {
    std::array<signed char, 256> t{};
    for (auto& v : t) v = -1;
    for (char d = '0'; d <= '9'; ++d) {
      t[static_cast<unsigned char>(d)] = static_cast<signed char>(d - '0');
    }
    for (char d = 'a'; d <= 'f'; ++d) {
      t[static_cast<unsigned char>(d)] = static_cast<signed char>(d - 'a' + 10);
      t[static_cast<unsigned char>(d - 'a' + 'A')] = static_cast<signed char>(d - 'a' + 10);
    }
    return t;
  }();
  return table[static_cast<unsigned char>(c)];
}

// --- The reader.

class json_reader {
 public:
  json_reader(std::string_view text, std::size_t max_depth) noexcept
      : begin_(text.data()),
        p_(text.data()),
        end_(text.data() + text.size()),
        max_depth_(max_depth) {}

  // Reads the whole text into `target` as `object` describes it: one JSON
  // object (or the bare array of object.or_bare_array), then nothing but
  // whitespace. Any other value is a schema error, and is still checked, so
  // that text that is not JSON says so. Never throws.
  read_error read_document(const json_object& object, void* target) noexcept {
    try {
      // A UTF-8 byte order mark is skipped, as nlohmann does.
      if (end_ - p_ >= 3 && std::string_view(p_, 3) == "\xEF\xBB\xBF") p_ += 3;
      skip_whitespace();
      bool read = false;
      if (peek() == '{') {
        read = read_object(object, target, 1);
      } else if (peek() == '[' && object.or_bare_array != nullptr) {
        read = read_field(*object.or_bare_array, target, 0);
      } else {
        read =
            fail(read_status::schema,
                 std::string(object.what) + " must be a JSON object, got " + json_kind_at(peek()),
                 {}) &&
            read_value(nullptr, 0);
      }
      if (read) {
        skip_whitespace();
        if (p_ != end_) syntax_error("unexpected text after the JSON value");
      }
      return std::move(error_);
    } catch (const std::bad_alloc&) {
      // No string here: it could throw again, out of this noexcept function.
      return {read_status::internal, {}, {}, "out of memory while reading JSON"};
    } catch (...) {
      // The caller's sink threw: its text is not ours to pass on.
      return {read_status::internal, {}, {}, "unexpected exception while reading JSON"};
    }
  }

 private:
  // --- Objects as described. Each returns false when reading must stop.

  // `{` at p_, `depth` deep.
  UNLOC_DETAIL_NOINLINE bool read_object(const json_object& object, void* target,
                                         std::size_t depth) {
    std::uint32_t seen = 0;                   // a bit per field of `object`
    const json_field* wrapped = nullptr;      // the wrapper, once read
    bool members = false;                     // a member other than a wrapper was read
    std::unordered_set<std::string> unknown;  // a set: an object may hold many
    std::size_t next = 0;                     // the field after the last one found
    const bool read = read_members(depth, [&](std::string_view key) {
      if (failed()) return read_value(nullptr, depth);  // after a schema error: only checked
      const json_field* field = find_field(object, key, next);
      if (field != nullptr) {
        next = static_cast<std::size_t>(field - object.fields) + 1;
        const std::uint32_t bit = std::uint32_t{1} << (field - object.fields);
        if ((seen & bit) != 0) return fail_duplicate(key) && read_value(nullptr, depth);
        seen |= bit;
      }
      // A wrapper is the whole object: a member beside it, before or after it,
      // would be a second value for one of its fields, or an extra beside its own.
      const bool wrapper = field != nullptr && field->kind == json_kind::wrapper;
      if (wrapped != nullptr || (wrapper && members)) {
        return fail_field(wrapped != nullptr ? *wrapped : *field,
                          "must be the only member of its object") &&
               read_value(nullptr, depth);
      }
      members = members || !wrapper;
      if (field == nullptr) return read_unknown(object, target, key, depth, unknown);
      if (wrapper && peek() == '{') {
        wrapped = field;
        json_object inside = object;  // the fields before the wrapper
        inside.field_count = static_cast<std::size_t>(field - object.fields);
        return read_object(inside, target, depth + 1);
      }
      return read_field(*field, target, depth);
    });
    if (!read || failed() || wrapped != nullptr) return read;
    if (const json_field* missing = missing_field(object, seen)) {
      return fail_field(*missing, "is missing");
    }
    return true;
  }

  // A known field's value at p_, in an object `depth` deep.
  UNLOC_DETAIL_NOINLINE bool read_field(const json_field& field, void* target, std::size_t depth) {
    const char c = peek();
    if (c == 'n' && field.nullable) return read_literal("null") && store(field, target, {true, {}});
    switch (field.kind) {
      case json_kind::string:
      case json_kind::strings:
        if (c == '"') return read_string_field(field, target);
        if (c == '[' && field.kind == json_kind::strings) {
          return read_elements(depth + 1, [&] {
            if (peek() == '"') return read_string_field(field, target);
            return fail_field(field, "must hold strings") && read_value(nullptr, depth + 1);
          });
        }
        break;
      case json_kind::number:
        if (c == '-' || is_digit(c)) {
          const char* start = p_;
          return read_number(nullptr) &&
                 store(field, target,
                       {false, std::string_view(start, static_cast<std::size_t>(p_ - start))});
        }
        break;
      case json_kind::objects:
        if (c == '[') {
          return read_elements(depth + 1, [&] {
            if (peek() != '{') {
              return fail_field(field, "must hold objects") && read_value(nullptr, depth + 1);
            }
            if (failed()) return read_value(nullptr, depth + 1);
            if (!read_object(*field.element, field.element_target(target), depth + 2)) return false;
            return failed() || field.element_read(target) ||
                   fail(read_status::stopped, "reading stopped by the caller", {});
          });
        }
        break;
      case json_kind::wrapper: break;  // not an object: read_object took the object
    }
    return fail_field(field,
                      std::string("must be ") + expected(field) + ", got " + json_kind_at(c)) &&
           read_value(nullptr, depth);
  }

  bool read_string_field(const json_field& field, void* target) {
    std::string_view text;
    return read_string(text) && store(field, target, {false, text});
  }

  bool store(const json_field& field, void* target, json_scalar value) {
    std::string why = field.store(target, value);
    return why.empty() || fail_field(field, why);
  }

  // An unknown member's value at p_: kept as compact text, or checked and
  // dropped (read as text all the same, so that its own keys are checked).
  bool read_unknown(const json_object& object, void* target, std::string_view key,
                    std::size_t depth, std::unordered_set<std::string>& names) {
    if (!names.insert(std::string(key)).second) {
      return fail_duplicate(key) && read_value(nullptr, depth);
    }
    std::string name(key);  // a copy: reading the value may reuse the key's buffer
    std::string value;
    if (!read_value(&value, depth)) return false;
    if (object.keep != nullptr && !failed()) object.keep(target, std::move(name), std::move(value));
    return true;
  }

  static const char* expected(const json_field& field) noexcept {
    switch (field.kind) {
      case json_kind::string: return field.nullable ? "a string or null" : "a string";
      case json_kind::number: return field.nullable ? "a number or null" : "a number";
      case json_kind::strings: return "a string or an array of strings";
      case json_kind::objects: return "an array";
      case json_kind::wrapper: break;
    }
    return "an object";
  }

  [[nodiscard]] bool failed() const noexcept { return error_.status != read_status::ok; }

  // The byte at p_, or NUL at the end (never valid where a token is expected).
  [[nodiscard]] char peek() const noexcept { return p_ != end_ ? *p_ : '\0'; }

  // `{` at p_ (an object `depth` deep): each member's key goes to on_member(key)
  // with p_ at its value, which on_member must read. The key stays valid up to
  // the next key read (at any depth): read_object looks it up before the value.
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

  // Any value, iteratively: nesting costs heap, not stack. Its compact JSON
  // text is appended to *out unless out is null (then it is only checked); an
  // object with a repeated key is then a schema error. `depth`: the parent's.
  UNLOC_DETAIL_NOINLINE bool read_value(std::string* out, std::size_t depth) {
    struct open_container {
      char closer;         // '}' or ']'
      std::size_t number;  // in the order opened: names its keys in `keys`
    };
    std::vector<open_container> open_containers;
    std::size_t containers = 0;
    std::unordered_set<std::string> keys;  // "number:key" of each key kept: one set for all objects
    const auto next_key = [&]() {
      std::string_view key;
      if (!read_key(key)) return false;
      if (out != nullptr) {
        if (!keys.insert(std::to_string(open_containers.back().number) + ':' + std::string(key))
                 .second) {
          fail_duplicate(key);
        }
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
        open_containers.push_back({c == '{' ? '}' : ']', containers++});
        if (out != nullptr) *out += c;
        skip_whitespace();
        if (peek() != open_containers.back().closer) {
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
        if (open_containers.empty()) return true;
        skip_whitespace();
        const char closer = open_containers.back().closer;
        if (peek() == closer) {
          ++p_;
          if (out != nullptr) *out += closer;
          open_containers.pop_back();
          --depth;
          continue;
        }
        if (!expect(',')) return false;
        if (out != nullptr) *out += ',';
        if (closer == '}') {
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
    if (peek() == '.') {
      ++p_;
      if (!digits()) return syntax_error("invalid number");
    }
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
      return fail(read_status::syntax,
                  "JSON nesting is deeper than " + std::to_string(max_depth_) + " levels", {});
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

  // --- Outcomes.

  UNLOC_DETAIL_COLD bool syntax_error(std::string_view what) {
    return fail(read_status::syntax,
                "body is not valid JSON at byte " + std::to_string(p_ - begin_) + ": " +
                    std::string(p_ == end_ ? "unexpected end of input" : what),
                {});
  }

  UNLOC_DETAIL_COLD bool utf8_error() {
    return fail(read_status::syntax,
                "body is not valid UTF-8 at byte " + std::to_string(p_ - begin_), {});
  }

  // A schema error is recorded (the first one is kept) and reading goes on:
  // true. A syntax error wins over it and stops reading: false. Nothing
  // overrides the caller's stop.
  UNLOC_DETAIL_COLD bool fail(read_status status, std::string message, std::string field) {
    if (error_.status == read_status::stopped) return false;
    const bool schema = status == read_status::schema;
    if (!schema || error_.status == read_status::ok) {
      error_.status = status;
      error_.message = std::move(message);
      error_.field = std::move(field);
    }
    return schema;
  }

  UNLOC_DETAIL_COLD bool fail_field(const json_field& field, std::string_view why) {
    return fail(read_status::schema, field_message(field.name, why), std::string(field.name));
  }

  UNLOC_DETAIL_COLD bool fail_duplicate(std::string_view key) {
    return fail(read_status::schema, "duplicate key " + quoted(key), std::string(key));
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  std::size_t max_depth_;
  std::string scratch_;      // a string that held escapes, decoded
  std::string key_scratch_;  // a key that held escapes, decoded
  read_error error_;
};

// Reads the whole of `text` into `target` as `object` describes it, nested at
// most `max_depth` deep (json_reader::read_document). Out of line: each body's
// reader calls it, and would otherwise compile the reader's set-up and clean-up again.
UNLOC_DETAIL_NOINLINE inline read_error read_json(std::string_view text, const json_object& object,
                                                  void* target, std::size_t max_depth) noexcept {
  return json_reader(text, max_depth).read_document(object, target);
}

/// The whole part of a JSON number's text (as read_number checked it) when
/// the number is from 0 to `max`; a fraction is dropped. None otherwise.
/// Decided on its digits, as beyond_double_range is, without from_chars or strtod.
[[nodiscard]] inline std::optional<std::uint64_t> json_whole_number(std::string_view number,
                                                                    std::uint64_t max) noexcept {
  const bool negative = !number.empty() && number.front() == '-';
  if (negative) number.remove_prefix(1);
  const auto e = number.find_first_of("eE");
  const std::string_view mantissa = number.substr(0, e);
  const auto dot = mantissa.find('.');
  // The digits are the integer's then the fraction's, the point left out (no
  // string joins them: this function allocates nothing).
  std::string_view integer = mantissa.substr(0, dot);
  const std::string_view fraction =
      dot == std::string_view::npos ? std::string_view() : mantissa.substr(dot + 1);
  auto point = static_cast<long long>(integer.size());  // where the point goes in them
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
  // Leading zeros dropped: from the integer, then (when it is all zeros) the fraction.
  std::size_t skipped_in_fraction = 0;
  while (!integer.empty() && integer.front() == '0') {
    integer.remove_prefix(1);
    --point;
  }
  if (integer.empty()) {
    while (skipped_in_fraction < fraction.size() && fraction[skipped_in_fraction] == '0') {
      ++skipped_in_fraction;
      --point;
    }
  }
  const std::string_view rest = fraction.substr(skipped_in_fraction);
  const std::size_t count = integer.size() + rest.size();
  const auto digit_at = [&](std::size_t i) {
    return i < integer.size() ? integer[i] : rest[i - integer.size()];
  };
  if (count == 0) return std::uint64_t{0};  // zero, -0 too
  if (negative) return std::nullopt;
  if (point <= 0) return std::uint64_t{0};  // below one
  if (point > 20) return std::nullopt;
  std::uint64_t value = 0;
  for (long long i = 0; i < point; ++i) {
    const auto at = static_cast<std::size_t>(i);
    const auto digit = static_cast<std::uint64_t>(at < count ? digit_at(at) - '0' : 0);
    if (value > (max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  for (auto at = static_cast<std::size_t>(point); value == max && at < count; ++at) {
    if (digit_at(at) != '0') return std::nullopt;  // max and a fraction
  }
  return value;
}

}  // namespace detail
UNLOC_END_NAMESPACE

#pragma once

/// @file
/// HTTP header fields with case-insensitive names (RFC 9110), the one shape in
/// which the SDK takes and gives headers, whatever HTTP library the caller uses.

#include <unloc/detail/text.hpp>
#include <unloc/version.hpp>

#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE

namespace detail {

// Shapes detected without including any HTTP library: text is anything whose
// data() is convertible to const char* beside a size(); a field is anything with
// name_string() and value() (Boost.Beast), else a name/value pair.
template <typename T, typename = void>
struct is_char_text : std::false_type {};
template <typename T>
struct is_char_text<T, std::void_t<decltype(std::declval<const T&>().size()),
                                   decltype(std::declval<const T&>().data())>>
    : std::is_convertible<decltype(std::declval<const T&>().data()), const char*> {};

template <typename T, typename = void>
struct has_name_string : std::false_type {};
template <typename T>
struct has_name_string<T, std::void_t<decltype(std::declval<const T&>().name_string()),
                                      decltype(std::declval<const T&>().value())>>
    : std::true_type {};

}  // namespace detail

/// A view of `text`, which is anything with `data()` (of `char`) and `size()`
/// (`std::string`, `boost::string_view`, `boost::core::string_view`, ...), a
/// `const char*` (null gives an empty view) or a `char` array. The view points
/// into `text`: it is valid as long as `text` is, so view a temporary string only
/// within one full expression. Throws only what `text.data()` or `text.size()` throws.
template <typename Text>
[[nodiscard]] std::string_view to_string_view(const Text& text) {
  if constexpr (std::is_convertible_v<const Text&, const char*>) {
    const char* chars = text;
    return chars == nullptr ? std::string_view() : std::string_view(chars);
  } else {
    static_assert(detail::is_char_text<Text>::value,
                  "unloc::to_string_view: the text needs data() of char and size(), or is a "
                  "const char*");
    return std::string_view(text.data(), static_cast<std::size_t>(text.size()));
  }
}

/// One header field.
struct http_header {
  std::string name;   ///< The field name, as given.
  std::string value;  ///< The field value.
};

/// An ordered list of header fields; lookups ignore the case of names.
class http_headers {
 public:
  /// No fields.
  http_headers() = default;
  /// The fields given, in order: `http_headers{{"Content-Type", "application/json"}}`.
  http_headers(std::initializer_list<http_header> fields) : fields_(fields) {}

  /// Copies the fields of `range`, in its order, names and values as given (no
  /// trimming, repeated names kept). Its elements either have `name_string()` and
  /// `value()` (Boost.Beast's `http::fields`, or a `http::request` itself), or are
  /// name/value pairs (`httplib::Headers`, `std::map`, `std::multimap`,
  /// `std::unordered_map`, a vector of pairs); names and values are any text that
  /// `unloc::to_string_view` takes.
  template <typename Range>
  [[nodiscard]] static http_headers from(const Range& range) {
    http_headers out;
    using std::begin, std::end;
    using iterator = decltype(begin(range));
    if constexpr (std::is_base_of_v<std::forward_iterator_tag,
                                    typename std::iterator_traits<iterator>::iterator_category>) {
      out.fields_.reserve(static_cast<std::size_t>(std::distance(begin(range), end(range))));
    }
    for (const auto& field : range) {
      auto& copy = out.fields_.emplace_back();  // filled in place: no string is moved
      if constexpr (detail::has_name_string<std::decay_t<decltype(field)>>::value) {
        copy.name.assign(to_string_view(field.name_string()));
        copy.value.assign(to_string_view(field.value()));
      } else {
        const auto& [name, value] = field;
        copy.name.assign(to_string_view(name));
        copy.value.assign(to_string_view(value));
      }
    }
    return out;
  }

  /// Appends a field.
  void add(std::string name, std::string value) {
    fields_.push_back(http_header{std::move(name), std::move(value)});
  }

  /// The value of the first field named `name`, if any.
  [[nodiscard]] std::optional<std::string_view> get(std::string_view name) const noexcept {
    for (const auto& field : fields_) {
      if (detail::ascii_iequals(field.name, name)) return std::string_view(field.value);
    }
    return std::nullopt;
  }

  /// How many fields are named `name`.
  [[nodiscard]] std::size_t count(std::string_view name) const noexcept {
    std::size_t n = 0;
    for (const auto& field : fields_) {
      if (detail::ascii_iequals(field.name, name)) ++n;
    }
    return n;
  }

  /// The number of fields.
  [[nodiscard]] std::size_t size() const noexcept { return fields_.size(); }
  /// True when there are no fields.
  [[nodiscard]] bool empty() const noexcept { return fields_.empty(); }
  /// The fields, in order.
  [[nodiscard]] auto begin() const noexcept { return fields_.begin(); }
  /// @copydoc begin()
  [[nodiscard]] auto end() const noexcept { return fields_.end(); }

 private:
  std::vector<http_header> fields_;
};

UNLOC_END_NAMESPACE

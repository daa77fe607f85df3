#pragma once

/// @file
/// HTTP header fields with case-insensitive names (RFC 9110), the one shape in
/// which the SDK takes and gives headers, whatever HTTP library the caller uses.

#include <unloc/detail/text.hpp>
#include <unloc/version.hpp>

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE

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

  /// Copies the fields of any range of name/value pairs, such as
  /// `httplib::Headers` or a `std::map<std::string, std::string>`.
  template <typename Range>
  [[nodiscard]] static http_headers from(const Range& range) {
    http_headers out;
    for (const auto& [name, value] : range) out.add(std::string(name), std::string(value));
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
    for (const auto& field : fields_) n += detail::ascii_iequals(field.name, name) ? 1 : 0;
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

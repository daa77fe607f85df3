#pragma once

/// @file
/// The SDK's one error model: `unloc::error` and `unloc::result<T>`.
///
/// Every call that reads untrusted input or touches the network returns a
/// `result<T>`: a value or an `error`, never an exception. Exceptions are kept
/// for programming errors, such as calling `value()` on a result that holds an
/// error (google-cloud-cpp's `StatusOr<T>` and `tl::expected` work the same way).

#include <unloc/version.hpp>

#include <chrono>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

UNLOC_BEGIN_NAMESPACE

/// What kind of failure an `error` reports; decides how a caller reacts.
enum class error_category {
  invalid_input,     ///< The caller's input was rejected before anything was sent.
  invalid_response,  ///< A peer sent something that is not what the contract says.
  authentication,    ///< Credentials were missing, malformed or refused.
  api,               ///< The API answered with an HTTP error status.
  network,           ///< The connection failed (DNS, refused, reset, closed mid-body).
  tls,               ///< TLS failed (certificate not trusted, handshake).
  timeout,           ///< The call's deadline passed.
  ambiguous,         ///< A non-repeatable request failed after it may have been applied.
  internal,          ///< The SDK or the system failed (out of entropy, out of memory).
};

/// The name of a category, such as `"invalid_input"`.
[[nodiscard]] constexpr const char* to_string(error_category category) noexcept {
  switch (category) {
    case error_category::invalid_input: return "invalid_input";
    case error_category::invalid_response: return "invalid_response";
    case error_category::authentication: return "authentication";
    case error_category::api: return "api";
    case error_category::network: return "network";
    case error_category::tls: return "tls";
    case error_category::timeout: return "timeout";
    case error_category::ambiguous: return "ambiguous";
    case error_category::internal: return "internal";
  }
  return "unknown";
}

/// A failure, as a value. Never holds a secret: messages are written so that
/// they can be logged as they are.
struct error {
  error_category category = error_category::internal;  ///< The kind of failure.
  std::string message;      ///< What went wrong, for people.
  std::string field;        ///< The input field at fault, where one is (e.g. `"created"`).
  int http_status = 0;      ///< The HTTP status, or 0 where no response was received.
  std::string api_code;     ///< The API's `error` code from the response body, if any.
  std::string api_message;  ///< The API's `message` from the response body, if any.
  std::string body;         ///< The raw response body (truncated) when it was not API JSON.
  std::string request_id;   ///< The response's `x-request-id` header, if any.
  int attempts = 0;         ///< How many attempts the call made (0 where none was sent).
  /// The wait a `429` or `503` asked for in its `Retry-After` header, if any:
  /// a caller polling again waits at least this long.
  std::optional<std::chrono::milliseconds> retry_after;
};

/// Makes an error of a category with a message (and optionally the field at fault).
// Cold and out of line: failures are the rare path, and every return of one
// would otherwise compile the construction of all of error's members again.
[[nodiscard]] UNLOC_DETAIL_COLD inline error make_error(error_category category,
                                                        std::string message,
                                                        std::string field = {}) {
  error e;
  e.category = category;
  e.message = std::move(message);
  e.field = std::move(field);
  return e;
}

/// One line describing the error: category, message, then whichever of
/// status, API code and message, request id and attempts are set.
[[nodiscard]] UNLOC_DETAIL_COLD inline std::string to_string(const error& e) {
  std::string out = to_string(e.category);
  out.append(": ").append(e.message);
  if (!e.field.empty()) out.append(" (field '").append(e.field).append("')");
  if (e.http_status != 0) out.append("; HTTP ").append(std::to_string(e.http_status));
  if (!e.api_code.empty()) out.append("; error '").append(e.api_code).append("'");
  if (!e.api_message.empty()) out.append(": ").append(e.api_message);
  if (!e.request_id.empty()) out.append("; request id ").append(e.request_id);
  if (e.attempts > 1) out.append("; after ").append(std::to_string(e.attempts)).append(" attempts");
  return out;
}

/// Thrown by `result<T>::value()` when the result holds an error: a programming
/// error in the caller, who should have checked `has_value()` first.
class bad_result_access : public std::logic_error {
 public:
  /// Wraps the error the result held.
  explicit bad_result_access(unloc::error e)
      : std::logic_error("unloc::result has no value: " + to_string(e)), error_(std::move(e)) {}
  /// The error the result held.
  [[nodiscard]] const unloc::error& error() const noexcept { return error_; }

 private:
  unloc::error error_;
};

/// A value of type `T` or an `error`. A tagged union rather than a
/// `std::variant`: every file that includes the SDK compiles it.
template <typename T>
class [[nodiscard]] result {
  static_assert(!std::is_same_v<std::decay_t<T>, unloc::error>, "result<error> is ambiguous");
  static_assert(!std::is_reference_v<T>, "result<T&> is not supported");

 public:
  /// The value type.
  using value_type = T;

  /// Holds a value.
  result(T value) : has_value_(true) { ::new (&value_) T(std::move(value)); }  // NOLINT(google-explicit-constructor)
  /// Holds an error.
  result(unloc::error e) : has_value_(false) { ::new (&error_) unloc::error(std::move(e)); }  // NOLINT(google-explicit-constructor)

  /// A copy of the value or the error.
  result(const result& other) : has_value_(other.has_value_) { construct_from(other); }
  /// Takes the value or the error.
  result(result&& other) noexcept(std::is_nothrow_move_constructible_v<T>)
      : has_value_(other.has_value_) {
    construct_from(std::move(other));
  }
  /// Holds a copy of what `other` holds.
  result& operator=(const result& other) {
    if (this != &other) *this = result(other);
    return *this;
  }
  /// Takes what `other` holds.
  result& operator=(result&& other) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (this == &other) return *this;
    // The same kind: assigned in place, as std::variant does (`other` may be
    // owned by the value being replaced).
    if (has_value_ && other.has_value_) {
      value_ = std::move(other.value_);
      return *this;
    }
    if (!has_value_ && !other.has_value_) {
      error_ = std::move(other.error_);
      return *this;
    }
    destroy();
    has_value_ = other.has_value_;
    if constexpr (std::is_nothrow_move_constructible_v<T>) {
      construct_from(std::move(other));
    } else {
      try {
        construct_from(std::move(other));
      } catch (...) {  // an empty error rather than a destroyed object
        has_value_ = false;
        ::new (&error_) unloc::error();
        throw;
      }
    }
    return *this;
  }
  /// Destroys the value or the error.
  ~result() { destroy(); }

  /// True when a value is held.
  [[nodiscard]] bool has_value() const noexcept { return has_value_; }
  /// True when a value is held.
  explicit operator bool() const noexcept { return has_value_; }

  /// The value; throws `bad_result_access` when an error is held.
  [[nodiscard]] T& value() & { check(); return value_; }
  /// @copydoc value()
  [[nodiscard]] const T& value() const& { check(); return value_; }
  /// @copydoc value()
  /// (By value, so that `for (auto& x : call().value())` does not dangle.)
  [[nodiscard]] T value() && { check(); return std::move(value_); }

  /// The value without a check; undefined when an error is held.
  [[nodiscard]] T& operator*() & noexcept { return value_; }
  /// @copydoc operator*()
  [[nodiscard]] const T& operator*() const& noexcept { return value_; }
  /// @copydoc operator*()
  [[nodiscard]] T&& operator*() && noexcept { return std::move(value_); }
  /// Member access to the value without a check.
  [[nodiscard]] T* operator->() noexcept { return &value_; }
  /// @copydoc operator->()
  [[nodiscard]] const T* operator->() const noexcept { return &value_; }

  /// The error; throws `std::logic_error` when a value is held.
  [[nodiscard]] const unloc::error& error() const& {
    if (has_value_) throw std::logic_error("unloc::result holds a value, not an error");
    return error_;
  }
  /// @copydoc error()
  [[nodiscard]] unloc::error&& error() && {
    if (has_value_) throw std::logic_error("unloc::result holds a value, not an error");
    return std::move(error_);
  }

  /// The value, or `fallback` when an error is held.
  template <typename U>
  [[nodiscard]] T value_or(U&& fallback) const& {
    return has_value_ ? value_ : static_cast<T>(std::forward<U>(fallback));
  }

  /// Calls `f(value)`, which returns a `result<U>`; passes an error through.
  template <typename F>
  [[nodiscard]] auto and_then(F&& f) const& -> std::invoke_result_t<F, const T&> {
    if (!has_value_) return error_;
    return std::forward<F>(f)(value_);
  }

  /// Maps the value through `f`; passes an error through.
  template <typename F>
  [[nodiscard]] auto transform(F&& f) const& -> result<std::invoke_result_t<F, const T&>> {
    if (!has_value_) return error_;
    return std::forward<F>(f)(value_);
  }

 private:
  void check() const {
    if (!has_value_) throw bad_result_access(error_);
  }
  template <typename Other>
  void construct_from(Other&& other) {  // has_value_ is already other's
    if (has_value_) {
      ::new (&value_) T(std::forward<Other>(other).value_);
    } else {
      ::new (&error_) unloc::error(std::forward<Other>(other).error_);
    }
  }
  void destroy() noexcept {
    if (has_value_) {
      value_.~T();
    } else {
      error_.~error();
    }
  }

  // Private through the class (clang-tidy counts an anonymous union's members public).
  union {
    T value_;             // NOLINT(readability-identifier-naming)
    unloc::error error_;  // NOLINT(readability-identifier-naming)
  };
  bool has_value_;
};

/// Success without a value, or an `error`.
template <>
class [[nodiscard]] result<void> {
 public:
  /// The value type.
  using value_type = void;
  /// Success.
  result() = default;
  /// Holds an error.
  result(unloc::error e) : error_(std::move(e)), failed_(true) {}  // NOLINT(google-explicit-constructor)

  /// True on success.
  [[nodiscard]] bool has_value() const noexcept { return !failed_; }
  /// True on success.
  explicit operator bool() const noexcept { return has_value(); }
  /// Throws `bad_result_access` when an error is held.
  void value() const {
    if (failed_) throw bad_result_access(error_);
  }
  /// The error; throws `std::logic_error` on success.
  [[nodiscard]] const unloc::error& error() const& {
    if (!failed_) throw std::logic_error("unloc::result holds a value, not an error");
    return error_;
  }

 private:
  unloc::error error_;
  bool failed_ = false;
};

UNLOC_END_NAMESPACE

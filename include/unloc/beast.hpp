#pragma once

/// @file
/// The delivery validator behind a Boost.Beast server: a Beast request (its
/// head alone, or the whole message) becomes the validator's input, and a
/// decision becomes a Beast response. Optional: only this header includes
/// Boost; link the CMake target `unloc::beast` (unloc::core plus Boost's
/// headers), defined when Boost is found.

#include <unloc/delivery.hpp>
#include <unloc/detail/text.hpp>
#include <unloc/http_headers.hpp>
#include <unloc/version.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>

#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

UNLOC_BEGIN_NAMESPACE

namespace detail {

// A body value held in one piece that is not text: a flat buffer (beast::flat_buffer,
// flat_static_buffer), whose data() is a single const_buffer.
template <typename T, typename = void>
struct is_flat_buffer : std::false_type {};
template <typename T>
struct is_flat_buffer<T, std::void_t<decltype(std::declval<const T&>().data())>>
    : std::is_convertible<decltype(std::declval<const T&>().data()), boost::asio::const_buffer> {};

template <typename Value>
[[nodiscard]] std::string_view beast_body_view(const Value& value) {
  if constexpr (is_char_text<Value>::value) {
    return to_string_view(value);
  } else {
    static_assert(is_flat_buffer<Value>::value,
                  "unloc::beast::validate: the body must be held in one piece of char "
                  "(http::string_body, vector_body<char>, span_body<char>, or a "
                  "basic_dynamic_body<flat_buffer>)");
    const boost::asio::const_buffer buffer = value.data();
    return {static_cast<const char*>(buffer.data()), buffer.size()};
  }
}

// 503, which the platform retries; what an allocation failure in the adapter answers.
[[nodiscard]] inline delivery_decision beast_unavailable() noexcept {
  try {
    return make_refusal(delivery_outcome::unavailable,
                        "internal failure while reading the request");
  } catch (...) {
    return delivery_decision{};  // out of memory: 503 without a body
  }
}

// Why a head's framing is refused, or null: a Transfer-Encoding other than one
// "chunked", which Beast reads as a request without a body, whose body then
// passes for the next request.
template <class Fields>
[[nodiscard]] const char* beast_framing_problem(
    const boost::beast::http::request_header<Fields>& head) {
  const auto codings = head.count(boost::beast::http::field::transfer_encoding);
  if (codings == 0) return nullptr;
  const auto value = trim_ows(to_string_view(head[boost::beast::http::field::transfer_encoding]));
  if (codings > 1 || !ascii_iequals(value, "chunked")) {
    return "the only Transfer-Encoding accepted is chunked";
  }
  return nullptr;
}

// The three fields a decision reads, as views into the head (not copied).
template <class Fields>
[[nodiscard]] delivery_fields beast_delivery_fields(
    const boost::beast::http::request_header<Fields>& head) {
  namespace http = boost::beast::http;
  delivery_fields fields;
  for (const auto& field : head) {
    // Beast has named each field already (its names compared ignoring case, as take does).
    switch (field.name()) {
      case http::field::authorization:
        fields.add(fields.authorization, to_string_view(field.value()));
        break;
      case http::field::content_type:
        fields.add(fields.content_type, to_string_view(field.value()));
        break;
      case http::field::content_length:
        fields.add(fields.content_length, to_string_view(field.value()));
        break;
      default: break;
    }
  }
  return fields;
}

}  // namespace detail

/// The adapter between Boost.Beast's messages and the delivery validator.
namespace beast {

/// The early decision from the request head alone, before the body is read:
/// 404, 405, 401, 415, or 413 for a Content-Length over the limit (see
/// `delivery_validator::check_headers`); first, 400 with `Connection: close` for
/// a Transfer-Encoding other than `chunked`. None: read the body, with the
/// parser's `body_limit` set to `max_body_bytes` (not before: Beast checks a
/// Content-Length against it while reading the head), then call `validate`.
/// Never throws.
template <class Fields>
[[nodiscard]] std::optional<delivery_decision> check_headers(
    const delivery_validator& validator,
    const boost::beast::http::request_header<Fields>& head) noexcept {
  try {
    if (const char* problem = detail::beast_framing_problem(head)) {
      auto refusal = make_refusal(delivery_outcome::malformed_body, problem);
      refusal.headers.add("Connection", "close");
      return refusal;
    }
    return detail::validator_access::check_headers(validator, to_string_view(head.method_string()),
                                                   to_string_view(head.target()),
                                                   detail::beast_delivery_fields(head));
  } catch (...) {
    return detail::beast_unavailable();
  }
}

/// The whole decision for a request whose body has been read, received now.
/// The body is viewed, not copied: `http::string_body`, `vector_body<char>`,
/// `span_body<char>` or `basic_dynamic_body<flat_buffer>`. Never throws.
template <class Body, class Fields>
[[nodiscard]] delivery_decision validate(
    const delivery_validator& validator,
    const boost::beast::http::request<Body, Fields>& request) noexcept {
  try {
    return detail::validator_access::validate(
        validator, to_string_view(request.method_string()), to_string_view(request.target()),
        detail::beast_delivery_fields(request.base()), detail::beast_body_view(request.body()));
  } catch (...) {
    return detail::beast_unavailable();
  }
}

/// The response to `request` for `decision`: its status (one outside 200-599
/// becomes 503), its headers and its JSON body with Content-Length; a 204 has
/// neither body nor Content-Length. HTTP version and keep-alive follow the
/// request, except that a 413, or a decision with a `Connection: close` header,
/// closes; a server that leaves any other request's body unread must call
/// `keep_alive(false)` itself. To a HEAD request, the Content-Length without the
/// body. Throws only `std::bad_alloc`.
template <class Fields>
[[nodiscard]] boost::beast::http::response<boost::beast::http::string_body> to_response(
    const delivery_decision& decision, const boost::beast::http::request_header<Fields>& request) {
  namespace http = boost::beast::http;
  // Beast throws on a status over 999; 1xx is no final answer.
  const int status = decision.status >= 200 && decision.status <= 599 ? decision.status : 503;
  http::response<http::string_body> response;
  response.result(static_cast<unsigned>(status));
  response.version(request.version());
  bool close = status == 413;  // the rest of the body is not worth reading
  for (const auto& field : decision.headers) {
    if (detail::ascii_iequals(field.name, "Connection")) {  // keep_alive() below writes it
      close = close || http::token_list(field.value).exists("close");
      continue;
    }
    response.insert(boost::beast::string_view(field.name.data(), field.name.size()),
                    boost::beast::string_view(field.value.data(), field.value.size()));
  }
  // As message::keep_alive(), which a header alone does not offer.
  http::token_list connection(request[http::field::connection]);
  const bool keep_alive =
      request.version() >= 11 ? !connection.exists("close") : connection.exists("keep-alive");
  response.keep_alive(keep_alive && !close);
  if (status == 204 || status == 304) return response;
  response.body() = decision.body;
  response.prepare_payload();
  if (request.method() == http::verb::head) response.body().clear();  // the length stays
  return response;
}

}  // namespace beast

UNLOC_END_NAMESPACE

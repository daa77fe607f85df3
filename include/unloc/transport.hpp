#pragma once

/// @file
/// The transport: sends one HTTP request and returns its response, nothing
/// more. Retries, tokens and logging live above it, in the client, so each
/// piece can be tested alone; libcurl lives below it, in one detail header.
/// Replace it to run the client over another HTTP stack, or in tests (see
/// `unloc::testing::scripted_transport`).

#include <unloc/error.hpp>
#include <unloc/http_headers.hpp>
#include <unloc/version.hpp>

#include <chrono>
#include <string>

UNLOC_BEGIN_NAMESPACE

/// One HTTP request.
struct http_request {
  std::string method;    ///< `GET`, `POST`, `DELETE`.
  std::string url;       ///< The absolute URL.
  http_headers headers;  ///< Request headers (may hold secrets: never log them as they are).
  std::string body;      ///< The body; empty for none.
  /// Safe to send twice even as a POST (a token request): a connection that
  /// breaks after sending it is then a `network` failure, not `ambiguous`.
  bool repeatable = false;
};

/// One HTTP response, whatever its status.
struct http_response {
  int status = 0;        ///< The HTTP status.
  http_headers headers;  ///< Response headers.
  std::string body;      ///< The body.
};

/// Sends HTTP requests. Implementations must be safe to call from many
/// threads at once.
class transport {
 public:
  virtual ~transport() = default;
  /// Sends `request` once and returns the response, or an error:
  /// `network`, `tls` or `timeout` when nothing may have reached the server,
  /// `ambiguous` when the request may have reached it (the connection broke
  /// after it was sent). Must return by `deadline`. Never retries.
  virtual result<http_response> send(const http_request& request,
                                     std::chrono::steady_clock::time_point deadline) = 0;
};

UNLOC_END_NAMESPACE

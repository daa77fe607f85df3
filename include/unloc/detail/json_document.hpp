#pragma once

// A whole JSON document from the network (an API response other than the access
// log), parsed into nlohmann's DOM without exceptions. Internal.

#include <unloc/error.hpp>
#include <unloc/version.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <utility>

UNLOC_BEGIN_NAMESPACE
namespace detail {

inline error response_error(std::string message, std::string field = {}) {
  return make_error(error_category::invalid_response, std::move(message), std::move(field));
}

/// JSON from the network, parsed without exceptions; an error when it is not JSON.
[[nodiscard]] inline result<nlohmann::json> parse_json_document(std::string_view text) {
  auto doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded()) return response_error("response body is not valid JSON");
  return doc;
}

}  // namespace detail

UNLOC_END_NAMESPACE

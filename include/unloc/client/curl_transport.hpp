#pragma once

// The libcurl transport: the one header of the SDK that includes curl.
// Easy handles are pooled so that each keeps its connections alive between
// calls (one TLS handshake per connection, not per call); TLS verification is
// always on; extra CAs are added to the system's bundle, never instead of
// verification. Internal (namespace detail): included by client.hpp only.

#include <unloc/detail/text.hpp>
#include <unloc/error.hpp>
#include <unloc/http_headers.hpp>
#include <unloc/transport.hpp>
#include <unloc/version.hpp>

#include <curl/curl.h>

// CURLOPT_CAINFO_BLOB (the CAs given in memory, added to the system's) came in
// libcurl 7.77.0; CMake, pkg-config, Conan and vcpkg state the same minimum.
#if !defined(LIBCURL_VERSION_NUM) || LIBCURL_VERSION_NUM < 0x074d00
#error "unloc's client needs libcurl 7.77.0 or newer (CURLOPT_CAINFO_BLOB)"
#endif

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE
namespace detail {

/// What the curl transport is configured with.
struct curl_transport_options {
  std::chrono::milliseconds connect_timeout{10'000};
  std::string ca_file;  // PEM file of extra trusted CAs
  std::string ca_pem;   // in-memory PEM of extra trusted CAs
  std::string proxy;
  bool proxy_from_environment = true;  // https_proxy, ALL_PROXY, no_proxy
  std::string user_agent;
  std::size_t max_response_bytes = std::size_t{64} << 20;
};

/// curl_global_init once per process, thread-safely; never a
/// curl_global_cleanup, which would break other libcurl users in the process.
inline bool curl_initialized() {
  static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  return ok;
}

/// `libcurl/7.88.1`.
inline std::string curl_version_token() {
  const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
  return std::string("libcurl/") + (info != nullptr && info->version != nullptr ? info->version : "");
}

struct curl_easy_deleter {
  void operator()(CURL* handle) const noexcept { curl_easy_cleanup(handle); }
};
using curl_easy_ptr = std::unique_ptr<CURL, curl_easy_deleter>;

struct curl_slist_deleter {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};
using curl_slist_ptr = std::unique_ptr<curl_slist, curl_slist_deleter>;

class curl_transport final : public transport {
 public:
  static result<std::shared_ptr<curl_transport>> create(curl_transport_options options) {
    if (!curl_initialized()) {
      return make_error(error_category::internal, "curl_global_init failed");
    }
    std::string bundle;
    if (!options.ca_file.empty() || !options.ca_pem.empty()) {
      // A CA blob replaces libcurl's CA file but not its CA directory. With a
      // directory the blob holds the extra CAs alone: libcurl copies and compares
      // the blob on every request, and the system bundle is ~200 KB. Without one,
      // the blob must carry the system bundle too.
      const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
      if (info != nullptr && info->capath == nullptr && info->cainfo != nullptr) {
        if (auto system = read_file(info->cainfo)) bundle = std::move(*system) + "\n";
      }
      if (!options.ca_file.empty()) {
        auto extra = read_file(options.ca_file);
        if (!extra) {
          return make_error(error_category::invalid_input,
                            "cannot read the CA file '" + options.ca_file + "'", "ca_file");
        }
        bundle += *extra + "\n";
      }
      bundle += options.ca_pem;
    }
    return std::shared_ptr<curl_transport>(
        new curl_transport(std::move(options), std::move(bundle)));
  }

  result<http_response> send(const http_request& request,
                             std::chrono::steady_clock::time_point deadline) override {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= left.zero()) {
      return make_error(error_category::timeout, "the call's deadline passed before sending");
    }
    // Rounded up: curl, timing from its own later start, ends at the deadline, not
    // up to 1 ms before it, which left a retry that could not be sent (a flaky test).
    const auto remaining = std::chrono::ceil<std::chrono::milliseconds>(left);
    const curl_slist_ptr headers = header_list(request.headers);
    if (!headers) return make_error(error_category::internal, "out of memory building headers");
    curl_easy_ptr handle = acquire();
    if (!handle) return make_error(error_category::internal, "curl_easy_init failed");

    exchange ex;
    ex.max_bytes = options_.max_response_bytes;

    // The handle keeps its constant options (acquire) and its connections; what
    // a request sets, each request sets again, so nothing leaks from the last one.
    CURL* h = handle.get();
    curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(remaining.count()));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>((std::min)(remaining, options_.connect_timeout).count()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, nullptr);  // no previous request's body
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t{-1});
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, nullptr);
    if (request.method == "POST") {
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.c_str());
    } else if (request.method != "GET") {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
      if (!request.body.empty()) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(request.body.size()));
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.c_str());
      }
    }
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &ex);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &ex);

    const CURLcode code = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    long sent = 0;
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
    release(std::move(handle));

    if (code != CURLE_OK) return failure(code, ex.too_large, sent, remaining, request);
    http_response response;
    response.status = static_cast<int>(status);
    response.headers = std::move(ex.headers);
    response.body = std::move(ex.body);
    return response;
  }

  /// How many connections the pooled handles hold open at most (for tests).
  [[nodiscard]] std::size_t idle_handles() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return idle_.size();
  }

 private:
  struct exchange {
    http_headers headers;
    std::string body;
    std::size_t max_bytes = 0;
    bool too_large = false;
  };

  curl_transport(curl_transport_options options, std::string bundle)
      : options_(std::move(options)), ca_bundle_(std::move(bundle)) {}

  static std::optional<std::string> read_file(const std::string& path) {
    // stdio rather than <fstream>, which costs every including file a lot to compile.
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) return std::nullopt;
    std::string out;
    char buffer[8192];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) out.append(buffer, n);
    const bool failed = std::ferror(file) != 0;
    std::fclose(file);
    if (failed) return std::nullopt;
    return out;
  }

  // The request's headers as curl takes them, and no "Expect: 100-continue"
  // round trip before a POST body; null when out of memory.
  static curl_slist_ptr header_list(const http_headers& headers) {
    curl_slist_ptr list;
    std::string line;
    for (const auto& h : headers) {
      line.assign(h.name).append(": ").append(h.value);
      if (!append(list, line.c_str())) return nullptr;
    }
    if (!append(list, "Expect:")) return nullptr;
    return list;
  }

  static bool append(curl_slist_ptr& list, const char* line) {
    curl_slist* grown = curl_slist_append(list.get(), line);
    if (grown == nullptr) return false;
    (void)list.release();  // curl_slist_append returns the same head, now owning the new node
    list.reset(grown);
    return true;
  }

  static std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
    auto* ex = static_cast<exchange*>(user);
    const std::size_t n = size * count;
    if (ex->body.size() + n > ex->max_bytes) {
      ex->too_large = true;
      return 0;  // makes curl stop with CURLE_WRITE_ERROR
    }
    ex->body.append(data, n);
    return n;
  }

  static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
    auto* ex = static_cast<exchange*>(user);
    const std::size_t n = size * count;
    std::string_view line(data, n);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (line.rfind("HTTP/", 0) == 0) {
      ex->headers = http_headers{};  // a new response (after a 100 or a proxy's CONNECT)
    } else if (const auto colon = line.find(':'); colon != std::string_view::npos) {
      ex->headers.add(std::string(line.substr(0, colon)),
                      std::string(trim_ows(line.substr(colon + 1))));
    }
    return n;
  }

  // Why a request failed: `sent` bytes of it went out, with `remaining` of the deadline.
  UNLOC_DETAIL_COLD error failure(CURLcode code, bool too_large, long sent,
                                  std::chrono::milliseconds remaining,
                                  const http_request& request) const {
    if (too_large) {
      return make_error(error_category::invalid_response,
                        "response body is over " + std::to_string(options_.max_response_bytes) +
                            " bytes");
    }
    if (code == CURLE_OPERATION_TIMEDOUT && sent == 0 && options_.connect_timeout < remaining) {
      // The connect timeout, shorter than the deadline, ended it (a clock read
      // here could not tell: curl rounds to the millisecond): another attempt may connect.
      return make_error(error_category::network,
                        "no connection within " +
                            std::to_string(options_.connect_timeout.count()) + " ms");
    }
    return to_error(code, sent > 0 && request.method != "GET" && !request.repeatable);
  }

  // `ambiguous_if_broken`: a request that changes something (not a GET, not
  // the repeatable token POST) was sent.
  UNLOC_DETAIL_COLD static error to_error(CURLcode code, bool ambiguous_if_broken) {
    std::string what = curl_easy_strerror(code);
    switch (code) {
      case CURLE_URL_MALFORMAT:
        return make_error(error_category::invalid_input, "bad URL: " + what);
      case CURLE_UNSUPPORTED_PROTOCOL:  // the URL is https (checked): the peer's reply is not HTTP
      case CURLE_WEIRD_SERVER_REPLY:
        what = "the server's reply is not HTTP (" + what + ")";
        break;
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_RESOLVE_PROXY:
      case CURLE_COULDNT_CONNECT:
        return make_error(error_category::network, what);
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CERTPROBLEM:
      case CURLE_SSL_CIPHER:
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_SSL_ISSUER_ERROR:
      case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      case CURLE_SSL_INVALIDCERTSTATUS:
      case CURLE_SSL_CRL_BADFILE:
        return make_error(error_category::tls, "TLS failed: " + what);
      default:
        break;
    }
    // Past this point the request may have reached the server. For a GET that
    // changes nothing; a POST or DELETE may have been applied: ambiguous (the
    // client then takes a DELETE's 404 on the retry as done).
    if (ambiguous_if_broken) {
      return make_error(error_category::ambiguous,
                        what + " after the request was sent: it may have been applied");
    }
    if (code == CURLE_OPERATION_TIMEDOUT) {
      return make_error(error_category::timeout, "no complete response within the deadline");
    }
    return make_error(error_category::network, what);
  }

  curl_easy_ptr acquire() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (!idle_.empty()) {
        curl_easy_ptr handle = std::move(idle_.back());
        idle_.pop_back();
        return handle;
      }
    }
    curl_easy_ptr handle(curl_easy_init());
    if (handle) configure(handle.get());
    return handle;
  }

  // The options every request of this transport shares, set once per handle.
  void configure(CURL* h) {
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!ca_bundle_.empty()) {
      curl_blob blob{ca_bundle_.data(), ca_bundle_.size(), CURL_BLOB_NOCOPY};
      curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);  // ca_bundle_ outlives the handle
    }
    if (!options_.proxy.empty() || !options_.proxy_from_environment) {
      // "" is no proxy, whatever the environment says; NOPROXY set stops libcurl
      // from reading no_proxy.
      curl_easy_setopt(h, CURLOPT_PROXY, options_.proxy.c_str());
      if (!options_.proxy_from_environment) curl_easy_setopt(h, CURLOPT_NOPROXY, "");
    }
    curl_easy_setopt(h, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header);
  }

  void release(curl_easy_ptr handle) {
    const std::lock_guard<std::mutex> lock(mutex_);
    // Enough idle handles (each with its connections) for the threads that use the client.
    if (idle_.size() < 32) idle_.push_back(std::move(handle));
  }

  curl_transport_options options_;
  std::string ca_bundle_;
  mutable std::mutex mutex_;
  std::vector<curl_easy_ptr> idle_;
};

}  // namespace detail
UNLOC_END_NAMESPACE

#include "faults.hpp"

#include "util.hpp"
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <utility>

namespace refserver {
namespace {

struct kind_entry {
  const char* name;
  fault_kind kind;
  int status;
};

constexpr kind_entry kinds[] = {
    {"500", fault_kind::status, 500},        {"502", fault_kind::status, 502},
    {"503", fault_kind::status, 503},        {"504", fault_kind::status, 504},
    {"429", fault_kind::status, 429},        {"slow", fault_kind::slow, 0},
    {"drop", fault_kind::drop, 0},           {"reset", fault_kind::reset, 0},
    {"half_body", fault_kind::half_body, 0}, {"malformed_json", fault_kind::malformed_json, 0},
    {"html", fault_kind::html, 502},         {"expire_token", fault_kind::expire_token, 0},
    {"echo_authorization", fault_kind::echo_authorization, 400},
};

const char* status_code_name(int status) {
  switch (status) {
    case 429: return "rate_limited";
    case 500: return "internal_error";
    case 502: return "bad_gateway";
    case 503: return "service_unavailable";
    case 504: return "gateway_timeout";
    default: return "error";
  }
}

constexpr const char* proxy_page =
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n";

}  // namespace

nlohmann::json fault::to_json() const {
  nlohmann::json j = {{"id", id},
                      {"endpoint", endpoint_name},
                      {"kind", kind_name},
                      {"count", remaining},
                      {"after", after}};
  if (!retry_after.empty()) j["retryAfter"] = retry_after;
  if (kind == fault_kind::slow || delay.count() > 0) j["delayMs"] = delay.count();
  return j;
}

bool fault::matches(endpoint e) const {
  if (e == endpoint::admin) return false;
  if (endpoint_name == "any") return kind != fault_kind::expire_token || e != endpoint::token;
  return (endpoint_name == "token" && e == endpoint::token) ||
         (endpoint_name == "webhooks" && e == endpoint::webhooks) ||
         (endpoint_name == "logs" && e == endpoint::logs);
}

std::string fault_registry::add(const nlohmann::json& spec, fault& added) {
  fault f;
  std::string problem;
  if (const auto e = string_field(spec, "endpoint", problem)) f.endpoint_name = *e;
  if (!problem.empty()) return problem;
  if (f.endpoint_name != "token" && f.endpoint_name != "webhooks" && f.endpoint_name != "logs" &&
      f.endpoint_name != "any") {
    return "field 'endpoint' must be token, webhooks, logs or any";
  }
  const auto kind = spec.find("kind");
  if (kind == spec.end()) return "field 'kind' is missing";
  if (kind->is_number_integer()) {
    f.kind_name = std::to_string(kind->get<long long>());
  } else if (kind->is_string()) {
    f.kind_name = kind->get<std::string>();
  } else {
    return "field 'kind' must be a string";
  }
  const auto* const entry =
      std::find_if(std::begin(kinds), std::end(kinds),
                   [&f](const kind_entry& k) { return f.kind_name == k.name; });
  if (entry == std::end(kinds)) {
    return "unknown fault kind '" + f.kind_name +
           "'; expected 500, 502, 503, 504, 429, slow, drop, reset, half_body, "
           "malformed_json, html, expire_token or echo_authorization";
  }
  f.kind = entry->kind;
  f.status = entry->status;
  if (f.kind == fault_kind::expire_token && f.endpoint_name == "token") {
    return "expire_token applies to API calls, not to the token endpoint";
  }
  f.remaining = integer_field(spec, "count", 1, -1, 1000000000, problem);
  if (f.remaining == 0) problem = "field 'count' must be -1 (until cleared) or at least 1";
  f.after = integer_field(spec, "after", 0, 0, 1000000000, problem);
  // A status fault waits only when asked: an error that comes slowly.
  const long long default_delay = f.kind == fault_kind::slow ? 1000 : 0;
  f.delay = std::chrono::milliseconds(
      integer_field(spec, "delayMs", default_delay, 0, 120000, problem));
  if (const auto it = spec.find("retryAfter"); it != spec.end() && !it->is_null()) {
    if (it->is_number_integer()) {
      f.retry_after = std::to_string(it->get<long long>());
    } else if (it->is_string() && !it->get_ref<const std::string&>().empty()) {
      f.retry_after = it->get<std::string>();
    } else {
      problem = "field 'retryAfter' must be a number of seconds or an HTTP date";
    }
    if (f.retry_after.find_first_of("\r\n") != std::string::npos) {
      problem = "field 'retryAfter' must be one line";
    }
  }
  if (!problem.empty()) return problem;
  std::lock_guard<std::mutex> lock(mutex_);
  f.id = next_id_++;
  faults_.push_back(f);
  added = std::move(f);
  return {};
}

std::optional<fault> fault_registry::take(endpoint e) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::optional<fault> chosen;
  for (auto& f : faults_) {
    if (!f.matches(e)) continue;
    if (f.after > 0) {
      --f.after;
      continue;
    }
    if (chosen) continue;
    chosen = f;
    if (f.remaining > 0) --f.remaining;
  }
  faults_.erase(std::remove_if(faults_.begin(), faults_.end(),
                               [](const fault& f) { return f.remaining == 0; }),
                faults_.end());
  return chosen;
}

nlohmann::json fault_registry::list() const {
  std::lock_guard<std::mutex> lock(mutex_);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& f : faults_) out.push_back(f.to_json());
  return out;
}

void fault_registry::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  faults_.clear();
}

void fault_registry::sleep_for(std::chrono::milliseconds delay) {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait_for(lock, delay, [this] { return interrupted_; });
}

void fault_registry::interrupt() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    interrupted_ = true;
  }
  wake_.notify_all();
}

bool apply_fault_before(const fault& f, const httplib::Request& req, httplib::Response& res,
                        store& state, fault_registry& faults) {
  switch (f.kind) {
    case fault_kind::status:
      if (f.delay.count() > 0) faults.sleep_for(f.delay);
      send_error(res, f.status, status_code_name(f.status),
                 "injected fault: HTTP " + std::to_string(f.status));
      if (!f.retry_after.empty()) res.set_header("Retry-After", f.retry_after);
      return true;
    case fault_kind::html:
      res.status = 502;
      res.set_content(proxy_page, "text/html");
      if (!f.retry_after.empty()) res.set_header("Retry-After", f.retry_after);
      return true;
    case fault_kind::echo_authorization:  // as a careless server or proxy does
      send_error(res, 400, "bad_request",
                 "rejected Authorization: " + req.get_header_value("Authorization"));
      return true;
    case fault_kind::slow: faults.sleep_for(f.delay); return false;
    case fault_kind::expire_token: state.revoke_tokens(); return false;
    case fault_kind::reset:
      // Shut the socket down under httplib: the client gets end-of-stream
      // before any byte of a response; httplib's own write then fails.
      if (req.ssl != nullptr) {
        const int fd = SSL_get_fd(req.ssl);
        if (fd >= 0) {
          ::shutdown(fd, SHUT_RDWR);
          res.status = 500;
          return true;
        }
      }
      [[fallthrough]];
    case fault_kind::drop:
      // Headers of a chunked 200 go out, then the provider gives up: the body
      // never ends and httplib closes the connection.
      res.status = 200;
      res.set_chunked_content_provider("application/json",
                                       [](std::size_t, httplib::DataSink&) { return false; });
      return true;
    case fault_kind::half_body:
    case fault_kind::malformed_json: return false;
  }
  return false;
}

void apply_fault_after(const fault& f, httplib::Response& res) {
  if (f.kind == fault_kind::malformed_json) {
    std::string body = res.body.empty() ? std::string("{\"accessEvents\":[") : res.body;
    body.resize(std::max<std::size_t>(1, body.size() / 2));
    res.headers.erase("Content-Type");
    res.status = 200;
    res.set_content(body, "application/json");
  } else if (f.kind == fault_kind::half_body) {
    auto body = std::make_shared<std::string>(std::move(res.body));
    res.body.clear();
    if (body->empty()) *body = "{}";
    std::string type = res.get_header_value("Content-Type");
    if (type.empty()) type = "application/json";
    res.headers.erase("Content-Type");
    res.set_content_provider(body->size(), type,
                             [body](std::size_t, std::size_t, httplib::DataSink& sink) {
                               sink.write(body->data(), body->size() / 2);
                               return false;
                             });
  }
}

}  // namespace refserver

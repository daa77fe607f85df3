// Unloc's API as unloc-api.md (Part A + Part B) describes it.

#include "api.hpp"

#include <unloc/credentials.hpp>
#include <unloc/detail/text.hpp>

#include "util.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <utility>

namespace refserver {
namespace {

using httplib::Request;
using httplib::Response;
using route_handler = std::function<void(const Request&, Response&)>;

constexpr std::int64_t thirty_days_ms = 30LL * 24 * 3600 * 1000;

// An API route with fault injection around it.
httplib::Server::Handler api_route(server_context& ctx, endpoint e, route_handler handler) {
  return [&ctx, e, handler = std::move(handler)](const Request& req, Response& res) {
    const auto fault = ctx.faults.take(e);
    if (fault) {
      ctx.stats.count_fault();
      if (apply_fault_before(*fault, req, res, ctx.state, ctx.faults)) return;
    }
    handler(req, res);
    if (fault) apply_fault_after(*fault, res);
  };
}

bool same_project(const std::string& configured, const std::string& requested) {
  if (configured == requested) return true;
  const auto a = unloc::uuid::parse(configured);
  const auto b = unloc::uuid::parse(requested);
  return a && b && *a == *b;
}

// Checks the bearer token and the project in the path (match 1); answers and
// returns false when the call may not proceed.
bool authorize(server_context& ctx, const Request& req, Response& res) {
  const auto refuse = [&res](const char* message) {
    send_error(res, 401, "invalid_token", message);
    res.set_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    return false;
  };
  const std::string header = req.get_header_value("Authorization");
  const std::string_view value = unloc::detail::trim_ows(header);
  if (value.empty()) return refuse("the request has no Authorization: Bearer token");
  if (value.size() < 7 || !unloc::detail::ascii_iequals(value.substr(0, 7), "Bearer ")) {
    return refuse("the Authorization header must carry a Bearer token");
  }
  switch (ctx.state.check_token(unloc::detail::trim_ows(value.substr(7)))) {
    case token_state::valid: break;
    case token_state::expired: return refuse("the access token has expired");
    case token_state::unknown: return refuse("the access token is not valid (unknown or revoked)");
  }
  if (!same_project(ctx.options.project_id, req.matches[1].str())) {
    send_error(res, 404, "project_not_found", "no project '" + req.matches[1].str() + "'");
    return false;
  }
  return true;
}

void issue_token(server_context& ctx, const Request& req, Response& res) {
  const auto body = parse_json_object(req.body, false);
  if (!body.problem.empty()) return send_error(res, 400, "invalid_request", body.problem);
  std::string problem;
  const auto grant = string_field(body.value, "grant_type", problem);
  const auto client_id = string_field(body.value, "client_id", problem);
  const auto secret = string_field(body.value, "client_secret", problem);
  const auto scope = string_field(body.value, "scope", problem);
  const auto project = string_field(body.value, "project_id", problem);
  if (!problem.empty()) return send_error(res, 400, "invalid_request", problem);
  if (!grant) return send_error(res, 400, "invalid_request", "field 'grant_type' is missing");
  if (*grant != "client_credentials") {
    return send_error(res, 400, "unsupported_grant_type", "grant_type must be client_credentials");
  }
  if (!client_id || !secret) {
    return send_error(res, 400, "invalid_request",
                      "fields 'client_id' and 'client_secret' are required");
  }
  if (!scope || *scope != "project.admin") {
    return send_error(
        res, 400, "invalid_scope",
        "scope must be project.admin (the reference server has no organization scope)");
  }
  if (!project) return send_error(res, 400, "invalid_request", "field 'project_id' is missing");
  const bool id_ok = unloc::detail::constant_time_equal(*client_id, ctx.options.client_id);
  const bool secret_ok = unloc::detail::constant_time_equal(*secret, ctx.options.client_secret);
  if (!id_ok || !secret_ok) {
    return send_error(res, 401, "invalid_client", "client authentication failed");
  }
  if (!same_project(ctx.options.project_id, *project)) {
    return send_error(res, 401, "invalid_client", "the client has no access to that project");
  }
  const auto lifetime = ctx.options.token_lifetime;
  send_json(res, 200,
            {{"access_token", ctx.state.issue_token(*client_id, *project, lifetime)},
             {"token_type", "bearer"},
             {"expires_in", lifetime.count()},
             {"scope", {"project.admin"}},
             {"project_id", *project}});
  res.set_header("Cache-Control", "no-store");
}

void register_webhook(server_context& ctx, const Request& req, Response& res) {
  if (!authorize(ctx, req, res)) return;
  const auto body = parse_json_object(req.body, false);
  if (!body.problem.empty()) return send_error(res, 400, "invalid_request", body.problem);
  std::string problem;
  const auto trigger = string_field(body.value, "trigger", problem);
  const auto url = string_field(body.value, "url", problem);
  const auto lock = string_field(body.value, "lockId", problem);
  if (!problem.empty()) return send_error(res, 400, "invalid_request", problem);
  if (!trigger) return send_error(res, 400, "invalid_request", "field 'trigger' is missing");
  if (*trigger != unloc::access_event_trigger) {
    return send_error(res, 400, "invalid_trigger", "trigger must be 'accessEvent'");
  }
  if (!url) return send_error(res, 400, "invalid_request", "field 'url' is missing");
  if (auto valid = parse_delivery_url(*url, ctx.options.allow_http_loopback_webhooks); !valid) {
    return send_error(res, 400, "invalid_url", valid.error().message);
  }
  std::optional<unloc::uuid> lock_id;
  if (lock) {
    auto parsed = unloc::uuid::parse(*lock);
    if (!parsed)
      return send_error(res, 400, "invalid_request", "lockId: " + parsed.error().message);
    lock_id = *parsed;
  }
  const auto outcome = ctx.state.register_webhook(*url, lock_id);
  nlohmann::json hook;
  to_json(hook, outcome.hook);
  send_json(res, outcome.created ? 201 : 409, hook);
}

void list_webhooks(server_context& ctx, const Request& req, Response& res) {
  if (!authorize(ctx, req, res)) return;
  nlohmann::json list = nlohmann::json::array();
  for (const auto& hook : ctx.state.webhooks()) {
    nlohmann::json j;
    to_json(j, hook);
    list.push_back(std::move(j));
  }
  send_json(res, 200, {{"webhooks", std::move(list)}});
}

void delete_webhook(server_context& ctx, const Request& req, Response& res) {
  if (!authorize(ctx, req, res)) return;
  const auto id = unloc::uuid::parse(req.matches[2].str());
  if (!id || !ctx.state.delete_webhook(*id)) {
    return send_error(res, 404, "webhook_not_found", "no webhook '" + req.matches[2].str() + "'");
  }
  res.status = 204;
}

// A query parameter as a timestamp; false (after answering 400) when malformed.
bool timestamp_param(const Request& req, const char* name, std::optional<std::int64_t>& out,
                     Response& res) {
  if (!req.has_param(name)) return true;
  const auto parsed = unloc::parse_timestamp(req.get_param_value(name));
  if (!parsed) {
    send_error(res, 400, "invalid_request", std::string(name) + ": " + parsed.error().message);
    return false;
  }
  out = millis(*parsed);
  return true;
}

void serve_log(server_context& ctx, const Request& req, Response& res,
               std::optional<unloc::uuid> lock_id) {
  const std::int64_t floor = millis(now_ms()) - thirty_days_ms;
  log_query query;
  query.lock_id = lock_id;
  if (req.has_param("limit")) {
    const std::string text = req.get_param_value("limit");
    long long limit = 0;
    const bool digits = !text.empty() && text.size() <= 4 &&
                        text.find_first_not_of("0123456789") == std::string::npos;
    if (digits) limit = std::stoll(text);
    if (limit < 1 || limit > 1000) {
      return send_error(res, 400, "invalid_request", "limit must be an integer from 1 to 1000");
    }
    query.limit = static_cast<std::size_t>(limit);
  }
  std::optional<std::int64_t> from;
  std::optional<std::int64_t> to;
  if (!timestamp_param(req, "from", from, res) || !timestamp_param(req, "to", to, res)) return;
  if (from && to && *from > *to) {
    return send_error(res, 400, "invalid_request", "from must not be after to");
  }
  if (req.has_param("cursor")) {
    const auto cursor = decode_cursor(req.get_param_value("cursor"));
    if (!cursor) return send_error(res, 400, "invalid_cursor", "cursor is not valid");
    if (cursor->lock_id != lock_id) {
      return send_error(res, 400, "invalid_cursor", "cursor belongs to another lock's log");
    }
    // The cursor carries the window of the first page: later pages answer the same query.
    query.after = cursor->after;
    query.from_ms = std::max(cursor->from_ms, floor);
    query.to_ms = cursor->to_ms;
  } else {
    query.from_ms = from ? std::max(*from, floor) : floor;
    query.to_ms = to;
  }
  const log_page page = ctx.state.page(query);
  std::string text = "{\"accessEvents\":[";
  for (std::size_t i = 0; i < page.events.size(); ++i) {
    if (i != 0) text += ',';
    text += unloc::to_json_text(page.events[i]);
  }
  text += "],\"nextCursor\":";
  if (page.next) {
    text += '"' + encode_cursor({*page.next, query.from_ms, query.to_ms, lock_id}) + '"';
  } else {
    text += "null";
  }
  text += '}';
  send_json_text(res, 200, text);
}

void lock_log(server_context& ctx, const Request& req, Response& res) {
  if (!authorize(ctx, req, res)) return;
  const auto lock = unloc::uuid::parse(req.matches[2].str());
  if (!lock) return send_error(res, 400, "invalid_request", "lockId: " + lock.error().message);
  serve_log(ctx, req, res, *lock);
}

void project_log(server_context& ctx, const Request& req, Response& res) {
  if (!authorize(ctx, req, res)) return;
  std::optional<unloc::uuid> lock_id;
  if (req.has_param("lockId")) {
    const auto lock = unloc::uuid::parse(req.get_param_value("lockId"));
    if (!lock) return send_error(res, 400, "invalid_request", "lockId: " + lock.error().message);
    lock_id = *lock;
  }
  serve_log(ctx, req, res, lock_id);
}

const char* error_code_for(int status) {
  switch (status) {
    case 400: return "bad_request";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 413: return "payload_too_large";
    case 414: return "uri_too_long";
    default: return "error";
  }
}

}  // namespace

void add_common_handlers(httplib::Server& server, server_context& ctx) {
  server.set_pre_routing_handler([&ctx](const Request& req, Response& res) {
    res.set_header("x-request-id", "req_" + random_hex(12));
    ctx.stats.count(classify(req.path), req);
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.set_error_handler(httplib::Server::HandlerWithResponse([](const Request& req,
                                                                   Response& res) {
    if (!res.has_header("x-request-id")) res.set_header("x-request-id", "req_" + random_hex(12));
    if (!res.body.empty() || res.content_provider_) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    const std::string message = res.status == 404 ? "no route for " + req.method + " " + req.path
                                                  : "the request could not be served";
    send_error(res, res.status, error_code_for(res.status), message);
    return httplib::Server::HandlerResponse::Handled;
  }));
  server.set_exception_handler([](const Request&, Response& res, const std::exception_ptr& ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, 500, "internal_error", "the reference server failed: " + what);
  });
  if (ctx.options.log_requests) {
    server.set_logger([](const Request& req, const Response& res) {
      // No bodies, no headers: the token endpoint's body holds the client secret.
      std::fprintf(stderr, "%s %s %s -> %d\n", res.get_header_value("x-request-id").c_str(),
                   req.method.c_str(), req.path.c_str(), res.status);
    });
  }
}

void add_api_routes(httplib::Server& server, server_context& ctx) {
  const auto bind = [&ctx](void (*fn)(server_context&, const Request&, Response&)) {
    return [&ctx, fn](const Request& req, Response& res) { fn(ctx, req, res); };
  };
  server.Post("/v2/auth/token/", api_route(ctx, endpoint::token, bind(issue_token)));
  server.Post(R"(/v2/projects/([^/]+)/webhooks)",
              api_route(ctx, endpoint::webhooks, bind(register_webhook)));
  server.Get(R"(/v2/projects/([^/]+)/webhooks)",
             api_route(ctx, endpoint::webhooks, bind(list_webhooks)));
  server.Delete(R"(/v2/projects/([^/]+)/webhooks/([^/]+))",
                api_route(ctx, endpoint::webhooks, bind(delete_webhook)));
  server.Get(R"(/v2/projects/([^/]+)/locks/([^/]+)/logs/access)",
             api_route(ctx, endpoint::logs, bind(lock_log)));
  server.Get(R"(/v2/projects/([^/]+)/logs/access)",
             api_route(ctx, endpoint::logs, bind(project_log)));
}

}  // namespace refserver

// Simulation and test control under /_admin/: not part of Unloc's API. Served
// on the same TLS listener, without authentication (the server is for
// loopback development and tests). `unloc-reference-server --help` lists them.
//
//   GET    /_admin/health                  {"ok":true}
//   POST   /_admin/events                  record (or hold, offline) Access Events
//   GET    /_admin/offline                 {"held":n}
//   POST   /_admin/offline/release         record and deliver held events, shuffled
//   GET    /_admin/deliveries              delivery counters
//   POST   /_admin/deliveries/wait         block until no delivery is queued or in flight
//   POST   /_admin/deliveries/duplicate    {"probability":p}
//   POST   /_admin/faults, GET, DELETE     inject, list, clear faults
//   GET    /_admin/requests, DELETE        request and connection counters
//   POST   /_admin/tokens/revoke           revoke every token
//   POST   /_admin/reset                   forget all state but tokens

#include "api.hpp"
#include "util.hpp"

#include <string>
#include <utility>
#include <vector>

namespace refserver {
namespace {

using httplib::Request;
using httplib::Response;

constexpr std::size_t max_listed_ids = 10000;

// Builds the events that POST /_admin/events describes; `problem` says why not.
std::vector<unloc::access_event> events_from(const nlohmann::json& spec, std::string& problem) {
  const auto lock = string_field(spec, "lockId", problem);
  const auto action = string_field(spec, "action", problem);
  const auto key = string_field(spec, "keyId", problem);
  const auto lock_name = string_field(spec, "lockName", problem);
  const auto app_user = string_field(spec, "appUserId", problem);
  const auto user_name = string_field(spec, "userName", problem);
  const auto created = string_field(spec, "created", problem);
  const auto id = string_field(spec, "id", problem);
  const auto count = integer_field(spec, "count", 1, 1, 1000000, problem);
  const auto spacing = integer_field(spec, "spacingMs", 1000, 0, 86400000, problem);
  if (!problem.empty()) return {};
  if (!lock) {
    problem = "field 'lockId' is missing";
    return {};
  }
  unloc::access_event base;
  const auto parse_id = [&problem](const std::string& text, const char* name, unloc::uuid& out) {
    auto parsed = unloc::uuid::parse(text);
    if (!parsed) problem = std::string(name) + ": " + parsed.error().message;
    if (parsed) out = *parsed;
  };
  parse_id(*lock, "lockId", base.lock_id);
  base.key_id = random_uuid();
  if (key) parse_id(*key, "keyId", base.key_id);
  if (id) parse_id(*id, "id", base.id);
  if (id && count != 1) problem = "field 'id' needs count 1";
  base.action_text = action ? *action : "unlocked";
  if (base.action_text.empty()) problem = "field 'action' must not be empty";
  base.action = unloc::parse_access_action(base.action_text);
  base.lock_name = lock_name ? *lock_name : "Reference lock";
  // Absent: a public lock's user; null: an anonymized or private lock.
  const auto user_it = spec.find("appUserId");
  if (user_it == spec.end()) base.app_user_id = "+12125552390";
  if (app_user) base.app_user_id = *app_user;
  const auto name_it = spec.find("userName");
  if (name_it == spec.end()) base.user_name = "";
  if (user_name) base.user_name = *user_name;
  base.created = now_ms();
  if (created) {
    auto parsed = unloc::parse_timestamp(*created);
    if (!parsed) problem = "created: " + parsed.error().message;
    if (parsed) base.created = *parsed;
  }
  if (const auto extra = spec.find("extra"); extra != spec.end() && !extra->is_null()) {
    if (!extra->is_object()) problem = "field 'extra' must be an object";
    if (extra->is_object()) {
      for (const auto& [name, value] : extra->items()) base.extra.push_back({name, value.dump()});
    }
  }
  if (!problem.empty()) return {};
  std::vector<unloc::access_event> events;
  events.reserve(static_cast<std::size_t>(count));
  for (long long i = 0; i < count; ++i) {
    unloc::access_event event = base;
    if (!id || i > 0) event.id = random_uuid();
    event.created = base.created - std::chrono::milliseconds(i * spacing);
    events.push_back(std::move(event));
  }
  return events;
}

nlohmann::json id_list(const std::vector<unloc::access_event>& events) {
  nlohmann::json ids = nlohmann::json::array();
  for (const auto& event : events) ids.push_back(event.id.to_string());
  return ids;
}

void deliver(server_context& ctx, const std::vector<unloc::access_event>& events,
             bool deliver_twice) {
  for (const auto& event : events) {
    ctx.delivery.enqueue(event, ctx.state.webhooks_for(event.lock_id), deliver_twice);
  }
}

void record_events(server_context& ctx, const Request& req, Response& res) {
  const auto body = parse_json_object(req.body, false);
  if (!body.problem.empty()) return send_error(res, 400, "invalid_request", body.problem);
  std::string problem;
  const bool offline = bool_field(body.value, "offline", false, problem);
  const bool twice = bool_field(body.value, "deliverTwice", false, problem);
  auto events = events_from(body.value, problem);
  if (!problem.empty()) return send_error(res, 400, "invalid_request", problem);
  nlohmann::json out = {{"count", events.size()},
                        {"first", events.front().id.to_string()},
                        {"last", events.back().id.to_string()},
                        {"offline", offline}};
  if (events.size() <= max_listed_ids) out["accessEvents"] = id_list(events);
  if (offline) {
    ctx.state.hold(std::move(events));
  } else {
    if (ctx.state.record(events) != events.size()) {
      return send_error(res, 409, "event_exists",
                        "an Access Event with that id is already recorded");
    }
    deliver(ctx, events, twice);
  }
  send_json(res, 201, out);
}

void release_offline(server_context& ctx, const Request& req, Response& res) {
  const auto body = parse_json_object(req.body, true);
  if (!body.problem.empty()) return send_error(res, 400, "invalid_request", body.problem);
  std::string problem;
  const auto lock = string_field(body.value, "lockId", problem);
  if (!problem.empty()) return send_error(res, 400, "invalid_request", problem);
  std::optional<unloc::uuid> lock_id;
  if (lock) {
    auto parsed = unloc::uuid::parse(*lock);
    if (!parsed)
      return send_error(res, 400, "invalid_request", "lockId: " + parsed.error().message);
    lock_id = *parsed;
  }
  auto events = ctx.state.take_held(lock_id);
  // The app comes online: the platform learns of the events now, late and out of order.
  ctx.delivery.shuffle(events);
  ctx.state.record(events);
  deliver(ctx, events, false);
  nlohmann::json out = {{"released", events.size()}};
  if (events.size() <= max_listed_ids) out["accessEvents"] = id_list(events);
  send_json(res, 200, out);
}

void wait_for_deliveries(server_context& ctx, const Request& req, Response& res) {
  const auto body = parse_json_object(req.body, true);
  if (!body.problem.empty()) return send_error(res, 400, "invalid_request", body.problem);
  std::string problem;
  const auto timeout = integer_field(body.value, "timeoutMs", 10000, 0, 600000, problem);
  if (!problem.empty()) return send_error(res, 400, "invalid_request", problem);
  const bool idle = ctx.delivery.wait_idle(std::chrono::milliseconds(timeout));
  nlohmann::json out = ctx.delivery.counts();
  out["idle"] = idle;
  out["held"] = ctx.state.held_count();
  send_json(res, 200, out);
}

void set_duplicates(server_context& ctx, const Request& req, Response& res) {
  const auto body = parse_json_object(req.body, false);
  if (!body.problem.empty()) return send_error(res, 400, "invalid_request", body.problem);
  const auto p = body.value.find("probability");
  if (p == body.value.end() || !p->is_number() || p->get<double>() < 0 || p->get<double>() > 1) {
    return send_error(res, 400, "invalid_request",
                      "field 'probability' must be a number from 0 to 1");
  }
  ctx.delivery.set_duplicate_probability(p->get<double>());
  send_json(res, 200, {{"probability", p->get<double>()}});
}

void add_fault(server_context& ctx, const Request& req, Response& res) {
  const auto body = parse_json_object(req.body, false);
  if (!body.problem.empty()) return send_error(res, 400, "invalid_request", body.problem);
  fault added;
  if (auto problem = ctx.faults.add(body.value, added); !problem.empty()) {
    return send_error(res, 400, "invalid_request", problem);
  }
  send_json(res, 201, added.to_json());
}

}  // namespace

void add_admin_routes(httplib::Server& server, server_context& ctx) {
  const auto bind = [&ctx](void (*fn)(server_context&, const Request&, Response&)) {
    return [&ctx, fn](const Request& req, Response& res) { fn(ctx, req, res); };
  };
  server.Get("/_admin/health", [](const Request&, Response& res) {
    send_json(res, 200, {{"ok", true}});
  });
  server.Post("/_admin/events", bind(record_events));
  server.Get("/_admin/offline", [&ctx](const Request&, Response& res) {
    send_json(res, 200, {{"held", ctx.state.held_count()}});
  });
  server.Post("/_admin/offline/release", bind(release_offline));
  server.Get("/_admin/deliveries", [&ctx](const Request&, Response& res) {
    nlohmann::json out = ctx.delivery.counts();
    out["held"] = ctx.state.held_count();
    send_json(res, 200, out);
  });
  server.Post("/_admin/deliveries/wait", bind(wait_for_deliveries));
  server.Post("/_admin/deliveries/duplicate", bind(set_duplicates));
  server.Post("/_admin/faults", bind(add_fault));
  server.Get("/_admin/faults", [&ctx](const Request&, Response& res) {
    send_json(res, 200, {{"faults", ctx.faults.list()}});
  });
  server.Delete("/_admin/faults", [&ctx](const Request&, Response& res) {
    ctx.faults.clear();
    res.status = 204;
  });
  server.Get("/_admin/requests",
             [&ctx](const Request&, Response& res) { send_json(res, 200, ctx.stats.to_json()); });
  server.Delete("/_admin/requests", [&ctx](const Request&, Response& res) {
    ctx.stats.reset();
    res.status = 204;
  });
  server.Post("/_admin/tokens/revoke", [&ctx](const Request&, Response& res) {
    ctx.state.revoke_tokens();
    res.status = 204;
  });
  server.Post("/_admin/reset", [&ctx](const Request&, Response& res) {
    ctx.state.reset();
    ctx.faults.clear();
    ctx.delivery.clear();
    ctx.stats.reset();
    res.status = 204;
  });
}

}  // namespace refserver

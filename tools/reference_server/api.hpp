#pragma once

// The HTTP routes: Unloc's API (api.cpp) and the simulation and test-control
// endpoints under /_admin/ (admin.cpp).

#include "delivery.hpp"
#include "faults.hpp"
#include "options.hpp"
#include "stats.hpp"
#include "store.hpp"
#include <httplib.h>

namespace refserver {

/// What the handlers share. Every member is thread-safe.
struct server_context {
  const server_options& options;
  store& state;
  fault_registry& faults;
  delivery_service& delivery;
  request_stats& stats;
};

/// Request ids, counting, JSON 404s, exceptions as 500s and --log-requests.
void add_common_handlers(httplib::Server& server, server_context& context);
/// The Unloc API of unloc-api.md, Part A and Part B.
void add_api_routes(httplib::Server& server, server_context& context);
/// /_admin/: record events, offline mode, deliveries, faults, counters.
void add_admin_routes(httplib::Server& server, server_context& context);

}  // namespace refserver

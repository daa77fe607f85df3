// compile_full_*: the whole SDK, and one client call.
#include <unloc/unloc.hpp>

int main() {
  unloc::client_options options;
  options.project_id = "d45031c2-be07-4d20-adbe-4e51e6ad0fed";
  options.client_id = "bench";
  options.client_secret = "bench-secret";
  auto client = unloc::client::create(options);
  if (!client) return 1;
  auto hooks = client->list_webhooks();
  return hooks ? 0 : 1;
}

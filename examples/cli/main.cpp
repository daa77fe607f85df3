// `unloc`: the command-line client of the Unloc API, built on the SDK. Its
// interface (options, formats, exit statuses) is fixed by docs/cli.md;
// scripts depend on it.

#include <unloc/unloc.hpp>

#include "args.hpp"
#include "exit_status.hpp"
#include "listen.hpp"
#include "output.hpp"
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace {

using unloc_cli::command;
using unloc_cli::invocation;

using unloc_cli::bad_usage;
using unloc_cli::exit_status;
using unloc_cli::ok;
using unloc_cli::status_for;

exit_status fail(const unloc::error& e) {
  std::cerr << "unloc: " << unloc::to_string(e) << "\n";
  return status_for(e);
}

// The command's deadline, spread over the calls it makes.
class deadline {
 public:
  explicit deadline(std::optional<std::chrono::milliseconds> total)
      : end_(total ? std::optional(std::chrono::steady_clock::now() + *total) : std::nullopt) {}
  [[nodiscard]] unloc::call_options next_call() const {
    unloc::call_options options;
    if (end_) {
      options.deadline = std::max(std::chrono::milliseconds(1),
                                  std::chrono::duration_cast<std::chrono::milliseconds>(
                                      *end_ - std::chrono::steady_clock::now()));
    }
    return options;
  }

 private:
  std::optional<std::chrono::steady_clock::time_point> end_;
};

exit_status generate_credentials(const invocation& inv) {
  auto credentials = unloc::generate_credentials();
  if (!credentials) return fail(credentials.error());
  unloc_cli::printer out(std::cout, inv.format, {{"USER", "PASSWORD"}, {"user", "password"}},
                         inv.csv_safe);
  unloc_cli::record r;
  r.json = {{"user", credentials->user}, {"password", credentials->password}};
  r.cells = {credentials->user, credentials->password};
  out.add(std::move(r));
  out.finish(false);
  return ok;
}

exit_status read_access_log(const unloc::client& client, const invocation& inv,
                            const deadline& budget) {
  unloc::access_log_query query;
  query.lock_id = inv.lock_id;
  query.project_wide = inv.project_wide;
  query.from = inv.from;
  query.to = inv.to;
  unloc_cli::printer out(std::cout, inv.format, unloc_cli::event_columns(), inv.csv_safe);
  const bool progress = isatty(STDERR_FILENO) != 0;
  std::size_t count = 0;
  std::string cursor;
  for (int page = 1;; ++page) {
    auto read = client.fetch_access_log_page(query, cursor, budget.next_call());
    if (!read) {
      if (progress) std::cerr << "\n";
      return fail(read.error());
    }
    for (const auto& event : read->events) out.add(unloc_cli::event_record(event, inv.format));
    count += read->events.size();
    if (progress)
      std::cerr << "\rfetched " << count << " events (" << page << " pages)" << std::flush;
    if (!read->next_cursor || *read->next_cursor == cursor) break;
    cursor = *read->next_cursor;
  }
  if (progress) std::cerr << "\n";
  out.finish(true);
  return ok;
}

std::atomic<bool> stop_listening{false};  // set from a signal handler: must be lock-free
static_assert(std::atomic<bool>::is_always_lock_free);

void on_stop_signal(int) { stop_listening = true; }

// Runs until SIGINT, SIGTERM or --timeout (an interval timer), each a clean stop.
// A second signal finds the default action again and ends the process at once.
int listen(unloc::client& client, const invocation& inv) {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  for (const int signal : {SIGINT, SIGTERM, SIGALRM}) sigaction(signal, &action, nullptr);
  if (inv.timeout) {
    itimerval timer{};
    timer.it_value.tv_sec = static_cast<time_t>(inv.timeout->count() / 1000);
    timer.it_value.tv_usec = static_cast<suseconds_t>(inv.timeout->count() % 1000 * 1000);
    setitimer(ITIMER_REAL, &timer, nullptr);
  }
  return unloc_cli::run_listen(client, inv.listen, std::cout, std::cerr, stop_listening);
}

exit_status run(const invocation& inv) {
  if (inv.what == command::credentials_generate) return generate_credentials(inv);
  unloc::client_options options;
  options.api_url = inv.api_url;
  options.project_id = inv.project_id;
  options.client_id = inv.client_id;
  options.client_secret = inv.client_secret;
  options.ca_file = inv.ca_bundle;
  auto client = unloc::client::create(options);
  if (!client) return fail(client.error());
  const deadline budget(inv.timeout);

  switch (inv.what) {
    case command::webhooks_register: {
      unloc::webhook_registration registration;
      registration.lock_id = inv.lock_id;
      registration.url = inv.url;
      auto hook = client->register_webhook(registration, budget.next_call());
      if (!hook) return fail(hook.error());
      unloc_cli::printer out(std::cout, inv.format, unloc_cli::webhook_columns(), inv.csv_safe);
      out.add(unloc_cli::webhook_record(*hook));
      out.finish(false);
      return ok;
    }
    case command::webhooks_list: {
      auto hooks = client->list_webhooks(budget.next_call());
      if (!hooks) return fail(hooks.error());
      unloc_cli::printer out(std::cout, inv.format, unloc_cli::webhook_columns(), inv.csv_safe);
      for (const auto& hook : *hooks) out.add(unloc_cli::webhook_record(hook));
      out.finish(true);
      return ok;
    }
    case command::webhooks_delete: {
      auto deleted = client->delete_webhook(*inv.webhook_id, budget.next_call());
      return deleted ? ok : fail(deleted.error());
    }
    case command::access_log: return read_access_log(*client, inv, budget);
    case command::listen: return static_cast<exit_status>(listen(*client, inv));
    case command::print:
    case command::credentials_generate: break;
  }
  return ok;
}

}  // namespace

// Only a bug or a lack of memory throws out of main: std::terminate names it, and the
// exit statuses (docs/cli.md) are fixed.
// NOLINTNEXTLINE(bugprone-exception-escape)
int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  auto inv = unloc_cli::parse_arguments(args);
  if (!inv) {
    std::cerr << "unloc: " << inv.error().message << "\n";
    return bad_usage;
  }
  if (inv->what == command::print) {
    std::cout << inv->text;
    return ok;
  }
  return run(*inv);
}

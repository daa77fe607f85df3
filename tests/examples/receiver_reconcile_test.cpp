// unloc-webhook-receiver --store sqlite:PATH --reconcile against the reference
// server: events missed while it was down come from the access log, each
// printed once, across restarts. The 10,000-event version, with two receivers
// on one PostgreSQL and kills, is tests/reliability/.

#include "receiver_harness.hpp"

#include <fstream>
#include <set>

using namespace receiver_test;

namespace {

// The API variables --reconcile reads, for `server`, with the webhook credentials.
std::vector<std::string> api_env(const unloc_test::reference_server& server,
                                 const std::string& secret = {}) {
  auto env = credential_env();
  env.insert(env.end(), {"UNLOC_API_URL=" + server.base_url(),
                         "UNLOC_PROJECT_ID=" + server.project_id(),
                         "UNLOC_CLIENT_ID=" + server.client_id(),
                         "UNLOC_CLIENT_SECRET=" + (secret.empty() ? server.client_secret() : secret),
                         "UNLOC_CA_BUNDLE=" + server.ca_file()});
  return env;
}

std::set<std::string> printed_ids(const receiver_process& r) {
  std::set<std::string> ids;
  for (const auto& line : lines_of(r.out())) {
    ids.insert(nlohmann::json::parse(line).at("id").get<std::string>());
  }
  return ids;
}

// Waits (at most 20 s) until the receiver has printed `count` lines.
bool wait_for_lines(const receiver_process& r, std::size_t count) {
  const auto deadline = steady::now() + 20s;
  while (lines_of(r.out()).size() < count && steady::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  return lines_of(r.out()).size() == count;
}

// A fresh SQLite store in the test's temporary directory, as --store takes it.
std::string store_url(const char* name) {
  const std::string path = unloc_test::test_tls_files().dir + "/" + name + ".db";
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
  return "sqlite:" + path;
}

const std::string lock_a = "c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef";
const std::string lock_b = "df50a61f-9e1f-4e1c-9e89-8395c908065a";

}  // namespace

TEST_CASE("--reconcile prints the events missed while it was down, once, across restarts",
          "[receiver][reconcile]") {
  unloc_test::reference_server server;
  // Each run listens on another port, so it is another lease holder: the second
  // takes the log over once the first one's lease (2 s) has run out.
  const launch how{{"--store", store_url("reconcile-restarts"), "--reconcile", "--poll-interval",
                    "1", "--log-lease", "2"},
                   api_env(server)};
  auto first_batch = server.record_events(lock_a, 5);

  std::set<std::string> seen;
  {
    receiver_process r(how);
    REQUIRE(wait_for_lines(r, 5));
    seen = printed_ids(r);
    CHECK(seen == std::set<std::string>(first_batch.begin(), first_batch.end()));
    CHECK(wait_for_err(r, "recovered 5"));  // written once the read is done, after the events

    // A webhook delivery of an event already printed from the log: acknowledged, not printed.
    auto c = r.client();
    const auto body = unloc::to_json_text(make_event(first_batch[0]));
    CHECK(c->Post("/accessEvents", auth_headers(), body, "application/json")->status == 204);
    CHECK(r.stop(SIGTERM) == 0);
    CHECK(lines_of(r.out()).size() == 5);
    CHECK(r.err().find("delivered again") != std::string::npos);
  }

  auto second_batch = server.record_events(lock_b, 3);
  receiver_process again(how);
  REQUIRE(wait_for_lines(again, 3));
  CHECK(printed_ids(again) == std::set<std::string>(second_batch.begin(), second_batch.end()));
  // A new delivery is printed at once, and the log's copy of it is not printed again.
  auto c = again.client();
  const std::string fresh = event_id(7, 1);
  CHECK(c->Post("/accessEvents", auth_headers(), unloc::to_json_text(make_event(fresh)),
                "application/json")
            ->status == 204);
  REQUIRE(wait_for_lines(again, 4));
  std::this_thread::sleep_for(1500ms);  // another read of the log or more
  CHECK(lines_of(again.out()).size() == 4);
}

TEST_CASE("--reconcile --lock reads only the logs of the locks given", "[receiver][reconcile]") {
  unloc_test::reference_server server;
  auto on_a = server.record_events(lock_a, 2);
  server.record_events(lock_b, 2);
  receiver_process r(launch{
      {"--store", store_url("reconcile-lock"), "--reconcile", "--lock", lock_a}, api_env(server)});
  REQUIRE(wait_for_lines(r, 2));
  CHECK(printed_ids(r) == std::set<std::string>(on_a.begin(), on_a.end()));
  CHECK(wait_for_err(r, "access log of lock " + lock_a));
}

TEST_CASE("--reconcile refuses to start without what it needs", "[receiver][reconcile]") {
  unloc_test::reference_server server;
  SECTION("the API variables") {
    receiver_process r(launch{{"--store", store_url("reconcile-env"), "--reconcile"}});
    CHECK(r.exit_status() == 2);
    CHECK(r.err().find("UNLOC_CLIENT_SECRET") != std::string::npos);
  }
  SECTION("--lock without --reconcile") {
    receiver_process r(launch{{"--lock", lock_a}});
    CHECK(r.exit_status() == 2);
  }
  SECTION("credentials the API refuses: it serves, and says why the log is not read") {
    receiver_process r(launch{{"--store", store_url("reconcile-auth"), "--reconcile"},
                              api_env(server, "wrong-secret")});
    REQUIRE(wait_for_err(r, "not read"));
    CHECK(r.err().find("authentication") != std::string::npos);
    CHECK(r.err().find("wrong-secret") == std::string::npos);
  }
}

TEST_CASE("--import-state: an event the file journal left in doubt is named, and taken from the log",
          "[receiver][reconcile]") {
  unloc_test::reference_server server;
  const std::string state = unloc_test::test_tls_files().dir + "/reconcile-doubt";
  for (const char* suffix : {"", ".journal", ".imported", ".journal.imported"}) {
    std::remove((state + suffix).c_str());
  }
  auto ids = server.record_events(lock_a, 2);
  // What a receiver of the file journal killed while printing ids[0] left: pending, never handled.
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::ofstream(state + ".journal") << "p " << ids[0] << " " << now_ms << "\n";
  receiver_process r(launch{
      {"--store", store_url("reconcile-doubt"), "--import-state", state, "--reconcile"},
      api_env(server)});
  REQUIRE(wait_for_lines(r, 2));
  CHECK(printed_ids(r) == std::set<std::string>(ids.begin(), ids.end()));
  CHECK(r.err().find("event " + ids[0] + " was being printed") != std::string::npos);
}

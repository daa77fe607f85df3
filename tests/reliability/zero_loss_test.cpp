// Zero loss, end to end, with two receivers on one PostgreSQL: 10,000 Access
// Events across 12 Locks end in the events table (unloc_events) exactly once,
// although
//   - two unloc-webhook-receiver --store postgresql://… --reconcile share the
//     database: the reference server delivers the events of 6 Locks to both
//     (two webhooks on each of those Locks), of 3 Locks to receiver A only and
//     of 3 to B only;
//   - A holds the access log's lease and is killed with SIGKILL while events
//     flow, down for four rounds (its Locks' deliveries give up after a few quick
//     attempts, so only the log can bring them back), then restarted; B takes
//     the lease over within --log-lease;
//   - PostgreSQL is stopped with `-m immediate` (a crash: every connection cut,
//     recovery at start) mid-run and started again;
//   - 10% of the events are held by an offline phone and reported late, with
//     `created` hours in the past, shuffled; 5% of the deliveries are made twice.
// The verdict rests on the table: every event recorded has one row, with its
// Lock, and no other row exists. Each receiver's stdout is kept too
// (zero_loss-{a,b}-stdout.jsonl, and stderr in zero_loss-{a,b}-stderr.log, in
// the working directory): every event must be printed, and the events printed
// more than once are counted, flagged ("possibly printed before": a kill left them in
// doubt) or not (the database's crash forgot a claim, which commits without
// waiting for the disk; its mark, and so the row, never).

#include <unloc/unloc.hpp>

#include "catch.hpp"
#include "examples/receiver_harness.hpp"
#include "support/pg_cluster.hpp"
#include "support/reference_server.hpp"
#include <libpq-fe.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using receiver_test::receiver_process;

constexpr int event_total = 10000;
constexpr int lock_total = 12;
constexpr int shared_locks = 6;  // locks 0-5: a webhook to each receiver; 6-8: A's; 9-11: B's
constexpr int rounds = 30;
constexpr int per_round = event_total / rounds + 1;  // 334 (the last round fewer)
constexpr int offline_total = event_total / 10;      // 1,000 held by an offline phone
constexpr double duplicate_probability = 0.05;
// Pacing only (the test never waits a fixed time for a result): a round records
// its events over at least this long, so that the log polls (every second), the
// kill, the restarts and the deliveries interleave with the recording.
constexpr auto round_period = 1000ms;
constexpr int kill_round = 8;  // A (the log's lease holder) killed mid-round
constexpr int restart_round = 12;  // and started again, past its lease (it takes back a live one)
constexpr int database_crash_round = 18;  // PostgreSQL stopped -m immediate, then started
// Short leases, so that the test sees takeovers within its time: the log's lease
// of a killed receiver, and the claims a kill or the crash left unsettled.
constexpr const char* log_lease_seconds = "3";
constexpr const char* claim_lease_seconds = "5";

std::string lock_id(int index) {
  char id[40];
  std::snprintf(id, sizeof id, "2e0c0ded-0000-4000-8000-%012d", index + 1);
  return id;
}

// What the test knows about an event it recorded, for the report of a loss.
struct sent_event {
  int round = 0;
  int lock = 0;
  bool offline = false;
};

// The RFC 3339 text of now minus `ago`, UTC, milliseconds.
std::string created_ago(std::chrono::milliseconds ago) {
  const auto at = std::chrono::time_point_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now() - ago);
  return unloc::format_timestamp(at);
}

// One receiver run's record: its output and how it ended.
struct run_record {
  int index = 0;
  int exit_status = -1;  // 0 after SIGTERM, 137 after SIGKILL
  bool killed = false;
  std::size_t lines = 0;
  long long recovered = 0;              // sum of "recovered N" over its log reads
  int log_reads = 0;                    // stderr lines naming a log read
  int delivered_again = 0;              // stderr lines "delivered again"
  std::set<std::string> printed_again;  // ids of stderr lines "event ID possibly printed before"
};

// The receiver, started and stopped over and over on one port with one state
// file; every run's stdout and stderr appended to one file each.
class receiver_cycle {
 public:
  receiver_cycle(std::vector<std::string> base_args, std::vector<std::string> env,
                 std::string stdout_file, std::string stderr_file)
      : base_args_(std::move(base_args)),
        env_(std::move(env)),
        stdout_file_(std::move(stdout_file)),
        stderr_file_(std::move(stderr_file)) {
    std::ofstream(stdout_file_, std::ios::trunc).flush();
    std::ofstream(stderr_file_, std::ios::trunc).flush();
  }
  receiver_cycle(const receiver_cycle&) = delete;
  receiver_cycle& operator=(const receiver_cycle&) = delete;
  ~receiver_cycle() = default;  // a run still going gets SIGTERM from receiver_process

  // Starts a run (on the port of the first run); retries a failed bind a few times.
  void start() {
    REQUIRE(!current_);
    for (int attempt = 1;; ++attempt) {
      receiver_test::launch how;
      how.args = base_args_;
      if (port_ != 0) {
        // The harness adds --listen 127.0.0.1:0 first; the last --listen wins.
        how.args.insert(how.args.end(), {"--listen", "127.0.0.1:" + std::to_string(port_)});
      }
      how.env = env_;
      auto run = std::make_unique<receiver_process>(how);
      if (run->exit_status() == -1 && run->port() > 0) {
        if (port_ == 0) port_ = run->port();
        REQUIRE(run->port() == port_);
        current_ = std::move(run);
        return;
      }
      const std::string err = run->err();
      std::ofstream(stderr_file_, std::ios::app)
          << "=== failed start, exit " << run->exit_status() << " ===\n"
          << err;
      if (attempt >= 5)
        FAIL("the receiver did not start (exit " << run->exit_status() << "): " << err);
      std::this_thread::sleep_for(200ms);  // a bind retry pause, not a result wait
    }
  }

  // Stops the current run with `signal`; appends its output; returns its exit status.
  int stop(int signal) {
    REQUIRE(current_);
    run_record record;
    record.index = static_cast<int>(runs_.size()) + 1;
    record.killed = signal == SIGKILL;
    record.exit_status = current_->stop(signal);
    collect(*current_, record);
    current_.reset();
    runs_.push_back(record);
    return record.exit_status;
  }

  [[nodiscard]] bool running() const { return static_cast<bool>(current_); }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] const std::vector<run_record>& runs() const { return runs_; }
  /// Every finished run's stdout, in run order (runs()[i] is outputs()[i]).
  [[nodiscard]] const std::vector<std::string>& outputs() const { return outputs_; }

  // Complete stdout lines so far, finished runs and the current one.
  [[nodiscard]] std::size_t lines_so_far() const {
    std::size_t n = 0;
    for (const auto& r : runs_) n += r.lines;
    if (current_) n += complete_lines(current_->out());
    return n;
  }

  // Log reads the current run has reported so far.
  [[nodiscard]] int current_log_reads() const {
    return current_ ? count_log_reads(current_->err()).first : 0;
  }

 private:
  static std::size_t complete_lines(const std::string& text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
  }

  // (log read lines, sum of their N)
  static std::pair<int, long long> count_log_reads(const std::string& err) {
    static const std::regex recovered("recovered ([0-9]+)");
    int reads = 0;
    long long sum = 0;
    for (const auto& line : receiver_test::lines_of(err)) {
      std::smatch m;
      if (line.find("access log") != std::string::npos && std::regex_search(line, m, recovered)) {
        ++reads;
        sum += std::stoll(m[1].str());
      }
    }
    return {reads, sum};
  }

  void collect(const receiver_process& run, run_record& record) {
    const std::string out = run.out();
    const std::string err = run.err();
    record.lines = complete_lines(out);
    std::tie(record.log_reads, record.recovered) = count_log_reads(err);
    static const std::regex printed_again("event ([0-9a-f-]{36}) possibly printed before");
    for (const auto& line : receiver_test::lines_of(err)) {
      if (line.find("delivered again") != std::string::npos) ++record.delivered_again;
      std::smatch m;
      if (std::regex_search(line, m, printed_again)) record.printed_again.insert(m[1].str());
    }
    // A half-written last line (a kill in the middle of a write) stays a line
    // of its own, which the verdict reports as not an event.
    const bool partial = !out.empty() && out.back() != '\n';
    std::ofstream(stdout_file_, std::ios::app | std::ios::binary) << out << (partial ? "\n" : "");
    std::ofstream(stderr_file_, std::ios::app | std::ios::binary)
        << "=== run " << record.index << (record.killed ? " (SIGKILL)" : " (SIGTERM)") << ", exit "
        << record.exit_status << " ===\n"
        << err;
    outputs_.push_back(out);
  }

  std::vector<std::string> base_args_;
  std::vector<std::string> env_;
  std::string stdout_file_, stderr_file_;
  std::unique_ptr<receiver_process> current_;
  int port_ = 0;
  std::vector<run_record> runs_;
  std::vector<std::string> outputs_;
};

// Waits until `done()` or `timeout`, polling every `pause`; the last `done()`.
template <typename Predicate>
bool wait_until(Predicate done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds pause = 50ms) {
  const auto deadline = steady::now() + timeout;
  while (!done()) {
    if (steady::now() > deadline) return done();
    std::this_thread::sleep_for(pause);
  }
  return true;
}

double seconds_between(steady::time_point from, steady::time_point to) {
  return static_cast<double>(
             std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count()) /
         1000.0;
}


// The rows of unloc_events: id -> lock_id, read with libpq as an integrator would.
std::map<std::string, std::vector<std::string>> table_rows(const std::string& url) {
  std::map<std::string, std::vector<std::string>> rows;
  PGconn* conn = PQconnectdb(url.c_str());
  if (PQstatus(conn) == CONNECTION_OK) {
    PGresult* result = PQexec(conn, "SELECT id, lock_id FROM unloc_events");
    if (PQresultStatus(result) == PGRES_TUPLES_OK) {
      for (int i = 0; i < PQntuples(result); ++i) {
        rows[PQgetvalue(result, i, 0)].emplace_back(PQgetvalue(result, i, 1));
      }
    }
    PQclear(result);
  }
  PQfinish(conn);
  return rows;
}

// How many rows unloc_events holds; -1 while the database cannot be read.
long long table_count(const std::string& url) {
  long long count = -1;
  PGconn* conn = PQconnectdb(url.c_str());
  if (PQstatus(conn) == CONNECTION_OK) {
    PGresult* result = PQexec(conn, "SELECT count(*) FROM unloc_events");
    if (PQresultStatus(result) == PGRES_TUPLES_OK) count = std::stoll(PQgetvalue(result, 0, 0));
    PQclear(result);
  }
  PQfinish(conn);
  return count;
}

}  // namespace

TEST_CASE(
    "two receivers on one PostgreSQL write each of 10,000 events once, through a SIGKILL and a "
    "database crash",
    "[reliability][zero_loss]") {
  const auto started = steady::now();
  unloc_test::pg_cluster database;  // sets PGPASSFILE, which the receivers inherit

  unloc_test::reference_server_options server_options;
  server_options.delivery_attempts = 3;  // a down receiver: given up after ~150 ms
  server_options.delivery_backoff = 50ms;
  // The admin connection idles through the final waits: the server must not close it.
  server_options.extra_args = {"--random-seed", "424242", "--keep-alive-timeout", "600"};
  unloc_test::reference_server server(server_options);
  server.admin("POST", "/_admin/deliveries/duplicate", {{"probability", duplicate_probability}});

  // The receivers' API access: from the environment, only what the test gives them.
  for (const char* name : {"UNLOC_API_URL", "UNLOC_PROJECT_ID", "UNLOC_CLIENT_ID",
                           "UNLOC_CLIENT_SECRET", "UNLOC_CA_BUNDLE"}) {
    ::unsetenv(name);
  }
  std::vector<std::string> env = receiver_test::credential_env();
  env.push_back("UNLOC_API_URL=" + server.base_url());
  env.push_back("UNLOC_PROJECT_ID=" + server.project_id());
  env.push_back("UNLOC_CLIENT_ID=" + server.client_id());
  env.push_back("UNLOC_CLIENT_SECRET=" + server.client_secret());
  env.push_back("UNLOC_CA_BUNDLE=" + server.ca_file());

  const std::vector<std::string> args = {"--store",       database.url(),
                                         "--reconcile",   "--poll-interval",
                                         "1",             "--log-lease",
                                         log_lease_seconds, "--claim-lease",
                                         claim_lease_seconds};
  // Kept in the test's working directory (the build tree) for a post-mortem.
  receiver_cycle a(args, env, "zero_loss-a-stdout.jsonl", "zero_loss-a-stderr.log");
  receiver_cycle b(args, env, "zero_loss-b-stdout.jsonl", "zero_loss-b-stderr.log");
  // A first, and B once A holds the log's lease (its first read done): A is the holder killed.
  a.start();
  REQUIRE(wait_until([&] { return a.current_log_reads() >= 1; }, 30s));
  b.start();

  auto client = unloc::client::create(server.client_options());
  REQUIRE(client);
  const auto hook = [&](const receiver_cycle& r, int lock) {
    unloc::webhook_registration registration;
    registration.url = "https://" + receiver_test::credentials().user + ":" +
                       receiver_test::credentials().password +
                       "@127.0.0.1:" + std::to_string(r.port()) + "/accessEvents";
    registration.lock_id = unloc::uuid::parse(lock_id(lock)).value();
    REQUIRE(client->register_webhook(registration));
  };
  for (int lock = 0; lock < lock_total; ++lock) {
    if (lock < shared_locks + 3) hook(a, lock);
    if (lock < shared_locks || lock >= shared_locks + 3) hook(b, lock);
  }

  // Which Lock each event is on and which are held offline: seeded, so every
  // run of the test records the same plan.
  std::mt19937 random(20240917);
  std::vector<std::pair<int, bool>> plan(event_total);  // (lock, offline)
  {
    std::uniform_int_distribution<int> pick_lock(0, lock_total - 1);
    for (int i = 0; i < event_total; ++i) plan[i] = {pick_lock(random), i < offline_total};
    std::shuffle(plan.begin(), plan.end(), random);
  }

  std::map<std::string, sent_event> sent;
  std::uniform_int_distribution<int> offline_age_min(60, 360);  // reported 1 to 6 hours late
  std::uniform_int_distribution<int> offline_spacing(1000, 60000);
  int killed_status = 0;
  bool crashed = false;

  for (int round = 0; round < rounds; ++round) {
    const auto round_start = steady::now();
    std::map<std::pair<int, bool>, int> calls;
    for (int i = round * per_round; i < std::min(event_total, (round + 1) * per_round); ++i) {
      ++calls[plan[static_cast<std::size_t>(i)]];
    }
    std::vector<std::pair<std::pair<int, bool>, int>> ordered(calls.begin(), calls.end());
    std::shuffle(ordered.begin(), ordered.end(), random);

    const auto record = [&](const std::pair<std::pair<int, bool>, int>& call) {
      const auto [lock, offline] = call.first;
      nlohmann::json fields = {{"action", (lock + round) % 3 == 0 ? "locked" : "unlocked"},
                               {"lockName", "Lock " + std::to_string(lock + 1)}};
      if (offline) {
        fields["offline"] = true;
        fields["created"] = created_ago(std::chrono::minutes(offline_age_min(random)));
        fields["spacingMs"] = offline_spacing(random);
      } else {
        fields["spacingMs"] = 10;
      }
      const auto ids = server.record_events(lock_id(lock), call.second, fields);
      REQUIRE(ids.size() == static_cast<std::size_t>(call.second));
      for (const auto& id : ids) {
        REQUIRE(sent.emplace(id, sent_event{round, lock, offline}).second);
      }
    };

    const std::size_t half = ordered.size() / 2;
    for (std::size_t i = 0; i < half; ++i) record(ordered[i]);
    // Between the halves, while the first half's deliveries are in flight.
    if (round == kill_round) killed_status = a.stop(SIGKILL);
    if (round == restart_round) a.start();
    if (round == database_crash_round) {
      database.stop(true);
      crashed = true;
    }
    for (std::size_t i = half; i < ordered.size(); ++i) record(ordered[i]);
    if (round == database_crash_round) database.start();
    // The phone comes online now and then: its held events, late and shuffled.
    if (round % 4 == 3) server.release_offline();

    const auto elapsed = steady::now() - round_start;
    if (elapsed < round_period) std::this_thread::sleep_for(round_period - elapsed);
  }
  REQUIRE(sent.size() == static_cast<std::size_t>(event_total));
  const auto recorded = steady::now();

  // The end: every held event released, the deliveries done; then the log reads
  // (and the claims' lease) must bring the rest into the table.
  server.release_offline();
  CHECK(server.admin("GET", "/_admin/offline").at("held").get<int>() == 0);
  const bool idle = server.wait_for_deliveries(90s);
  const bool complete = wait_until(
      [&] { return table_count(database.url()) >= static_cast<long long>(event_total); }, 90s,
      200ms);
  // Two more log reads after that (whoever holds the lease), so that an event
  // written again by a later read (a bug) shows up here rather than after the test.
  const int reads_now = a.current_log_reads() + b.current_log_reads();
  const bool read_again = wait_until(
      [&] { return a.current_log_reads() + b.current_log_reads() >= reads_now + 2; }, 45s);
  const auto drained = steady::now();
  const int a_status = a.stop(SIGTERM);
  const int b_status = b.stop(SIGTERM);

  // The verdict: the table, by id.
  const auto rows = table_rows(database.url());
  const auto describe_event = [&](const std::string& id) {
    std::ostringstream out;
    out << id;
    if (const auto it = sent.find(id); it != sent.end()) {
      out << " (round " << it->second.round << ", lock " << it->second.lock + 1
          << (it->second.offline ? ", offline" : ", online") << ")";
    } else {
      out << " (never sent)";
    }
    return out.str();
  };
  std::vector<std::string> lost, twice, unknown, wrong_lock;
  for (const auto& [id, event] : sent) {
    const auto row = rows.find(id);
    if (row == rows.end()) {
      lost.push_back(describe_event(id));
    } else if (row->second.size() > 1) {
      twice.push_back(describe_event(id));
    } else if (row->second.front() != lock_id(event.lock)) {
      wrong_lock.push_back(describe_event(id) + ": lock_id " + row->second.front());
    }
  }
  for (const auto& [id, locks] : rows) {
    if (sent.count(id) == 0) unknown.push_back(describe_event(id));
  }

  // Stdout: at least once; more than once only around the kill and the crash.
  std::map<std::string, int> printed;
  std::set<std::string> flagged;
  std::vector<std::string> malformed;
  for (const receiver_cycle* r : {&a, &b}) {
    for (std::size_t i = 0; i < r->outputs().size(); ++i) {
      for (const auto& line : receiver_test::lines_of(r->outputs()[i])) {
        const auto json = nlohmann::json::parse(line, nullptr, false);
        if (json.is_discarded() || !json.is_object() || !json.contains("id") ||
            !json["id"].is_string()) {
          malformed.push_back(line.substr(0, 200));
          continue;
        }
        ++printed[json["id"].get<std::string>()];
      }
      flagged.insert(r->runs()[i].printed_again.begin(), r->runs()[i].printed_again.end());
    }
  }
  std::vector<std::string> printed_twice_unflagged, never_printed;
  int flagged_repeats = 0;
  for (const auto& [id, times] : printed) {
    if (times > 1 && flagged.count(id) != 0) ++flagged_repeats;
    if (times > 1 && flagged.count(id) == 0) printed_twice_unflagged.push_back(describe_event(id));
  }
  for (const auto& [id, event] : sent) {
    if (printed.count(id) == 0) never_printed.push_back(describe_event(id));
  }

  long long recovered = 0;
  int delivered_again = 0;
  for (const receiver_cycle* r : {&a, &b}) {
    for (const auto& run : r->runs()) {
      recovered += run.recovered;
      delivered_again += run.delivered_again;
    }
  }
  // B read the log only after A's lease ran out: it says so when it takes the lease.
  const bool took_over = receiver_test::read_text("zero_loss-b-stderr.log")
                             .find("this receiver reads it now") != std::string::npos;
  const auto deliveries = server.delivery_counts();
  const auto seconds =
      std::chrono::duration_cast<std::chrono::duration<double>>(steady::now() - started).count();
  std::ostringstream summary;
  summary << "zero_loss: sent=" << sent.size() << " rows=" << rows.size() << " lost=" << lost.size()
          << " rows_twice=" << twice.size() << " unknown_rows=" << unknown.size()
          << " recovered_from_log=" << recovered << " duplicates_suppressed=" << delivered_again
          << " printed_again_flagged=" << flagged_repeats
          << " printed_twice_unflagged=" << printed_twice_unflagged.size()
          << " lease_taken_over_by_b=" << (took_over ? "yes" : "no")
          << " seconds=" << std::lround(seconds);
  std::ostringstream detail;
  detail << "zero_loss: server_delivered=" << deliveries.value("delivered", 0)
         << " server_duplicated=" << deliveries.value("duplicated", 0)
         << " server_gave_up=" << deliveries.value("gaveUp", 0)
         << " server_failed_attempts=" << deliveries.value("failedAttempts", 0)
         << " a_runs=" << a.runs().size() << " killed_exit=" << killed_status
         << " setup_and_recording_seconds=" << seconds_between(started, recorded)
         << " draining_seconds=" << seconds_between(recorded, drained);
  std::cout << summary.str() << "\n" << detail.str() << "\n" << std::flush;

  const auto first = [](const std::vector<std::string>& list) {
    std::string text;
    for (std::size_t i = 0; i < list.size() && i < 20; ++i) text += "\n  " + list[i];
    if (list.size() > 20) text += "\n  ... and " + std::to_string(list.size() - 20) + " more";
    return text;
  };
  INFO(summary.str());
  INFO(detail.str());
  CHECK(idle);
  CHECK(complete);
  CHECK(read_again);
  CHECK(crashed);
  CHECK(killed_status == 128 + SIGKILL);
  CHECK(a_status == 0);
  CHECK(b_status == 0);
  CHECK(took_over);
  if (!lost.empty()) FAIL_CHECK("events with no row:" << first(lost));
  if (!twice.empty()) FAIL_CHECK("events with more than one row:" << first(twice));
  if (!unknown.empty()) FAIL_CHECK("rows of events never sent:" << first(unknown));
  if (!wrong_lock.empty()) FAIL_CHECK("rows with the wrong Lock:" << first(wrong_lock));
  if (!malformed.empty()) FAIL_CHECK("stdout lines that are not an event:" << first(malformed));
  if (!printed_twice_unflagged.empty()) {
    std::cout << "zero_loss: printed more than once, unflagged:" << first(printed_twice_unflagged)
              << "\n";
  }
  if (!never_printed.empty()) FAIL_CHECK("events never printed:" << first(never_printed));
  CHECK(rows.size() == sent.size());
}

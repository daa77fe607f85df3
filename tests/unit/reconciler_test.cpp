// The reconciler's logic over an access log held in memory. The same over
// HTTPS, with restarts and kills, is tests/reliability/zero_loss_test.cpp.

#include "catch.hpp"

#include <unloc/event_store.hpp>
#include <unloc/reconciler.hpp>
#include <unloc/testing.hpp>

#include "fixtures.hpp"

#include <algorithm>
#include <condition_variable>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using namespace std::chrono_literals;
using unloc::access_event;
using unloc::event_source;
using unloc::offer_outcome;
using unloc::timestamp;

const timestamp start = unloc::parse_timestamp("2026-11-01T00:00:00.000Z").value();

access_event event(std::uint32_t n, timestamp created) {
  access_event e = unloc::testing::sample_access_event();
  e.id = unit::numbered_id(n);
  e.created = created;
  return e;
}

// An access log as the API serves it: events in [from, to), newest first, in
// pages of two; records the queries it was asked.
struct fake_log {
  std::vector<access_event> events;
  mutable std::vector<unloc::access_log_query> queries;
  bool fail = false;

  template <typename OnEvent>
  unloc::result<std::size_t> read_access_log(const unloc::access_log_query& q, OnEvent&& on_event,
                                             const unloc::call_options& = {}) const {
    queries.push_back(q);
    if (fail) return unloc::make_error(unloc::error_category::network, "connection refused");
    auto sorted = events;
    std::sort(sorted.begin(), sorted.end(),
              [](const access_event& a, const access_event& b) { return a.created > b.created; });
    std::size_t count = 0;
    for (auto& e : sorted) {
      if ((q.from && e.created < *q.from) || (q.to && e.created >= *q.to)) continue;
      ++count;
      if (!on_event(std::move(e))) break;
    }
    return count;
  }
};

// A store that outlives the reconcilers made over it (a database across restarts),
// on a clock the test moves.
struct lasting_store {
  timestamp now = start;
  std::shared_ptr<unloc::memory_event_store> store = std::make_shared<unloc::memory_event_store>(
      unloc::memory_store_limits{},
      [this] { return std::chrono::steady_clock::time_point(now.time_since_epoch()); });
};

// A reconciler over the store of `kept`, with a clock the test moves (the store's
// too), recording what it hands over.
struct harness {
  explicit harness(lasting_store& kept, std::chrono::milliseconds overlap = 1h,
                   bool in_store_transaction = false)
      : now(kept.now) {
    store = kept.store;
    unloc::reconciler_options options;
    options.overlap = overlap;
    options.handler_in_store_transaction = in_store_transaction;
    options.clock = [this] { return now; };
    rec = std::make_unique<unloc::reconciler>(
        store,
        [this](const access_event& e, const unloc::handover& how) {
          if (refuse) return false;
          const std::lock_guard<std::mutex> lock(mutex);  // handlers of different events run at once
          handed.emplace_back(e.id.to_string(), how.source);
          repeated.push_back(how.possibly_repeated);
          return true;
        },
        options);
  }
  timestamp& now;  // the store's clock
  bool refuse = false;
  std::mutex mutex;
  std::vector<std::pair<std::string, event_source>> handed;
  std::vector<bool> repeated;
  std::shared_ptr<unloc::memory_event_store> store;
  std::unique_ptr<unloc::reconciler> rec;
};

}  // namespace

TEST_CASE("a repeated delivery is handed over once", "[reconciler]") {
  lasting_store kept;
  harness h(kept);
  const auto e = event(1, start);
  CHECK(h.rec->offer(e).value() == offer_outcome::handed_over);
  CHECK(h.rec->offer(e).value() == offer_outcome::duplicate);
  REQUIRE(h.handed.size() == 1);
  CHECK(h.handed[0].second == event_source::webhook);
  CHECK(h.rec->counts().from_webhook == 1);
  CHECK(h.rec->counts().duplicate_deliveries == 1);
}

TEST_CASE("without a handler, each event is recorded in the store once, from either source",
          "[reconciler]") {
  auto store = std::make_shared<unloc::memory_event_store>();
  unloc::reconciler rec(store, nullptr);
  fake_log log;
  log.events.push_back(event(1, start - 1min));
  log.events.push_back(event(2, start - 2min));
  CHECK(rec.offer(log.events[0]).value() == offer_outcome::handed_over);
  CHECK(rec.offer(log.events[0]).value() == offer_outcome::duplicate);
  CHECK(store->handled(log.events[0].id));
  const auto held = store->claim(event(3, start).id, start).value();  // another caller's claim
  CHECK(rec.offer(event(3, start)).value() == offer_outcome::held_elsewhere);
  CHECK_FALSE(store->handled(event(3, start).id));
  REQUIRE(store->release(event(3, start).id, held.token));
  const auto report = rec.read_log(log, unloc::access_log_query::project()).value();
  CHECK(report.read == 2);
  CHECK(report.recovered == 1);
  CHECK(store->handled(log.events[1].id));
  const auto counts = rec.counts();
  CHECK(counts.from_webhook == 1);
  CHECK(counts.duplicate_deliveries == 1);
  CHECK(counts.held_elsewhere == 1);
  CHECK(counts.from_access_log == 1);
  CHECK(counts.already_handed_over == 1);
}

TEST_CASE("an event the handler does not confirm is offered again", "[reconciler]") {
  lasting_store kept;
  harness h(kept);
  const auto e = event(1, start);
  h.refuse = true;
  auto refused = h.rec->offer(e);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().field == "handler");
  CHECK(h.store->size() == 0);
  h.refuse = false;
  CHECK(h.rec->offer(e).value() == offer_outcome::handed_over);
  CHECK(h.rec->counts().handler_failures == 1);
}

TEST_CASE("a handler that throws does not confirm, and the error says why", "[reconciler]") {
  auto store = std::make_shared<unloc::memory_event_store>();
  unloc::reconciler rec(store, [](const access_event&, const unloc::handover&) -> bool {
    throw std::runtime_error("database is down");
  });
  auto offered = rec.offer(event(1, start));
  REQUIRE_FALSE(offered);
  CHECK(offered.error().message.find("database is down") != std::string::npos);
  CHECK(store->size() == 0);
}

TEST_CASE("a declined event is counted even when the store's release then throws", "[reconciler]") {
  // Against the store contract (errors are results), but an integrator's store may do it.
  struct throwing_release : unloc::event_store {
    unloc::memory_event_store inner;
    unloc::result<unloc::event_claim> claim(const unloc::uuid& id, timestamp created) override {
      return inner.claim(id, created);
    }
    unloc::result<unloc::settle_status> mark_handled(const unloc::uuid& id,
                                                     unloc::claim_token token) override {
      return inner.mark_handled(id, token);
    }
    unloc::result<unloc::settle_status> release(const unloc::uuid&, unloc::claim_token) override {
      throw std::runtime_error("release failed");
    }
    unloc::result<std::optional<timestamp>> checkpoint(const std::string& scope) override {
      return inner.checkpoint(scope);
    }
    unloc::result<void> save_checkpoint(const std::string& scope, timestamp t) override {
      return inner.save_checkpoint(scope, t);
    }
  };
  unloc::reconciler rec(std::make_shared<throwing_release>(),
                        [](const access_event&, const unloc::handover&) { return false; });
  CHECK_THROWS_WITH(rec.offer(event(1, start)), "release failed");
  CHECK(rec.counts().handler_failures == 1);
}

TEST_CASE("the first read takes the whole log, the next ones start at the checkpoint minus the "
          "overlap",
          "[reconciler]") {
  lasting_store kept;
  harness h(kept, 1h);
  fake_log log;
  for (std::uint32_t n = 0; n < 5; ++n) log.events.push_back(event(n, start - 10min * (n + 1)));
  auto first = h.rec->read_log(log, unloc::access_log_query::project()).value();
  CHECK_FALSE(log.queries[0].from.has_value());
  CHECK(log.queries[0].to == start);
  CHECK(first.scope == "project");
  CHECK(first.read == 5);
  CHECK(first.recovered == 5);
  CHECK(h.store->checkpoint("project").value() == start);

  h.now = start + 5min;
  auto second = h.rec->read_log(log, unloc::access_log_query::project()).value();
  CHECK(log.queries[1].from == start - 1h);
  CHECK(log.queries[1].to == start + 5min);
  CHECK(second.read == 5);  // the overlap: all five are in [start - 1h, start + 5min)
  CHECK(second.recovered == 0);
  CHECK(h.handed.size() == 5);
}

TEST_CASE("an event reported late, within the overlap, is recovered from the log", "[reconciler]") {
  lasting_store kept;
  harness h(kept, 2h);
  fake_log log;
  const auto lock = unloc::uuid::parse("c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef").value();
  REQUIRE(h.rec->read_log(log, unloc::access_log_query::lock(lock)));
  // Happened 30 min before the checkpoint, but the phone was offline: it shows
  // up in the log only now, and its webhook delivery was lost.
  log.events.push_back(event(7, start - 30min));
  h.now = start + 1h;
  auto report = h.rec->read_log(log, unloc::access_log_query::lock(lock)).value();
  CHECK(report.scope == lock.to_string());
  CHECK(report.recovered == 1);
  REQUIRE(h.handed.size() == 1);
  CHECK(h.handed[0].second == event_source::access_log);
  CHECK(h.rec->counts().from_access_log == 1);
}

TEST_CASE("an event delivered by webhook is not handed over again from the log", "[reconciler]") {
  lasting_store kept;
  harness h(kept);
  fake_log log;
  log.events.push_back(event(1, start - 1min));
  log.events.push_back(event(2, start - 2min));
  REQUIRE(h.rec->offer(log.events[0]).value() == offer_outcome::handed_over);
  auto report = h.rec->read_log(log, unloc::access_log_query::project()).value();
  CHECK(report.read == 2);
  CHECK(report.recovered == 1);
  CHECK(h.handed.size() == 2);
  CHECK(h.rec->counts().already_handed_over == 1);
}

TEST_CASE("a failed read keeps the checkpoint, and the next read repeats it", "[reconciler]") {
  lasting_store kept;
  harness h(kept);
  fake_log log;
  log.events.push_back(event(1, start - 1min));
  REQUIRE(h.rec->read_log(log, unloc::access_log_query::project()));
  h.now = start + 10min;

  SECTION("the API fails") {
    log.fail = true;
    CHECK(h.rec->read_log(log, unloc::access_log_query::project()).error().category ==
          unloc::error_category::network);
  }
  SECTION("the handler refuses an event") {
    log.events.push_back(event(2, start + 1min));
    h.refuse = true;
    CHECK(h.rec->read_log(log, unloc::access_log_query::project()).error().field == "handler");
  }
  CHECK(h.store->checkpoint("project").value() == start);
  log.fail = false;
  h.refuse = false;
  REQUIRE(h.rec->read_log(log, unloc::access_log_query::project()));
  CHECK(h.store->checkpoint("project").value() == start + 10min);
}

TEST_CASE("nothing handed over is handed over again after a restart", "[reconciler]") {
  lasting_store kept;
  fake_log log;
  for (std::uint32_t n = 0; n < 20; ++n) log.events.push_back(event(n, start - 1min * (n + 1)));
  {
    harness h(kept);
    REQUIRE(h.rec->offer(log.events[0]));
    REQUIRE(h.rec->read_log(log, unloc::access_log_query::project()));
    CHECK(h.handed.size() == 20);
  }
  harness restarted(kept);
  restarted.now = start + 3min;  // past the log lease of the reconciler before the restart
  log.events.push_back(event(100, start + 30s));
  auto report = restarted.rec->read_log(log, unloc::access_log_query::project()).value();
  CHECK(report.recovered == 1);
  CHECK(restarted.handed.size() == 1);
  CHECK(restarted.rec->offer(log.events[5]).value() == offer_outcome::duplicate);
}

TEST_CASE("many threads offering the same events hand each over once", "[reconciler]") {
  lasting_store kept;
  harness h(kept);
  std::vector<access_event> events;
  for (std::uint32_t n = 0; n < 500; ++n) events.push_back(event(n, start));
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&h, &events, t] {
      for (std::size_t i = 0; i < events.size(); ++i) {
        (void)h.rec->offer(events[(i * 7 + static_cast<std::size_t>(t) * 61) % events.size()]);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(h.handed.size() == 500);
  // An offer while another thread hands the event over is held elsewhere (503, retried).
  const auto counts = h.rec->counts();
  CHECK(counts.duplicate_deliveries + counts.held_elsewhere == std::uint64_t{7} * 500);
}

TEST_CASE("an event whose handover a stop interrupted comes again, flagged possibly repeated",
          "[reconciler]") {
  lasting_store kept;
  const auto e = event(9, start);
  // A process that dies inside the handler: claimed, never handled nor released.
  REQUIRE(kept.store->claim(e.id, e.created).value().mine());
  harness h(kept);
  CHECK(h.rec->offer(e).value() == offer_outcome::held_elsewhere);  // its claim's lease runs
  h.now += unloc::memory_store_limits{}.claim_lease;
  CHECK(h.rec->offer(e).value() == offer_outcome::handed_over);
  REQUIRE(h.repeated.size() == 1);
  CHECK(h.repeated[0]);
  CHECK(h.rec->counts().possibly_repeated == 1);
  CHECK(h.rec->offer(e).value() == offer_outcome::duplicate);

  // A fresh event is not in doubt, nor one the handler refused in this process.
  h.refuse = true;
  REQUIRE_FALSE(h.rec->offer(event(10, start)));
  h.refuse = false;
  REQUIRE(h.rec->offer(event(10, start)));
  CHECK_FALSE(h.repeated.back());
}

// The memory store runs the handler between its claim and its mark
// (event_store's default record_once); the SQLite store's own is in
// tests/stores (the store contract).
TEST_CASE("with the handler in the store's record, an offer hands over and counts as without",
          "[reconciler]") {
  lasting_store kept;
  harness h(kept, 1h, true);
  const auto e = event(1, start);
  h.refuse = true;
  auto refused = h.rec->offer(e);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().field == "handler");
  CHECK(h.store->size() == 0);  // the claim released
  h.refuse = false;
  CHECK(h.rec->offer(e).value() == offer_outcome::handed_over);
  CHECK(h.rec->offer(e, event_source::access_log).value() == offer_outcome::duplicate);
  REQUIRE(h.handed.size() == 1);
  CHECK_FALSE(h.repeated[0]);
  const auto doubtful = event(2, start);  // a process died handing it over
  REQUIRE(kept.store->claim(doubtful.id, doubtful.created).value().mine());
  CHECK(h.rec->offer(doubtful).value() == offer_outcome::held_elsewhere);
  h.now += unloc::memory_store_limits{}.claim_lease;
  CHECK(h.rec->offer(doubtful).value() == offer_outcome::handed_over);
  REQUIRE(h.repeated.size() == 2);
  CHECK(h.repeated[1]);
  const auto counts = h.rec->counts();
  CHECK(counts.from_webhook == 2);
  CHECK(counts.already_handed_over == 1);
  CHECK(counts.handler_failures == 1);
  CHECK(counts.held_elsewhere == 1);
  CHECK(counts.possibly_repeated == 1);
  CHECK(counts.lease_overruns == 0);
}

TEST_CASE("a handler may call back into the reconciler: counts and an offer of another event",
          "[reconciler]") {
  auto store = std::make_shared<unloc::memory_event_store>();
  std::unique_ptr<unloc::reconciler> rec;
  std::vector<unloc::reconciler_counts> seen;
  std::vector<unloc::offer_outcome> nested;
  rec = std::make_unique<unloc::reconciler>(
      std::move(store), [&](const access_event& e, const unloc::handover&) {
        seen.push_back(rec->counts());  // deadlocked while the reconciler held one mutex
        if (e.id == unit::numbered_id(1)) nested.push_back(rec->offer(event(2, start)).value());
        return true;
      });
  CHECK(rec->offer(event(1, start)).value() == offer_outcome::handed_over);
  REQUIRE(nested.size() == 1);
  CHECK(nested[0] == offer_outcome::handed_over);
  REQUIRE(seen.size() == 2);
  CHECK(rec->counts().from_webhook == 2);
  // The offer of 1 while its own handler runs would be held elsewhere, never handed twice.
  CHECK(rec->offer(event(1, start)).value() == offer_outcome::duplicate);
}

TEST_CASE("two different events are handled at once: a blocked handler holds up no other event",
          "[reconciler]") {
  std::mutex mutex;
  std::condition_variable changed;
  bool first_inside = false;
  bool second_done = false;
  unloc::reconciler rec(
      std::make_shared<unloc::memory_event_store>(),
      [&](const access_event& e, const unloc::handover&) {
        std::unique_lock<std::mutex> lock(mutex);
        if (e.id == unit::numbered_id(1)) {
          first_inside = true;
          changed.notify_all();
          // Blocked (a slow database) until the other event got through.
          changed.wait(lock, [&] { return second_done; });
        } else {
          second_done = true;
          changed.notify_all();
        }
        return true;
      });
  std::thread slow([&] { CHECK(rec.offer(event(1, start)).value() == offer_outcome::handed_over); });
  {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return first_inside; });
  }
  // While event 1's handler is blocked: event 2 goes through, and 1 is held elsewhere.
  CHECK(rec.offer(event(2, start)).value() == offer_outcome::handed_over);
  slow.join();
  CHECK(rec.counts().from_webhook == 2);
}

TEST_CASE("an offer of an event being handed over is held elsewhere, and handed over once",
          "[reconciler]") {
  lasting_store kept;
  harness h(kept);
  const auto e = event(1, start);
  std::vector<offer_outcome> inner;
  unloc::reconciler* rec = nullptr;
  unloc::reconciler reentrant(h.store, [&](const access_event& offered, const unloc::handover&) {
    inner.push_back(rec->offer(offered).value());  // the same event, while it is being handed over
    return true;
  });
  rec = &reentrant;
  CHECK(reentrant.offer(e).value() == offer_outcome::handed_over);
  REQUIRE(inner.size() == 1);
  CHECK(inner[0] == offer_outcome::held_elsewhere);
  CHECK(reentrant.counts().held_elsewhere == 1);
  CHECK(reentrant.offer(e).value() == offer_outcome::duplicate);
}

TEST_CASE("a log read that meets an event held elsewhere keeps its checkpoint", "[reconciler]") {
  lasting_store kept;
  harness h(kept);
  fake_log log;
  log.events.push_back(event(1, start - 1min));
  log.events.push_back(event(2, start - 2min));
  // Another receiver process holds event 2 (it claimed it and is working on it).
  const auto elsewhere = h.store->claim(log.events[1].id, log.events[1].created).value();
  REQUIRE(elsewhere.mine());
  auto report = h.rec->read_log(log, unloc::access_log_query::project()).value();
  CHECK(report.read == 2);
  CHECK(report.recovered == 1);
  CHECK(report.held_elsewhere == 1);
  CHECK_FALSE(h.store->checkpoint("project").value().has_value());

  // Its work failed there.
  REQUIRE(h.store->release(log.events[1].id, elsewhere.token).value() ==
          unloc::settle_status::done);
  report = h.rec->read_log(log, unloc::access_log_query::project()).value();
  CHECK(report.recovered == 1);
  CHECK(report.held_elsewhere == 0);
  CHECK(h.store->checkpoint("project").value() == start);
  CHECK(h.handed.size() == 2);
}

// Review finding: a claim had no owner, so a handler that outlived the store's
// lease released (or marked) the claim of the call that had taken it over,
// and a third offer handed the event over while the second was still at work.
TEST_CASE("a handler that outlives its claim's lease neither frees nor ends the new holder's claim",
          "[reconciler]") {
  lasting_store kept;
  harness h(kept);  // its store's lease: the default 5 minutes
  const auto e = event(1, start);
  bool succeed = false;
  unloc::event_claim other;
  unloc::reconciler rec(h.store, [&](const access_event& offered, const unloc::handover&) {
    h.now += 6min;  // a slow handler: meanwhile another receiver takes the claim over
    other = h.store->claim(offered.id, offered.created).value();
    return succeed;
  });

  // The handler fails: its release must leave the other receiver's claim alone.
  REQUIRE_FALSE(rec.offer(e));
  REQUIRE(other.mine());
  REQUIRE(other.in_doubt);
  CHECK(h.store->claim(e.id, e.created).value().status == unloc::claim_status::held_elsewhere);

  // The handler succeeds, late: its mark is refused, the other receiver decides.
  const auto f = event(2, start);
  succeed = true;
  CHECK(rec.offer(f).value() == offer_outcome::held_elsewhere);
  REQUIRE(other.mine());
  CHECK(h.store->claim(f.id, f.created).value().status == unloc::claim_status::held_elsewhere);
  CHECK(rec.counts().lease_overruns == 1);
  CHECK(rec.counts().held_elsewhere == 1);
}

namespace {

// Two reconcilers (two receiver processes) over one shared store, with one clock the test moves.
struct two_readers {
  std::chrono::steady_clock::time_point store_now{};
  timestamp now = start;
  std::shared_ptr<unloc::memory_event_store> store =
      std::make_shared<unloc::memory_event_store>(unloc::memory_store_limits{},
                                                  [this] { return store_now; });
  std::function<void()> during_handler = [] {};
  std::size_t handed = 0;

  unloc::reconciler make(const std::string& holder) {
    unloc::reconciler_options options;
    options.log_lease = 2min;
    options.lease_holder = holder;
    options.clock = [this] { return now; };
    return {store,
            [this](const access_event&, const unloc::handover&) {
              ++handed;
              during_handler();
              return true;
            },
            options};
  }
  void advance(std::chrono::milliseconds d) {
    store_now += d;
    now += d;
  }
};

}  // namespace

TEST_CASE("of two reconcilers on one store, one reads a log; the other takes over when its lease "
          "runs out",
          "[reconciler]") {
  two_readers t;
  auto a = t.make("a");
  auto b = t.make("b");
  fake_log log;
  log.events.push_back(event(1, start - 1min));
  auto read_a = a.read_log(log, unloc::access_log_query::project()).value();
  CHECK_FALSE(read_a.lease_held_elsewhere);
  CHECK(read_a.recovered == 1);
  auto read_b = b.read_log(log, unloc::access_log_query::project()).value();
  CHECK(read_b.lease_held_elsewhere);
  CHECK(read_b.read == 0);
  CHECK(log.queries.size() == 1);  // B did not read the log at all

  t.advance(2min);  // A stopped (killed): nobody renewed its lease
  read_b = b.read_log(log, unloc::access_log_query::project()).value();
  CHECK_FALSE(read_b.lease_held_elsewhere);
  CHECK(read_b.read == 1);
  CHECK(read_b.recovered == 0);
  CHECK(t.store->checkpoint("project").value() == start + 2min);
  CHECK(a.read_log(log, unloc::access_log_query::project()).value().lease_held_elsewhere);
  CHECK(t.handed == 1);
}

TEST_CASE("a reader that stalls past its lease stops, and never moves the new holder's checkpoint",
          "[reconciler]") {
  two_readers t;
  auto a = t.make("a");
  auto b = t.make("b");
  fake_log log;
  for (std::uint32_t n = 0; n < 3; ++n) log.events.push_back(event(n, start - 1min * (n + 1)));
  bool stalled = false;
  t.during_handler = [&] {
    if (stalled) return;
    stalled = true;
    t.advance(3min);  // A stalls in its handler; B takes the lease over and reads
    auto read_b = b.read_log(fake_log{}, unloc::access_log_query::project()).value();
    REQUIRE_FALSE(read_b.lease_held_elsewhere);
  };
  auto read_a = a.read_log(log, unloc::access_log_query::project()).value();
  CHECK(read_a.lease_held_elsewhere);
  CHECK(read_a.read == 1);  // it stopped at its next renewal
  CHECK(t.store->checkpoint("project").value() == start + 3min);  // B's, not A's
}

TEST_CASE("a reader whose lease was taken over after its last renewal does not save its checkpoint",
          "[reconciler]") {
  two_readers t;
  auto a = t.make("a");
  fake_log log;
  log.events.push_back(event(1, start - 1min));
  t.during_handler = [&] {
    // By the store's clock, A's lease ran out during its last handler and B took it over.
    t.store_now += 3min;
    REQUIRE(t.store->acquire_log_lease("project", "b", 2min).value().has_value());
  };
  auto read_a = a.read_log(log, unloc::access_log_query::project()).value();
  CHECK(read_a.lease_held_elsewhere);
  CHECK(read_a.read == 1);
  CHECK_FALSE(t.store->checkpoint("project").value().has_value());
}

#include "catch.hpp"

#include <unloc/event_store.hpp>

#include "fixtures.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using unloc::claim_status;
using unloc::memory_event_store;
using unloc::uuid;

uuid id(std::uint32_t n) { return unit::numbered_id(n); }

const unloc::timestamp created = unloc::parse_timestamp("2022-01-01T10:35:24.083Z").value();

// A steady clock that moves only when the test moves it.
struct fake_clock {
  std::chrono::steady_clock::time_point now{};
  memory_event_store::clock_function function() {
    return [this] { return now; };
  }
};

memory_event_store::clock_function frozen() {
  return [] { return std::chrono::steady_clock::time_point{}; };
}

unloc::memory_store_limits limits(std::size_t max_entries,
                                  std::chrono::milliseconds max_age = std::chrono::hours(24 * 31)) {
  unloc::memory_store_limits l;
  l.max_entries = max_entries;
  l.max_age = max_age;
  return l;
}

constexpr auto done = unloc::settle_status::done;
constexpr auto not_owner = unloc::settle_status::not_owner;

claim_status claim(unloc::event_store& store, const uuid& event) {
  return store.claim(event, created).value().status;
}

// Claims `event`, which must be free: the claim's token.
unloc::claim_token mine(unloc::event_store& store, const uuid& event) {
  const auto c = store.claim(event, created).value();
  REQUIRE(c.mine());
  return c.token;
}

// Claims and marks `event`, as a caller whose work succeeded; true when it was new.
bool handle(unloc::event_store& store, const uuid& event) {
  const auto c = store.claim(event, created).value();
  if (!c.mine()) return false;
  REQUIRE(store.mark_handled(event, c.token).value() == done);
  return true;
}

}  // namespace

TEST_CASE("an event is mine to handle the first time, and already handled once marked",
          "[event_store]") {
  memory_event_store memory;
  unloc::event_store& store = memory;
  const auto first = store.claim(id(1), created).value();
  CHECK(first.mine());
  CHECK_FALSE(first.in_doubt);
  REQUIRE(store.mark_handled(id(1), first.token).value() == done);
  CHECK(claim(store, id(1)) == claim_status::already_handled);
  CHECK(claim(store, id(1)) == claim_status::already_handled);
  CHECK(memory.handled(id(1)));
  CHECK_FALSE(memory.handled(id(2)));
  CHECK(handle(store, id(2)));
  CHECK(memory.size() == 2);
  REQUIRE(store.mark_handled(id(2), 0).value() == done);  // marking twice changes nothing
  CHECK(memory.size() == 2);
}

TEST_CASE("a claim excludes the others until it is marked or released", "[event_store]") {
  memory_event_store store;
  const auto first = mine(store, id(1));
  CHECK(claim(store, id(1)) == claim_status::held_elsewhere);
  CHECK(claim(store, id(2)) == claim_status::mine);  // another event is not held up
  CHECK_FALSE(store.handled(id(1)));

  REQUIRE(store.release(id(1), first).value() == done);
  CHECK(store.release(id(1), first).value() == not_owner);  // released once only
  const auto again = store.claim(id(1), created).value();
  CHECK(again.mine());
  CHECK_FALSE(again.in_doubt);  // released: its work was not done
  CHECK(again.token != first);
  CHECK(store.mark_handled(id(1), first).value() == not_owner);  // the old claim's
  CHECK_FALSE(store.handled(id(1)));
  REQUIRE(store.mark_handled(id(1), again.token).value() == done);
  CHECK(claim(store, id(1)) == claim_status::already_handled);
  // A release after the mark changes nothing.
  REQUIRE(store.release(id(1), again.token).value() == not_owner);
  CHECK(claim(store, id(1)) == claim_status::already_handled);
  REQUIRE(store.release(id(99), 0).value() == not_owner);  // nor one of an event never claimed
}

TEST_CASE("a claim held past its lease is taken over, flagged in doubt", "[event_store]") {
  fake_clock clock;
  unloc::memory_store_limits l;
  l.claim_lease = 1min;
  memory_event_store store(l, clock.function());
  REQUIRE(claim(store, id(1)) == claim_status::mine);
  clock.now += 1min - 1ms;
  CHECK(claim(store, id(1)) == claim_status::held_elsewhere);
  clock.now += 1ms;
  const auto taken = store.claim(id(1), created).value();
  CHECK(taken.mine());
  CHECK(taken.in_doubt);
  CHECK(claim(store, id(1)) == claim_status::held_elsewhere);  // the new holder has a new lease
}

TEST_CASE("checkpoints are kept per scope and never move backwards", "[event_store]") {
  memory_event_store store;
  CHECK_FALSE(store.checkpoint("project").value().has_value());
  REQUIRE(store.save_checkpoint("project", created));
  REQUIRE(store.save_checkpoint("project", created - 1h));
  CHECK(store.checkpoint("project").value() == created);
  CHECK_FALSE(store.checkpoint("other").value().has_value());
}

TEST_CASE("a log lease goes to one holder at a time, and to another when it runs out",
          "[event_store]") {
  fake_clock clock;
  memory_event_store store({}, clock.function());
  const auto a = store.acquire_log_lease("project", "a", 1min).value();
  REQUIRE(a.has_value());
  CHECK_FALSE(store.acquire_log_lease("project", "b", 1min).value().has_value());
  CHECK(store.acquire_log_lease("lock", "b", 1min).value().has_value());  // another log is free
  clock.now += 50s;
  CHECK(store.acquire_log_lease("project", "a", 1min).value() == a);  // renewed, same token
  clock.now += 50s;
  CHECK_FALSE(store.acquire_log_lease("project", "b", 1min).value().has_value());
  clock.now += 10s;
  const auto b = store.acquire_log_lease("project", "b", 1min).value();
  REQUIRE(b.has_value());
  CHECK(*b > *a);
  CHECK_FALSE(store.acquire_log_lease("project", "a", 1min).value().has_value());
}

TEST_CASE("only the newest lease moves a checkpoint", "[event_store]") {
  fake_clock clock;
  memory_event_store store({}, clock.function());
  const auto a = *store.acquire_log_lease("project", "a", 1min).value();
  REQUIRE(store.save_checkpoint("project", created, a).value() == done);
  CHECK(store.save_checkpoint("lock", created, a).value() == not_owner);  // no lease there
  clock.now += 2min;
  const auto b = *store.acquire_log_lease("project", "b", 1min).value();
  // A stalled past its lease and comes back: it never moves B's checkpoint.
  CHECK(store.save_checkpoint("project", created + 1h, a).value() == not_owner);
  CHECK(store.checkpoint("project").value() == created);
  REQUIRE(store.save_checkpoint("project", created + 2h, b).value() == done);
  REQUIRE(store.save_checkpoint("project", created + 1h, b).value() == done);  // never backwards
  CHECK(store.checkpoint("project").value() == created + 2h);
}

// A store with only what every store must have: the defaults of the rest.
struct minimal_store : unloc::event_store {
  memory_event_store inner;
  unloc::result<unloc::event_claim> claim(const uuid& id, unloc::timestamp t) override {
    return inner.claim(id, t);
  }
  unloc::result<unloc::settle_status> mark_handled(const uuid& id,
                                                   unloc::claim_token token) override {
    return inner.mark_handled(id, token);
  }
  unloc::result<unloc::settle_status> release(const uuid& id, unloc::claim_token token) override {
    return inner.release(id, token);
  }
  unloc::result<std::optional<unloc::timestamp>> checkpoint(const std::string& scope) override {
    return inner.checkpoint(scope);
  }
  unloc::result<void> save_checkpoint(const std::string& scope, unloc::timestamp t) override {
    return inner.save_checkpoint(scope, t);
  }
};

TEST_CASE("a store one process owns: marks events by id, always grants the lease, works",
          "[event_store]") {
  minimal_store store;
  unloc::event_store& base = store;
  auto event = unloc::access_event{};
  event.id = id(1);
  const auto token = mine(base, event.id);
  REQUIRE(base.mark_handled(event, unloc::event_source::access_log, token).value() == done);
  CHECK(claim(base, event.id) == claim_status::already_handled);
  CHECK(base.acquire_log_lease("project", "a", 1min).value() == std::optional<std::uint64_t>{1});
  CHECK(base.acquire_log_lease("project", "b", 1min).value() == std::optional<std::uint64_t>{1});
  REQUIRE(base.save_checkpoint("project", created, 1).value() == done);
  CHECK(base.checkpoint("project").value() == created);
  CHECK(base.check());
}

// A store that overrides one overload of record_once and, as event_store's
// documentation says, brings in the other with `using`: both callable through
// its own type (without the `using`, the three-argument call does not compile).
struct counting_store final : minimal_store {
  using unloc::event_store::record_once;
  int records = 0;
  unloc::result<unloc::handle_status> record_once(const unloc::access_event& event,
                                                  unloc::event_source source) override {
    ++records;
    return unloc::event_store::record_once(event, source);
  }
};

TEST_CASE("a store overriding one record_once keeps the other callable through its own type",
          "[event_store]") {
  counting_store store;
  auto event = unloc::access_event{};
  event.id = id(1);
  int runs = 0;
  const auto work = [&runs](bool possibly_repeated) {
    ++runs;
    return !possibly_repeated;
  };
  CHECK(store.record_once(event, unloc::event_source::webhook, work).value() ==
        unloc::handle_status::handled);
  CHECK(runs == 1);
  event.id = id(2);
  CHECK(store.record_once(event, unloc::event_source::webhook).value() ==
        unloc::handle_status::handled);
  CHECK(store.records == 1);
  CHECK(store.record_once(event, unloc::event_source::webhook, work).value() ==
        unloc::handle_status::already_handled);
  CHECK(runs == 1);
}

TEST_CASE("forgets the oldest id first when the count bound is reached", "[event_store]") {
  memory_event_store store(limits(3), frozen());
  REQUIRE(handle(store, id(1)));
  REQUIRE(handle(store, id(2)));
  REQUIRE(handle(store, id(3)));
  CHECK(store.size() == 3);

  REQUIRE(handle(store, id(4)));
  CHECK(store.size() == 3);
  CHECK_FALSE(store.handled(id(1)));
  CHECK(store.handled(id(2)));
  CHECK(store.handled(id(3)));
  CHECK(store.handled(id(4)));

  // A repeat does not make an id younger: 2 is still the oldest.
  CHECK_FALSE(handle(store, id(2)));
  REQUIRE(handle(store, id(5)));
  CHECK_FALSE(store.handled(id(2)));
  CHECK(store.handled(id(3)));

  // A forgotten id is new again.
  CHECK(handle(store, id(1)));
}

TEST_CASE("never holds more ids than its bound", "[event_store]") {
  memory_event_store store(limits(5), frozen());
  for (std::uint32_t n = 0; n < 200; ++n) {
    if (n % 7 == 0 && n < 150) {
      REQUIRE(store.release(id(1000 + n), mine(store, id(1000 + n))).value() == done);
    }
    REQUIRE(handle(store, id(n)));
    REQUIRE(store.size() <= 5);
  }
  CHECK(store.size() == 5);
  for (std::uint32_t n = 195; n < 200; ++n) CHECK(store.handled(id(n)));
}

TEST_CASE("forgets an id max_age after it was first claimed", "[event_store]") {
  fake_clock clock;
  memory_event_store store(limits(100, 1h), clock.function());
  const auto start = clock.now;

  REQUIRE(handle(store, id(1)));
  clock.now = start + 30min;
  REQUIRE(handle(store, id(2)));

  // A repeat delivery does not extend how long the id is remembered.
  clock.now = start + 1h - 1ms;
  CHECK_FALSE(handle(store, id(1)));

  clock.now = start + 1h;
  CHECK_FALSE(store.handled(id(1)));
  CHECK(handle(store, id(1)));
  CHECK_FALSE(handle(store, id(2)));

  clock.now = start + 90min;
  CHECK(handle(store, id(2)));
  CHECK(store.size() == 2);
}

TEST_CASE("an id released and claimed again is not evicted by its stale entry for the count bound",
          "[event_store]") {
  memory_event_store store(limits(2), frozen());
  const auto token = mine(store, id(1));
  REQUIRE(handle(store, id(2)));
  REQUIRE(store.release(id(1), token).value() == done);
  REQUIRE(handle(store, id(1)));  // now younger than 2

  REQUIRE(handle(store, id(3)));
  CHECK(store.handled(id(1)));
  CHECK_FALSE(store.handled(id(2)));
  CHECK(store.handled(id(3)));
  CHECK(store.size() == 2);
}

TEST_CASE("an id released and claimed again is remembered max_age from its new claim",
          "[event_store]") {
  fake_clock clock;
  memory_event_store store(limits(100, 1h), clock.function());
  const auto start = clock.now;

  const auto token = mine(store, id(1));
  clock.now = start + 10min;
  REQUIRE(store.release(id(1), token).value() == done);
  REQUIRE(handle(store, id(1)));

  // The first entry's hour is over; the second one's is not.
  clock.now = start + 1h;
  REQUIRE(handle(store, id(2)));
  CHECK(store.handled(id(1)));
  CHECK_FALSE(handle(store, id(1)));

  clock.now = start + 70min;
  CHECK(handle(store, id(1)));
}

TEST_CASE("of many threads claiming the same ids, exactly one claim of each is mine",
          "[event_store]") {
  constexpr std::uint32_t ids = 10'000;
  constexpr int threads = 8;
  memory_event_store store;
  std::atomic<std::size_t> mine{0};
  std::promise<void> go;
  const std::shared_future<void> start = go.get_future().share();

  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&store, &mine, start] {
      start.wait();
      std::size_t won = 0;
      for (std::uint32_t n = 0; n < ids; ++n) {
        const auto c = store.claim(id(n), created);
        if (c && c->mine()) {
          ++won;
          (void)store.mark_handled(id(n), c->token);
        }
      }
      mine += won;
    });
  }
  go.set_value();
  for (auto& worker : workers) worker.join();

  CHECK(mine.load() == ids);
  CHECK(store.size() == ids);
  for (std::uint32_t n = 0; n < ids; n += 997) CHECK(store.handled(id(n)));
}

TEST_CASE("released claims never push a handled id out before max_entries is reached",
          "[event_store]") {
  memory_event_store store(limits(3), frozen());
  REQUIRE(handle(store, id(1)));
  for (std::uint32_t n = 10; n < 15; ++n) {
    REQUIRE(store.release(id(n), mine(store, id(n))).value() == done);
  }
  REQUIRE(handle(store, id(2)));  // 2 ids remembered, the bound is 3
  CHECK(store.handled(id(1)));
  CHECK(claim(store, id(1)) == claim_status::already_handled);
}

TEST_CASE("a claim in doubt that is released stays in doubt for the next claim", "[event_store]") {
  fake_clock clock;
  unloc::memory_store_limits l;
  l.claim_lease = 1min;
  memory_event_store store(l, clock.function());
  REQUIRE(claim(store, id(1)) == claim_status::mine);
  clock.now += 1min;  // its holder died
  const auto taken = store.claim(id(1), created).value();
  REQUIRE(taken.in_doubt);
  // The new holder's work failed: the first one's may not have.
  REQUIRE(store.release(id(1), taken.token).value() == done);
  const auto next = store.claim(id(1), created).value();
  CHECK(next.mine());
  CHECK(next.in_doubt);
  REQUIRE(store.mark_handled(id(1), next.token).value() == done);
  CHECK(claim(store, id(1)) == claim_status::already_handled);
}

// Review finding: a claim had no owner, so the holder whose lease ran out freed
// its successor's claim with a late release, and a third caller got the event
// while the second was still working on it.
TEST_CASE("a late release or mark by a holder whose claim was taken over changes nothing",
          "[event_store]") {
  fake_clock clock;
  unloc::memory_store_limits l;
  l.claim_lease = 5min;
  memory_event_store store(l, clock.function());
  const auto a = mine(store, id(1));
  clock.now += 6min;  // A outlives its lease
  const auto b = store.claim(id(1), created).value();
  REQUIRE(b.mine());
  REQUIRE(b.in_doubt);
  CHECK(store.release(id(1), a).value() == not_owner);         // A, late
  CHECK(claim(store, id(1)) == claim_status::held_elsewhere);  // C: B is working
  CHECK(store.mark_handled(id(1), a).value() == not_owner);    // A, late again
  CHECK_FALSE(store.handled(id(1)));
  CHECK(claim(store, id(1)) == claim_status::held_elsewhere);
  REQUIRE(store.mark_handled(id(1), b.token).value() == done);
  CHECK(claim(store, id(1)) == claim_status::already_handled);
}

TEST_CASE("keeps every id through many claims, marks and releases in any order",
          "[event_store]") {
  // The ids live in an open-addressing table: a release empties a slot and
  // moves later ones back. Against a plain map, over 20,000 random steps on
  // 3,000 ids (no bound reached, nothing expires), every answer must agree.
  enum class held { claimed, handled };
  struct kept {
    held state;
    unloc::claim_token token;
  };
  memory_event_store store(limits(1'000'000), frozen());
  std::map<std::uint32_t, kept> model;
  std::mt19937 random(20261206);
  for (int step = 0; step < 20'000; ++step) {
    const auto n = static_cast<std::uint32_t>(random() % 3000);
    const auto found = model.find(n);
    switch (random() % 3) {
      case 0: {  // claim
        const auto c = store.claim(id(n), created).value();
        if (found == model.end()) {
          REQUIRE(c.mine());
          REQUIRE_FALSE(c.in_doubt);
          model[n] = kept{held::claimed, c.token};
        } else {
          REQUIRE(c.status == (found->second.state == held::handled
                                   ? claim_status::already_handled
                                   : claim_status::held_elsewhere));
        }
        break;
      }
      case 1:  // mark
        if (found != model.end() && found->second.state == held::claimed) {
          REQUIRE(store.mark_handled(id(n), found->second.token).value() == done);
          found->second.state = held::handled;
        }
        break;
      default:  // release
        if (found != model.end() && found->second.state == held::claimed) {
          REQUIRE(store.release(id(n), found->second.token).value() == done);
          model.erase(found);
        } else if (found == model.end()) {
          REQUIRE(store.release(id(n), 1).value() == not_owner);
        }
        break;
    }
  }
  REQUIRE(store.size() == model.size());
  for (std::uint32_t n = 0; n < 3000; ++n) {
    const auto found = model.find(n);
    CHECK(store.handled(id(n)) == (found != model.end() && found->second.state == held::handled));
  }
}

#pragma once

// The store contract: what every event_store over a database does, checked
// by each engine's tests (tests/stores/<engine>_store_test.cpp) on a fresh
// database. An engine's test provides an `engine` and calls
// `check_store_contract` from one TEST_CASE: each SECTION runs on its own
// fresh engine (Catch2 runs the test case again for each).

#include <unloc/access_event.hpp>
#include <unloc/event_store.hpp>
#include <unloc/testing.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/uuid.hpp>

#include "catch.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace store_contract {

/// One row of the events table, each column as the store wrote it.
struct event_row {
  std::string id;
  std::string action;
  std::string created;
  std::string key_id;
  std::string lock_id;
  std::string lock_name;
  std::optional<std::string> app_user_id;
  std::optional<std::string> user_name;
  std::string extra;
  std::string source;
  std::string received_at;
  std::int64_t lag_ms = 0;
};

/// What an engine's tests provide: stores over one fresh database, timed by
/// one clock the contract moves, and a look at the events table.
class engine {
 public:
  virtual ~engine() = default;
  /// A new store with its own connection to the engine's database, whose
  /// claims hold for `claim_lease`, timed by the engine's clock.
  virtual std::shared_ptr<unloc::event_store> open(std::chrono::milliseconds claim_lease) = 0;
  /// Every row of the events table, ordered by id.
  virtual std::vector<event_row> events() = 0;
  /// Moves the engine's clock (every store it opened) forward by `d`.
  virtual void advance(std::chrono::milliseconds d) = 0;
  /// The engine's clock now.
  virtual unloc::timestamp now() = 0;
  /// `store` (one this engine opened) forgets its old claims now: how many.
  virtual unloc::result<std::uint64_t> forget_old_claims(unloc::event_store& store) = 0;
  /// Deletes every row of the events table, as an integrator pruning it would.
  virtual void delete_events() = 0;
};

inline unloc::uuid numbered(std::uint32_t n) {
  std::array<std::uint8_t, 16> bytes{};
  bytes[0] = 0x5c;
  bytes[12] = static_cast<std::uint8_t>(n >> 24);
  bytes[13] = static_cast<std::uint8_t>(n >> 16);
  bytes[14] = static_cast<std::uint8_t>(n >> 8);
  bytes[15] = static_cast<std::uint8_t>(n);
  return unloc::uuid(bytes);
}

inline unloc::access_event numbered_event(std::uint32_t n, unloc::timestamp created) {
  auto e = unloc::testing::sample_access_event();
  e.id = numbered(n);
  e.created = created;
  return e;
}

// Claims `id`, which must be free: the claim's token.
inline unloc::claim_token mine(unloc::event_store& store, const unloc::uuid& id,
                               unloc::timestamp created) {
  const auto c = store.claim(id, created).value();
  REQUIRE(c.mine());
  REQUIRE(c.token != 0);
  return c.token;
}

/// Checks `e` against the whole contract, one SECTION a rule.
inline void check_store_contract(engine& e) {
  using namespace std::chrono_literals;
  using unloc::claim_status;
  constexpr auto done = unloc::settle_status::done;
  constexpr auto not_owner = unloc::settle_status::not_owner;
  const auto created = e.now() - 1h;
  auto store = e.open(1min);
  const auto status = [&](const unloc::uuid& id) {
    return store->claim(id, created).value().status;
  };

  SECTION("an event is mine the first time, and already handled once marked") {
    const auto first = store->claim(numbered(1), created).value();
    CHECK(first.mine());
    CHECK_FALSE(first.in_doubt);
    REQUIRE(store->mark_handled(numbered(1), first.token).value() == done);
    CHECK(status(numbered(1)) == claim_status::already_handled);
    CHECK(store->mark_handled(numbered(1), first.token).value() == done);  // twice: no change
    CHECK(store->mark_handled(numbered(1), 0).value() == done);
    CHECK(status(numbered(1)) == claim_status::already_handled);
    CHECK(store->release(numbered(1), first.token).value() == not_owner);
    CHECK(status(numbered(1)) == claim_status::already_handled);
  }

  SECTION("a claim excludes the others until it is marked or released") {
    const auto first = mine(*store, numbered(1), created);
    CHECK(status(numbered(1)) == claim_status::held_elsewhere);
    CHECK(status(numbered(2)) == claim_status::mine);  // another event is not held up
    REQUIRE(store->release(numbered(1), first).value() == done);
    CHECK(store->release(numbered(1), first).value() == not_owner);  // released once only
    const auto again = store->claim(numbered(1), created).value();
    CHECK(again.mine());
    CHECK_FALSE(again.in_doubt);  // released: its work was not done
    CHECK(again.token != first);
    CHECK(store->mark_handled(numbered(1), first).value() == not_owner);  // the old claim's
    CHECK(store->release(numbered(1), 0).value() == not_owner);
    REQUIRE(store->mark_handled(numbered(1), again.token).value() == done);
    CHECK(status(numbered(1)) == claim_status::already_handled);
    CHECK(store->release(numbered(99), 1).value() == not_owner);  // never claimed
  }

  SECTION("a claim held past its lease is taken over, in doubt; the old holder changes nothing") {
    const auto first = mine(*store, numbered(1), created);
    e.advance(1min - 1ms);
    CHECK(status(numbered(1)) == claim_status::held_elsewhere);
    e.advance(1ms);
    const auto taken = store->claim(numbered(1), created).value();
    REQUIRE(taken.mine());
    CHECK(taken.in_doubt);
    CHECK(status(numbered(1)) == claim_status::held_elsewhere);  // the new holder's lease
    CHECK(store->release(numbered(1), first).value() == not_owner);
    CHECK(store->mark_handled(numbered(1), first).value() == not_owner);
    CHECK(status(numbered(1)) == claim_status::held_elsewhere);

    SECTION("released, it stays in doubt for the next claim") {
      REQUIRE(store->release(numbered(1), taken.token).value() == done);
      const auto next = store->claim(numbered(1), created).value();
      CHECK(next.mine());
      CHECK(next.in_doubt);
    }
    SECTION("marked by the new holder, it is handled") {
      REQUIRE(store->mark_handled(numbered(1), taken.token).value() == done);
      CHECK(status(numbered(1)) == claim_status::already_handled);
    }
  }

  SECTION(
      "claims are forgotten past the retention after both the event's creation and its "
      "first sighting, never a live one; rows stay") {
    const auto old = e.now() - 24h * 40;  // the default retention is 31 days
    // Reported late (created 40 days ago, seen now): its delivery may still be repeated.
    const auto late = mine(*store, numbered(1), old);
    REQUIRE(
        store->mark_handled(numbered_event(1, old), unloc::event_source::webhook, late).value() ==
        done);
    const auto released = mine(*store, numbered(2), old);
    REQUIRE(store->release(numbered(2), released).value() == done);  // gone: never in doubt
    (void)mine(*store, numbered(3), old);                            // held, its lease running
    const auto recent = mine(*store, numbered(4), created);
    REQUIRE(store->mark_handled(numbered_event(4, created), unloc::event_source::webhook, recent)
                .value() == done);
    REQUIRE(store->mark_handled(numbered(5), 12345).value() == done);  // an id not kept: now
    // In doubt, then released: free.
    const auto doubtful = mine(*store, numbered(6), old);
    e.advance(2min);
    const auto taken = store->claim(numbered(6), old).value();
    REQUIRE(taken.in_doubt);
    REQUIRE(store->release(numbered(6), taken.token).value() == done);
    (void)doubtful;
    CHECK(e.forget_old_claims(*store).value() == 0);  // every one seen within the retention
    CHECK(status(numbered(1)) == claim_status::already_handled);  // a repeated late delivery

    e.advance(24h * 32);                   // past the retention since they were seen
    (void)mine(*store, numbered(3), old);  // its lease ran out: claimed again, a live claim
    CHECK(e.forget_old_claims(*store).value() == 4);  // 1, 4, 5 (handled), 6 (free)
    CHECK(e.forget_old_claims(*store).value() == 0);
    CHECK(store->claim(numbered(3), old).value().status == claim_status::held_elsewhere);
    CHECK(store->claim(numbered(1), old).value().mine());  // forgotten: Unloc no longer sends it
    CHECK(store->claim(numbered(5), old).value().mine());
    CHECK(e.events().size() == 2);  // the events table keeps both rows
    e.advance(2min);  // numbered(3)'s lease ran out: it goes; numbered(1), seen anew, stays
    CHECK(e.forget_old_claims(*store).value() == 1);
    CHECK(store->claim(numbered(3), old).value().mine());
  }

  SECTION("record_once records an event once with its row, never over a live claim") {
    using unloc::handle_status;
    const auto webhook = unloc::event_source::webhook;
    const auto event = numbered_event(1, created);
    CHECK(store->record_once(event, webhook).value() == handle_status::handled);
    CHECK(store->record_once(event, unloc::event_source::access_log).value() ==
          handle_status::already_handled);
    CHECK(status(numbered(1)) == claim_status::already_handled);
    REQUIRE(e.events().size() == 1);
    CHECK(e.events()[0].source == "webhook");
    const auto held = numbered_event(2, created);
    const auto token = mine(*store, held.id, held.created);
    CHECK(store->record_once(held, webhook).value() == handle_status::held_elsewhere);
    CHECK(e.events().size() == 1);
    e.advance(2min);  // the claim's lease ran out: the record takes the event
    CHECK(store->record_once(held, webhook).value() == handle_status::handled);
    CHECK(store->release(held.id, token).value() == not_owner);
    CHECK(status(numbered(2)) == claim_status::already_handled);
    CHECK(e.events().size() == 2);
  }

  SECTION("record_once with work: the work runs before the mark, which needs its confirmation") {
    using unloc::handle_status;
    const auto webhook = unloc::event_source::webhook;
    const auto event = numbered_event(3, created);
    int runs = 0;
    bool repeated = true;
    const auto work = [&](bool confirm) {
      return [&, confirm](bool possibly_repeated) {
        ++runs;
        repeated = possibly_repeated;
        return confirm;
      };
    };
    auto declined = store->record_once(event, webhook, work(false));
    REQUIRE_FALSE(declined);
    CHECK(declined.error().field == "handler");
    CHECK(runs == 1);
    CHECK_FALSE(repeated);
    auto thrown = store->record_once(event, webhook, [&](bool) -> bool {
      ++runs;
      throw std::runtime_error("stdout is closed");
    });
    CHECK_FALSE(thrown);
    CHECK(runs == 2);
    CHECK(e.events().empty());
    const auto probe = store->claim(numbered(3), created).value();  // nothing held nor marked
    CHECK(probe.mine());
    CHECK_FALSE(probe.in_doubt);
    REQUIRE(store->release(numbered(3), probe.token).value() == done);
    CHECK(store->record_once(event, webhook, work(true)).value() == handle_status::handled);
    CHECK(runs == 3);
    CHECK_FALSE(repeated);
    CHECK(store->record_once(event, unloc::event_source::access_log, work(true)).value() ==
          handle_status::already_handled);
    CHECK(runs == 3);
    REQUIRE(e.events().size() == 1);
    CHECK(e.events()[0].source == "webhook");
    // A live claim: the work does not run. Its lease run out (its holder stopped), the
    // work runs, told that the holder's may have had its effect.
    const auto held = numbered_event(4, created);
    const auto token = mine(*store, held.id, held.created);
    CHECK(store->record_once(held, webhook, work(true)).value() == handle_status::held_elsewhere);
    CHECK(runs == 3);
    e.advance(2min);
    CHECK(store->record_once(held, webhook, work(true)).value() == handle_status::handled);
    CHECK(runs == 4);
    CHECK(repeated);
    CHECK(store->release(held.id, token).value() == not_owner);
    CHECK(e.events().size() == 2);
  }

  SECTION("rows deleted from the events table (pruned) leave their events handled") {
    using unloc::handle_status;
    const auto webhook = unloc::event_source::webhook;
    const auto first = numbered_event(1, created);
    const auto second = numbered_event(2, created);
    CHECK(store->record_once(first, webhook).value() == handle_status::handled);
    const unloc::event_store::record_work confirm = [](bool) { return true; };
    CHECK(store->record_once(second, webhook, confirm).value() == handle_status::handled);
    e.delete_events();
    bool ran = false;
    const unloc::event_store::record_work spy = [&ran](bool) { return ran = true; };
    CHECK(store->record_once(first, webhook).value() == handle_status::already_handled);
    CHECK(store->record_once(second, webhook, spy).value() == handle_status::already_handled);
    CHECK_FALSE(ran);
    CHECK(status(numbered(1)) == claim_status::already_handled);
    CHECK(e.events().empty());
  }

  SECTION("a mark of an event the store does not keep records it") {
    REQUIRE(store->mark_handled(numbered(5), 12345).value() == done);
    CHECK(status(numbered(5)) == claim_status::already_handled);
  }

  SECTION("the mark with the event writes its row once, with every field") {
    auto event = numbered_event(1, created);
    event.extra = {{"battery", "87"}, {"geo", R"({"lat":59.91,"lon":10.75})"}, {"n\"ote", "null"}};
    event.user_name.reset();
    const auto token = mine(*store, event.id, event.created);
    CHECK(e.events().empty());  // a claim writes no row
    REQUIRE(store->mark_handled(event, unloc::event_source::access_log, token).value() == done);
    e.advance(1s);
    REQUIRE(store->mark_handled(event, unloc::event_source::webhook, token).value() == done);
    const auto rows = e.events();
    REQUIRE(rows.size() == 1);
    const auto& row = rows[0];
    CHECK(row.id == event.id.to_string());
    CHECK(row.action == "unlocked");
    CHECK(row.created == unloc::format_timestamp(event.created));
    CHECK(row.key_id == event.key_id.to_string());
    CHECK(row.lock_id == event.lock_id.to_string());
    CHECK(row.lock_name == "North gate");
    CHECK(row.app_user_id == std::optional<std::string>("+12125552390"));
    CHECK_FALSE(row.user_name.has_value());
    CHECK(row.extra == R"({"battery":87,"geo":{"lat":59.91,"lon":10.75},"n\"ote":null})");
    CHECK(row.source == "access_log");  // the first mark's
    CHECK(row.received_at == unloc::format_timestamp(e.now() - 1s));
    CHECK(row.lag_ms == 3'600'000);
  }

  SECTION("a mark refused, not_owner, writes no row") {
    const auto event = numbered_event(1, created);
    const auto first = mine(*store, event.id, event.created);
    REQUIRE(store->release(event.id, first).value() == done);
    const auto second = mine(*store, event.id, event.created);
    CHECK(store->mark_handled(event, unloc::event_source::webhook, first).value() == not_owner);
    CHECK(e.events().empty());
    REQUIRE(store->mark_handled(event, unloc::event_source::webhook, second).value() == done);
    CHECK(e.events().size() == 1);
  }

  SECTION(
      "an event with an action this SDK does not know keeps its text; an anonymized one "
      "has no phone number") {
    auto event = numbered_event(1, created);
    event.action = unloc::access_action::unknown;
    event.action_text = "jammed";
    event.app_user_id.reset();
    event.user_name = "Ola";
    REQUIRE(store
                ->mark_handled(event, unloc::event_source::webhook,
                               mine(*store, event.id, event.created))
                .value() == done);
    const auto rows = e.events();
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].action == "jammed");
    CHECK_FALSE(rows[0].app_user_id.has_value());
    CHECK(rows[0].user_name == std::optional<std::string>("Ola"));
    CHECK(rows[0].extra == "{}");
    CHECK(rows[0].source == "webhook");
  }

  SECTION("checkpoints are kept per scope and never move backwards") {
    CHECK_FALSE(store->checkpoint("project").value().has_value());
    REQUIRE(store->save_checkpoint("project", created));
    REQUIRE(store->save_checkpoint("project", created - 1h));
    CHECK(store->checkpoint("project").value() == created);
    const std::string hostile = "'; DROP TABLE unloc_events; --\xe2\x9c\x93";
    REQUIRE(store->save_checkpoint(hostile, created + 1h));
    CHECK(store->checkpoint(hostile).value() == created + 1h);
    CHECK(store->checkpoint("project").value() == created);
  }

  SECTION("a log lease goes to one holder at a time, and its token fences the checkpoint") {
    const auto a = store->acquire_log_lease("project", "a", 1min).value();
    REQUIRE(a.has_value());
    CHECK_FALSE(store->acquire_log_lease("project", "b", 1min).value().has_value());
    CHECK(store->acquire_log_lease("lock", "b", 1min).value().has_value());  // another log
    e.advance(50s);
    CHECK(store->acquire_log_lease("project", "a", 1min).value() == a);  // renewed
    e.advance(50s);
    CHECK_FALSE(store->acquire_log_lease("project", "b", 1min).value().has_value());
    REQUIRE(store->save_checkpoint("project", created, *a).value() == done);
    e.advance(10s + 1ms);
    const auto b = store->acquire_log_lease("project", "b", 1min).value();
    REQUIRE(b.has_value());
    CHECK(*b > *a);
    CHECK_FALSE(store->acquire_log_lease("project", "a", 1min).value().has_value());
    // A stalled past its lease, and comes back: it never moves B's checkpoint.
    CHECK(store->save_checkpoint("project", created + 1h, *a).value() == not_owner);
    CHECK(store->checkpoint("project").value() == created);
    REQUIRE(store->save_checkpoint("project", created + 2h, *b).value() == done);
    CHECK(store->checkpoint("project").value() == created + 2h);
    CHECK(store->save_checkpoint("other", created, *b).value() == not_owner);  // no lease there
  }

  SECTION(
      "another store over the same database sees everything (a restart, or a second "
      "process)") {
    const auto event = numbered_event(1, created);
    REQUIRE(store
                ->mark_handled(event, unloc::event_source::webhook,
                               mine(*store, event.id, event.created))
                .value() == done);
    const auto held = mine(*store, numbered(2), created);
    REQUIRE(store->save_checkpoint("project", created));
    REQUIRE(store->acquire_log_lease("project", "a", 1min).value().has_value());
    auto other = e.open(1min);
    CHECK(other->claim(event.id, created).value().status == claim_status::already_handled);
    CHECK(other->claim(numbered(2), created).value().status == claim_status::held_elsewhere);
    CHECK(other->checkpoint("project").value() == created);
    CHECK_FALSE(other->acquire_log_lease("project", "b", 1min).value().has_value());
    CHECK(other->release(numbered(2), held).value() == done);  // the token works across stores
    CHECK(store->claim(numbered(2), created).value().mine());
    store.reset();
    CHECK(other->check());
  }

  SECTION("claims and both record_once from many threads on two stores: each event handled once") {
    auto other = e.open(1min);
    constexpr std::uint32_t events = 200;
    std::array<std::atomic<int>, events> won{};
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < 8; ++t) {
      auto& s = t % 2 == 0 ? *store : *other;
      threads.emplace_back([&s, &won, &failures, created, t] {
        for (std::uint32_t i = 0; i < events; ++i) {
          const std::uint32_t n = (i * 7 + static_cast<std::uint32_t>(t) * 13) % events;
          if (t >= 6) {  // the record with work, which declines one event in ten
            bool ran = false;
            auto r = s.record_once(numbered_event(n, created), unloc::event_source::webhook,
                                   [&](bool) { return !(ran = true) || n % 10 != 0; });
            if (!r && !(ran && n % 10 == 0)) ++failures;
            if (r && *r == unloc::handle_status::handled) ++won[n];
            continue;
          }
          if (t >= 4) {  // the one-step record, beside the claims of the others
            auto r = s.record_once(numbered_event(n, created), unloc::event_source::webhook);
            if (!r) ++failures;
            if (r && *r == unloc::handle_status::handled) ++won[n];
            continue;
          }
          auto c = s.claim(numbered(n), created);
          if (!c) {
            ++failures;
            continue;
          }
          if (!c->mine()) continue;
          ++won[n];
          auto event = numbered_event(n, created);
          auto marked = s.mark_handled(event, unloc::event_source::webhook, c->token);
          if (!marked || *marked != unloc::settle_status::done) ++failures;
        }
      });
    }
    for (auto& t : threads) t.join();
    CHECK(failures == 0);
    for (std::uint32_t n = 0; n < events; ++n) {
      INFO("event " << n);
      CHECK(won[n] == 1);
    }
    CHECK(e.events().size() == events);
  }

  SECTION("the store works") { CHECK(store->check()); }
}

}  // namespace store_contract

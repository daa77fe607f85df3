#include "catch.hpp"

#include <unloc/duplicate_store.hpp>

#include "fixtures.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using unloc::memory_duplicate_store;
using unloc::uuid;

uuid id(std::uint32_t n) { return unit::numbered_id(n); }

const unloc::timestamp created = unloc::parse_timestamp("2022-01-01T10:35:24.083Z").value();

// A steady clock that moves only when the test moves it.
struct fake_clock {
  std::chrono::steady_clock::time_point now{};
  memory_duplicate_store::clock_function function() {
    return [this] { return now; };
  }
};

}  // namespace

TEST_CASE("an id is new the first time and a duplicate after that", "[duplicate_store]") {
  memory_duplicate_store memory;
  unloc::duplicate_store& store = memory;
  CHECK_FALSE(store.contains(id(1)));
  CHECK(store.insert(id(1), created));
  CHECK(store.contains(id(1)));
  CHECK_FALSE(store.insert(id(1), created));
  CHECK_FALSE(store.insert(id(1), created));
  CHECK_FALSE(store.contains(id(2)));
  CHECK(store.insert(id(2), created));
  CHECK(memory.size() == 2);
}

TEST_CASE("an erased id is new again", "[duplicate_store]") {
  memory_duplicate_store store;
  REQUIRE(store.insert(id(1), created));
  REQUIRE(store.insert(id(2), created));
  store.erase(id(1));
  CHECK_FALSE(store.contains(id(1)));
  CHECK(store.contains(id(2)));
  CHECK(store.size() == 1);
  CHECK(store.insert(id(1), created));
  CHECK_FALSE(store.insert(id(1), created));
}

TEST_CASE("erasing an id that was never seen changes nothing", "[duplicate_store]") {
  memory_duplicate_store store;
  REQUIRE(store.insert(id(1), created));
  store.erase(id(99));
  CHECK(store.size() == 1);
  CHECK_FALSE(store.insert(id(1), created));
}

TEST_CASE("forgets the oldest id first when the count bound is reached", "[duplicate_store]") {
  memory_duplicate_store store(3);
  REQUIRE(store.insert(id(1), created));
  REQUIRE(store.insert(id(2), created));
  REQUIRE(store.insert(id(3), created));
  CHECK(store.size() == 3);

  REQUIRE(store.insert(id(4), created));
  CHECK(store.size() == 3);
  CHECK_FALSE(store.contains(id(1)));
  CHECK(store.contains(id(2)));
  CHECK(store.contains(id(3)));
  CHECK(store.contains(id(4)));

  // A duplicate does not make an id younger: 2 is still the oldest.
  CHECK_FALSE(store.insert(id(2), created));
  REQUIRE(store.insert(id(5), created));
  CHECK_FALSE(store.contains(id(2)));
  CHECK(store.contains(id(3)));

  // A forgotten id counts as new again.
  CHECK(store.insert(id(1), created));
}

TEST_CASE("never holds more ids than its bound", "[duplicate_store]") {
  memory_duplicate_store store(5);
  for (std::uint32_t n = 0; n < 200; ++n) {
    REQUIRE(store.insert(id(n), created));
    REQUIRE(store.size() <= 5);
    if (n % 7 == 0 && n < 150) store.erase(id(n - 1));
  }
  CHECK(store.size() == 5);
  for (std::uint32_t n = 195; n < 200; ++n) CHECK(store.contains(id(n)));
}

TEST_CASE("forgets an id max_age after it was first seen", "[duplicate_store]") {
  fake_clock clock;
  memory_duplicate_store store(100, 1h, clock.function());
  const auto start = clock.now;

  REQUIRE(store.insert(id(1), created));
  clock.now = start + 30min;
  REQUIRE(store.insert(id(2), created));

  // A repeat delivery does not extend how long the id is remembered.
  clock.now = start + 1h - 1ms;
  CHECK_FALSE(store.insert(id(1), created));

  clock.now = start + 1h;
  CHECK(store.insert(id(1), created));
  CHECK_FALSE(store.insert(id(2), created));

  clock.now = start + 90min;
  CHECK(store.insert(id(2), created));
  CHECK(store.size() == 2);
}

TEST_CASE("an id erased and inserted again is not evicted by its stale entry for the count bound",
          "[duplicate_store]") {
  memory_duplicate_store store(2);
  REQUIRE(store.insert(id(1), created));
  REQUIRE(store.insert(id(2), created));
  store.erase(id(1));
  REQUIRE(store.insert(id(1), created));  // now younger than 2

  REQUIRE(store.insert(id(3), created));
  CHECK(store.contains(id(1)));
  CHECK_FALSE(store.contains(id(2)));
  CHECK(store.contains(id(3)));
  CHECK(store.size() == 2);
}

TEST_CASE("an id erased and inserted again is remembered max_age from its new insert",
          "[duplicate_store]") {
  fake_clock clock;
  memory_duplicate_store store(100, 1h, clock.function());
  const auto start = clock.now;

  REQUIRE(store.insert(id(1), created));
  clock.now = start + 10min;
  store.erase(id(1));
  REQUIRE(store.insert(id(1), created));

  // The first entry's hour is over; the second one's is not.
  clock.now = start + 1h;
  REQUIRE(store.insert(id(2), created));
  CHECK(store.contains(id(1)));
  CHECK_FALSE(store.insert(id(1), created));

  clock.now = start + 70min;
  CHECK(store.insert(id(1), created));
}

TEST_CASE("of many threads inserting the same ids, exactly one insert of each id is new",
          "[duplicate_store]") {
  constexpr std::uint32_t ids = 10'000;
  constexpr int threads = 8;
  memory_duplicate_store store;
  std::atomic<std::size_t> new_inserts{0};
  std::promise<void> go;
  const std::shared_future<void> start = go.get_future().share();

  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&store, &new_inserts, start] {
      start.wait();
      std::size_t mine = 0;
      for (std::uint32_t n = 0; n < ids; ++n) mine += store.insert(id(n), created) ? 1 : 0;
      new_inserts += mine;
    });
  }
  go.set_value();
  for (auto& worker : workers) worker.join();

  CHECK(new_inserts.load() == ids);
  CHECK(store.size() == ids);
  for (std::uint32_t n = 0; n < ids; n += 997) CHECK(store.contains(id(n)));
}

TEST_CASE("contains and size forget an id max_age after it was first seen", "[duplicate_store]") {
  std::chrono::steady_clock::time_point now{};
  unloc::memory_duplicate_store store(100, std::chrono::hours(1), [&now] { return now; });
  REQUIRE(store.insert(id(1), created));
  now += std::chrono::hours(1);
  CHECK_FALSE(store.contains(id(1)));
  CHECK(store.size() == 0);
}

TEST_CASE("erased ids never push a remembered id out before max_entries is reached",
          "[duplicate_store]") {
  unloc::memory_duplicate_store store(3);
  REQUIRE(store.insert(id(1), created));
  for (int n = 10; n < 15; ++n) {
    REQUIRE(store.insert(id(n), created));
    store.erase(id(n));
  }
  REQUIRE(store.insert(id(2), created));  // 2 ids remembered, the bound is 3
  CHECK(store.contains(id(1)));
  CHECK_FALSE(store.insert(id(1), created));  // a repeated delivery of 1 stays a duplicate
}

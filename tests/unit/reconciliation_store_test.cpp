#include "catch.hpp"

#include <unloc/reconciliation_store.hpp>

#include "fixtures.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using unloc::file_reconciliation_store;
using unloc::timestamp;
using unloc::uuid;

uuid id(std::uint32_t n) { return unit::numbered_id(n); }

const timestamp start = unloc::parse_timestamp("2026-11-01T00:00:00.000Z").value();

using unit::state_dir;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void append(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::app) << text;
}

struct fake_clock {
  timestamp now = start;
  file_reconciliation_store::clock_function function() {
    return [this] { return now; };
  }
};

}  // namespace

TEST_CASE("a new store is empty and remembers ids and checkpoints across reopening",
          "[reconciliation_store]") {
  state_dir dir;
  fake_clock clock;
  {
    auto store = file_reconciliation_store::open(dir.path(), {}, clock.function()).value();
    CHECK(store->state_of(id(1)).value() == unloc::handover_state::unseen);
    CHECK_FALSE(store->checkpoint("project").value().has_value());
    REQUIRE(store->mark_handled(id(1), start));
    REQUIRE(store->mark_handled(id(2), start + 1s));
    REQUIRE(store->save_checkpoint("project", start + 2s));
    CHECK(store->state_of(id(1)).value() == unloc::handover_state::handled);
    CHECK(store->size() == 2);
  }
  auto store = file_reconciliation_store::open(dir.path(), {}, clock.function()).value();
  CHECK(store->state_of(id(1)).value() == unloc::handover_state::handled);
  CHECK(store->state_of(id(2)).value() == unloc::handover_state::handled);
  CHECK(store->state_of(id(3)).value() == unloc::handover_state::unseen);
  CHECK(store->checkpoint("project").value() == start + 2s);
  // Opening folds the journal into the state file, atomically replaced.
  CHECK(read_file(dir.path() + ".journal").empty());
  CHECK(read_file(dir.path()).rfind("unloc-reconciliation-state 1\n", 0) == 0);
}

TEST_CASE("a checkpoint never moves backwards", "[reconciliation_store]") {
  state_dir dir;
  auto store = file_reconciliation_store::open(dir.path()).value();
  REQUIRE(store->save_checkpoint("c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef", start + 10s));
  REQUIRE(store->save_checkpoint("c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef", start));
  CHECK(store->checkpoint("c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef").value() == start + 10s);
  CHECK_FALSE(store->checkpoint("project").value().has_value());
  CHECK(store->save_checkpoint("two words", start).error().category ==
        unloc::error_category::invalid_input);
}

TEST_CASE("ids are forgotten after the retention, and not written back", "[reconciliation_store]") {
  state_dir dir;
  fake_clock clock;
  unloc::file_store_options options;
  options.retention = 31 * 24h;
  {
    auto store = file_reconciliation_store::open(dir.path(), options, clock.function()).value();
    REQUIRE(store->mark_handled(id(1), clock.now));
    clock.now += 10 * 24h;
    REQUIRE(store->mark_handled(id(2), clock.now));
    clock.now += 21 * 24h - 1ms;
    CHECK(store->state_of(id(1)).value() == unloc::handover_state::handled);
    clock.now += 1ms;
    CHECK(store->state_of(id(1)).value() == unloc::handover_state::unseen);
    CHECK(store->state_of(id(2)).value() == unloc::handover_state::handled);
  }
  auto store = file_reconciliation_store::open(dir.path(), options, clock.function()).value();
  CHECK(store->size() == 1);
  CHECK(read_file(dir.path()).find(id(1).to_string()) == std::string::npos);
}

TEST_CASE("the journal is folded into the state file once it grows", "[reconciliation_store]") {
  state_dir dir;
  unloc::file_store_options options;
  options.compact_after = 100;
  fake_clock clock;
  auto store = file_reconciliation_store::open(dir.path(), options, clock.function()).value();
  for (std::uint32_t n = 0; n < 250; ++n) REQUIRE(store->mark_handled(id(n), start));
  // Compacted at 100 and 200 records: 50 left in the journal, 200 in the state.
  const std::string journal = read_file(dir.path() + ".journal");
  CHECK(std::count(journal.begin(), journal.end(), '\n') == 50);
  const std::string state = read_file(dir.path());
  CHECK(std::count(state.begin(), state.end(), '\n') == 201);
  auto reopened = file_reconciliation_store::open(dir.path(), options, clock.function()).value();
  CHECK(reopened->size() == 250);
}

TEST_CASE("a torn last journal line, left by a crash, is ignored", "[reconciliation_store]") {
  state_dir dir;
  fake_clock clock;
  const auto ms = std::to_string(start.time_since_epoch().count());
  append(dir.path() + ".journal", "h " + id(1).to_string() + " " + ms + "\nh " +
                                      id(2).to_string().substr(0, 20));
  auto store = file_reconciliation_store::open(dir.path(), {}, clock.function()).value();
  CHECK(store->state_of(id(1)).value() == unloc::handover_state::handled);
  CHECK(store->state_of(id(2)).value() == unloc::handover_state::unseen);
}

TEST_CASE("a corrupt state is an error naming the file and line, never a guess",
          "[reconciliation_store]") {
  state_dir dir;
  SECTION("not a state file") { append(dir.path(), "{\"handled\":[]}\n"); }
  SECTION("a bad record in the state file") {
    append(dir.path(), "unloc-reconciliation-state 1\nh not-a-uuid 12\n");
  }
  SECTION("a bad record in the middle of the journal") {
    append(dir.path() + ".journal", "c 12 project\nx what\nc 13 project\n");
  }
  SECTION("a timestamp that is not a number") {
    append(dir.path() + ".journal", "h " + id(1).to_string() + " 12e4\n");
  }
  auto store = file_reconciliation_store::open(dir.path());
  REQUIRE_FALSE(store);
  CHECK(store.error().category == unloc::error_category::internal);
  CHECK(store.error().message.find(dir.path()) != std::string::npos);
}

TEST_CASE("a state that cannot be written is an error", "[reconciliation_store]") {
  auto store = file_reconciliation_store::open("/nonexistent-unloc-dir/state");
  REQUIRE_FALSE(store);
  CHECK(store.error().message.find("/nonexistent-unloc-dir/state") != std::string::npos);
}

TEST_CASE("a pending id outlives a compaction and a reopening, until it is handled",
          "[reconciliation_store]") {
  state_dir dir;
  fake_clock clock;
  unloc::file_store_options options;
  options.compact_after = 3;
  {
    auto store = file_reconciliation_store::open(dir.path(), options, clock.function()).value();
    REQUIRE(store->mark_pending(id(1), start));
    // Pending in this process is not in doubt: only a stop makes it so.
    CHECK(store->state_of(id(1)).value() == unloc::handover_state::unseen);
    for (std::uint32_t n = 10; n < 20; ++n) REQUIRE(store->mark_handled(id(n), start));  // compacts
  }
  {
    auto store = file_reconciliation_store::open(dir.path(), options, clock.function()).value();
    CHECK(store->state_of(id(1)).value() == unloc::handover_state::in_doubt);
    CHECK(store->in_doubt() == std::vector<uuid>{id(1)});
    REQUIRE(store->mark_handled(id(1), start));
    CHECK(store->state_of(id(1)).value() == unloc::handover_state::handled);
  }
  auto store = file_reconciliation_store::open(dir.path(), options, clock.function()).value();
  CHECK(store->in_doubt().empty());
}

// The receiver's operational parts, each alone: metrics, the rejection log
// limiter, the connection caps and systemd readiness.

#include "catch.hpp"
#include "webhook_receiver/connection_caps.hpp"
#include "webhook_receiver/log_limiter.hpp"
#include "webhook_receiver/metrics.hpp"
#include "webhook_receiver/systemd.hpp"
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// The value of the sample `series` (its name and labels as written) in `text`.
std::string sample(const std::string& text, const std::string& series) {
  const std::string key = "\n" + series + " ";
  const auto at = ("\n" + text).find(key);
  if (at == std::string::npos) return "(absent)";
  const auto begin = at + key.size() - 1;
  return text.substr(begin, text.find('\n', begin) - begin);
}

}  // namespace

TEST_CASE("metrics render every metric exactly, for a known sequence of calls", "[metrics]") {
  receiver::metrics m;
  m.delivery("accepted");
  m.delivery("accepted");
  m.delivery("duplicate");
  m.delivery("unauthorized");
  m.delivery("something new");
  m.lag(50ms);
  m.lag(1500ms);
  m.lag(-3s);      // clock skew: counted as 0
  m.lag(48h);      // over a day: only in +Inf
  m.handled(1ms);  // on a bound: le is inclusive
  m.handled(3ms);
  m.handled(20s);
  m.connection_opened();
  m.connection_opened();
  m.connection_opened();
  m.connection_closed();
  m.connection_refused("total");
  m.connection_refused("per_client");
  m.connection_refused("per_client");

  CHECK(
      m.render() ==
      R"(# HELP unloc_receiver_deliveries_total Deliveries answered, by outcome (duplicate: a valid event already seen).
# TYPE unloc_receiver_deliveries_total counter
unloc_receiver_deliveries_total{outcome="accepted"} 2
unloc_receiver_deliveries_total{outcome="unauthorized"} 1
unloc_receiver_deliveries_total{outcome="not_found"} 0
unloc_receiver_deliveries_total{outcome="method_not_allowed"} 0
unloc_receiver_deliveries_total{outcome="payload_too_large"} 0
unloc_receiver_deliveries_total{outcome="unsupported_media_type"} 0
unloc_receiver_deliveries_total{outcome="malformed_body"} 0
unloc_receiver_deliveries_total{outcome="invalid_event"} 0
unloc_receiver_deliveries_total{outcome="unavailable"} 0
unloc_receiver_deliveries_total{outcome="duplicate"} 1
unloc_receiver_deliveries_total{outcome="other"} 1
# HELP unloc_receiver_event_lag_seconds Time from an Access Event's creation to its delivery here.
# TYPE unloc_receiver_event_lag_seconds histogram
unloc_receiver_event_lag_seconds_bucket{le="0.1"} 2
unloc_receiver_event_lag_seconds_bucket{le="0.5"} 2
unloc_receiver_event_lag_seconds_bucket{le="1"} 2
unloc_receiver_event_lag_seconds_bucket{le="2"} 3
unloc_receiver_event_lag_seconds_bucket{le="5"} 3
unloc_receiver_event_lag_seconds_bucket{le="10"} 3
unloc_receiver_event_lag_seconds_bucket{le="30"} 3
unloc_receiver_event_lag_seconds_bucket{le="60"} 3
unloc_receiver_event_lag_seconds_bucket{le="300"} 3
unloc_receiver_event_lag_seconds_bucket{le="900"} 3
unloc_receiver_event_lag_seconds_bucket{le="3600"} 3
unloc_receiver_event_lag_seconds_bucket{le="21600"} 3
unloc_receiver_event_lag_seconds_bucket{le="86400"} 3
unloc_receiver_event_lag_seconds_bucket{le="+Inf"} 4
unloc_receiver_event_lag_seconds_sum 172801.55
unloc_receiver_event_lag_seconds_count 4
# HELP unloc_receiver_delivery_duration_seconds Time to handle a delivery, from its first byte to the answer.
# TYPE unloc_receiver_delivery_duration_seconds histogram
unloc_receiver_delivery_duration_seconds_bucket{le="0.001"} 1
unloc_receiver_delivery_duration_seconds_bucket{le="0.0025"} 1
unloc_receiver_delivery_duration_seconds_bucket{le="0.005"} 2
unloc_receiver_delivery_duration_seconds_bucket{le="0.01"} 2
unloc_receiver_delivery_duration_seconds_bucket{le="0.025"} 2
unloc_receiver_delivery_duration_seconds_bucket{le="0.05"} 2
unloc_receiver_delivery_duration_seconds_bucket{le="0.1"} 2
unloc_receiver_delivery_duration_seconds_bucket{le="0.25"} 2
unloc_receiver_delivery_duration_seconds_bucket{le="0.5"} 2
unloc_receiver_delivery_duration_seconds_bucket{le="1"} 2
unloc_receiver_delivery_duration_seconds_bucket{le="2.5"} 2
unloc_receiver_delivery_duration_seconds_bucket{le="5"} 2
unloc_receiver_delivery_duration_seconds_bucket{le="10"} 2
unloc_receiver_delivery_duration_seconds_bucket{le="+Inf"} 3
unloc_receiver_delivery_duration_seconds_sum 20.004
unloc_receiver_delivery_duration_seconds_count 3
# HELP unloc_receiver_connections_open Connections open now.
# TYPE unloc_receiver_connections_open gauge
unloc_receiver_connections_open 2
# HELP unloc_receiver_connections_refused_total Connections refused by a cap (total or per client address).
# TYPE unloc_receiver_connections_refused_total counter
unloc_receiver_connections_refused_total{cap="total"} 1
unloc_receiver_connections_refused_total{cap="per_client"} 2
)");
}

TEST_CASE("metrics count every call made from several threads at once", "[metrics]") {
  receiver::metrics m;
  constexpr int threads = 4;
  constexpr int calls = 20000;
  std::atomic<bool> done{false};
  std::atomic<int> renders{0};
  std::atomic<int> inconsistent{0};
  // A reader meanwhile (Catch's assertions stay on this thread): each snapshot's _count is
  // its +Inf bucket, and the gauge stays within the connections that can be open.
  std::thread reader([&] {
    while (!done.load()) {
      const auto text = m.render();
      const auto count = sample(text, "unloc_receiver_delivery_duration_seconds_count");
      const auto open = std::stol(sample(text, "unloc_receiver_connections_open"));
      if (count != sample(text, "unloc_receiver_delivery_duration_seconds_bucket{le=\"+Inf\"}") ||
          open < 0 || open > threads) {
        ++inconsistent;
      }
      ++renders;
    }
  });
  std::vector<std::thread> writers;
  writers.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    writers.emplace_back([&] {
      for (int i = 0; i < calls; ++i) {
        m.connection_opened();
        m.delivery(i % 2 == 0 ? "accepted" : "duplicate");
        m.handled(2ms);
        m.lag(1s);
        m.connection_refused("per_client");
        m.connection_closed();
      }
    });
  }
  for (auto& w : writers) w.join();
  done = true;
  reader.join();

  const auto text = m.render();
  const auto half = std::to_string(threads * calls / 2);
  const auto all = std::to_string(threads * calls);
  CHECK(sample(text, "unloc_receiver_deliveries_total{outcome=\"accepted\"}") == half);
  CHECK(sample(text, "unloc_receiver_deliveries_total{outcome=\"duplicate\"}") == half);
  CHECK(sample(text, "unloc_receiver_delivery_duration_seconds_bucket{le=\"0.0025\"}") == all);
  CHECK(sample(text, "unloc_receiver_delivery_duration_seconds_count") == all);
  CHECK(sample(text, "unloc_receiver_delivery_duration_seconds_sum") ==
        std::to_string(threads * calls * 2 / 1000));
  CHECK(sample(text, "unloc_receiver_event_lag_seconds_bucket{le=\"0.5\"}") == "0");
  CHECK(sample(text, "unloc_receiver_event_lag_seconds_bucket{le=\"1\"}") == all);
  CHECK(sample(text, "unloc_receiver_connections_refused_total{cap=\"per_client\"}") == all);
  CHECK(sample(text, "unloc_receiver_connections_open") == "0");
  CHECK(renders.load() > 0);
  CHECK(inconsistent.load() == 0);
}

namespace {

// A clock the test moves by hand.
struct manual_clock {
  std::chrono::steady_clock::time_point now{};
  receiver::log_limiter::clock_type function() {
    return [this] { return now; };
  }
};

}  // namespace

TEST_CASE("the log limiter lets N lines an interval through, then sums up the rest",
          "[log_limiter]") {
  manual_clock clock;
  receiver::log_limiter limiter(3, 10s, clock.function());
  std::vector<std::string> log;
  const auto sink = [&](const std::string& line) { log.push_back(line); };

  for (int i = 1; i <= 5; ++i) limiter.reject("rejected " + std::to_string(i), sink);
  CHECK(log == std::vector<std::string>{"rejected 1", "rejected 2", "rejected 3"});

  clock.now += 9999ms;  // still the same interval
  limiter.reject("rejected 6", sink);
  CHECK(log.size() == 3);

  clock.now += 1ms;  // a new interval: the summary first, then the line
  limiter.reject("rejected 7", sink);
  CHECK(log == std::vector<std::string>{"rejected 1", "rejected 2", "rejected 3",
                                        "... and 3 more rejections suppressed", "rejected 7"});

  limiter.reject("rejected 8", sink);
  limiter.reject("rejected 9", sink);
  limiter.reject("rejected 10", sink);  // the 4th of this interval
  limiter.flush(sink);
  limiter.flush(sink);  // nothing more to say
  CHECK(log.size() == 8);
  CHECK(log.back() == "... and 1 more rejection suppressed");

  clock.now += 10s;  // the count was flushed: no second summary
  limiter.reject("rejected 11", sink);
  CHECK(log.back() == "rejected 11");
  CHECK(log.size() == 9);
}

TEST_CASE("10,000 rejections from 8 threads write N lines and one exact summary", "[log_limiter]") {
  receiver::log_limiter limiter(5, 1h);
  std::mutex mutex;
  std::vector<std::string> log;
  const receiver::log_limiter::sink_type sink = [&](const std::string& line) {
    const std::lock_guard<std::mutex> lock(mutex);
    log.push_back(line);
  };
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1250; ++i) limiter.reject("401 from 192.0.2.1", sink);
    });
  }
  for (auto& t : threads) t.join();
  CHECK(log.size() == 5);
  limiter.flush(sink);
  REQUIRE(log.size() == 6);
  CHECK(log.back() == "... and 9995 more rejections suppressed");
}

TEST_CASE("the total cap refuses past its count, and a released slot is taken again",
          "[connection_caps]") {
  receiver::connection_caps caps(2, 0);
  auto a = caps.admit("192.0.2.1");
  auto b = caps.admit("192.0.2.2");
  REQUIRE(a.index() == 0);
  REQUIRE(b.index() == 0);
  CHECK(caps.open() == 2);
  {
    const auto refused = caps.admit("192.0.2.3");
    REQUIRE(refused.index() == 1);
    CHECK(std::get<1>(refused) == "total");
  }
  b = std::string_view("gone");  // b's ticket destroyed: its slot released
  CHECK(caps.open() == 1);
  CHECK(caps.admit("192.0.2.3").index() == 0);  // admitted, then released at once
  CHECK(caps.open() == 1);
}

TEST_CASE("the per-client cap counts an address, an IPv4-mapped one alike, and an IPv6 /64",
          "[connection_caps]") {
  receiver::connection_caps caps(0, 2);
  std::vector<receiver::connection_caps::ticket> held;
  const auto take = [&](const std::string& address) {
    auto result = caps.admit(address);
    if (result.index() == 1) return std::string(std::get<1>(result));
    held.push_back(std::move(std::get<0>(result)));
    return std::string("admitted");
  };
  CHECK(take("192.0.2.1") == "admitted");
  CHECK(take("::ffff:192.0.2.1") == "admitted");
  CHECK(take("192.0.2.1") == "per_client");
  CHECK(take("::ffff:192.0.2.1") == "per_client");
  CHECK(take("192.0.2.2") == "admitted");

  CHECK(take("2001:db8:1:2::1") == "admitted");
  CHECK(take("2001:db8:1:2:ffff:ffff:ffff:ffff") == "admitted");
  CHECK(take("2001:db8:1:2::99") == "per_client");  // the same /64
  CHECK(take("2001:db8:1:3::1") == "admitted");     // the next /64

  CHECK(take("") == "admitted");  // not an address: a client of its own, no throw
  CHECK(take("not an address") == "admitted");
  CHECK(take("not an address") == "admitted");
  CHECK(take("not an address") == "per_client");
  CHECK(caps.open() == held.size());
  held.clear();
  CHECK(caps.open() == 0);
  CHECK(take("192.0.2.1") == "admitted");
}

TEST_CASE("a moved ticket holds one slot, released once", "[connection_caps]") {
  receiver::connection_caps caps(3, 3);
  auto first = caps.admit("198.51.100.7");
  REQUIRE(first.index() == 0);
  {
    receiver::connection_caps::ticket moved(std::move(std::get<0>(first)));
    CHECK(caps.open() == 1);
    auto other = caps.admit("198.51.100.8");
    REQUIRE(other.index() == 0);
    CHECK(caps.open() == 2);
    moved = std::move(std::get<0>(other));  // moved's old slot released, other's now held
    CHECK(caps.open() == 1);
  }
  CHECK(caps.open() == 0);
  first = std::string_view("moved-from ticket destroyed");  // releases nothing more
  CHECK(caps.open() == 0);
  // Both caps full: the total cap is named.
  receiver::connection_caps full(1, 1);
  const auto held = full.admit("203.0.113.1");
  const auto refused = full.admit("203.0.113.1");
  REQUIRE(refused.index() == 1);
  CHECK(std::get<1>(refused) == "total");
}

TEST_CASE("the caps hold from several threads admitting and releasing at once",
          "[connection_caps]") {
  receiver::connection_caps caps(6, 2);
  std::atomic<int> held{0};
  std::atomic<int> most{0};
  std::atomic<int> over{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      // Two threads a client: up to 4 clients wanting 4 slots each, for 6 in all.
      const std::string address = "192.0.2." + std::to_string(t / 2);
      for (int i = 0; i < 2000; ++i) {
        auto first = caps.admit(address);
        auto second = caps.admit(address);
        const int now = held += (first.index() == 0) + (second.index() == 0);
        if (now > 6) ++over;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        held -= (first.index() == 0) + (second.index() == 0);
      }  // the tickets are released here, after `held` went down
    });
  }
  for (auto& t : threads) t.join();
  CHECK(over.load() == 0);
  CHECK(most.load() >= 2);
  CHECK(caps.open() == 0);
}

namespace {

// Sets NOTIFY_SOCKET for one test, then unsets it.
struct notify_socket_env {
  explicit notify_socket_env(const std::string& value) {
    ::setenv("NOTIFY_SOCKET", value.c_str(), 1);
  }
  ~notify_socket_env() { ::unsetenv("NOTIFY_SOCKET"); }
  notify_socket_env(const notify_socket_env&) = delete;
  notify_socket_env& operator=(const notify_socket_env&) = delete;
};

// A bound unix datagram socket: at `path`, or abstract when `path` starts with '@'.
struct datagram_socket {
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  explicit datagram_socket(const std::string& path) {
    REQUIRE(fd >= 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof address.sun_path);
    std::memcpy(address.sun_path, path.data(), path.size());
    // An abstract name's length is exact; a path's counts its NUL.
    auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    if (path[0] == '@') {
      address.sun_path[0] = '\0';
      size -= 1;
    }
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), size) == 0);
  }
  ~datagram_socket() { ::close(fd); }
  datagram_socket(const datagram_socket&) = delete;
  datagram_socket& operator=(const datagram_socket&) = delete;
  // The datagram waiting, if any: notify() has sent it before returning.
  std::string received() const {
    char buffer[256];
    const auto n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    return n < 0 ? std::string("(nothing)") : std::string(buffer, static_cast<std::size_t>(n));
  }
};

// A fresh temporary directory, removed with what the test left in it.
struct temp_dir {
  std::string path;
  temp_dir() {
    char name[] = "/tmp/unloc-notify-XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    path = name;
  }
  ~temp_dir() {
    ::unlink((path + "/notify").c_str());
    ::rmdir(path.c_str());
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

}  // namespace

TEST_CASE("notify_ready sends READY=1 to a NOTIFY_SOCKET path", "[systemd]") {
  temp_dir dir;
  datagram_socket socket(dir.path + "/notify");
  notify_socket_env env(dir.path + "/notify");
  CHECK(receiver::notify_ready());
  CHECK(socket.received() == "READY=1");
  CHECK(receiver::notify("STOPPING=1"));
  CHECK(socket.received() == "STOPPING=1");
}

TEST_CASE("notify_ready sends READY=1 to an abstract NOTIFY_SOCKET (@name)", "[systemd]") {
  const std::string name = "@unloc-notify-test-" + std::to_string(::getpid());
  datagram_socket socket(name);
  notify_socket_env env(name);
  CHECK(receiver::notify_ready());
  CHECK(socket.received() == "READY=1");
}

TEST_CASE("notify_ready is true without NOTIFY_SOCKET and false when it cannot send", "[systemd]") {
  ::unsetenv("NOTIFY_SOCKET");
  CHECK(receiver::notify_ready());
  {
    notify_socket_env env("");
    CHECK(receiver::notify_ready());
  }
  temp_dir dir;
  {
    notify_socket_env env(dir.path + "/notify");  // nobody listens there
    CHECK_FALSE(receiver::notify_ready());
  }
  {
    notify_socket_env env("relative/path");
    CHECK_FALSE(receiver::notify_ready());
  }
  {
    notify_socket_env env("vsock:2:1234");
    CHECK_FALSE(receiver::notify_ready());
  }
  {
    notify_socket_env env("/" + std::string(200, 'x'));  // longer than sun_path
    CHECK_FALSE(receiver::notify_ready());
  }
}

// unloc-webhook-receiver against hostile clients on loopback: the attacks of
// issue 15, each bounded in count and time. Most run over plain HTTP (the framing
// is the same behind TLS); those about TLS run over TLS. Attackers connect from
// their own 127.1.x.y addresses, so each is a distinct client to the receiver's
// per-address cap, as a botnet would be; deliveries come from 127.0.0.1.

#include "attack_harness.hpp"
#include "examples/receiver_harness.hpp"

#include <atomic>
#include <filesystem>

using namespace std::chrono_literals;
using attack::connection;
using attack::steady;
using std::chrono::milliseconds;

namespace {

const std::string& fixture_dir() { return unloc_test::test_tls_files().dir; }

// The receiver with `args` and the test credentials.
std::unique_ptr<attack::receiver> start(const std::vector<std::string>& args) {
  auto r = std::make_unique<attack::receiver>(UNLOC_RECEIVER_PATH, args,
                                              receiver_test::credential_env(), fixture_dir());
  INFO(r->err());
  REQUIRE(r->port() > 0);
  return r;
}

// On plain HTTP at 127.0.0.1, with `extra` options.
std::unique_ptr<attack::receiver> start_plain(std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--plain-http"};
  args.insert(args.end(), extra.begin(), extra.end());
  return start(args);
}

// On HTTPS at 127.0.0.1 with the test certificate (or `cert` and `key`), with `extra` options.
std::unique_ptr<attack::receiver> start_tls(std::vector<std::string> extra = {},
                                            const std::string& cert = {},
                                            const std::string& key = {}) {
  const auto& files = unloc_test::test_tls_files();
  std::vector<std::string> args = {"--listen", "127.0.0.1:0",
                                   "--cert",   cert.empty() ? files.server_cert : cert,
                                   "--key",    key.empty() ? files.server_key : key};
  args.insert(args.end(), extra.begin(), extra.end());
  return start(args);
}

// A TLS 1.2+ client context trusting the test CA.
std::shared_ptr<SSL_CTX> trusting() {
  return attack::tls_context(TLS1_2_VERSION, 0, "", unloc_test::test_tls_files().ca_cert);
}

// A whole delivery of event `id` with valid credentials.
std::string delivery(const std::string& id) {
  const std::string body = receiver_test::event_body(id);
  return receiver_test::post_head("Content-Length: " + std::to_string(body.size()) + "\r\n") + body;
}

// A unique event id for attack `a`, item `b`.
std::string id_of(int a, int b) { return receiver_test::event_id(900 + a, b); }

// How many stdout lines name event `id`.
int printed(const attack::receiver& r, const std::string& id) {
  int n = 0;
  for (const auto& line : receiver_test::lines_of(r.out())) n += line.find(id) != line.npos;
  return n;
}

struct timed_response {
  attack::response res;
  steady::duration took{};
};

// One delivery on a new connection (TLS when `ctx` is given), timed from the connect.
timed_response deliver(int port, const std::string& id,
                       const std::shared_ptr<SSL_CTX>& ctx = nullptr) {
  const auto start = steady::now();
  timed_response t;
  connection c(port);
  if (c.connected() && (ctx == nullptr || c.handshake(ctx)) && c.send(delivery(id))) {
    t.res = c.read_response(5s);
  }
  t.took = steady::now() - start;
  return t;
}

// A free loopback port (bound, then released) for --metrics-listen.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof addr;
  (void)::bind(fd, reinterpret_cast<sockaddr*>(&addr), size);  // port 0: it cannot fail
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The Prometheus text served at /metrics on `port`; empty when not served.
std::string metrics_text(int port) {
  connection m(port);
  if (!m.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")) return {};
  auto res = m.read_response(5s);
  return res.status == 200 ? res.body : std::string();
}

// The sum of the samples in `text` whose name and labels start with `prefix`; -1 when none.
double sample(const std::string& text, const std::string& prefix) {
  double sum = -1;
  for (const auto& line : receiver_test::lines_of(text)) {
    if (line.rfind(prefix, 0) == 0)
      sum = std::max(sum, 0.0) + std::atof(line.c_str() + line.rfind(' ') + 1);
  }
  return sum;
}

std::string hex(std::size_t n) {
  char text[20];
  std::snprintf(text, sizeof text, "%zx", n);
  return text;
}

}  // namespace

TEST_CASE("a header flood from 16 connections is cut within 512 KiB each; memory stays flat",
          "[attack]") {
  auto r = start_plain({"--threads", "2"});
  const long rss_before = attack::memory_kib(r->pid(), "VmRSS:");
  REQUIRE(rss_before > 0);
  constexpr std::size_t give_up = 8u << 20;  // the old receiver took all of it, and more
  std::vector<std::size_t> cut_at(std::size_t{16} * 3, 0);
  std::vector<std::thread> threads;
  threads.reserve(16);
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      const std::string line = "X-Flood: " + std::string(1000, 'a') + "\r\n";
      for (int round = 0; round < 3; ++round) {  // again after each cut: nothing accumulates
        connection c(r->port(), attack::client_address(t));
        c.limit_send_buffer(32 * 1024);
        if (!c.connected() || !c.send("POST /accessEvents HTTP/1.1\r\nHost: x\r\n")) continue;
        while (c.bytes_sent() < give_up && c.send(line)) {
        }
        // A cut is a close or a reset; a send that only blocks is not one.
        if (c.bytes_sent() < give_up && c.closed_within(5s)) {
          cut_at[static_cast<std::size_t>(t) * 3 + static_cast<std::size_t>(round)] =
              c.bytes_sent();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const long peak = attack::memory_kib(r->pid(), "VmHWM:");
  INFO("VmRSS before " << rss_before << " KiB, VmHWM after " << peak << " KiB");
  CHECK(peak - rss_before < 32L * 1024);
  INFO("bytes sent before each cut: " << [&] {
    std::string all;
    for (const auto at : cut_at) all += std::to_string(at) + " ";
    return all;
  }());
  CHECK(std::count(cut_at.begin(), cut_at.end(), 0u) == 0);  // every one cut
  CHECK(*std::max_element(cut_at.begin(), cut_at.end()) < std::size_t{512} * 1024);
  const auto after = deliver(r->port(), id_of(1, 0));
  CHECK(after.res.status == 204);
  CHECK(r->stop(SIGTERM) == 0);
}

TEST_CASE("an over-long request line is answered 414, an over-long head 431, then closed",
          "[attack]") {
  auto r = start_plain({"--max-header-bytes", "4096"});
  std::string many_lines;
  for (int i = 0; i < 500; ++i) many_lines += "X-" + std::to_string(i) + ": 1\r\n";
  const std::vector<std::pair<int, std::string>> cases = {
      {414, "GET /" + std::string(5000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n"},
      {431, receiver_test::post_head("X-Long: " + std::string(5000, 'a') + "\r\n")},
      {431, receiver_test::post_head(many_lines)}};
  for (const auto& [status, head] : cases) {
    INFO(status);
    connection c(r->port());
    REQUIRE(c.send(head));
    CHECK(c.read_response(5s).status == status);
    CHECK(c.closed_within(5s));
  }
  CHECK(deliver(r->port(), id_of(14, 1)).res.status == 204);  // a head within the limit
}

TEST_CASE(
    "slowloris: with 200 connections dripping headers, 20 deliveries are each answered 204 "
    "within 2 s and printed once",
    "[attack]") {
  REQUIRE(attack::raise_fd_limit(4096) >= 1024);
  // The cap above the attack: this is about what 200 slow connections cost, the caps have
  // their own test. A dripper cut by the header deadline comes back at once.
  auto r = start_plain({"--threads", "2", "--max-connections", "1000", "--header-timeout", "2"});
  const int port = r->port();
  constexpr int drippers = 200;
  std::atomic<bool> stop{false};
  std::atomic<bool> all_open{false};
  std::atomic<int> reopened{0};
  std::thread dripper([&] {
    std::vector<std::unique_ptr<connection>> slow(drippers);
    const auto open = [&](int i) {
      slow[static_cast<std::size_t>(i)] =
          std::make_unique<connection>(port, attack::client_address(i));
      slow[static_cast<std::size_t>(i)]->send("POST /accessEvents HTTP/1.1\r\nHost: x\r\n", 1s);
    };
    for (int i = 0; i < drippers && !stop; ++i) open(i);
    all_open = true;
    for (int line = 0; !stop; ++line) {
      for (int i = 0; i < drippers && !stop; ++i) {  // one header line each, about every second
        auto& c = *slow[static_cast<std::size_t>(i)];
        pollfd p{c.fd(), POLLIN, 0};  // an answer (408) or a close: it was cut
        if (!c.connected() || ::poll(&p, 1, 0) != 0 ||
            !c.send("X-Drip-" + std::to_string(line) + ": 1\r\n", 1s)) {
          ++reopened;
          open(i);
        }
        std::this_thread::sleep_for(5ms);
      }
    }
  });
  const auto deadline = steady::now() + 60s;
  while (!all_open && steady::now() < deadline) std::this_thread::sleep_for(10ms);
  REQUIRE(all_open);
  for (int i = 0; i < 20; ++i) {
    const auto t = deliver(port, id_of(2, i));
    INFO("delivery " << i << " took " << std::chrono::duration_cast<milliseconds>(t.took).count()
                     << " ms");
    CHECK(t.res.status == 204);
    CHECK(t.took < 2s);
    std::this_thread::sleep_for(250ms);  // deliveries spread over the attack's 5 s and more
  }
  stop = true;
  dripper.join();
  INFO("drippers reopened after a cut: " << reopened);
  CHECK(reopened >= drippers);  // dripping never extends the 2 s deadline of a whole head
  REQUIRE(r->stop(SIGTERM) == 0);
  for (int i = 0; i < 20; ++i) CHECK(printed(*r, id_of(2, i)) == 1);
}

TEST_CASE("the sender of an over-limit body reads the 413, chunked or not, plain or TLS",
          "[attack]") {
  for (const bool tls : {false, true}) {
    auto r = tls ? start_tls({"--max-body", "4096"}) : start_plain({"--max-body", "4096"});
    const std::string piece = "10000\r\n" + std::string(0x10000, 'x') + "\r\n";
    for (const bool chunked : {true, false}) {
      INFO((tls ? "TLS, " : "plain, ") << (chunked ? "chunked" : "Content-Length"));
      connection c(r->port());
      REQUIRE(c.connected());
      if (tls) REQUIRE(c.handshake(trusting()));
      REQUIRE(c.send(receiver_test::post_head(chunked ? "Transfer-Encoding: chunked\r\n"
                                                      : "Content-Length: 262144\r\n")));
      // As curl does: 64 KiB writes, stopping early when an answer is there to read. 256 KiB
      // in all, what a receiver may drain after its 413 (it cannot drain without bound); one
      // that closes at once resets the connection: a write fails ("Broken pipe") or the 413
      // is lost.
      bool send_failed = false;
      for (int i = 0; i < 4 && !send_failed && !c.answered(); ++i) {
        send_failed = !c.send(chunked ? piece : piece.substr(7, 0x10000));
      }
      INFO("sent " << c.bytes_sent() << " bytes");
      CHECK_FALSE(send_failed);
      CHECK(c.read_response(5s).status == 413);
      CHECK(c.closed_within(5s));
      CHECK_FALSE(c.was_reset());  // an orderly close: all that was sent was read
    }
  }
}

TEST_CASE(
    "ambiguous framing is answered 400 and closed; a request hidden in a body is never "
    "processed",
    "[attack]") {
  auto r = start_plain();
  const auto body = [](int i) { return receiver_test::event_body(id_of(4, i)); };
  const auto length = [&](int i) { return std::to_string(body(i).size()); };
  const auto head = [](const std::string& extra) { return receiver_test::post_head(extra); };
  const std::string hidden = delivery(id_of(4, 99));  // must never be printed
  const std::string zero_chunk_then_hidden = "0\r\n\r\n" + hidden;
  const std::vector<std::pair<std::string, std::string>> shapes = {
      {"Content-Length and Transfer-Encoding, a request hidden after the last chunk",
       head("Content-Length: " + std::to_string(zero_chunk_then_hidden.size()) +
            "\r\nTransfer-Encoding: chunked\r\n") +
           zero_chunk_then_hidden},
      {"Transfer-Encoding then Content-Length, a request hidden after the body",
       head("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n") + hex(body(1).size()) + "\r\n" +
           body(1) + "\r\n0\r\n\r\n" + hidden},
      {"two equal Content-Lengths",
       head("Content-Length: " + length(2) + "\r\nContent-Length: " + length(2) + "\r\n") +
           body(2)},
      {"two different Content-Lengths, a request hidden after the shorter",
       head("Content-Length: " + length(3) +
            "\r\nContent-Length: " + std::to_string(body(3).size() + hidden.size()) + "\r\n") +
           body(3) + hidden},
      {"obs-fold",
       head("X-Folded: one\r\n two\r\nContent-Length: " + length(4) + "\r\n") + body(4)},
      {"a bare LF ending a header line",
       head("X-Bare: lf\nContent-Length: " + length(5) + "\r\n") + body(5)},
      {"a bare LF ending the request line",
       "POST /accessEvents HTTP/1.1\n" + head("Content-Length: " + length(6) + "\r\n").substr(29) +
           body(6)},
      {"a header line without a colon",
       head("NoColonHere\r\nContent-Length: " + length(7) + "\r\n") + body(7)},
      {"a NUL in a header name",
       head(std::string("X-Nul\0Name: v\r\n", 15) + "Content-Length: " + length(8) + "\r\n") +
           body(8)},
      {"a 0x chunk size", head("Transfer-Encoding: chunked\r\n") + "0x" + hex(body(9).size()) +
                              "\r\n" + body(9) + "\r\n0\r\n\r\n"},
      {"no CRLF after chunk data", head("Transfer-Encoding: chunked\r\n") + hex(body(10).size()) +
                                       "\r\n" + body(10) + "0\r\n\r\n"},
      {"Transfer-Encoding gzip", head("Transfer-Encoding: gzip\r\n") + body(11)},
      {"Transfer-Encoding identity", head("Transfer-Encoding: identity\r\n") + body(12)},
      {"chunked not the last transfer coding", head("Transfer-Encoding: chunked, gzip\r\n") +
                                                   hex(body(13).size()) + "\r\n" + body(13) +
                                                   "\r\n0\r\n\r\n"},
  };
  REQUIRE(shapes[6].second.rfind("POST /accessEvents HTTP/1.1\nHost: 127.0.0.1\r\n", 0) == 0);
  for (const auto& [name, bytes] : shapes) {
    INFO(name);
    connection c(r->port());
    REQUIRE(c.connected());
    REQUIRE(c.send(bytes));
    CHECK(c.read_response(5s).status == 400);
    std::string more;
    CHECK(c.closed_within(5s, &more));
    CHECK(more.empty());  // no answer to a hidden request
  }
  CHECK(deliver(r->port(), id_of(4, 100)).res.status == 204);
  REQUIRE(r->stop(SIGTERM) == 0);
  CHECK(printed(*r, id_of(4, 100)) == 1);  // the control: printing works
  CHECK(printed(*r, id_of(4, 99)) == 0);
  for (int i = 0; i <= 13; ++i) CHECK(printed(*r, id_of(4, i)) == 0);
}

TEST_CASE("pipelined requests are all answered, in order; rejections keep the connection",
          "[attack]") {
  auto r = start_plain();
  connection c(r->port());
  REQUIRE(c.connected());
  const std::string wrong_auth =
      "Authorization: " + unloc::basic_authorization({"myuser", "not-the-password"}) +
      "\r\nContent-Length: 2\r\n";
  REQUIRE(c.send(delivery(id_of(5, 1)) + "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n" +
                 receiver_test::post_head(wrong_auth, false) + "{}" + delivery(id_of(5, 2)) +
                 "GET /accessEvents HTTP/1.1\r\nHost: x\r\n\r\n" +
                 receiver_test::post_head("Content-Length: 2\r\n") + "[]" +
                 "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  for (const int expected : {204, 404, 401, 204, 405, 422, 200}) {  // in the order sent
    CHECK(c.read_response(5s).status == expected);
  }
  CHECK(c.quiet_for(200ms));  // still open after its rejections
  REQUIRE(c.send(delivery(id_of(5, 3))));
  CHECK(c.read_response(5s).status == 204);
  REQUIRE(r->stop(SIGTERM) == 0);
  for (int i = 1; i <= 3; ++i) CHECK(printed(*r, id_of(5, i)) == 1);
}

TEST_CASE(
    "keep-alive hogging with complete unauthenticated requests starves no delivery; a "
    "connection's requests are bounded",
    "[attack]") {
  auto r = start_plain({"--threads", "2", "--max-requests-per-connection", "20"});
  const int port = r->port();
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, reconnects{0};
  std::vector<std::thread> hogs;
  hogs.reserve(8);
  for (int h = 0; h < 8; ++h) {
    hogs.emplace_back([&, h] {
      auto c = std::make_unique<connection>(port, attack::client_address(300 + h));
      while (!stop) {
        if (c->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n") && c->read_response(5s).status == 404) {
          ++answered;
        } else {
          ++reconnects;
          c = std::make_unique<connection>(port, attack::client_address(300 + h));
        }
        std::this_thread::sleep_for(50ms);  // 160 rejected requests a second in all
      }
    });
  }
  const auto deadline = steady::now() + 20s;
  while (answered < 16 && steady::now() < deadline) std::this_thread::sleep_for(10ms);
  for (int i = 0; i < 10; ++i) {
    const auto t = deliver(port, id_of(6, i));
    INFO("delivery " << i << " took " << std::chrono::duration_cast<milliseconds>(t.took).count()
                     << " ms");
    CHECK(t.res.status == 204);
    CHECK(t.took < 2s);
    std::this_thread::sleep_for(250ms);  // deliveries spread over the hogging's 3 s
  }
  stop = true;
  for (auto& h : hogs) h.join();
  INFO("hog requests answered " << answered << ", reconnects " << reconnects);
  CHECK(answered >= 100);
  CHECK(reconnects >= 8);  // each hog closed after its 20 requests

  // 50 requests pipelined on one connection: at most 20 answered, then the close.
  connection c(port, attack::client_address(310));
  std::string fifty;
  for (int i = 0; i < 50; ++i) fifty += "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  c.send(fifty);
  int responses = 0;
  while (c.read_response(5s).status == 404) ++responses;
  CHECK(responses >= 1);
  CHECK(responses <= 20);
  CHECK(c.closed_within(5s));
  REQUIRE(r->stop(SIGTERM) == 0);
  for (int i = 0; i < 10; ++i) CHECK(printed(*r, id_of(6, i)) == 1);
}

TEST_CASE(
    "past --max-connections-per-client and --max-connections new connections are refused; "
    "deliveries in progress finish",
    "[attack]") {
  const int metrics_port = free_port();
  auto r = start_plain({"--max-connections", "6", "--max-connections-per-client", "3",
                        "--header-timeout", "30", "--body-timeout", "30", "--metrics-listen",
                        "127.0.0.1:" + std::to_string(metrics_port)});
  const int port = r->port();
  // Deliveries in progress: the head and 20 bytes of the body sent, the rest held back.
  std::vector<std::unique_ptr<connection>> held;
  const auto hold = [&](int n, const std::string& source) {
    const std::string whole = delivery(id_of(7, n));
    held.push_back(std::make_unique<connection>(port, source));
    REQUIRE(held.back()->connected());
    REQUIRE(held.back()->send(whole.substr(0, whole.find("\r\n\r\n") + 4 + 20)));
  };
  // A connection the receiver must refuse: its delivery is never answered 2xx nor printed.
  const auto refused = [&](int n, const std::string& source) {
    connection c(port, source);
    if (!c.connected()) return true;  // refused at connect is refused too
    c.send(delivery(id_of(7, n)));
    const int status = c.read_response(5s).status;
    INFO("status " << status);
    return (status == 0 || status == 503) && c.closed_within(5s);
  };
  // One acceptor takes connections in the order they were made: those held come first.
  for (int i = 0; i < 3; ++i) hold(i, attack::client_address(400));
  CHECK(refused(90, attack::client_address(400)));  // a fourth from the same address
  for (int i = 3; i < 6; ++i) hold(i, attack::client_address(401 + i));
  CHECK(refused(91, attack::client_address(420)));  // a seventh in all
  for (std::size_t i = 0; i < held.size(); ++i) {
    const std::string whole = delivery(id_of(7, static_cast<int>(i)));
    REQUIRE(held[i]->send(whole.substr(whole.find("\r\n\r\n") + 4 + 20)));
    CHECK(held[i]->read_response(5s).status == 204);
  }
  const auto text = metrics_text(metrics_port);
  INFO(text);
  CHECK(sample(text, "unloc_receiver_connections_refused_total{cap=\"per_client\"}") >= 1);
  CHECK(sample(text, "unloc_receiver_connections_refused_total{cap=\"total\"}") >= 1);
  held.clear();  // their slots come back once the receiver sees the close
  int status = 0;
  for (const auto deadline = steady::now() + 10s; status != 204 && steady::now() < deadline;) {
    status = deliver(port, id_of(7, 51), nullptr).res.status;
  }
  CHECK(status == 204);
  REQUIRE(r->stop(SIGTERM) == 0);
  for (int i = 0; i < 6; ++i) CHECK(printed(*r, id_of(7, i)) == 1);
  CHECK(printed(*r, id_of(7, 90)) == 0);
  CHECK(printed(*r, id_of(7, 91)) == 0);
}

TEST_CASE("500 idle TLS connections, half with half a ClientHello, delay no delivery", "[attack]") {
  REQUIRE(attack::raise_fd_limit(4096) >= 1100);
  auto r = start_tls({"--max-connections", "1000"});  // the caps have their own test
  std::vector<std::unique_ptr<connection>> idle;
  const std::string half_hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
  for (int i = 0; i < 500; ++i) {
    idle.push_back(std::make_unique<connection>(r->port(), attack::client_address(1000 + i)));
    REQUIRE(idle.back()->connected());
    if (i % 2 == 1) idle.back()->send(half_hello);
  }
  const auto ctx = trusting();
  for (int i = 0; i < 5; ++i) {
    const auto t = deliver(r->port(), id_of(8, i), ctx);
    INFO("delivery " << i << " took " << std::chrono::duration_cast<milliseconds>(t.took).count()
                     << " ms");
    CHECK(t.res.status == 204);
    CHECK(t.took < 2s);
  }
  idle.clear();
  REQUIRE(r->stop(SIGTERM) == 0);
  for (int i = 0; i < 5; ++i) CHECK(printed(*r, id_of(8, i)) == 1);
}

TEST_CASE("idle, silent and slow connections are closed by their deadlines", "[attack]") {
  SECTION("a keep-alive connection idle past --idle-timeout") {
    auto r = start_plain({"--idle-timeout", "0.5"});
    connection c(r->port());
    REQUIRE(c.send("GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"));
    REQUIRE(c.read_response(5s).status == 404);
    CHECK(c.quiet_for(100ms));  // kept alive at first
    CHECK(c.closed_within(5s));
  }
  SECTION("a connection that never sends a byte, plain and TLS") {
    auto plain = start_plain({"--header-timeout", "0.5", "--idle-timeout", "0.5"});
    connection silent(plain->port());
    CHECK(silent.closed_within(5s));
    auto tls = start_tls({"--handshake-timeout", "0.5"});
    connection silent_tls(tls->port());
    CHECK(silent_tls.closed_within(5s));
    connection half_hello(tls->port());
    half_hello.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
    CHECK(half_hello.closed_within(5s));
  }
  SECTION("headers dripped past --header-timeout (counted from the first byte): 408") {
    auto r = start_plain({"--header-timeout", "1"});
    connection c(r->port());
    REQUIRE(c.send("POST /accessEvents HTTP/1.1\r\n"));
    const auto start = steady::now();
    // A line every 100 ms would keep a per-read timeout from ever firing.
    for (int i = 0; i < 50 && c.quiet_for(100ms); ++i)
      c.send("X-Drip: " + std::to_string(i) + "\r\n");
    CHECK(steady::now() - start < 5s);
    CHECK(c.read_response(1s).status == 408);
    CHECK(c.closed_within(5s));
  }
  SECTION("a body dripped past --body-timeout: 408") {
    auto r = start_plain({"--body-timeout", "1"});
    connection c(r->port());
    REQUIRE(c.send(receiver_test::post_head("Content-Length: 1000\r\n")));
    const auto start = steady::now();
    for (int i = 0; i < 50 && c.quiet_for(100ms); ++i) c.send("x");
    CHECK(steady::now() - start < 5s);
    CHECK(c.read_response(1s).status == 408);
    CHECK(c.closed_within(5s));
  }
}

TEST_CASE("Expect: 100-continue: the head is judged before any 100 is sent", "[attack]") {
  auto r = start_plain({"--max-body", "4096"});
  const std::string body = receiver_test::event_body(id_of(10, 1));
  const std::string expect =
      "Content-Length: " + std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n";
  const std::string wrong =
      "Authorization: " + unloc::basic_authorization({"myuser", "not-the-password"}) + "\r\n";
  {
    connection c(r->port());
    REQUIRE(c.send(receiver_test::post_head(wrong + expect, false)));
    const auto res = c.read_response(5s);
    CHECK(res.status == 401);  // not 100
    CHECK(res.head.find("WWW-Authenticate: Basic realm=\"unloc\"") != std::string::npos);
  }
  {
    connection c(r->port());
    REQUIRE(c.send(receiver_test::post_head("Content-Length: 100000\r\nExpect: 100-continue\r\n")));
    CHECK(c.read_response(5s).status == 413);
  }
  {
    connection c(r->port());  // the control: right credentials get the 100, then the 204
    REQUIRE(c.send(receiver_test::post_head(expect)));
    REQUIRE(c.read_response(5s).status == 100);
    REQUIRE(c.send(body));
    CHECK(c.read_response(5s).status == 204);
  }
  REQUIRE(r->stop(SIGTERM) == 0);
  CHECK(printed(*r, id_of(10, 1)) == 1);
}

TEST_CASE("10,000 requests with wrong credentials write a bounded number of stderr lines",
          "[attack]") {
  const auto start = steady::now();
  auto r = start_plain();
  const std::string secret = "flood-guess-7f3a";
  const std::string request =
      receiver_test::post_head("Authorization: " + unloc::basic_authorization({"myuser", secret}) +
                                   "\r\nContent-Length: 2\r\n",
                               false) +
      "{}";
  int unauthorized = 0, connections = 1;
  auto c = std::make_unique<connection>(r->port());
  bool fresh = true;
  while (unauthorized < 10000) {
    const int count = std::min(100, 10000 - unauthorized);  // pipelined, 100 at a time
    std::string batch;
    for (int i = 0; i < count; ++i) batch += request;
    int answered = 0;
    if (c->send(batch)) {
      while (answered < count && c->read_response(5s).status == 401) ++answered;
    }
    REQUIRE((answered > 0 || !fresh));  // a new connection is served
    unauthorized += answered;
    fresh = false;
    if (answered < count) {  // the connection reached its bound: the rest on a new one
      c = std::make_unique<connection>(r->port());
      fresh = true;
      ++connections;
    }
  }
  CHECK(unauthorized == 10000);
  REQUIRE(r->stop(SIGTERM) == 0);
  const auto seconds = std::chrono::duration<double>(steady::now() - start).count();
  const auto lines = receiver_test::lines_of(r->err());
  INFO("stderr lines: " << lines.size() << " in " << seconds << " s, connections: " << connections);
  // A rate, not a count: the old receiver wrote a line a request, 10,000 in 1.9 s.
  CHECK(static_cast<double>(lines.size()) < 20 + 50 * seconds);
  CHECK(lines.size() < 1000);
  CHECK(r->err().find(secret) == std::string::npos);
}

TEST_CASE("TLS 1.0 and 1.1, RSA key exchange and CBC suites are refused", "[attack]") {
  auto r = start_tls();
  const std::string ca = unloc_test::test_tls_files().ca_cert;
  const auto handshake = [&](const std::shared_ptr<SSL_CTX>& ctx) {
    connection c(r->port());
    const bool ok = c.connected() && c.handshake(ctx);
    if (!ok) {  // the refusal must come from the receiver, not from this OpenSSL not offering
      INFO(c.tls_error());
      CHECK(c.tls_reason() != SSL_R_NO_PROTOCOLS_AVAILABLE);
      CHECK(c.tls_reason() != SSL_R_NO_CIPHERS_AVAILABLE);
    }
    return ok;
  };
  for (const int version : {TLS1_VERSION, TLS1_1_VERSION}) {
    INFO("version " << std::hex << version);
    CHECK_FALSE(handshake(attack::tls_context(version, version, "", ca)));
  }
  CHECK(handshake(attack::tls_context(TLS1_2_VERSION, TLS1_2_VERSION, "", ca)));
  CHECK(handshake(attack::tls_context(TLS1_3_VERSION, TLS1_3_VERSION, "", ca)));
  const auto tls12 = [&](const char* suite) {
    return attack::tls_context(TLS1_2_VERSION, TLS1_2_VERSION, suite, ca);
  };
  CHECK(handshake(tls12("ECDHE-ECDSA-AES128-GCM-SHA256")));  // the controls
  CHECK(handshake(tls12("ECDHE-ECDSA-CHACHA20-POLY1305")));
  CHECK_FALSE(handshake(tls12("ECDHE-ECDSA-AES128-SHA")));  // CBC
  CHECK_FALSE(handshake(tls12("ECDHE-ECDSA-AES256-SHA384")));

  // RSA key exchange needs an RSA certificate to be offered at all.
  const std::string& dir = fixture_dir();
  const std::string command =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "
      "/CN=localhost -keyout " +
      dir + "/rsa.key -out " + dir + "/rsa.pem >" + dir + "/rsa.log 2>&1";
  REQUIRE(std::system(command.c_str()) == 0);
  r = start_tls({}, dir + "/rsa.pem", dir + "/rsa.key");
  const auto unverified = [&](const char* suite) {
    return attack::tls_context(TLS1_2_VERSION, TLS1_2_VERSION, suite, "");
  };
  CHECK(handshake(unverified("ECDHE-RSA-AES128-GCM-SHA256")));  // the control
  CHECK_FALSE(handshake(unverified("AES128-GCM-SHA256")));      // RSA key exchange, no secrecy
  CHECK_FALSE(handshake(unverified("AES256-SHA")));
  CHECK_FALSE(handshake(unverified("ECDHE-RSA-AES128-SHA")));
}

TEST_CASE("SIGHUP reloads the certificate for new connections; an open connection keeps working",
          "[attack]") {
  namespace fs = std::filesystem;
  const auto& files = unloc_test::test_tls_files();
  const std::string cert = fixture_dir() + "/reload.pem";
  const std::string key = fixture_dir() + "/reload.key";
  fs::copy_file(files.server_cert, cert, fs::copy_options::overwrite_existing);
  fs::copy_file(files.server_key, key, fs::copy_options::overwrite_existing);
  auto r = start_tls({"--idle-timeout", "30"}, cert, key);
  const auto any_cert = attack::tls_context(TLS1_2_VERSION, 0, "", "");
  const auto issuer = [&] {
    connection c(r->port());
    return c.connected() && c.handshake(any_cert) ? c.peer_issuer() : std::string();
  };
  REQUIRE(issuer() == "unloc-cpp test CA");
  connection open(r->port());
  REQUIRE(open.handshake(trusting()));
  REQUIRE(open.send(delivery(id_of(12, 1))));
  REQUIRE(open.read_response(5s).status == 204);

  // A renewal: the new files are written, then the signal.
  fs::copy_file(files.other_server_cert, cert, fs::copy_options::overwrite_existing);
  fs::copy_file(files.other_server_key, key, fs::copy_options::overwrite_existing);
  REQUIRE(::kill(r->pid(), SIGHUP) == 0);
  std::string now;
  for (const auto deadline = steady::now() + 10s;
       (now = issuer()) != "unloc-cpp unrelated CA" && steady::now() < deadline;) {
    std::this_thread::sleep_for(20ms);  // polling for the reload
  }
  CHECK(now == "unloc-cpp unrelated CA");
  REQUIRE(open.send(delivery(id_of(12, 2))));  // the same connection, the old certificate
  CHECK(open.read_response(5s).status == 204);

  // A reload that fails (a broken file) keeps the last good certificate, and the process.
  const auto err_size = r->err().size();
  std::ofstream(cert, std::ios::trunc) << "not a certificate\n";
  REQUIRE(::kill(r->pid(), SIGHUP) == 0);
  for (const auto deadline = steady::now() + 10s;
       r->err().size() == err_size && steady::now() < deadline;) {
    std::this_thread::sleep_for(20ms);  // the receiver says why it kept the old files
  }
  CHECK(r->err().size() > err_size);
  CHECK(issuer() == "unloc-cpp unrelated CA");
  REQUIRE(r->stop(SIGTERM) == 0);
  CHECK(printed(*r, id_of(12, 1)) == 1);
  CHECK(printed(*r, id_of(12, 2)) == 1);
}

TEST_CASE("GET /healthz answers 200 without credentials; /metrics counts a delivery", "[attack]") {
  const int metrics_port = free_port();
  auto r = start_tls({"--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port)});
  connection c(r->port());
  REQUIRE(c.handshake(trusting()));
  REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(c.read_response(5s).status == 200);
  REQUIRE(c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(c.read_response(5s).status == 404);  // not on the public listener

  const auto accepted = [&] {
    return sample(metrics_text(metrics_port),
                  "unloc_receiver_deliveries_total{outcome=\"accepted\"}");
  };
  const auto handled = [&] {
    return sample(metrics_text(metrics_port), "unloc_receiver_delivery_duration_seconds_count");
  };
  const double before = accepted();
  const double handled_before = handled();
  REQUIRE(before >= 0);
  REQUIRE(handled_before >= 0);
  REQUIRE(c.send(delivery(id_of(13, 1))));
  REQUIRE(c.read_response(5s).status == 204);
  CHECK(accepted() == before + 1);
  CHECK(handled() == handled_before + 1);
}

TEST_CASE("--plain-http refuses an address other than loopback", "[attack]") {
  for (const char* address : {"0.0.0.0:0", "[::]:0"}) {
    INFO(address);
    attack::receiver r(UNLOC_RECEIVER_PATH, {"--listen", address, "--plain-http"},
                       receiver_test::credential_env(), fixture_dir());
    CHECK(r.port() == 0);
    CHECK(r.exit_status() == 2);  // bad usage
    CHECK(r.err().find("loopback") != std::string::npos);
  }
  auto loopback = start({"--listen", "127.0.0.2:0", "--plain-http"});  // all of 127/8 is
  CHECK(loopback->stop(SIGTERM) == 0);
}

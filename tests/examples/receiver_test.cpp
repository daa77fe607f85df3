// unloc-webhook-receiver as a child process: every row of the status table
// and every option of shared/cli-and-receiver.md, over real HTTPS.

#include "catch.hpp"
#include "support/reference_server.hpp"

#include <unloc/core.hpp>
#include <unloc/testing.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using namespace std::chrono_literals;

const unloc::basic_credentials credentials{"myuser", "mypasswoord"};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The receiver as a child process, on a free port, stopped in the destructor.
class receiver_process {
 public:
  explicit receiver_process(std::vector<std::string> args, std::vector<std::string> env = {
                                                               "UNLOC_WEBHOOK_USER=myuser",
                                                               "UNLOC_WEBHOOK_PASSWORD=mypasswoord"}) {
    std::signal(SIGPIPE, SIG_IGN);  // the tests write to connections the receiver closes
    const auto& tls = unloc_test::test_tls_files();
    const std::string base = tls.dir + "/receiver-" + std::to_string(counter()++);
    out_ = base + ".out";
    err_ = base + ".err";
    port_file_ = base + ".port";
    std::vector<std::string> argv = {UNLOC_RECEIVER_PATH, "--listen", "127.0.0.1:0",
                                     "--port-file", port_file_};
    bool plain = false;
    for (const auto& a : args) plain |= a == "--plain-http";
    if (!plain) argv.insert(argv.end(), {"--cert", tls.server_cert, "--key", tls.server_key});
    argv.insert(argv.end(), args.begin(), args.end());
    status_ = spawn(argv, env);
    if (status_ >= 0) return;  // it exited at once (usage error)
    for (int i = 0; i < 400 && port_ == 0; ++i) {
      std::ifstream in(port_file_);
      if (!(in >> port_)) std::this_thread::sleep_for(25ms);  // polling the port file
    }
    REQUIRE(port_ > 0);
  }
  ~receiver_process() {
    if (pid_ > 0) stop(SIGTERM);
  }

  int stop(int signal) {
    kill(pid_, signal);
    int raw = 0;
    waitpid(pid_, &raw, 0);
    pid_ = 0;
    return WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  }

  [[nodiscard]] int exit_status() const { return status_; }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string out() const { return read_file(out_); }
  [[nodiscard]] std::string err() const { return read_file(err_); }

  std::unique_ptr<httplib::Client> client(bool plain = false) const {
    if (plain) return std::make_unique<httplib::Client>("127.0.0.1", port_);
    auto c = std::make_unique<httplib::Client>("https://127.0.0.1:" + std::to_string(port_));
    c->set_ca_cert_path(unloc_test::test_tls_files().ca_cert.c_str());
    c->enable_server_certificate_verification(true);
    return c;
  }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }

  // Starts the program; returns its exit status if it ended within a moment, else -1.
  int spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    std::vector<std::string> environment;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string(*e).rfind("UNLOC_WEBHOOK_", 0) != 0) environment.emplace_back(*e);
    }
    environment.insert(environment.end(), env.begin(), env.end());
    std::vector<char*> args, envp;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const auto& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(posix_spawn(&pid_, argv[0].c_str(), &actions, nullptr, args.data(), envp.data()) == 0);
    posix_spawn_file_actions_destroy(&actions);
    for (int i = 0; i < 400; ++i) {
      int raw = 0;
      if (waitpid(pid_, &raw, WNOHANG) == pid_) {
        pid_ = 0;
        return WIFEXITED(raw) ? WEXITSTATUS(raw) : 128;
      }
      if (std::ifstream(port_file_).good()) return -1;
      std::this_thread::sleep_for(25ms);
    }
    return -1;
  }

  pid_t pid_ = 0;
  int port_ = 0;
  int status_ = -1;
  std::string out_, err_, port_file_;
};

httplib::Headers delivery_headers(const std::optional<unloc::basic_credentials>& c = credentials) {
  httplib::Headers h;
  if (c) h.emplace("Authorization", unloc::basic_authorization(*c));
  return h;
}

std::string event_body(const std::string& id = "ae832e61-c8fa-4ed9-8196-61210cb4207b") {
  auto event = unloc::testing::sample_access_event();
  event.id = unloc::uuid::parse(id).value();
  return unloc::to_json_text(event);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Sends raw bytes over plain TCP and returns the first response (head and
// Content-Length body), without waiting for the connection to close.
std::string raw_exchange(int port, const std::string& bytes) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string reply;
  char buffer[4096];
  for (ssize_t n; (n = recv(fd, buffer, sizeof buffer, 0)) > 0;) {
    reply.append(buffer, static_cast<std::size_t>(n));
    const auto head_end = reply.find("\r\n\r\n");
    if (head_end == std::string::npos) continue;
    std::size_t length = 0;
    if (const auto at = reply.find("Content-Length: "); at != std::string::npos && at < head_end) {
      length = std::stoul(reply.substr(at + 16));
    }
    if (reply.size() >= head_end + 4 + length) break;
  }
  close(fd);
  return reply;
}

}  // namespace

TEST_CASE("prints a new event once as a JSON line and acknowledges repeats", "[receiver]") {
  receiver_process r({});
  auto c = r.client();
  auto first = c->Post("/accessEvents", delivery_headers(), event_body(), "application/json");
  REQUIRE(first);
  CHECK(first->status == 204);
  auto again = c->Post("/accessEvents", delivery_headers(), event_body(), "application/json");
  REQUIRE(again);
  CHECK(again->status == 204);
  REQUIRE(r.stop(SIGTERM) == 0);
  const auto lines = lines_of(r.out());
  REQUIRE(lines.size() == 1);
  const auto printed = nlohmann::ordered_json::parse(lines[0]);
  std::vector<std::string> keys;
  for (const auto& item : printed.items()) keys.push_back(item.key());
  CHECK(keys == std::vector<std::string>{"id", "action", "created", "keyId", "lockId", "lockName",
                                         "appUserId", "userName"});
  CHECK(printed["created"] == "2022-01-01T10:35:24.083Z");
  CHECK(r.err().find("delivered again") != std::string::npos);
  CHECK(r.err().find("mypasswoord") == std::string::npos);
}

TEST_CASE("answers every row of the status table", "[receiver]") {
  receiver_process r({"--max-body", "4096"});
  auto c = r.client();
  const auto post = [&](const std::string& path, const httplib::Headers& h, const std::string& body,
                        const char* type) { return c->Post(path.c_str(), h, body, type); };

  auto missing = post("/accessEvents", delivery_headers(std::nullopt), event_body(), "application/json");
  REQUIRE(missing);
  CHECK(missing->status == 401);
  CHECK(missing->get_header_value("WWW-Authenticate") == "Basic realm=\"unloc\"");
  auto wrong = post("/accessEvents", delivery_headers(unloc::basic_credentials{"myuser", "nope"}),
                    event_body(), "application/json");
  CHECK(wrong->status == 401);
  httplib::Headers malformed{{"Authorization", "Basic !!!"}};
  CHECK(post("/accessEvents", malformed, event_body(), "application/json")->status == 401);

  CHECK(post("/elsewhere", delivery_headers(), event_body(), "application/json")->status == 404);
  auto get = c->Get("/accessEvents", delivery_headers());
  REQUIRE(get);
  CHECK(get->status == 405);
  CHECK(get->get_header_value("Allow") == "POST");
  CHECK(post("/accessEvents", delivery_headers(), event_body(), "text/plain")->status == 415);
  CHECK(post("/accessEvents", delivery_headers(), event_body(), "application/json; charset=utf-8")
            ->status == 204);
  CHECK(post("/accessEvents", delivery_headers(), "{not json", "application/json")->status == 400);
  CHECK(post("/accessEvents", delivery_headers(), "{\"lockName\":\"Nord\xe5\"}", "application/json")
            ->status == 400);
  auto invalid = post("/accessEvents", delivery_headers(), R"({"id":"x"})", "application/json");
  REQUIRE(invalid);
  CHECK(invalid->status == 422);
  CHECK(nlohmann::json::parse(invalid->body)["field"] == "id");
  CHECK(post("/accessEvents", delivery_headers(), std::string(5000, ' ') + event_body(), "application/json")
            ->status == 413);

  std::string unknown = event_body("11111111-2222-4333-8444-555555555555");
  unknown.replace(unknown.find("\"unlocked\""), 10, "\"jammed\"");
  unknown.insert(1, "\"battery\":{\"level\":3},");
  CHECK(post("/accessEvents", delivery_headers(), unknown, "application/json")->status == 204);
  REQUIRE(r.stop(SIGINT) == 0);
  const auto lines = lines_of(r.out());
  REQUIRE(lines.size() == 2);
  CHECK(lines[1].find("\"action\":\"jammed\"") != std::string::npos);
}

TEST_CASE("decides 413 from Content-Length before the body is sent", "[receiver]") {
  receiver_process r({"--plain-http", "--max-body", "1000"});
  const std::string head = "POST /accessEvents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           "Authorization: " + unloc::basic_authorization(credentials) +
                           "\r\nContent-Length: 10000000\r\n\r\n";
  const auto reply = raw_exchange(r.port(), head);  // headers only: no body is ever sent
  CHECK(reply.rfind("HTTP/1.1 413", 0) == 0);
  // Unauthenticated, the same request is refused for its credentials first.
  const auto anonymous = raw_exchange(r.port(), "POST /accessEvents HTTP/1.1\r\nHost: x\r\n"
                                                "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n");
  CHECK(anonymous.rfind("HTTP/1.1 401", 0) == 0);
  CHECK(r.err().find("WARNING: --plain-http") != std::string::npos);
}

TEST_CASE("refuses a chunked body over the limit", "[receiver]") {
  receiver_process r({"--plain-http", "--max-body", "1000"});
  std::string request = "POST /accessEvents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        "Authorization: " + unloc::basic_authorization(credentials) +
                        "\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) request += "3e8\r\n" + std::string(1000, ' ') + "\r\n";
  request += "0\r\n\r\n";
  CHECK(raw_exchange(r.port(), request).rfind("HTTP/1.1 413", 0) == 0);
}

TEST_CASE("serves another --path, and --no-auth without credentials", "[receiver]") {
  receiver_process r({"--path", "/hooks/unloc", "--no-auth"}, {});
  auto c = r.client();
  CHECK(c->Post("/hooks/unloc", event_body(), "application/json")->status == 204);
  CHECK(c->Post("/accessEvents", event_body(), "application/json")->status == 404);
  CHECK(r.err().find("--no-auth") != std::string::npos);
}

TEST_CASE("accepts the second pair of credentials while rotating", "[receiver]") {
  receiver_process r({}, {"UNLOC_WEBHOOK_USER=old", "UNLOC_WEBHOOK_PASSWORD=old-pw",
                          "UNLOC_WEBHOOK_USER_NEXT=new", "UNLOC_WEBHOOK_PASSWORD_NEXT=new-pw"});
  auto c = r.client();
  CHECK(c->Post("/accessEvents", delivery_headers(unloc::basic_credentials{"old", "old-pw"}),
                event_body(), "application/json")->status == 204);
  CHECK(c->Post("/accessEvents", delivery_headers(unloc::basic_credentials{"new", "new-pw"}),
                event_body("11111111-2222-4333-8444-555555555556"), "application/json")->status == 204);
}

TEST_CASE("refuses to start without credentials or with bad usage, with exit 2", "[receiver]") {
  CHECK(receiver_process({}, {}).exit_status() == 2);
  CHECK(receiver_process({"--max-body", "lots"}).exit_status() == 2);
  CHECK(receiver_process({"--bogus"}).exit_status() == 2);
  CHECK(receiver_process({"--path", "no-slash"}).exit_status() == 2);
  CHECK(receiver_process({}, {"UNLOC_WEBHOOK_USER=only-user"}).exit_status() == 2);
}

TEST_CASE("answers 16 concurrent clients and survives garbage", "[receiver]") {
  receiver_process r({"--plain-http"});
  std::atomic<int> accepted{0};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      auto c = r.client(true);
      for (int i = 0; i < 50; ++i) {
        char id[40];
        std::snprintf(id, sizeof id, "aaaaaaaa-bbbb-4ccc-8ddd-%06d%06d", t, i);
        auto res = c->Post("/accessEvents", delivery_headers(), event_body(id), "application/json");
        if (res && res->status == 204) {
          ++accepted;
        } else {
          const std::lock_guard<std::mutex> lock(failures_mutex);
          failures.push_back(res ? "status " + std::to_string(res->status)
                                 : "error " + httplib::to_string(res.error()));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  INFO((failures.empty() ? std::string() : failures.front()));
  CHECK(accepted == 800);
  raw_exchange(r.port(), std::string("\x16\x03\x01garbage\r\n\r\n\0\xff", 16));
  raw_exchange(r.port(), "POST /accessEvents HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"id\"");
  CHECK(r.client(true)->Post("/accessEvents", delivery_headers(),
                             event_body("aaaaaaaa-bbbb-4ccc-8ddd-999999999999"), "application/json")
            ->status == 204);
  REQUIRE(r.stop(SIGTERM) == 0);
  CHECK(lines_of(r.out()).size() == 801);
}

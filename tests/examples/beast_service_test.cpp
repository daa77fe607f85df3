// examples/beast_service.cpp as a child process on a free loopback port: its own
// route still works, a delivery is answered 204 and printed once, and the
// adapter decides from the head (wrong credentials, a body over the limit)
// before any body is sent.

#include <unloc/core.hpp>
#include <unloc/testing.hpp>

#include "catch.hpp"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char**
    environ;  // NOLINT(readability-redundant-declaration): POSIX asks the program to declare it

namespace {

using namespace std::chrono_literals;

const unloc::basic_credentials good{"myuser", "mypasswoord"};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The example, started with the test credentials; SIGTERM in the destructor.
class service_process {
 public:
  service_process() {
    char dir[] = "/tmp/unloc-beast-service-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    dir_ = dir;
    const std::string port_file = dir_ + "/port";
    out_ = dir_ + "/out";
    std::vector<std::string> env = {"UNLOC_WEBHOOK_USER=" + good.user,
                                    "UNLOC_WEBHOOK_PASSWORD=" + good.password};
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string(*e).rfind("UNLOC_WEBHOOK_", 0) != 0) env.emplace_back(*e);
    }
    std::vector<std::string> argv = {UNLOC_BEAST_SERVICE_PATH, "0", port_file};
    std::vector<char*> args, envp;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), envp.data()) == 0);
    posix_spawn_file_actions_destroy(&actions);
    // Ready once the port file exists (written whole, then renamed).
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (!(std::ifstream(port_file) >> port_)) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      REQUIRE(::waitpid(pid_, nullptr, WNOHANG) == 0);
      std::this_thread::sleep_for(5ms);
    }
  }
  ~service_process() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    std::remove((dir_ + "/port").c_str());
    std::remove(out_.c_str());
    ::rmdir(dir_.c_str());
  }
  service_process(const service_process&) = delete;
  service_process& operator=(const service_process&) = delete;

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string out() const { return read_text(out_); }

 private:
  pid_t pid_ = 0;
  int port_ = 0;
  std::string dir_, out_;
};

struct response {
  int status = 0;  // 0: none came
  std::string head, body;
};

// A plain TCP connection; reads give up after 5 s.
class connection {
 public:
  explicit connection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~connection() { ::close(fd_); }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  void send(const std::string& bytes) {
    REQUIRE(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(bytes.size()));
  }

  // The next response: its head, then a Content-Length body.
  response read() {
    response r;
    std::size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return r;
    }
    r.head = buffer_.substr(0, end + 4);
    std::string lower = r.head;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::size_t length = 0;
    if (const auto at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
      length = std::stoul(lower.substr(at + 17));
    }
    while (buffer_.size() < end + 4 + length) {
      if (!fill()) return r;
    }
    r.body = buffer_.substr(end + 4, length);
    buffer_.erase(0, end + 4 + length);
    r.status = std::stoi(r.head.substr(9, 3));
    return r;
  }

  // True when the peer closes (EOF) with nothing more sent.
  bool closed_by_peer() {
    char byte;
    return buffer_.empty() && ::recv(fd_, &byte, 1, 0) == 0;
  }

 private:
  bool fill() {
    char data[4096];
    const ssize_t n = ::recv(fd_, data, sizeof data, 0);
    if (n <= 0) return false;
    buffer_.append(data, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buffer_;
};

// The head of a POST to /accessEvents with these credentials, length and extra headers.
std::string post_head(const unloc::basic_credentials& credentials, std::size_t length,
                      const std::string& extra = {}) {
  return "POST /accessEvents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
         "Authorization: " +
         unloc::basic_authorization(credentials) + "\r\nContent-Length: " + std::to_string(length) +
         "\r\n" + extra + "\r\n";
}

std::string post(const std::string& body, const unloc::basic_credentials& credentials) {
  return post_head(credentials, body.size()) + body;
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("beast_service answers its own route, and a delivery 204 printed once",
          "[beast_service]") {
  const service_process service;
  connection c(service.port());
  c.send("GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  auto r = c.read();
  CHECK(r.status == 200);
  CHECK(r.body == "up\n");

  const auto event = unloc::testing::sample_access_event();
  const auto body = unloc::to_json_text(event);
  for (int i = 0; i < 2; ++i) {  // the platform's retry of the same event, on the same connection
    c.send(post(body, good));
    r = c.read();
    INFO(r.head << r.body);
    CHECK(r.status == 204);
    CHECK(r.head.find("Content-Length") == std::string::npos);
  }
  const auto out = service.out();
  CHECK(count_of(out, event.id.to_string()) == 1);
  CHECK(count_of(out, "\n") == 1);
}

TEST_CASE("beast_service refuses wrong credentials with 401 and prints nothing",
          "[beast_service]") {
  const service_process service;
  connection c(service.port());
  const auto body = unloc::to_json_text(unloc::testing::sample_access_event());
  c.send(post(body, {good.user, "wrong-password"}));
  const auto r = c.read();
  INFO(r.head << r.body);
  CHECK(r.status == 401);
  CHECK(r.head.find("WWW-Authenticate: Basic realm=\"unloc\"") != std::string::npos);
  CHECK(r.body.find("\"error\":\"unauthorized\"") != std::string::npos);
  CHECK(r.body.find("wrong-password") == std::string::npos);
  // Decided from the head, the body left unread: the connection closes.
  CHECK(c.closed_by_peer());
  CHECK(service.out().empty());
}

TEST_CASE("beast_service decides from the head before 100-continue: 401 or 413, then a 204",
          "[beast_service]") {
  const service_process service;
  const auto event = unloc::testing::sample_access_event();
  const auto body = unloc::to_json_text(event);
  const std::string expect = "Expect: 100-continue\r\n";
  {
    connection c(service.port());
    c.send(post_head({"someone", "else"}, body.size(), expect));  // the head alone, as curl does
    const auto r = c.read();
    CHECK(r.status == 401);  // not 100: the body is never asked for
    CHECK(c.closed_by_peer());
  }
  {
    connection c(service.port());
    c.send(post_head(good, 70000, expect));
    const auto r = c.read();
    CHECK(r.status == 413);
    CHECK(c.closed_by_peer());
  }
  {
    connection c(service.port());
    c.send(post_head(good, body.size(), expect));
    CHECK(c.read().status == 100);
    c.send(body);
    CHECK(c.read().status == 204);
  }
  CHECK(count_of(service.out(), event.id.to_string()) == 1);
}

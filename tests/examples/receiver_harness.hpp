#pragma once

// Test harness for unloc-webhook-receiver: the program as a child process on a
// free port (ready once its --port-file exists), an HTTPS client trusting the
// test CA, and a raw connection (plain or TLS) to send bytes httplib's client
// never would: headers without their body, chunked bodies, garbage.

#include <unloc/core.hpp>
#include <unloc/testing.hpp>

#include "catch.hpp"
#include "support/reference_server.hpp"
#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace receiver_test {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

/// The credentials the receivers of the tests are started with.
inline unloc::basic_credentials credentials() { return {"myuser", "mypasswoord"}; }
/// The same, as the environment variables that give them to the receiver.
inline std::vector<std::string> credential_env() {
  return {"UNLOC_WEBHOOK_USER=myuser", "UNLOC_WEBHOOK_PASSWORD=mypasswoord"};
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

/// How to start the receiver. --listen 127.0.0.1:0, --port-file, and the test
/// certificate (unless --plain-http is among `args`) are added.
struct launch {
  std::vector<std::string> args;
  std::vector<std::string> env = credential_env();  ///< Replaces every UNLOC_WEBHOOK_* variable.
  bool add_listen = true;                           ///< Add --listen 127.0.0.1:0 and --port-file.
  bool stdout_broken = false;                       ///< stdout is a pipe nobody reads (closed).
  bool stdout_stalled = false;  ///< stdout is a pipe of two pages, open, that nobody reads.
  bool stdout_full = false;     ///< as stdout_stalled, and already full to the last byte.
  bool stderr_to_stdout = false;  ///< stderr goes where stdout goes (as `2>&1`).
};

/// unloc-webhook-receiver as a child process; SIGTERM (then SIGKILL) in the destructor.
class receiver_process {
 public:
  explicit receiver_process(launch how = {}) {
    std::signal(SIGPIPE, SIG_IGN);  // the tests write to connections the receiver closes
    const auto& tls = unloc_test::test_tls_files();
    static int counter = 0;
    const std::string base = tls.dir + "/receiver-" + std::to_string(++counter);
    out_ = base + ".out";
    err_ = base + ".err";
    port_file_ = base + ".port";
    plain_ = false;
    for (const auto& a : how.args) plain_ |= a == "--plain-http";
    std::vector<std::string> argv = {UNLOC_RECEIVER_PATH};
    if (how.add_listen)
      argv.insert(argv.end(), {"--listen", "127.0.0.1:0", "--port-file", port_file_});
    if (!plain_ && how.add_listen) {
      argv.insert(argv.end(), {"--cert", tls.server_cert, "--key", tls.server_key});
    }
    argv.insert(argv.end(), how.args.begin(), how.args.end());
    spawn(argv, how);
    wait_ready();
  }
  ~receiver_process() {
    if (pid_ > 0) stop(SIGTERM);
    if (stalled_ >= 0) ::close(stalled_);
  }
  receiver_process(const receiver_process&) = delete;
  receiver_process& operator=(const receiver_process&) = delete;

  /// Sends `signal` and waits for the exit: its status, 128 + signal when killed.
  int stop(int signal) {
    ::kill(pid_, signal);
    const auto deadline = steady::now() + 10s;
    int raw = 0;
    while (::waitpid(pid_, &raw, WNOHANG) == 0) {
      if (steady::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &raw, 0);
        break;
      }
      std::this_thread::sleep_for(5ms);
    }
    pid_ = 0;
    exit_status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    return exit_status_;
  }

  /// The exit status when it ended before listening (a usage error), else -1.
  [[nodiscard]] int exit_status() const { return exit_status_; }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] bool plain() const { return plain_; }
  [[nodiscard]] std::string out() const { return read_text(out_); }
  [[nodiscard]] std::string err() const { return read_text(err_); }

  /// An httplib client for the receiver: HTTPS trusting the test CA, or plain HTTP.
  [[nodiscard]] std::unique_ptr<httplib::Client> client() const {
    const std::string scheme = plain_ ? "http://" : "https://";
    auto c = std::make_unique<httplib::Client>(scheme + "127.0.0.1:" + std::to_string(port_));
    if (!plain_) {
      c->set_ca_cert_path(unloc_test::test_tls_files().ca_cert);
      c->enable_server_certificate_verification(true);
    }
    c->set_read_timeout(10, 0);
    c->set_tcp_nodelay(true);  // else each request waits ~40 ms for a delayed ACK
    return c;
  }

 private:
  void spawn(const std::vector<std::string>& argv, const launch& how) {
    std::vector<std::string> environment;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string(*e).rfind("UNLOC_WEBHOOK_", 0) != 0) environment.emplace_back(*e);
    }
    environment.insert(environment.end(), how.env.begin(), how.env.end());
    std::vector<char*> args, envp;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const auto& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    int broken[2] = {-1, -1};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const bool stalled = how.stdout_stalled || how.stdout_full;
    if (how.stdout_broken || stalled) {
      REQUIRE(::pipe(broken) == 0);
      // Stalled: two pages, full after a few lines (poll(2) counts a pipe full once
      // each of its pages holds something, so one page would be full after one line).
      if (stalled) REQUIRE(::fcntl(broken[1], F_SETPIPE_SZ, 8192) >= 8192);
      if (how.stdout_full) {  // filled to the last byte: even a short write blocks
        const int flags = ::fcntl(broken[1], F_GETFL);
        REQUIRE(::fcntl(broken[1], F_SETFL, flags | O_NONBLOCK) == 0);
        const char fill[512] = {};
        for (std::size_t n = sizeof fill; n > 0;) {
          if (::write(broken[1], fill, n) < 0) n /= 2;  // EAGAIN: try what is left
        }
        REQUIRE(::fcntl(broken[1], F_SETFL, flags) == 0);
      }
      posix_spawn_file_actions_adddup2(&actions, broken[1], 1);
      posix_spawn_file_actions_addclose(&actions, broken[0]);
    } else {
      posix_spawn_file_actions_addopen(&actions, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                       0600);
    }
    if (how.stderr_to_stdout) {
      posix_spawn_file_actions_adddup2(&actions, 1, 2);
    } else {
      posix_spawn_file_actions_addopen(&actions, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                       0600);
    }
    REQUIRE(posix_spawn(&pid_, argv[0].c_str(), &actions, nullptr, args.data(), envp.data()) == 0);
    posix_spawn_file_actions_destroy(&actions);
    if (how.stdout_broken || stalled) {
      ::close(broken[1]);
      if (stalled) {
        stalled_ = broken[0];  // kept open, never read: the receiver's writes block
      } else {
        ::close(broken[0]);  // nobody reads: the receiver's writes fail with EPIPE
      }
    }
  }

  // Until the port file holds a port, or the child exits. Polls: no fixed sleep.
  void wait_ready() {
    const auto deadline = steady::now() + 15s;
    while (steady::now() < deadline) {
      int raw = 0;
      if (::waitpid(pid_, &raw, WNOHANG) == pid_) {
        pid_ = 0;
        exit_status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
        return;
      }
      std::ifstream in(port_file_);
      if (in >> port_ && port_ > 0) return;
      port_ = 0;
      std::this_thread::sleep_for(5ms);
    }
    ::kill(pid_, SIGKILL);  // never leave it running behind a failed test
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
    FAIL("the receiver neither listened nor exited within 15 s: " << err());
  }

  pid_t pid_ = 0;
  int port_ = 0;
  int exit_status_ = -1;
  bool plain_ = false;
  int stalled_ = -1;  // the read end of a stalled stdout
  std::string out_, err_, port_file_;
};

/// Polls the receiver's stderr until it holds `text`; false after 10 s.
inline bool wait_for_err(const receiver_process& r, const std::string& text) {
  const auto deadline = steady::now() + 10s;
  while (r.err().find(text) == std::string::npos) {
    if (steady::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

/// One HTTP response as read off a raw connection.
struct raw_response {
  int status = 0;  ///< 0: none came (the connection closed or timed out).
  std::string head;
  std::string body;
};

/// A TCP connection to the receiver, TLS (verifying the test CA) or plain, for
/// sending exactly the bytes a test wants. Reads time out after 5 s.
class raw_connection {
 public:
  raw_connection(int port, bool tls) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (!tls) return;
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, unloc_test::test_tls_files().ca_cert.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    SSL_CTX_set_options(ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF);  // a close without close_notify is EOF
#endif
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    REQUIRE(SSL_connect(ssl_) == 1);
  }
  ~raw_connection() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    ::close(fd_);
  }
  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;

  /// Sends all of `bytes`; false when the peer has closed.
  bool send(const std::string& bytes) {
    if (ssl_ != nullptr) {
      return bytes.empty() || SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) ==
                                  static_cast<int>(bytes.size());
    }
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }

  /// The next response (head, then a Content-Length body); status 0 when none.
  raw_response read_response() {
    raw_response r;
    std::size_t head_end;
    while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return r;
    }
    r.head = buffer_.substr(0, head_end + 4);
    std::size_t length = 0;
    std::string lower = r.head;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (const auto at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
      length = std::stoul(lower.substr(at + 17));
    }
    while (buffer_.size() < head_end + 4 + length) {
      if (!fill()) return r;
    }
    r.body = buffer_.substr(head_end + 4, length);
    buffer_.erase(0, head_end + 4 + length);
    r.status = std::stoi(r.head.substr(9, 3));
    return r;
  }

  /// True when the peer closes the connection (EOF) within 5 s with nothing more to read.
  bool closed_by_peer() {
    if (!buffer_.empty()) return false;
    char byte;
    return receive(&byte, 1) == 0;
  }

 private:
  // >0 bytes read, 0 EOF, <0 error or timeout.
  ssize_t receive(char* data, std::size_t size) {
    if (ssl_ == nullptr) return ::recv(fd_, data, size, 0);
    const int n = SSL_read(ssl_, data, static_cast<int>(size));
    if (n > 0) return n;
    const int error = SSL_get_error(ssl_, n);
    ERR_clear_error();
    return error == SSL_ERROR_ZERO_RETURN || (error == SSL_ERROR_SYSCALL && errno == 0) ? 0 : -1;
  }

  bool fill() {
    char data[16384];
    const ssize_t n = receive(data, sizeof data);
    if (n <= 0) return false;
    buffer_.append(data, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string buffer_;
};

/// Headers of a delivery: Authorization from `c` (none when empty).
inline httplib::Headers auth_headers(
    const std::optional<unloc::basic_credentials>& c = credentials()) {
  httplib::Headers h;
  if (c) h.emplace("Authorization", unloc::basic_authorization(*c));
  return h;
}

/// The sample Access Event with another id, created now (or at `created`).
inline unloc::access_event make_event(const std::string& id,
                                      std::optional<unloc::timestamp> created = std::nullopt) {
  auto event = unloc::testing::sample_access_event();
  event.id = unloc::uuid::parse(id).value();
  event.created = created ? *created
                          : std::chrono::time_point_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now());
  return event;
}

/// The JSON body of `make_event(id)`.
inline std::string event_body(const std::string& id = "ae832e61-c8fa-4ed9-8196-61210cb4207b") {
  return unloc::to_json_text(make_event(id));
}

/// A unique event id for test number `a`, item `b`.
inline std::string event_id(int a, int b) {
  char id[40];
  std::snprintf(id, sizeof id, "aaaaaaaa-bbbb-4ccc-8ddd-%06d%06d", a, b);
  return id;
}

/// A raw POST request head to /accessEvents with JSON and (when `with_auth`) credentials.
inline std::string post_head(const std::string& extra_headers, bool with_auth = true,
                             const std::string& path = "/accessEvents") {
  std::string head =
      "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
  if (with_auth) head += "Authorization: " + unloc::basic_authorization(credentials()) + "\r\n";
  return head + extra_headers + "\r\n";
}

}  // namespace receiver_test

#pragma once

// The receiver's attack tests' harness: the receiver as a child process whose
// pid and arguments the test owns (for VmRSS, SIGHUP and its own certificate
// files), and a hostile HTTP client: TCP connections to loopback from any 127/8
// source address (each one a distinct "client" to the receiver's per-address
// cap), plain or TLS, that send any bytes (dripped with pauses if asked), read a
// response with a deadline, and notice a close. Every wait is bounded; nothing
// here sleeps a fixed time to wait for the receiver.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace attack {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// Raises the soft limit on open files to `wanted` (at most the hard limit); the new soft limit.
/// Child processes started afterwards (the receiver) inherit it.
inline rlim_t raise_fd_limit(rlim_t wanted) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < wanted) {
    limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, limit.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

/// A distinct loopback source address for simulated client `n` (0 to 50,000): 127.1.x.y.
/// Linux routes all of 127/8 to lo, so no setup is needed.
inline std::string client_address(int n) {
  return "127.1." + std::to_string(n / 200) + "." + std::to_string(n % 200 + 1);
}

/// The receiver's resident memory, peak or current, in KiB (VmHWM / VmRSS of /proc/PID/status).
inline long memory_kib(pid_t pid, const char* field) {
  const std::string path = "/proc/" + std::to_string(pid) + "/status";
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return -1;
  char line[256];
  long kib = -1;
  const std::size_t field_size = std::char_traits<char>::length(field);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::string_view(line).substr(0, field_size) == field) kib = std::atol(line + field_size);
  }
  std::fclose(f);
  return kib;
}

/// A TLS client context: protocol versions in [min, max], `ciphers` (TLS 1.2 and older; empty:
/// OpenSSL's defaults at security level 0, so that old versions can be offered at all), the CA
/// file trusted (none: no verification).
inline std::shared_ptr<SSL_CTX> tls_context(int min_version, int max_version,
                                            const std::string& ciphers,
                                            const std::string& ca_file) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  SSL_CTX_set_min_proto_version(ctx.get(), min_version);
  SSL_CTX_set_max_proto_version(ctx.get(), max_version);
  // Security level 0: this OpenSSL would otherwise refuse to offer TLS 1.0/1.1 itself,
  // and a refusal must come from the receiver for the test to mean anything.
  SSL_CTX_set_cipher_list(ctx.get(),
                          ((ciphers.empty() ? "DEFAULT" : ciphers) + ":@SECLEVEL=0").c_str());
  if (!ca_file.empty()) {
    SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);  // a close without close_notify
#endif
  return ctx;
}

/// One HTTP response read off a connection.
struct response {
  int status = 0;  ///< 0: none came (closed, reset or timed out), or not HTTP.
  std::string head;
  std::string body;
};

/// A TCP connection to 127.0.0.1:port from a chosen loopback address; TLS once handshake()
/// succeeds. Not thread-safe; one thread uses it at a time.
class connection {
 public:
  /// Connects within 5 s; see connected().
  explicit connection(int port, const std::string& source = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &from.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) return;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // Non-blocking connect: a receiver whose backlog is full must not hang the test.
    ::fcntl(fd_, F_SETFL, O_NONBLOCK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      if (errno != EINPROGRESS) return;
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, 5000) != 1) return;
      int error = 0;
      socklen_t size = sizeof error;
      ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &size);
      if (error != 0) return;
    }
    ::fcntl(fd_, F_SETFL, 0);
    connected_ = true;
  }
  ~connection() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// True once the TCP connection is established.
  [[nodiscard]] bool connected() const { return connected_; }
  /// The socket, for poll().
  [[nodiscard]] int fd() const { return fd_; }
  /// Bytes handed to the kernel so far (plain text, before TLS).
  [[nodiscard]] std::size_t bytes_sent() const { return sent_; }

  /// A TLS handshake with `ctx` within `limit`; false with the reason in tls_error().
  bool handshake(const std::shared_ptr<SSL_CTX>& ctx, milliseconds limit = 5s) {
    ctx_ = ctx;
    ssl_ = SSL_new(ctx.get());
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, "localhost");
    set_timeouts(limit);
    ERR_clear_error();
    const int rc = SSL_connect(ssl_);
    if (rc == 1) return true;
    const unsigned long code = ERR_peek_error();
    char text[256] = "no OpenSSL error (the peer closed or timed out)";
    if (code != 0) ERR_error_string_n(code, text, sizeof text);
    tls_error_ = text;
    tls_reason_ = code == 0 ? 0 : ERR_GET_REASON(code);
    ERR_clear_error();
    return false;
  }
  /// Why the last handshake failed (OpenSSL's text).
  [[nodiscard]] const std::string& tls_error() const { return tls_error_; }
  /// OpenSSL's reason code of that failure, 0 when the peer just closed.
  [[nodiscard]] int tls_reason() const { return tls_reason_; }
  /// The common name of the issuer of the peer's certificate; empty without TLS.
  [[nodiscard]] std::string peer_issuer() const {
    if (ssl_ == nullptr) return {};
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    X509* cert = SSL_get1_peer_certificate(ssl_);
#else
    X509* cert = SSL_get_peer_certificate(ssl_);
#endif
    if (cert == nullptr) return {};
    char name[256] = "";
    X509_NAME_get_text_by_NID(X509_get_issuer_name(cert), NID_commonName, name, sizeof name);
    X509_free(cert);
    return name;
  }

  /// Sends all of `bytes` within `limit`; false when the peer closed or reset, or on timeout.
  bool send(std::string_view bytes, milliseconds limit = 5s) {
    set_timeouts(limit);
    while (!bytes.empty()) {
      const int chunk = static_cast<int>(std::min<std::size_t>(bytes.size(), 1 << 20));
      const long n = ssl_ != nullptr
                         ? SSL_write(ssl_, bytes.data(), chunk)
                         : ::send(fd_, bytes.data(), static_cast<std::size_t>(chunk), MSG_NOSIGNAL);
      if (n <= 0) {
        if (ssl_ != nullptr) ERR_clear_error();
        return false;
      }
      sent_ += static_cast<std::size_t>(n);
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  /// Sends `bytes` `step` bytes at a time, `pause` between; false as send() is.
  bool drip(std::string_view bytes, std::size_t step, milliseconds pause) {
    while (!bytes.empty()) {
      const auto part = bytes.substr(0, step);
      if (!send(part)) return false;
      bytes.remove_prefix(part.size());
      if (!bytes.empty()) std::this_thread::sleep_for(pause);
    }
    return true;
  }

  /// Fixes the kernel's send buffer at about `bytes` (no autotuning up to 4 MiB), so that
  /// what send() accepts is close to what the peer has read.
  void limit_send_buffer(int bytes) const {
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  }

  /// True when the peer has answered or closed: response bytes are waiting (TLS records that
  /// carry no data, such as TLS 1.3 session tickets, do not count), or EOF, or a reset.
  bool answered() {
    if (!buffer_.empty()) return true;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) == 0) return false;
    return fill(steady::now() + 5ms) != -2;
  }

  /// The next response within `limit`: head, then a Content-Length or chunked body (none for
  /// 1xx, 204 and 304). Status 0 when none came whole.
  response read_response(milliseconds limit = 5s) {
    const auto deadline = steady::now() + limit;
    response r;
    std::size_t head_end;
    while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (fill(deadline) <= 0) return r;
    }
    const std::string head = buffer_.substr(0, head_end + 4);
    if (head.size() < 12 || head.compare(0, 5, "HTTP/") != 0) return r;
    const int status = std::atoi(head.c_str() + 9);
    std::string lower = head;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::size_t at = head_end + 4;
    std::string body;
    if (status >= 200 && status != 204 && status != 304) {
      if (lower.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
        while (true) {
          std::size_t line_end;
          while ((line_end = buffer_.find("\r\n", at)) == std::string::npos) {
            if (fill(deadline) <= 0) return r;
          }
          const std::size_t size = std::strtoul(buffer_.c_str() + at, nullptr, 16);
          while (buffer_.size() < line_end + 2 + size + 2) {
            if (fill(deadline) <= 0) return r;
          }
          body.append(buffer_, line_end + 2, size);
          at = line_end + 2 + size + 2;
          if (size == 0) break;  // no trailers from this receiver
        }
      } else if (const auto cl = lower.find("\r\ncontent-length:"); cl != std::string::npos) {
        const std::size_t length = std::strtoul(lower.c_str() + cl + 17, nullptr, 10);
        while (buffer_.size() < at + length) {
          if (fill(deadline) <= 0) return r;
        }
        body = buffer_.substr(at, length);
        at += length;
      }
    }
    buffer_.erase(0, at);
    r.status = status;
    r.head = head;
    r.body = std::move(body);
    return r;
  }

  /// True when the peer closes (EOF or reset) within `limit`. Bytes that come first are
  /// appended to `*before` when given (a response the test did not expect shows there).
  bool closed_within(milliseconds limit, std::string* before = nullptr) {
    const auto deadline = steady::now() + limit;
    if (before != nullptr) before->append(buffer_);
    buffer_.clear();
    while (true) {
      const int n = fill(deadline);
      if (n == 0 || n == -1) return true;
      if (n == -2) return false;
      if (before != nullptr && before->size() < 65536) before->append(buffer_);
      buffer_.clear();
    }
  }

  /// True when the last close seen was a reset (RST), not an orderly close (FIN).
  [[nodiscard]] bool was_reset() const { return reset_; }

  /// True when the connection is still open and silent after `span`: nothing to read, no close.
  bool quiet_for(milliseconds span) {
    if (!buffer_.empty()) return false;
    return fill(steady::now() + span) == -2;
  }

 private:
  void set_timeouts(milliseconds limit) const {
    const auto ms = std::max<long long>(limit.count(), 1);
    timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

  // Appends what arrives before `deadline`: >0 bytes read, 0 EOF, -1 reset or error, -2 timeout.
  int fill(steady::time_point deadline) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
    if (left.count() <= 0) return -2;
    char data[16384];
    if (ssl_ == nullptr) {
      pollfd p{fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
      if (ready == 0) return -2;
      if (ready < 0) return -1;
      const ssize_t n = ::recv(fd_, data, sizeof data, 0);
      if (n > 0) buffer_.append(data, static_cast<std::size_t>(n));
      reset_ = n < 0 && errno == ECONNRESET;
      return n > 0 ? static_cast<int>(n) : n == 0 ? 0 : -1;
    }
    set_timeouts(left);
    const int n = SSL_read(ssl_, data, sizeof data);
    if (n > 0) {
      buffer_.append(data, static_cast<std::size_t>(n));
      return n;
    }
    const int error = SSL_get_error(ssl_, n);
    const int saved_errno = errno;
    ERR_clear_error();
    reset_ = error == SSL_ERROR_SYSCALL && saved_errno == ECONNRESET;
    if (error == SSL_ERROR_ZERO_RETURN) return 0;
    if (error == SSL_ERROR_WANT_READ) return -2;  // SO_RCVTIMEO ran out
    if (error == SSL_ERROR_SYSCALL && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
      return -2;
    }
    return error == SSL_ERROR_SYSCALL && saved_errno == 0 ? 0 : -1;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::shared_ptr<SSL_CTX> ctx_;
  SSL* ssl_ = nullptr;
  std::string buffer_;
  std::size_t sent_ = 0;
  std::string tls_error_;
  int tls_reason_ = 0;
  bool reset_ = false;
};

/// unloc-webhook-receiver as a child process with exactly `args` plus --port-file; stdout and
/// stderr to files in `dir`. Ready (port() > 0) once the port file holds the port, or ended
/// (exit_status() >= 0) when it refused to start. SIGTERM, then SIGKILL, in the destructor.
class receiver {
 public:
  receiver(const std::string& program, const std::vector<std::string>& args,
           const std::vector<std::string>& env, const std::string& dir) {
    std::signal(SIGPIPE, SIG_IGN);  // the tests write to connections the receiver closes
    static int counter = 0;
    const std::string base = dir + "/attacked-" + std::to_string(++counter);
    out_ = base + ".out";
    err_ = base + ".err";
    const std::string port_file = base + ".port";
    std::vector<std::string> argv = {program};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--port-file", port_file});
    std::vector<std::string> environment;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string(*e).rfind("UNLOC_WEBHOOK_", 0) != 0) environment.emplace_back(*e);
    }
    environment.insert(environment.end(), env.begin(), env.end());
    std::vector<char*> argp, envp;
    for (const auto& a : argv) argp.push_back(const_cast<char*>(a.c_str()));
    argp.push_back(nullptr);
    for (const auto& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int spawned =
        posix_spawn(&pid_, program.c_str(), &actions, nullptr, argp.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
      pid_ = 0;
      return;
    }
    const auto deadline = steady::now() + 20s;  // generous: sanitizer builds start slowly
    while (steady::now() < deadline) {
      if (ended()) return;
      std::ifstream in(port_file);
      if (in >> port_ && port_ > 0) return;
      port_ = 0;
      std::this_thread::sleep_for(5ms);  // polling the port file
    }
    stop(SIGKILL);
  }
  ~receiver() {
    if (pid_ > 0) stop(SIGTERM);
  }
  receiver(const receiver&) = delete;
  receiver& operator=(const receiver&) = delete;

  /// Sends `signal` and waits up to 10 s for the exit (then SIGKILL): its status, 128 + signal
  /// when killed.
  int stop(int signal) {
    if (pid_ <= 0) return exit_status_;
    ::kill(pid_, signal);
    const auto deadline = steady::now() + 10s;
    while (!ended()) {
      if (steady::now() > deadline) {
        ::kill(pid_, SIGKILL);
        int raw = 0;
        ::waitpid(pid_, &raw, 0);
        pid_ = 0;
        exit_status_ = 128 + SIGKILL;
        break;
      }
      std::this_thread::sleep_for(5ms);
    }
    return exit_status_;
  }
  /// True once it has exited (and was reaped).
  bool ended() {
    if (pid_ <= 0) return true;
    int raw = 0;
    if (::waitpid(pid_, &raw, WNOHANG) != pid_) return false;
    pid_ = 0;
    exit_status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    return true;
  }

  /// Its process id while it runs, else 0.
  [[nodiscard]] pid_t pid() const { return pid_; }
  /// The port it listens on; 0 when it did not start.
  [[nodiscard]] int port() const { return port_; }
  /// Its exit status once ended, else -1.
  [[nodiscard]] int exit_status() const { return exit_status_; }
  /// Everything it wrote to stdout so far.
  [[nodiscard]] std::string out() const { return read(out_); }
  /// Everything it wrote to stderr so far.
  [[nodiscard]] std::string err() const { return read(err_); }

 private:
  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  pid_t pid_ = 0;
  int port_ = 0;
  int exit_status_ = -1;
  std::string out_, err_;
};

}  // namespace attack

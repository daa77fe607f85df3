#pragma once

/// @file
/// Test support: a throwaway PostgreSQL cluster (tests/support/pg_cluster.sh) in a
/// fresh temporary directory, on a loopback port, removed by the destructor. Link
/// the `unloc_test_pg_cluster` target, which names the script.
///
/// Side effect: the constructor sets PGPASSFILE in the test process to the cluster's
/// .pgpass file, so that libpq here and in every child started later finds the
/// password (scram-sha-256) without it being written in a URL or a command line.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#ifndef UNLOC_PG_CLUSTER_SCRIPT
#error "link unloc_test_pg_cluster: it defines UNLOC_PG_CLUSTER_SCRIPT"
#endif

namespace unloc_test {

/// A PostgreSQL server of its own, started by the constructor (initdb, pg_ctl start;
/// a few seconds) and stopped and removed by the destructor, also when a test fails.
/// Should the test process die without it (a crash, SIGKILL, a ctest timeout), a
/// watchdog process it started removes the cluster all the same: it waits, in a
/// session of its own, for a pipe from this process to close.
/// Not thread-safe: drive it from the test's own thread.
class pg_cluster {
 public:
  /// Starts it; throws `std::runtime_error` with the script's message when it cannot.
  pg_cluster() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/unloc-pg-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("pg_cluster: mkdtemp failed");
    parent_ = pattern;
    // As root, the server runs as the user postgres, which must reach the cluster's directory.
    ::chmod(parent_.c_str(), 0711);
    dir_ = parent_ + "/cluster";
    ::setenv("PGPASSFILE", (dir_ + "/pgpass").c_str(), 1);
    start_watchdog();
    url_ = run_capturing("start");
  }
  ~pg_cluster() {
    // The watchdog destroys the cluster once the pipe closes; wait until it has.
    ::close(watchdog_pipe_);
    ::waitpid(watchdog_, nullptr, 0);
  }
  pg_cluster(const pg_cluster&) = delete;
  pg_cluster& operator=(const pg_cluster&) = delete;

  /// `postgresql://unloc@127.0.0.1:PORT/unloc`: no password in it (PGPASSFILE has it).
  [[nodiscard]] const std::string& url() const noexcept { return url_; }
  /// The .pgpass file holding the password of the user `unloc`.
  [[nodiscard]] std::string pgpass_file() const { return dir_ + "/pgpass"; }
  /// The directory of the data, the unix socket and the server's log (`server.log`).
  [[nodiscard]] const std::string& dir() const noexcept { return dir_; }

  /// Stops the server: `-m fast` (clients told, a clean shutdown) or `-m immediate` (a crash).
  void stop(bool immediate = false) { check(run("stop", immediate)); }
  /// Starts it again on the same port, after `stop`.
  void start() { (void)run_capturing("start"); }
  /// `pg_ctl stop -m immediate` (every connection cut, crash recovery), then start again.
  void restart_immediate() { check(run("restart")); }

 private:
  void start_watchdog() {
    int ends[2];
    if (::pipe(ends) != 0) throw std::runtime_error("pg_cluster: pipe failed");
    const std::string destroy =
        command("destroy") + " >/dev/null 2>&1; rmdir '" + parent_ + "' 2>/dev/null";
    watchdog_ = ::fork();
    if (watchdog_ < 0) throw std::runtime_error("pg_cluster: fork failed");
    if (watchdog_ == 0) {
      ::setsid();  // outlives a kill of the test's process group
      ::dup2(ends[0], 0);
      ::close(ends[0]);
      ::close(ends[1]);
      // `cat` ends when every writer is gone: the test process, however it ended.
      const std::string script = "cat >/dev/null; " + destroy;
      ::execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(ends[0]);
    // Not inherited by the programs the test starts, which may outlive it briefly.
    ::fcntl(ends[1], F_SETFD, FD_CLOEXEC);
    watchdog_pipe_ = ends[1];
  }

  std::string command(const char* verb, bool immediate = false) const {
    return std::string("'") + UNLOC_PG_CLUSTER_SCRIPT + "' " + verb + " '" + dir_ + "'" +
           (immediate ? " immediate" : "");
  }

  int run(const char* verb, bool immediate = false) const {
    return std::system(command(verb, immediate).c_str());
  }

  std::string run_capturing(const char* verb) const {
    FILE* out = ::popen(command(verb).c_str(), "r");
    if (out == nullptr) throw std::runtime_error("pg_cluster: cannot run the script");
    std::string text;
    std::array<char, 256> buffer{};
    while (std::fgets(buffer.data(), static_cast<int>(buffer.size()), out) != nullptr) {
      text += buffer.data();
    }
    check(::pclose(out));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (text.rfind("postgresql://", 0) != 0) {
      throw std::runtime_error("pg_cluster: unexpected output: " + text);
    }
    return text;
  }

  void check(int status) const {
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw std::runtime_error("pg_cluster.sh failed on " + dir_ +
                               " (its message is on stderr; the server's log is server.log)");
    }
  }

  std::string parent_;
  std::string dir_;
  std::string url_;
  pid_t watchdog_ = -1;
  int watchdog_pipe_ = -1;
};

}  // namespace unloc_test

#include "support/reference_server.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#ifndef UNLOC_REFERENCE_SERVER_PATH
#error "UNLOC_REFERENCE_SERVER_PATH must name the unloc-reference-server binary"
#endif
#ifndef UNLOC_OPENSSL_PATH
#define UNLOC_OPENSSL_PATH "openssl"
#endif

namespace unloc_test {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string random_suffix() {
  static std::atomic<unsigned> counter{0};
  std::random_device device;
  std::ostringstream out;
  out << std::hex << device() << device() << '-' << ::getpid() << '-' << counter++;
  return out.str();
}

// Spawns `args` (args[0] is the program) with stdout and stderr to `output`,
// stdin from /dev/null, default signal dispositions and an empty signal mask.
pid_t spawn(const std::vector<std::string>& args, const std::string& output,
            const std::vector<std::string>& environment, bool search_path) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(environment.size() + 1);
  for (const auto& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t signals;
  sigemptyset(&signals);
  posix_spawnattr_setsigmask(&attributes, &signals);
  sigaddset(&signals, SIGPIPE);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  posix_spawnattr_setsigdefault(&attributes, &signals);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  const int rc = search_path
                     ? posix_spawnp(&pid, argv[0], &actions, &attributes, argv.data(), envp.data())
                     : posix_spawn(&pid, argv[0], &actions, &attributes, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) {
    throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
  }
  return pid;
}

std::vector<std::string> inherited_environment() {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, "UNLOC_CLIENT_SECRET=", 20) != 0) out.emplace_back(*e);
  }
  return out;
}

int wait_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

void run_openssl(const std::string& dir, std::vector<std::string> args) {
  args.insert(args.begin(), UNLOC_OPENSSL_PATH);
  const std::string output = dir + "/openssl.log";
  const pid_t pid = spawn(args, output, inherited_environment(), true);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (wait_status(status) != 0) {
    std::string command;
    for (const auto& a : args) command += a + " ";
    throw std::runtime_error("test TLS fixtures: '" + command + "' failed:\n" + read_file(output));
  }
}

// A P-256 key and a certificate signed by `ca` (or self-signed when `ca` is empty).
void make_certificate(const std::string& dir, const std::string& name, const std::string& subject,
                      const std::string& ca, const std::string& extensions) {
  const std::string key = dir + "/" + name + ".key";
  const std::string cert = dir + "/" + name + ".pem";
  run_openssl(dir,
              {"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key});
  const std::string ext_file = dir + "/" + name + ".ext";
  std::ofstream(ext_file) << extensions;
  if (ca.empty()) {
    run_openssl(dir, {"req", "-x509", "-new", "-key", key, "-sha256", "-days", "30", "-subj",
                      subject, "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                      "keyUsage=critical,keyCertSign,cRLSign", "-out", cert});
    return;
  }
  const std::string csr = dir + "/" + name + ".csr";
  run_openssl(dir, {"req", "-new", "-key", key, "-subj", subject, "-out", csr});
  run_openssl(dir, {"x509", "-req", "-in", csr, "-CA", dir + "/" + ca + ".pem", "-CAkey",
                    dir + "/" + ca + ".key", "-CAcreateserial", "-days", "30", "-sha256",
                    "-extfile", ext_file, "-out", cert});
}

// Owns the fixture directory; removes it when the process exits.
struct tls_fixture {
  test_tls files;
  tls_fixture() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && *base ? base : "/tmp") + "/unloc-test-tls-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("cannot create a temporary directory: " +
                               std::string(std::strerror(errno)));
    }
    const std::string& dir = files.dir = pattern;
    const std::string leaf =
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n";
    make_certificate(dir, "ca", "/CN=unloc-cpp test CA", "", "");
    make_certificate(dir, "server", "/CN=localhost", "ca", leaf);
    make_certificate(dir, "other-ca", "/CN=unloc-cpp unrelated CA", "", "");
    make_certificate(dir, "other-server", "/CN=localhost", "other-ca", leaf);
    files.ca_cert = dir + "/ca.pem";
    files.ca_key = dir + "/ca.key";
    files.server_cert = dir + "/server.pem";
    files.server_key = dir + "/server.key";
    files.other_ca_cert = dir + "/other-ca.pem";
    files.other_server_cert = dir + "/other-server.pem";
    files.other_server_key = dir + "/other-server.key";
  }
  ~tls_fixture() {
    std::error_code ignored;
    std::filesystem::remove_all(files.dir, ignored);
  }
  tls_fixture(const tls_fixture&) = delete;
  tls_fixture& operator=(const tls_fixture&) = delete;
};

}  // namespace

const test_tls& test_tls_files() {
  static const tls_fixture fixture;
  return fixture.files;
}

reference_server::reference_server(reference_server_options options)
    : options_(std::move(options)) {
  static const bool sigpipe_ignored = [] { return ::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)sigpipe_ignored;
  const test_tls& tls = test_tls_files();
  if (options_.client_secret.empty()) options_.client_secret = "test-secret-" + random_suffix();
  if (options_.webhook_ca == "<test CA>") options_.webhook_ca = tls.ca_cert;
  const std::string stem = tls.dir + "/server-" + random_suffix();
  port_file_ = stem + ".port";
  log_file_ = stem + ".log";

  std::vector<std::string> args = {UNLOC_REFERENCE_SERVER_PATH,
                                   "--listen",
                                   "127.0.0.1:0",
                                   "--cert",
                                   tls.server_cert,
                                   "--key",
                                   tls.server_key,
                                   "--port-file",
                                   port_file_,
                                   "--project",
                                   options_.project_id,
                                   "--client-id",
                                   options_.client_id,
                                   "--token-lifetime",
                                   std::to_string(options_.token_lifetime.count()),
                                   "--delivery-attempts",
                                   std::to_string(options_.delivery_attempts),
                                   "--delivery-backoff-ms",
                                   std::to_string(options_.delivery_backoff.count())};
  if (!options_.webhook_ca.empty()) args.insert(args.end(), {"--webhook-ca", options_.webhook_ca});
  if (!options_.seed_file.empty()) args.insert(args.end(), {"--seed", options_.seed_file});
  if (options_.log_requests) args.emplace_back("--log-requests");
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  auto environment = inherited_environment();
  environment.push_back("UNLOC_CLIENT_SECRET=" + options_.client_secret);
  environment.insert(environment.end(), options_.environment.begin(), options_.environment.end());
  pid_ = spawn(args, log_file_, environment, false);

  // The server renames the port file into place once it accepts connections.
  const auto deadline = std::chrono::steady_clock::now() + options_.startup_timeout;
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    std::ifstream in(port_file_);
    if (in >> port_ && port_ > 0) break;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      throw std::runtime_error("unloc-reference-server exited (status " +
                               std::to_string(wait_status(status)) + ") before listening:\n" +
                               log_text());
    }
    if (std::chrono::steady_clock::now() > deadline) {
      stop(std::chrono::milliseconds(100));
      throw std::runtime_error("unloc-reference-server did not start within the timeout:\n" +
                               log_text());
    }
    std::this_thread::sleep_for(pause);  // polling the port file, not waiting a fixed time
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
  static const bool curl_ready = ::curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  (void)curl_ready;
  admin_ = std::make_unique<admin_connection>();
}

reference_server::~reference_server() { stop(); }

std::string reference_server::base_url() const {
  return "https://127.0.0.1:" + std::to_string(port_);
}

const std::string& reference_server::ca_file() const { return test_tls_files().ca_cert; }

std::string reference_server::log_text() const { return read_file(log_file_); }

// libcurl, not httplib: Debian's cpp-httplib is built against libstdc++, and the
// tests that start a reference server also build with libc++ (scripts/check.sh).
struct reference_server::admin_connection {
  CURL* curl = ::curl_easy_init();
  ~admin_connection() { ::curl_easy_cleanup(curl); }
};

namespace {

size_t append_to_string(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

}  // namespace

reference_server::http_reply reference_server::send(const std::string& method,
                                                    const std::string& path,
                                                    const std::string& body) {
  std::lock_guard<std::mutex> lock(admin_mutex_);
  if (!admin_ || !admin_->curl) throw std::runtime_error("the reference server is stopped");
  CURL* curl = admin_->curl;
  ::curl_easy_reset(curl);  // keeps the connection
  const std::string url = base_url() + path;
  http_reply reply;
  ::curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  ::curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file().c_str());
  ::curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  ::curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  ::curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
  ::curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  ::curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_to_string);
  ::curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_slist* headers = nullptr;
  if (method == "POST") {
    headers = ::curl_slist_append(headers, "Content-Type: application/json");
    ::curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    ::curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    ::curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  } else if (method == "DELETE") {
    ::curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "DELETE");
  } else if (method != "GET") {
    throw std::invalid_argument("method " + method);
  }
  // libcurl itself sends again on a new connection when the server had closed the
  // kept-alive one before answering (the server closes idle ones after 5 s).
  const CURLcode code = ::curl_easy_perform(curl);
  ::curl_slist_free_all(headers);
  if (code != CURLE_OK) {
    throw std::runtime_error(method + " " + path + ": " + ::curl_easy_strerror(code));
  }
  long status = 0;
  ::curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  reply.status = static_cast<int>(status);
  return reply;
}

nlohmann::json reference_server::admin(const std::string& method, const std::string& path,
                                       const nlohmann::json& body) {
  const http_reply reply = send(method, path, body.is_null() ? std::string() : body.dump());
  if (reply.status < 200 || reply.status > 299) {
    throw std::runtime_error(method + " " + path + ": HTTP " + std::to_string(reply.status) + " " +
                             reply.body);
  }
  if (reply.body.empty()) return nlohmann::json::object();
  return nlohmann::json::parse(reply.body);
}

std::vector<std::string> reference_server::record_events(const std::string& lock_id, int count,
                                                         nlohmann::json fields) {
  fields["lockId"] = lock_id;
  fields["count"] = count;
  const auto out = admin("POST", "/_admin/events", fields);
  return out.at("accessEvents").get<std::vector<std::string>>();
}

nlohmann::json reference_server::inject_fault(const nlohmann::json& fault) {
  return admin("POST", "/_admin/faults", fault);
}

void reference_server::clear_faults() { admin("DELETE", "/_admin/faults"); }

nlohmann::json reference_server::request_counts() { return admin("GET", "/_admin/requests"); }

void reference_server::reset_request_counts() { admin("DELETE", "/_admin/requests"); }

nlohmann::json reference_server::delivery_counts() { return admin("GET", "/_admin/deliveries"); }

bool reference_server::wait_for_deliveries(std::chrono::milliseconds timeout) {
  return admin("POST", "/_admin/deliveries/wait", {{"timeoutMs", timeout.count()}})
      .at("idle")
      .get<bool>();
}

std::vector<std::string> reference_server::release_offline() {
  return admin("POST", "/_admin/offline/release", nlohmann::json::object())
      .at("accessEvents")
      .get<std::vector<std::string>>();
}

std::string reference_server::fetch_token() {
  const nlohmann::json request = {{"grant_type", "client_credentials"},
                                  {"client_id", options_.client_id},
                                  {"client_secret", options_.client_secret},
                                  {"scope", "project.admin"},
                                  {"project_id", options_.project_id}};
  const http_reply reply = send("POST", "/v2/auth/token/", request.dump());
  if (reply.status != 200) {
    throw std::runtime_error("the token endpoint refused the test credentials");
  }
  return nlohmann::json::parse(reply.body).at("access_token").get<std::string>();
}

int reference_server::stop(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> lock(admin_mutex_);
    admin_.reset();  // closes its kept-alive connection first
  }
  if (pid_ == 0) return exit_status_;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  auto pause = std::chrono::milliseconds(1);
  int status = 0;
  while (true) {
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_ || (done < 0 && errno != EINTR)) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
  pid_ = 0;
  exit_status_ = wait_status(status);
  std::error_code ignored;
  std::filesystem::remove(port_file_, ignored);
  return exit_status_;
}

}  // namespace unloc_test

#pragma once

// Helpers of the reference server's own tests: a bearer-token HTTPS client of
// the API, and a webhook receiver that records what it is sent.

#include "support/reference_server.hpp"
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace server_test {

/// An httplib HTTPS client for `server` that trusts the test CA (verification on).
inline std::unique_ptr<httplib::SSLClient> https_client(
    const unloc_test::reference_server& server) {
  auto client = std::make_unique<httplib::SSLClient>("127.0.0.1", server.port());
  client->set_ca_cert_path(server.ca_file());
  client->enable_server_certificate_verification(true);
  client->set_keep_alive(true);
  client->set_tcp_nodelay(true);
  client->set_connection_timeout(5);
  client->set_read_timeout(60);
  return client;
}

/// httplib's client with a token of the server under test.
struct api_client {
  unloc_test::reference_server& server;
  std::unique_ptr<httplib::SSLClient> client = https_client(server);
  std::string token = server.fetch_token();

  [[nodiscard]] httplib::Headers auth() const { return {{"Authorization", "Bearer " + token}}; }
  [[nodiscard]] std::string project(const std::string& rest) const {
    return "/v2/projects/" + server.project_id() + rest;
  }
  httplib::Result get(const std::string& path) const { return client->Get(path, auth()); }
  httplib::Result post(const std::string& path, const nlohmann::json& body) const {
    return client->Post(path, auth(), body.dump(), "application/json");
  }
  httplib::Result del(const std::string& path) const { return client->Delete(path, auth()); }
};

/// What a receiver got.
struct delivery {
  std::string path;
  std::string body;
  std::string authorization;
  std::string content_type;
};

/// A webhook endpoint on 127.0.0.1 over HTTPS (the test CA's server certificate
/// by default), or plain HTTP. Answers 500 to the first `failures` deliveries, 200 after.
class receiver {
 public:
  explicit receiver(int failures = 0, bool other_ca = false, bool plain_http = false)
      : server_(plain_http ? std::make_unique<httplib::Server>()
                           : std::make_unique<httplib::SSLServer>(cert(other_ca).c_str(),
                                                                  key(other_ca).c_str())),
        scheme_(plain_http ? "http://" : "https://"),
        failures_(failures) {
    server_->set_tcp_nodelay(true);
    server_->set_keep_alive_max_count(10000);
    server_->Post(R"(/[a-zA-Z]+)", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mutex_);
      ++attempts_;
      if (failures_ > 0) {
        --failures_;
        res.status = 500;
        return;
      }
      received_.push_back({req.path, req.body, req.get_header_value("Authorization"),
                           req.get_header_value("Content-Type")});
      res.status = 200;
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    // Listening already: deliveries made from now on are accepted.
    thread_ = std::thread([this] { server_->listen_after_bind(); });
  }
  ~receiver() {
    server_->stop();
    thread_.join();
  }
  receiver(const receiver&) = delete;
  receiver& operator=(const receiver&) = delete;

  /// The URL of `path` here, with Basic credentials when `user` is not empty.
  [[nodiscard]] std::string url(const std::string& path, const std::string& user = {},
                                const std::string& password = {}) const {
    const std::string credentials = user.empty() ? "" : user + ":" + password + "@";
    return scheme_ + credentials + "127.0.0.1:" + std::to_string(port_) + path;
  }
  [[nodiscard]] std::vector<delivery> received() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
  }
  [[nodiscard]] int attempts() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return attempts_;
  }

 private:
  static std::string cert(bool other) {
    const auto& tls = unloc_test::test_tls_files();
    return other ? tls.other_server_cert : tls.server_cert;
  }
  static std::string key(bool other) {
    const auto& tls = unloc_test::test_tls_files();
    return other ? tls.other_server_key : tls.server_key;
  }

  std::unique_ptr<httplib::Server> server_;
  std::string scheme_;
  mutable std::mutex mutex_;
  int failures_ = 0;
  int attempts_ = 0;
  std::vector<delivery> received_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace server_test

// unloc-webhook-receiver's options and environment, each as the program is run.

#include "receiver_harness.hpp"

using namespace receiver_test;

namespace {

// A port free a moment ago (bound to 0, then closed).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t size = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

TEST_CASE("--path moves the deliveries to another path", "[receiver]") {
  receiver_process r(launch{{"--path", "/hooks/unloc"}});
  auto c = r.client();
  CHECK(c->Post("/hooks/unloc", auth_headers(), event_body(), "application/json")->status == 204);
  CHECK(c->Post("/accessEvents", auth_headers(), event_body(), "application/json")->status == 404);
  CHECK(r.err().find("listening on https://127.0.0.1:" + std::to_string(r.port()) +
                     "/hooks/unloc") != std::string::npos);
}

TEST_CASE("--no-auth accepts deliveries without credentials and warns", "[receiver]") {
  receiver_process r(launch{{"--no-auth"}, {}});
  auto c = r.client();
  CHECK(c->Post("/accessEvents", event_body(), "application/json")->status == 204);
  CHECK(r.err().find("WARNING: --no-auth") != std::string::npos);
}

TEST_CASE("--plain-http serves HTTP without TLS and warns on stderr", "[receiver]") {
  receiver_process r(launch{{"--plain-http"}});
  auto c = r.client();
  CHECK(c->Post("/accessEvents", auth_headers(), event_body(), "application/json")->status == 204);
  CHECK(r.err().find("WARNING: --plain-http") != std::string::npos);
  CHECK(r.err().find("listening on http://127.0.0.1:") != std::string::npos);
  REQUIRE(r.stop(SIGTERM) == 0);
  CHECK(lines_of(r.out()).size() == 1);
}

TEST_CASE("serves HTTPS only with the certificate and key given", "[receiver]") {
  receiver_process r;
  CHECK(r.err().find("WARNING") == std::string::npos);
  raw_connection tls(r.port(), true);  // the handshake verifies the test CA's certificate
  REQUIRE(tls.send("GET /accessEvents HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(tls.read_response().status == 405);
  raw_connection plain(r.port(), false);  // plain HTTP to the TLS port gets no HTTP answer
  REQUIRE(plain.send("GET /accessEvents HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(plain.read_response().status == 0);
}

TEST_CASE("accepts the rotation pair UNLOC_WEBHOOK_USER_NEXT/PASSWORD_NEXT too", "[receiver]") {
  receiver_process r(launch{{},
                            {"UNLOC_WEBHOOK_USER=old", "UNLOC_WEBHOOK_PASSWORD=old-pw",
                             "UNLOC_WEBHOOK_USER_NEXT=new", "UNLOC_WEBHOOK_PASSWORD_NEXT=new-pw"}});
  auto c = r.client();
  const auto post = [&](const unloc::basic_credentials& who, int n) {
    return c
        ->Post("/accessEvents", auth_headers(who), event_body(event_id(10, n)), "application/json")
        ->status;
  };
  CHECK(post({"old", "old-pw"}, 1) == 204);
  CHECK(post({"new", "new-pw"}, 2) == 204);
  CHECK(post({"old", "new-pw"}, 3) == 401);  // a user of one pair with the password of the other
  CHECK(post({"new", "old-pw"}, 4) == 401);
  REQUIRE(r.stop(SIGTERM) == 0);
  CHECK(lines_of(r.out()).size() == 2);
  CHECK(r.err().find("old-pw") == std::string::npos);
  CHECK(r.err().find("new-pw") == std::string::npos);
}

TEST_CASE("refuses to start without credentials, with exit status 2", "[receiver]") {
  const std::vector<std::pair<const char*, std::vector<std::string>>> cases = {
      {"none", {}},
      {"user only", {"UNLOC_WEBHOOK_USER=myuser"}},
      {"password only", {"UNLOC_WEBHOOK_PASSWORD=mypasswoord"}},
      {"half a rotation pair",
       {"UNLOC_WEBHOOK_USER=a", "UNLOC_WEBHOOK_PASSWORD=b", "UNLOC_WEBHOOK_USER_NEXT=c"}},
      {"a reserved character", {"UNLOC_WEBHOOK_USER=my:user", "UNLOC_WEBHOOK_PASSWORD=secret@1"}},
  };
  for (const auto& [name, env] : cases) {
    INFO(name);
    receiver_process r(launch{{}, env});
    CHECK(r.exit_status() == 2);
    CHECK(r.err().find("UNLOC_WEBHOOK_") != std::string::npos);
    CHECK(r.err().find("secret@1") == std::string::npos);
    CHECK(r.err().find("listening") == std::string::npos);
  }
}

TEST_CASE("bad usage exits with status 2 and a message on stderr", "[receiver]") {
  const std::vector<std::vector<std::string>> cases = {
      {"--bogus"},
      {"--max-body", "lots"},
      {"--max-body", "0"},
      {"--max-body", "-5"},
      {"--threads", "0"},
      {"--path", "no-slash"},
      {"--listen", "nonsense"},
      {"--listen", "127.0.0.1:70000"},
      {"--listen", "::1:8443"},
      {"--plain-http", "--cert", "x.pem"},
      {"--no-auth=yes"},
      {"--path"},
      {"--plain-http", "--listen", "0.0.0.0:0"},
      {"--plain-http", "--listen", "127.0.0.1.example.com:0"},  // a name, not loopback
      {"--header-timeout", "0"},
      {"--idle-timeout", "1.2345"},
      {"--body-timeout", "soon"},
      {"--max-connections", "0"},
      {"--max-header-bytes", "10"},
      {"--metrics-listen", "nowhere"},
  };
  for (const auto& args : cases) {
    INFO(args.front() << (args.size() > 1 ? " " + args[1] : ""));
    receiver_process r(launch{args});
    CHECK(r.exit_status() == 2);
    CHECK(r.err().find("unloc-webhook-receiver: ") == 0);
    CHECK(r.err().find("(see --help)") != std::string::npos);
  }
  receiver_process no_tls(launch{{"--listen", "127.0.0.1:0"}, credential_env(), false});
  CHECK(no_tls.exit_status() == 2);
  CHECK(no_tls.err().find("--cert and --key are required") != std::string::npos);
}

TEST_CASE("--help and --version print on stdout and exit 0", "[receiver]") {
  receiver_process help(launch{{"--help"}, {}, false});
  CHECK(help.exit_status() == 0);
  const auto text = help.out();
  for (const char* word : {"--listen HOST:PORT", "--cert FILE", "--key FILE", "--plain-http",
                           "--path PATH", "--max-body BYTES", "--no-auth", "--port-file FILE",
                           "--threads N", "--max-header-bytes N", "--header-timeout S",
                           "--body-timeout S", "--handshake-timeout S", "--idle-timeout S",
                           "--max-connections N", "--max-connections-per-client N",
                           "--max-requests-per-connection N", "--metrics-listen HOST:PORT",
                           "/healthz", "SIGHUP", "UNLOC_WEBHOOK_USER", "UNLOC_WEBHOOK_PASSWORD",
                           "UNLOC_WEBHOOK_USER_NEXT", "UNLOC_WEBHOOK_PASSWORD_NEXT", "SIGTERM"}) {
    CHECK(text.find(word) != std::string::npos);
  }
  receiver_process version(launch{{"--version"}, {}, false});
  CHECK(version.exit_status() == 0);
  CHECK(version.out() == "unloc-webhook-receiver " UNLOC_VERSION_STRING " (unloc-cpp)\n");
}

TEST_CASE("--listen takes a fixed port, and a busy one stops it with status 1", "[receiver]") {
  const int port = free_port();
  const std::vector<std::string> args = {"--listen", "127.0.0.1:" + std::to_string(port)};
  receiver_process first(launch{args});  // the last --listen wins over the harness's port 0
  REQUIRE(first.exit_status() == -1);
  CHECK(first.port() == port);
  receiver_process second(launch{args});
  CHECK(second.exit_status() == 1);
  CHECK(second.err().find("cannot listen on 127.0.0.1:" + std::to_string(port)) !=
        std::string::npos);
}

TEST_CASE("unreadable or mismatched TLS files stop it with status 1", "[receiver]") {
  const auto& tls = unloc_test::test_tls_files();
  receiver_process missing(launch{
      {"--listen", "127.0.0.1:0", "--cert", tls.dir + "/nothing.pem", "--key", tls.server_key},
      credential_env(),
      false});
  CHECK(missing.exit_status() == 1);
  CHECK(missing.err().find("cannot load the certificate chain --cert") != std::string::npos);
  receiver_process mismatched(
      launch{{"--listen", "127.0.0.1:0", "--cert", tls.server_cert, "--key", tls.other_server_key},
             credential_env(),
             false});
  CHECK(mismatched.exit_status() == 1);
  CHECK(mismatched.err().find("does not belong to the --cert certificate") != std::string::npos);
}

TEST_CASE("reports a late event with its lag on stderr", "[receiver]") {
  receiver_process r;
  const auto three_hours_ago = std::chrono::time_point_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now() - std::chrono::hours(3) - std::chrono::minutes(7));
  const auto event = make_event(event_id(11, 1), three_hours_ago);
  CHECK(r.client()
            ->Post("/accessEvents", auth_headers(), unloc::to_json_text(event), "application/json")
            ->status == 204);
  CHECK(r.err().find("late event " + event.id.to_string() + ": received 3 h 7 min ") !=
        std::string::npos);
  CHECK(r.client()
            ->Post("/accessEvents", auth_headers(), event_body(event_id(11, 2)), "application/json")
            ->status == 204);
  REQUIRE(r.stop(SIGTERM) == 0);
  CHECK(lines_of(r.out()).size() == 2);
  CHECK(r.err().find("late event " + event_id(11, 2)) == std::string::npos);
}

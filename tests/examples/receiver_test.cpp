// unloc-webhook-receiver as a child process: every row of the status table of
// docs/receiver.md, over real HTTPS (robustness: receiver_robustness_test.cpp).

#include "receiver_harness.hpp"
#include <nlohmann/json.hpp>

using namespace receiver_test;

namespace {

httplib::Result post(httplib::Client& c, const std::string& body,
                     const httplib::Headers& headers = auth_headers(),
                     const char* type = "application/json", const char* path = "/accessEvents") {
  return c.Post(path, headers, body, type);
}

// One chunk of a chunked body ("" for the last).
std::string chunk(const std::string& data) {
  char size[20];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

// An error answer's JSON body.
nlohmann::json error_of(const httplib::Result& res) {
  REQUIRE(res);
  CHECK(res->get_header_value("Content-Type") == "application/json");
  return nlohmann::json::parse(res->body);
}

}  // namespace

TEST_CASE("prints a new Access Event once as a JSON line with the API's field names",
          "[receiver]") {
  receiver_process r;
  auto c = r.client();
  const auto body = unloc::to_json_text(unloc::testing::sample_access_event());
  auto first = post(*c, body);
  REQUIRE(first);
  CHECK(first->status == 204);
  CHECK(first->body.empty());
  auto again = post(*c, body);  // the platform delivers it again
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
  CHECK(printed["id"] == "ae832e61-c8fa-4ed9-8196-61210cb4207b");
  CHECK(printed["action"] == "unlocked");
  CHECK(printed["created"] == "2022-01-01T10:35:24.083Z");
  CHECK(printed["lockName"] == "North gate");
  const auto err = r.err();
  CHECK(err.find("delivered again: acknowledged, not printed") != std::string::npos);
  CHECK(err.find("late event ae832e61-c8fa-4ed9-8196-61210cb4207b: received") != std::string::npos);
  CHECK(err.find("mypasswoord") == std::string::npos);
}

TEST_CASE("answers 401 with WWW-Authenticate for missing, malformed and wrong credentials",
          "[receiver]") {
  receiver_process r;
  auto c = r.client();
  const std::vector<std::pair<const char*, httplib::Headers>> cases = {
      {"missing", {}},
      {"malformed", {{"Authorization", "Basic !!!"}}},
      {"not Basic", {{"Authorization", "Bearer abc"}}},
      {"no colon", {{"Authorization", "Basic bXl1c2Vy"}}},
      {"wrong password", auth_headers(unloc::basic_credentials{"myuser", "nope"})},
      {"wrong user", auth_headers(unloc::basic_credentials{"other", "mypasswoord"})},
  };
  for (const auto& [name, headers] : cases) {
    INFO(name);
    auto res = post(*c, event_body(), headers);
    REQUIRE(res);
    CHECK(res->status == 401);
    CHECK(res->get_header_value("WWW-Authenticate") == "Basic realm=\"unloc\"");
    CHECK(error_of(res)["error"] == "unauthorized");
  }
  REQUIRE(r.stop(SIGTERM) == 0);
  CHECK(r.out().empty());
  const auto err = r.err();
  CHECK(err.find("401 'POST' '/accessEvents' from 127.0.0.1: missing Authorization header") !=
        std::string::npos);
  CHECK(err.find("wrong user or password") != std::string::npos);
  CHECK(err.find("mypasswoord") == std::string::npos);
  CHECK(err.find("nope") == std::string::npos);
}

TEST_CASE("answers 404 for another path and 405 for any other method", "[receiver]") {
  receiver_process r;
  auto c = r.client();
  auto other = post(*c, event_body(), auth_headers(), "application/json", "/elsewhere");
  REQUIRE(other);
  CHECK(other->status == 404);
  CHECK(error_of(other)["error"] == "not_found");
  CHECK(c->Get("/elsewhere")->status == 404);

  auto get = c->Get("/accessEvents", auth_headers());
  REQUIRE(get);
  CHECK(get->status == 405);
  CHECK(get->get_header_value("Allow") == "POST");
  CHECK(error_of(get)["error"] == "method_not_allowed");
  CHECK(c->Put("/accessEvents", auth_headers(), event_body(), "application/json")->status == 405);
  CHECK(c->Patch("/accessEvents", auth_headers(), event_body(), "application/json")->status == 405);
  CHECK(c->Delete("/accessEvents", auth_headers())->status == 405);
  CHECK(c->Options("/accessEvents", auth_headers())->status == 405);
  CHECK(c->Head("/accessEvents", auth_headers())->status == 405);

  // Methods httplib does not know reach the validator too.
  for (const char* method : {"TRACE", "FOO", "post"}) {
    INFO(method);
    raw_connection raw(r.port(), true);
    REQUIRE(raw.send(std::string(method) + " /accessEvents HTTP/1.1\r\nHost: x\r\n\r\n"));
    const auto res = raw.read_response();
    CHECK(res.status == 405);
    CHECK(res.head.find("Allow: POST") != std::string::npos);
  }
  raw_connection raw(r.port(), true);
  REQUIRE(raw.send("FOO /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(raw.read_response().status == 404);
}

TEST_CASE("answers 415 for a content type other than application/json", "[receiver]") {
  receiver_process r;
  auto c = r.client();
  auto text = post(*c, event_body(), auth_headers(), "text/plain");
  REQUIRE(text);
  CHECK(text->status == 415);
  CHECK(error_of(text)["error"] == "unsupported_media_type");
  CHECK(post(*c, event_body(), auth_headers(), "application/x-www-form-urlencoded")->status == 415);
  CHECK(post(*c, event_body(), auth_headers(), "application/json; charset=latin1")->status == 415);
  raw_connection raw(r.port(), true);  // no Content-Type at all
  const std::string body = event_body();
  REQUIRE(raw.send("POST /accessEvents HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                   unloc::basic_authorization(credentials()) +
                   "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body));
  CHECK(raw.read_response().status == 415);
  // Parameters such as charset=utf-8 are fine, as is any case.
  CHECK(post(*c, event_body(event_id(1, 1)), auth_headers(), "application/json; charset=utf-8")
            ->status == 204);
  CHECK(post(*c, event_body(event_id(1, 2)), auth_headers(), "Application/JSON")->status == 204);
  REQUIRE(r.stop(SIGTERM) == 0);
  CHECK(lines_of(r.out()).size() == 2);
}

TEST_CASE("answers 400 for a body that is not JSON or not UTF-8", "[receiver]") {
  receiver_process r;
  auto c = r.client();
  auto not_json = post(*c, "{not json");
  REQUIRE(not_json);
  CHECK(not_json->status == 400);
  CHECK(error_of(not_json)["error"] == "malformed_body");
  std::string latin1 = event_body();
  latin1.replace(latin1.find("North gate"), 10, "Nord\xe5 port");  // ISO-8859-1, not UTF-8
  CHECK(post(*c, latin1)->status == 400);
  CHECK(post(*c, "")->status == 400);
  CHECK(post(*c, "[1,2]")->status == 422);  // JSON, but not an event
  REQUIRE(r.stop(SIGTERM) == 0);
  CHECK(r.out().empty());
}

TEST_CASE("answers 422 naming the field of JSON that is not a valid Access Event", "[receiver]") {
  receiver_process r;
  auto c = r.client();
  const auto with = [](const std::string& field, const nlohmann::json& value) {
    auto j = nlohmann::json::parse(event_body());
    if (value.is_discarded()) {
      j.erase(field);
    } else {
      j[field] = value;
    }
    return j.dump();
  };
  const nlohmann::json missing(nlohmann::json::value_t::discarded);
  const std::vector<std::tuple<const char*, std::string, const char*>> cases = {
      {"id missing", with("id", missing), "id"},
      {"malformed UUID", with("lockId", "not-a-uuid"), "lockId"},
      {"malformed timestamp", with("created", "yesterday"), "created"},
      {"wrong type", with("lockName", 42), "lockName"},
      {"action missing", with("action", missing), "action"},
  };
  for (const auto& [name, body, field] : cases) {
    INFO(name);
    auto res = post(*c, body);
    REQUIRE(res);
    CHECK(res->status == 422);
    const auto error = error_of(res);
    CHECK(error["error"] == "invalid_event");
    CHECK(error["field"] == field);
    CHECK(error["message"].get<std::string>().find(field) != std::string::npos);
  }
  REQUIRE(r.stop(SIGTERM) == 0);
  CHECK(r.out().empty());
  CHECK(r.err().find("422 'POST' '/accessEvents'") != std::string::npos);
}

TEST_CASE("accepts an unknown action and unknown extra fields", "[receiver]") {
  receiver_process r;
  auto c = r.client();
  auto j = nlohmann::json::parse(event_body(event_id(2, 1)));
  j["action"] = "jammed";
  j["battery"] = {{"level", 3}};
  CHECK(post(*c, j.dump())->status == 204);
  REQUIRE(r.stop(SIGTERM) == 0);
  const auto lines = lines_of(r.out());
  REQUIRE(lines.size() == 1);
  const auto printed = nlohmann::json::parse(lines[0]);
  CHECK(printed["action"] == "jammed");     // as received
  CHECK(printed["battery"]["level"] == 3);  // kept, after the API's fields
}

TEST_CASE("decides 413 from Content-Length before the body is sent", "[receiver]") {
  for (const bool tls : {true, false}) {
    INFO((tls ? "TLS" : "plain HTTP"));
    receiver_process r(
        launch{tls ? std::vector<std::string>{"--max-body", "1000"}
                   : std::vector<std::string>{"--plain-http", "--max-body", "1000"}});
    {
      raw_connection raw(r.port(), tls);  // the headers, never the body
      REQUIRE(raw.send(post_head("Content-Length: 10000000\r\n")));
      const auto res = raw.read_response();
      CHECK(res.status == 413);
      CHECK(nlohmann::json::parse(res.body)["error"] == "payload_too_large");
      CHECK(raw.closed_by_peer());  // the unread body can never be taken for a request
    }
    {
      raw_connection raw(r.port(),
                         tls);  // curl's way: it waits for 100 Continue, which never comes
      REQUIRE(raw.send(post_head("Content-Length: 10000000\r\nExpect: 100-continue\r\n")));
      const auto res = raw.read_response();
      CHECK(res.status == 413);
      CHECK(res.head.find("Content-Length: ") != std::string::npos);
      CHECK(raw.closed_by_peer());
    }
    {
      raw_connection raw(r.port(), tls);  // unauthenticated: refused for that first
      REQUIRE(raw.send(post_head("Content-Length: 10000000\r\n", false)));
      CHECK(raw.read_response().status == 401);
    }
    {
      raw_connection raw(r.port(), tls);  // a small body gets its 100 Continue
      const std::string body = event_body(event_id(3, tls ? 1 : 2));
      REQUIRE(raw.send(post_head("Content-Length: " + std::to_string(body.size()) +
                                 "\r\nExpect: 100-continue\r\n")));
      CHECK(raw.read_response().status == 100);
      REQUIRE(raw.send(body));
      CHECK(raw.read_response().status == 204);
    }
    REQUIRE(r.stop(SIGTERM) == 0);
    CHECK(lines_of(r.out()).size() == 1);
    CHECK(r.err().find("413 'POST' '/accessEvents' from 127.0.0.1: body of 10000000 bytes is over "
                       "the limit of 1000") != std::string::npos);
  }
}

TEST_CASE("answers 413 to a chunked body over --max-body and closes the connection", "[receiver]") {
  receiver_process r(launch{{"--max-body", "1000"}});
  raw_connection raw(r.port(), true);
  std::string request = post_head("Transfer-Encoding: chunked\r\n");
  for (int i = 0; i < 3; ++i) request += chunk(std::string(1000, ' '));
  request += chunk("");
  REQUIRE(raw.send(request));
  const auto res = raw.read_response();
  CHECK(res.status == 413);
  CHECK(raw.closed_by_peer());

  // Within the limit, a chunked delivery is read and accepted.
  raw_connection ok(r.port(), true);
  const std::string body = event_body(event_id(4, 1));
  REQUIRE(ok.send(post_head("Transfer-Encoding: chunked\r\n") + chunk(body.substr(0, 16)) +
                  chunk(body.substr(16)) + chunk("")));
  CHECK(ok.read_response().status == 204);
}

TEST_CASE("--max-body: a body of exactly the limit is read, one byte more is not", "[receiver]") {
  const std::string body = event_body(event_id(5, 1));
  const auto limit = body.size() + 10;
  receiver_process r(launch{{"--max-body", std::to_string(limit)}});
  auto c = r.client();
  CHECK(post(*c, body + std::string(10, ' '))->status == 204);  // trailing spaces: still JSON
  auto over = post(*c, body + std::string(11, ' '));
  REQUIRE(over);
  CHECK(over->status == 413);
  CHECK(error_of(over)["error"] == "payload_too_large");
}

TEST_CASE("a refused request's body is read and dropped: never taken for a request",
          "[receiver]") {
  receiver_process r;
  raw_connection raw(r.port(), true);
  const std::string smuggled = "POST /accessEvents HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(
      raw.send("POST /accessEvents HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
               "Content-Length: " +
               std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled));
  CHECK(raw.read_response().status == 401);
  // The connection stays (the request was read whole); the next answer is the
  // next request's, not a 401 to the body.
  REQUIRE(raw.send("GET /accessEvents HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(raw.read_response().status == 405);
  const std::string body = event_body(event_id(6, 1));
  REQUIRE(raw.send(post_head("Content-Length: " + std::to_string(body.size()) + "\r\n") + body));
  CHECK(raw.read_response().status == 204);
  REQUIRE(raw.send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  CHECK(raw.read_response().status == 404);
  REQUIRE(r.stop(SIGTERM) == 0);
  CHECK(lines_of(r.out()).size() == 1);
}

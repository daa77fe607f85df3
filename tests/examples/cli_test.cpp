// The example programs against the reference server: the `unloc` CLI (every
// command, option, format and exit status of docs/cli.md) and the README's
// register_and_read_log.

#include <unloc/core.hpp>

#include "catch.hpp"
#include "support/reference_server.hpp"
#ifdef UNLOC_RECEIVER_PATH  // the receiver is built (Boost found)
#include "receiver_harness.hpp"
#endif
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

struct run_result {
  int status = -1;
  std::string out;
  std::string err;
};

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

unloc_test::reference_server& server() {
  static unloc_test::reference_server instance;
  return instance;
}

// Runs a program with the server's settings in its environment (unless `bare`).
run_result run_program(const std::string& program, const std::vector<std::string>& args,
                       const std::string& extra_env = {}, bool bare = false) {
  std::string command;
  if (!bare) {
    command = "UNLOC_API_URL=" + shell_quote(server().base_url()) +
              " UNLOC_PROJECT_ID=" + shell_quote(server().project_id()) +
              " UNLOC_CLIENT_ID=" + shell_quote(server().client_id()) +
              " UNLOC_CLIENT_SECRET=" + shell_quote(server().client_secret()) +
              " UNLOC_CA_BUNDLE=" + shell_quote(server().ca_file()) + " ";
  }
  command =
      "env -u UNLOC_API_URL -u UNLOC_PROJECT_ID -u UNLOC_CLIENT_ID -u UNLOC_CLIENT_SECRET "
      "-u UNLOC_CA_BUNDLE " +
      command + extra_env + " " + shell_quote(program);
  for (const auto& a : args) command += " " + shell_quote(a);
  const std::string out_file = unloc_test::test_tls_files().dir + "/cli.out";
  const std::string err_file = unloc_test::test_tls_files().dir + "/cli.err";
  command += " >" + out_file + " 2>" + err_file + " </dev/null";
  run_result r;
  const int raw = std::system(command.c_str());
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = read_all(out_file);
  r.err = read_all(err_file);
  return r;
}

run_result unloc_cli(const std::vector<std::string>& args, const std::string& extra_env = {},
                     bool bare = false) {
  return run_program(UNLOC_CLI_PATH, args, extra_env, bare);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

const std::string lock = "c11c0de0-0000-4000-8000-00000000c11c";

void check_no_secret(const run_result& r) {
  CHECK(r.out.find(server().client_secret()) == std::string::npos);
  CHECK(r.err.find(server().client_secret()) == std::string::npos);
}

}  // namespace

TEST_CASE("prints its usage for -h, --help and without a command", "[cli]") {
  for (const auto& args : {std::vector<std::string>{"--help"}, std::vector<std::string>{"-h"},
                           std::vector<std::string>{}}) {
    auto r = unloc_cli(args, {}, true);
    CHECK(r.status == 0);
    CHECK(r.out.find("Usage: unloc [OPTIONS]") != std::string::npos);
    CHECK(r.out.find("UNLOC_CLIENT_SECRET_FILE") != std::string::npos);
    CHECK(r.err.empty());
  }
}

TEST_CASE("prints a command's help after the command, before checking its arguments", "[cli]") {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"webhooks", "register", "--help"}, "Usage: unloc webhooks register"},
      {{"webhooks", "register", "--lock", "not-a-uuid", "-h"}, "Usage: unloc webhooks register"},
      {{"webhooks", "--help"}, "Usage: unloc webhooks"},
      {{"access-log", "-h"}, "Usage: unloc access-log"},
      {{"listen", "--help"}, "--forward-to"},
      {{"completion", "--help"}, "Usage: unloc completion"},
  };
  for (const auto& [args, expected] : cases) {
    auto r = unloc_cli(args, {}, true);
    INFO(args[0] << " " << expected);
    CHECK(r.status == 0);
    CHECK(r.out.find(expected) != std::string::npos);
  }
  CHECK(unloc_cli({"webhooks", "register", "--help"}, {}, true).out.find("--lock") !=
        std::string::npos);
}

TEST_CASE("prints its version and libcurl's for --version, anywhere on the line", "[cli]") {
  for (const auto& args : {std::vector<std::string>{"--version"},
                           std::vector<std::string>{"webhooks", "list", "--version"}}) {
    auto r = unloc_cli(args, {}, true);
    CHECK(r.status == 0);
    const auto lines = lines_of(r.out);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == std::string("unloc ") + unloc::version_string);
    CHECK(lines[1].rfind("libcurl/", 0) == 0);
  }
}

TEST_CASE("finds bad usage and invalid input before any request, with exit 2", "[cli]") {
  server().reset_request_counts();
  const std::vector<std::vector<std::string>> cases = {
      {"webhooks", "register", "--lock", "not-a-uuid", "--url", "https://e.com/x"},
      {"webhooks", "register", "--lock", lock, "--url", "http://example.com/hook"},
      {"webhooks", "register", "--lock", lock, "--url", "https://us@r:pw@example.com/hook"},
      {"webhooks", "register", "--lock", lock, "--url", "https://user:p#ss@example.com/hook"},
      {"webhooks", "register", "--lock", lock},
      {"webhooks", "delete", "1234"},
      {"webhooks", "frobnicate"},
      {"access-log"},
      {"access-log", "--lock", lock, "--from", "2022-02-30T00:00:00Z"},
      {"access-log", "--lock", lock, "--from", "2024-05-02T00:00:00Z", "--to",
       "2024-05-01T00:00:00Z"},
      {"webhooks", "list", "--format", "xml"},
      {"webhooks", "list", "--timeout", "soon"},
      {"webhooks", "list", "--bogus"},
      {"webhooks"},
      {"frobnicate"},
      {"credentials", "generate", "webhooks", "list"},  // one command a line
      {"access-log", "--lock", lock, "webhooks", "list"},
      {"--csv-safe", "webhooks", "list"},
      {"completion", "fish"},
      {"listen"},
      {"listen", "--forward-to", "http://u:p@127.0.0.1:9/x", "--interval", "0"},
      {"listen", "--forward-to", "http://u:p@127.0.0.1:9/x", "--interval", "0.5"},
      {"listen", "--forward-to", "http://u:p@127.0.0.1:9/x", "--interval", "3601"},
      {"listen", "--forward-to", "http://u:p@127.0.0.1:9/x", "--lock", "not-a-uuid"},
      {"listen", "--forward-to", "http://u:p@example.com/x"},
  };
  for (const auto& args : cases) {
    auto r = unloc_cli(args);
    INFO(r.err);
    CHECK(r.status == 2);
    CHECK_FALSE(r.err.empty());
  }
  // CLI11's messages quote the arguments: a terminal escape is written as \x1b.
  auto escape = unloc_cli({"webhooks", "list", "--format", "x\x1b[31m"});
  CHECK(escape.status == 2);
  CHECK(escape.err.find('\x1b') == std::string::npos);
  CHECK(escape.err.find("\\x1b[31m") != std::string::npos);
  auto no_secret = unloc_cli({"webhooks", "list"}, "UNLOC_CLIENT_SECRET=");
  CHECK(no_secret.status == 2);
  CHECK(no_secret.err.find("UNLOC_CLIENT_SECRET") != std::string::npos);
  // The flag is a switch after access-log; the error says where the Project goes.
  auto meant = unloc_cli({"access-log", "--project", server().project_id()});
  CHECK(meant.status == 2);
  CHECK(meant.err.find("unloc --project " + server().project_id() + " access-log --project") !=
        std::string::npos);
  CHECK(unloc_cli({"webhooks", "frobnicate"}).err.find("unknown command 'webhooks frobnicate'") !=
        std::string::npos);
  // A URL quoted back, stray or misplaced, has its password REDACTED.
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"webhooks", "list", "https://u:pw-s3cret@example.com/x"},
           {"webhooks", "https://u:pw-s3cret@example.com/x"},
           {"webhooks", "list", "--url=https://u:pw-s3cret@example.com/x"},
           {"webhooks", "list", "--format", "https://u:pw-s3cret@example.com/x"},
           {"listen", "--forward-to", "http://u:pw-s3cret@127.0.0.1:9/x", "extra",
            "http://v:pw-s3cret@127.0.0.1/y"}}) {
    auto r = unloc_cli(args);
    INFO(r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find("pw-s3cret") == std::string::npos);
  }
  CHECK(unloc_cli({"webhooks", "list", "https://u:pw-s3cret@example.com/x"})
            .err.find("'https://u:REDACTED@example.com/x'") != std::string::npos);
  const auto counts = server().request_counts();
  CHECK(counts["webhooks"] == 0);
  CHECK(counts["token"] == 0);
}

TEST_CASE("generates credentials valid under the reserved-character rule", "[cli]") {
  auto r = unloc_cli({"credentials", "generate", "--format", "json"}, {}, true);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(unloc::check_credential(j["user"].get<std::string>(), "user").has_value());
  CHECK(unloc::check_credential(j["password"].get<std::string>(), "password").has_value());
  CHECK(j["password"].get<std::string>().size() >= 22);

  auto table = unloc_cli({"credentials", "generate"}, {}, true);
  CHECK(table.status == 0);
  CHECK(lines_of(table.out).size() == 2);
  CHECK(lines_of(unloc_cli({"credentials", "generate", "--format", "csv"}, {}, true).out)[0] ==
        "user,password\r");
}

TEST_CASE("registers, lists and deletes webhooks in every format, passwords redacted", "[cli]") {
  const std::string url = "https://myuser:mypasswoord@127.0.0.1:9/cli-hook";
  auto created =
      unloc_cli({"webhooks", "register", "--lock", lock, "--url", url, "--format", "json"});
  REQUIRE(created.status == 0);
  const auto hook = nlohmann::json::parse(created.out);
  CHECK(hook.is_object());
  CHECK(hook["url"] == "https://myuser:REDACTED@127.0.0.1:9/cli-hook");
  CHECK(hook["lockId"] == lock);
  CHECK(hook["trigger"] == "accessEvent");
  const std::string id = hook["id"];

  auto again =
      unloc_cli({"webhooks", "register", "--lock", lock, "--url", url, "--format", "json"});
  REQUIRE(again.status == 0);
  CHECK(nlohmann::json::parse(again.out)["id"] == id);  // 409: the existing one

  auto table = unloc_cli({"webhooks", "list"});
  REQUIRE(table.status == 0);
  CHECK(table.out.rfind("ID", 0) == 0);
  CHECK(table.out.find(id) != std::string::npos);

  auto json = unloc_cli({"webhooks", "list", "--format", "json"});
  REQUIRE(json.status == 0);
  CHECK(nlohmann::json::parse(json.out).is_array());
  auto csv = unloc_cli({"webhooks", "list", "--format", "csv"});
  CHECK(lines_of(csv.out)[0] == "id,trigger,lockId,url,created\r");
  auto jsonl = unloc_cli({"webhooks", "list", "--format", "jsonl"});
  for (const auto& line : lines_of(jsonl.out)) CHECK(nlohmann::json::parse(line).is_object());

  for (const auto* r : {&created, &again, &table, &json, &csv, &jsonl}) {
    CHECK(r->out.find("mypasswoord") == std::string::npos);
    check_no_secret(*r);
  }

  auto deleted = unloc_cli({"webhooks", "delete", id});
  CHECK(deleted.status == 0);
  CHECK(deleted.out.empty());

  auto missing = unloc_cli({"webhooks", "delete", id});
  CHECK(missing.status == 1);
  CHECK(missing.err.find("HTTP 404") != std::string::npos);
  CHECK(missing.err.find("webhook_not_found") != std::string::npos);
  CHECK(missing.err.find("request id") != std::string::npos);
}

TEST_CASE("prints every page of an access log in each format, in the order served", "[cli]") {
  const auto ids =
      server().record_events(lock, 1234, {{"lockName", "Gate \"A\", north"}, {"spacingMs", 1000}});
  REQUIRE(ids.size() == 1234);

  auto jsonl = unloc_cli({"access-log", "--lock", lock, "--format", "jsonl"});
  REQUIRE(jsonl.status == 0);
  const auto lines = lines_of(jsonl.out);
  REQUIRE(lines.size() == 1234);
  for (std::size_t i = 0; i < lines.size(); i += 97) {
    const auto e = nlohmann::json::parse(lines[i]);
    CHECK(e["id"] == ids[i]);
    for (const char* field :
         {"id", "action", "created", "keyId", "lockId", "lockName", "appUserId", "userName"}) {
      CHECK(e.contains(field));
    }
    CHECK(e["created"].get<std::string>().size() == 24);
  }

  auto json = unloc_cli({"access-log", "--lock", lock, "--format", "json"});
  REQUIRE(json.status == 0);
  CHECK(nlohmann::json::parse(json.out).size() == 1234);

  auto csv = unloc_cli({"access-log", "--lock", lock, "--format", "csv"});
  REQUIRE(csv.status == 0);
  const auto rows = lines_of(csv.out);
  REQUIRE(rows.size() == 1235);
  CHECK(rows[0] == "id,action,created,keyId,lockId,lockName,appUserId,userName\r");
  CHECK(rows[1].find("\"Gate \"\"A\"\", north\"") != std::string::npos);  // RFC 4180 quoting
  CHECK(rows[1].rfind(ids[0] + ",", 0) == 0);

  auto table = unloc_cli({"access-log", "--lock", lock});
  REQUIRE(table.status == 0);
  CHECK(lines_of(table.out).size() == 1235);

  auto project = unloc_cli({"access-log", "--project", "--lock", lock, "--format", "jsonl"});
  REQUIRE(project.status == 0);
  CHECK(lines_of(project.out).size() == 1234);

  const auto newest = nlohmann::json::parse(lines[0])["created"].get<std::string>();
  auto window = unloc_cli({"access-log", "--lock", lock, "--from", newest, "--format", "jsonl"});
  REQUIRE(window.status == 0);
  CHECK(lines_of(window.out).size() == 1);
  for (const auto* r : {&jsonl, &json, &csv, &table, &project}) check_no_secret(*r);
}

TEST_CASE("lets a flag win over its environment variable", "[cli]") {
  auto r = unloc_cli({"--project", server().project_id(), "webhooks", "list"},
                     "UNLOC_PROJECT_ID=00000000-0000-0000-0000-000000000000");
  CHECK(r.status == 0);
  auto wrong = unloc_cli({"--client-id", "someone-else", "webhooks", "list"});
  CHECK(wrong.status == 1);
  auto ca_flag =
      unloc_cli({"--ca-bundle", server().ca_file(), "webhooks", "list"}, "UNLOC_CA_BUNDLE=");
  CHECK(ca_flag.status == 0);
  auto url_flag = unloc_cli({"--api-url", server().base_url(), "webhooks", "list"},
                            "UNLOC_API_URL=https://127.0.0.1:9");
  CHECK(url_flag.status == 0);
}

TEST_CASE("exits 1 when the API refuses, naming the status", "[cli]") {
  auto r = unloc_cli({"webhooks", "list"}, "UNLOC_CLIENT_SECRET=wrong-secret");
  CHECK(r.status == 1);
  CHECK(r.err.find("HTTP 401") != std::string::npos);
  CHECK(r.err.find("wrong-secret") == std::string::npos);
}

TEST_CASE("exits 3 on a network or TLS failure and on the deadline", "[cli]") {
  auto refused =
      unloc_cli({"--api-url", "https://127.0.0.1:9", "webhooks", "list", "--timeout", "5"});
  CHECK(refused.status == 3);
  auto untrusted = unloc_cli({"webhooks", "list"}, "UNLOC_CA_BUNDLE=");
  CHECK(untrusted.status == 3);
  CHECK(untrusted.err.find("tls") != std::string::npos);

  server().inject_fault({{"endpoint", "webhooks"}, {"kind", "slow"}, {"delayMs", 4000}});
  auto slow = unloc_cli({"webhooks", "list", "--timeout", "0.5"});
  server().clear_faults();
  CHECK(slow.status == 3);
  CHECK(slow.err.find("timeout") != std::string::npos);
}

TEST_CASE("register_and_read_log registers once and prints the lock's log", "[examples]") {
  const std::string example_lock = "e8a0b1c2-0000-4000-8000-0000000000e8";
  server().record_events(example_lock, 3);
  const std::string url = "https://myuser:mypasswoord@127.0.0.1:9/example";
  auto first = run_program(UNLOC_EXAMPLE_REGISTER_PATH, {example_lock, url});
  INFO(first.err);
  REQUIRE(first.status == 0);
  CHECK(first.out.rfind("registered webhook{", 0) == 0);
  CHECK(first.out.find("3 access events") != std::string::npos);
  CHECK(first.out.find("mypasswoord") == std::string::npos);
  CHECK(first.out.find("+*********") != std::string::npos);  // phone numbers masked

  auto second = run_program(UNLOC_EXAMPLE_REGISTER_PATH, {example_lock, url});
  REQUIRE(second.status == 0);
  CHECK(second.out.rfind("already registered webhook{", 0) == 0);
  CHECK(run_program(UNLOC_EXAMPLE_REGISTER_PATH, {"not-a-lock", url}).status == 2);
}

TEST_CASE("takes global options after the command, and nothing as an option after --", "[cli]") {
  auto after =
      unloc_cli({"webhooks", "list", "--project", server().project_id(), "--format", "json"},
                "UNLOC_PROJECT_ID=00000000-0000-0000-0000-000000000000");
  REQUIRE(after.status == 0);
  CHECK(nlohmann::json::parse(after.out).is_array());
  auto log =
      unloc_cli({"access-log", "--lock", "0000aaaa-0000-4000-8000-00000000aaaa", "--format=csv"});
  CHECK(log.status == 0);
  CHECK(log.out == "id,action,created,keyId,lockId,lockName,appUserId,userName\r\n");

  auto created = unloc_cli({"webhooks", "register", "--lock", lock, "--url",
                            "https://u:p4ssw0rd-x@127.0.0.1:9/dashdash", "--format", "json"});
  REQUIRE(created.status == 0);
  const std::string id = nlohmann::json::parse(created.out)["id"];
  CHECK(unloc_cli({"webhooks", "delete", "--", id}).status == 0);
  auto not_an_option = unloc_cli({"webhooks", "delete", "--", "--format"});
  CHECK(not_an_option.status == 2);
  CHECK(not_an_option.err.find("WEBHOOK_ID") != std::string::npos);
}

TEST_CASE("reads the client secret from UNLOC_CLIENT_SECRET_FILE when UNLOC_CLIENT_SECRET is unset",
          "[cli]") {
  const std::string dir = unloc_test::test_tls_files().dir;
  const std::string file = dir + "/cli-secret";
  std::ofstream(file, std::ios::binary)
      << server().client_secret() << "\n";  // as mounted secrets end
  std::ofstream(dir + "/cli-secret-empty", std::ios::binary) << "\n";

  auto from_file = unloc_cli({"webhooks", "list"},
                             "UNLOC_CLIENT_SECRET= UNLOC_CLIENT_SECRET_FILE=" + shell_quote(file));
  CHECK(from_file.status == 0);
  check_no_secret(from_file);
  // The variable wins over the file.
  auto variable_wins = unloc_cli({"webhooks", "list"},
                                 "UNLOC_CLIENT_SECRET=wrong-secret "
                                 "UNLOC_CLIENT_SECRET_FILE=" +
                                     shell_quote(file));
  CHECK(variable_wins.status == 1);

  // Missing, empty, a directory, or an endless device: exit 2 before any request, naming the file.
  server().reset_request_counts();
  for (const std::string& bad :
       {dir + "/no-such-secret", dir + "/cli-secret-empty", dir, std::string("/dev/zero")}) {
    auto r = unloc_cli({"webhooks", "list"},
                       "UNLOC_CLIENT_SECRET= UNLOC_CLIENT_SECRET_FILE=" + shell_quote(bad));
    INFO(r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find("UNLOC_CLIENT_SECRET_FILE '" + bad + "'") != std::string::npos);
  }
  CHECK(server().request_counts()["token"] == 0);
}

TEST_CASE("writes CSV cells as served, or spreadsheet-safe with --csv-safe", "[cli]") {
  const std::string formula_lock = "c5c5c5c5-0000-4000-8000-0000000000c5";
  server().record_events(formula_lock, 1,
                         {{"lockName", "=HYPERLINK(\"http://x\")"},
                          {"appUserId", "+4712345678"},
                          {"userName", "@admin"}});
  auto plain = unloc_cli({"access-log", "--lock", formula_lock, "--format", "csv"});
  auto safe = unloc_cli({"access-log", "--lock", formula_lock, "--format", "csv", "--csv-safe"});
  auto jsonl = unloc_cli({"access-log", "--lock", formula_lock, "--format", "jsonl"});
  REQUIRE(plain.status == 0);
  REQUIRE(safe.status == 0);
  REQUIRE(jsonl.status == 0);
  const auto event = nlohmann::json::parse(jsonl.out);
  // The header names the JSON fields, so a row joins its JSON object without a map.
  std::string expected_row;
  for (const char* field : {"id", "action", "created", "keyId", "lockId"}) {
    expected_row += event[field].get<std::string>() + ",";
  }
  CHECK(lines_of(plain.out)[1] ==
        expected_row + "\"=HYPERLINK(\"\"http://x\"\")\",+4712345678,@admin\r");
  CHECK(lines_of(safe.out)[1] ==
        expected_row + "\"'=HYPERLINK(\"\"http://x\"\")\",'+4712345678,'@admin\r");
}

TEST_CASE("prints bash and zsh completion scripts that complete commands, options and values",
          "[cli]") {
  auto bash = unloc_cli({"completion", "bash"}, {}, true);
  REQUIRE(bash.status == 0);
  const std::string script = unloc_test::test_tls_files().dir + "/unloc-completion.bash";
  std::ofstream(script, std::ios::binary) << bash.out;
  CHECK(std::system(("bash -n " + shell_quote(script)).c_str()) == 0);

  // Loads the script and completes COMP_WORDS as bash would, at its last word.
  const auto complete = [&script](const std::string& words) {
    const std::string program = "source " + shell_quote(script) + "; COMP_WORDS=(" + words +
                                "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _unloc; "
                                "printf '%s\\n' \"${COMPREPLY[@]}\"";
    return run_program("bash", {"-c", program}, {}, true).out;
  };
  CHECK(complete("unloc web") == "webhooks\n");
  CHECK(complete("unloc webhooks re") == "register\n");
  CHECK(complete("unloc --format csv webhooks register --l") == "--lock\n");
  CHECK(complete("unloc access-log --lock x --fo") == "--format\n");
  CHECK(complete("unloc webhooks list --format js") == "json\njsonl\n");
  CHECK(complete("unloc --project p acc") == "access-log\n");  // --project's value skipped
  CHECK(complete("unloc access-log --project --f") == "--format\n--from\n");  // a switch there
  CHECK(complete("unloc completion ''") == "bash\nzsh\n");
  CHECK(complete("unloc listen --").find("--forward-to\n") != std::string::npos);

  auto zsh = unloc_cli({"completion", "zsh"}, {}, true);
  REQUIRE(zsh.status == 0);
  CHECK(zsh.out.rfind("#compdef unloc\n", 0) == 0);
  CHECK(zsh.out.find("bashcompinit") != std::string::npos);
  if (std::system("command -v zsh >/dev/null") != 0) {
    WARN("zsh is not installed (scripts/install-deps.sh installs it): its completion is untried");
    return;
  }
  const std::string zsh_script = unloc_test::test_tls_files().dir + "/unloc-completion.zsh";
  std::ofstream(zsh_script, std::ios::binary) << zsh.out;
  CHECK(std::system(("zsh -n " + shell_quote(zsh_script)).c_str()) == 0);
  // Loaded after compinit, as ~/.zshrc would; _unloc run as bashcompinit's compgen runs
  // it (sh emulation), and its answers matched against the word as zsh then does.
  const auto zsh_complete = [&zsh_script](const std::string& words) {
    const std::string program =
        "autoload -U compinit && compinit -u -D && source " + shell_quote(zsh_script) +
        " || exit 9\n"
        "emulate -L sh; setopt kshglob noshglob braceexpand\n"
        "eval \"COMP_WORDS=($1)\"; COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _unloc\n"
        "for w in \"${COMPREPLY[@]}\"; do\n"
        "  case $w in \"${COMP_WORDS[COMP_CWORD]}\"*) printf '%s\\n' \"$w\" ;; esac\n"
        "done";
    return run_program("zsh", {"-f", "-c", program, "zsh", words}, {}, true).out;
  };
  CHECK(zsh_complete("unloc web") == "webhooks\n");
  CHECK(zsh_complete("unloc --format csv webhooks register --l") == "--lock\n");
  CHECK(zsh_complete("unloc webhooks list --format js") == "json\njsonl\n");
  CHECK(zsh_complete("unloc access-log --project --f") == "--format\n--from\n");
  CHECK(zsh_complete("unloc completion ''") == "bash\nzsh\n");
}

TEST_CASE("listen stops cleanly, exit 0, on SIGTERM, SIGINT and at --timeout", "[cli]") {
  const std::string target = "http://u:fwd-s3cret-pw@127.0.0.1:9/x";  // nothing listens there
  const int polls = server().request_counts()["logs"].get<int>();
  auto timed = unloc_cli(
      {"listen", "--forward-to", target, "--lock", lock, "--interval", "1", "--timeout", "2"});
  INFO(timed.err);
  CHECK(timed.status == 0);
  CHECK(timed.err.find("unloc: ready") != std::string::npos);  // it polled before the deadline
  CHECK(server().request_counts()["logs"].get<int>() > polls);
  CHECK(timed.err.find("fwd-s3cret-pw") == std::string::npos);

  // Once it is ready (its first poll done), the signal; then its exit status.
  const std::string ready_file = unloc_test::test_tls_files().dir + "/cli-listen.err";
  const std::string script =
      "\"$0\" listen --forward-to \"$2\" --lock \"$3\" --interval 1 2>\"$1\" & pid=$!\n"
      "for i in $(seq 600); do grep -q 'unloc: ready' \"$1\" && break; sleep 0.05; done\n"
      "kill -s \"$4\" $pid; wait $pid; status=$?; cat \"$1\" >&2; exit $status";
  for (const char* signal : {"TERM", "INT"}) {
    auto stopped =
        run_program("bash", {"-c", script, UNLOC_CLI_PATH, ready_file, target, lock, signal});
    INFO(signal << ": " << stopped.err);
    CHECK(stopped.status == 0);
    CHECK(stopped.err.find("unloc: ready") != std::string::npos);
    CHECK(stopped.err.find("fwd-s3cret-pw") == std::string::npos);
    check_no_secret(stopped);
  }
}

TEST_CASE("listen ends at once on a second Ctrl-C while a call is still running", "[cli]") {
  // The first poll hangs for 20 s: the first SIGINT can only set the stop flag.
  server().inject_fault({{"endpoint", "logs"}, {"kind", "slow"}, {"delayMs", 20000}, {"count", 1}});
  const std::string err_file = unloc_test::test_tls_files().dir + "/cli-listen-twice.err";
  const std::string script =
      "\"$0\" listen --forward-to http://127.0.0.1:9/x --lock \"$2\" 2>\"$1\" & pid=$!\n"
      "for i in $(seq 600); do grep -q 'Ctrl-C to stop' \"$1\" && break; sleep 0.05; done\n"
      "kill -s INT $pid; sleep 0.2; kill -s INT $pid; wait $pid; exit $?";
  auto twice = run_program("bash", {"-c", script, UNLOC_CLI_PATH, err_file, lock});
  server().clear_faults();
  INFO(read_all(err_file));
  CHECK(twice.status == 128 + SIGINT);  // the default action: killed by the signal
}

#ifdef UNLOC_RECEIVER_PATH
TEST_CASE("unloc listen forwards a new event to unloc-webhook-receiver --plain-http", "[cli]") {
  receiver_test::receiver_process receiver(
      receiver_test::launch{{"--plain-http"}, receiver_test::credential_env()});
  REQUIRE(receiver.port() > 0);
  const std::string listen_lock = "11570000-0000-4000-8000-000000011570";
  const std::string dir = unloc_test::test_tls_files().dir;
  const std::string err_file = dir + "/cli-e2e.err";
  const std::string pid_file = dir + "/cli-e2e.pid";
  const std::string out_file = dir + "/cli-e2e.out";  // read while it runs: its line comes last
  std::remove(err_file.c_str());
  std::remove(out_file.c_str());
  std::remove(pid_file.c_str());
  const std::string url =
      "http://myuser:mypasswoord@127.0.0.1:" + std::to_string(receiver.port()) + "/accessEvents";
  // The API settings from the environment, the CA as a flag; run until SIGTERM.
  const std::string script =
      "\"$0\" listen --ca-bundle \"$1\" --forward-to \"$2\" --lock \"$3\" --interval 1 "
      "2>\"$4\" >\"$6\" & echo $! >\"$5\"; wait $!";
  run_result listen;
  std::thread running([&] {
    listen = run_program(
        "bash",
        {"-c", script, UNLOC_CLI_PATH, server().ca_file(), url, listen_lock, err_file, pid_file,
         out_file},
        "UNLOC_CA_BUNDLE=");
  });
  const auto wait_until = [](const auto& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return done();
  };
  const bool ready =
      wait_until([&] { return read_all(err_file).find("unloc: ready") != std::string::npos; });
  std::vector<std::string> ids;
  if (ready) {
    ids = server().record_events(listen_lock, 1);
    // Its own line, written once the receiver answered: a stop before it would cut the answer.
    wait_until([&] { return read_all(out_file).find(ids[0]) != std::string::npos; });
  }
  pid_t pid = 0;
  std::ifstream(pid_file) >> pid;
  if (pid > 0) ::kill(pid, SIGTERM);
  running.join();
  INFO(read_all(err_file));
  REQUIRE(ready);
  const auto printed = lines_of(receiver.out());
  REQUIRE(printed.size() == 1);
  const auto event = nlohmann::json::parse(printed[0]);
  CHECK(event["id"] == ids[0]);
  CHECK(event["lockId"] == listen_lock);
  CHECK(listen.status == 0);
  CHECK(read_all(out_file).rfind(ids[0] + " unlocked 2", 0) == 0);
  CHECK(read_all(err_file).find("mypasswoord") == std::string::npos);
}
#endif

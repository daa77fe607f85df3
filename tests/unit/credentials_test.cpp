#include <unloc/credentials.hpp>

#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "catch.hpp"

using unloc::basic_credentials;
using unloc::error_category;

namespace {

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// The error of a failed result, as text that would be logged.
template <typename Result>
std::string logged(const Result& r) {
  return r.has_value() ? std::string() : unloc::to_string(r.error());
}

const std::string unreserved_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

}  // namespace

TEST_CASE("basic_authorization gives the header of Unloc's webhook guide", "[credentials]") {
  const basic_credentials seed{"myuser", "mypasswoord"};
  CHECK("Authorization: " + unloc::basic_authorization(seed) ==
        "Authorization: Basic bXl1c2VyOm15cGFzc3dvb3Jk");
}

TEST_CASE("a parsed webhook URL gives the Basic header Unloc would send", "[credentials]") {
  const auto parts =
      unloc::parse_webhook_url("https://myuser:mypasswoord@vandelay.ind/accessEvents");
  REQUIRE(parts.has_value());
  REQUIRE(parts->credentials.has_value());
  CHECK(parts->credentials->user == "myuser");
  CHECK(parts->credentials->password == "mypasswoord");
  CHECK(unloc::basic_authorization(*parts->credentials) == "Basic bXl1c2VyOm15cGFzc3dvb3Jk");
  CHECK(parts->host == "vandelay.ind");
  CHECK(parts->target == "/accessEvents");
}

TEST_CASE("to_string of credentials shows the user and never the password", "[credentials]") {
  const basic_credentials c{"myuser", "mypasswoord"};
  CHECK(unloc::to_string(c) == "myuser:REDACTED");
}

TEST_CASE("credentials are equal only when user and password both are", "[credentials]") {
  const basic_credentials a{"u", "p"};
  CHECK(a == basic_credentials{"u", "p"});
  CHECK_FALSE(a != basic_credentials{"u", "p"});
  CHECK(a != basic_credentials{"u", "q"});
  CHECK(a != basic_credentials{"v", "p"});
  CHECK(a != basic_credentials{"u", "pp"});
  CHECK_FALSE(a == basic_credentials{"u", ""});
}

TEST_CASE("the reserved characters are the 18 that Unloc's docs list", "[credentials]") {
  // Unloc's guide: ": / ? # [ ] @ ! $ & ' ( ) * + , ; =".
  CHECK(unloc::reserved_characters == ":/?#[]@!$&'()*+,;=");
  CHECK(unloc::reserved_characters.size() == 18u);
}

TEST_CASE("check_credential accepts every unreserved character", "[credentials]") {
  CHECK(unloc::check_credential("ABCXYZabcxyz0189-._~", "user").has_value());
  CHECK(unloc::check_credential("ABCXYZabcxyz0189-._~", "password").has_value());
  CHECK(unloc::check_credential("a", "password").has_value());
}

TEST_CASE("rejects a user with a reserved character, naming it and its position", "[credentials]") {
  for (const char c : unloc::reserved_characters) {
    const std::string user = std::string("ab") + c + "cd";
    CAPTURE(user);
    const auto r = unloc::check_credential(user, "user");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().category == error_category::invalid_input);
    CHECK(r.error().field == "user");
    const std::string named = c == '\'' ? "\"'\"" : std::string("'") + c + "'";
    CHECK(r.error().message == "user contains the reserved character " + named + " at position 2");
  }
}

TEST_CASE("rejects a password with a reserved character, naming it but not the password",
          "[credentials]") {
  for (const char c : unloc::reserved_characters) {
    const std::string password = std::string("Secr") + c + "etPw";
    CAPTURE(password);
    const auto r = unloc::check_credential(password, "password");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().category == error_category::invalid_input);
    CHECK(r.error().field == "password");
    const std::string named = c == '\'' ? "\"'\"" : std::string("'") + c + "'";
    CHECK(r.error().message ==
          "password contains the reserved character " + named + " at position 4");
    CHECK_FALSE(contains(logged(r), "Secr"));
    CHECK_FALSE(contains(logged(r), "etPw"));
  }
}

TEST_CASE("rejects a reserved character in the user or password of a webhook URL",
          "[credentials]") {
  for (const char c : unloc::reserved_characters) {
    const std::string password = std::string("Secr") + c + "etPw";
    const std::string with_password = "https://myuser:" + password + "@vandelay.ind/accessEvents";
    CAPTURE(with_password);
    const auto bad_password = unloc::validate_webhook_url(with_password);
    REQUIRE_FALSE(bad_password.has_value());
    CHECK(bad_password.error().category == error_category::invalid_input);
    CHECK_FALSE(contains(logged(bad_password), "Secr"));
    CHECK_FALSE(contains(logged(bad_password), "etPw"));
    // A '/' or '?' in the user ends the authority: "https://my/user:..." is a
    // valid URL to host "my", so only the other 16 can be caught in a user.
    if (c == '/' || c == '?') continue;
    const std::string with_user = std::string("https://my") + c + "user:Secret@vandelay.ind/";
    CAPTURE(with_user);
    CHECK_FALSE(unloc::validate_webhook_url(with_user).has_value());
  }
}

TEST_CASE("rejects an empty user or password", "[credentials]") {
  const auto user = unloc::check_credential("", "user");
  REQUIRE_FALSE(user.has_value());
  CHECK(user.error().message == "user is empty");
  const auto password = unloc::check_credential("", "password");
  REQUIRE_FALSE(password.has_value());
  CHECK(password.error().message == "password is empty");
  CHECK_FALSE(unloc::validate_webhook_url("https://:secret@host/").has_value());
  CHECK_FALSE(unloc::validate_webhook_url("https://user:@host/").has_value());
}

TEST_CASE("rejects spaces, control characters and non-ASCII bytes in credentials",
          "[credentials]") {
  struct bad_case {
    std::string password;
    std::string problem;
  };
  const std::vector<bad_case> cases = {
      {"Secr etPw", "a space at position 4"},
      {"Secr\tetPw", "a control character (0x09) at position 4"},
      {std::string("Secr\0etPw", 9), "a control character (0x00) at position 4"},
      {std::string("Secr\x7f") + "etPw", "a control character (0x7f) at position 4"},
      {"Secr\xc3\xa9tPw", "a non-ASCII byte (0xc3) at position 4"},
  };
  for (const auto& bad : cases) {
    CAPTURE(bad.problem);
    const auto r = unloc::check_credential(bad.password, "password");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == "password contains " + bad.problem);
    CHECK_FALSE(contains(logged(r), "Secr"));
  }
}

TEST_CASE("rejects characters a URL cannot carry as they are, '%' included", "[credentials]") {
  for (const char c : std::string_view("%\"<>\\^`{|}")) {
    const std::string password = std::string("Secr") + c + "etPw";
    CAPTURE(password);
    const auto r = unloc::check_credential(password, "password");
    REQUIRE_FALSE(r.has_value());
    CHECK(contains(r.error().message, std::string("'") + c + "' at position 4"));
    CHECK_FALSE(contains(logged(r), "Secr"));
  }
}

TEST_CASE("generated credentials pass check_credential and have the documented shape",
          "[credentials]") {
  for (int i = 0; i < 100; ++i) {
    const auto c = unloc::generate_credentials();
    REQUIRE(c.has_value());
    CHECK(c->user.size() == 22u);
    CHECK(c->password.size() == 32u);
    CHECK(unloc::check_credential(c->user, "user").has_value());
    CHECK(unloc::check_credential(c->password, "password").has_value());
    CHECK(c->user.find_first_not_of(unreserved_alphabet) == std::string::npos);
    CHECK(c->password.find_first_not_of(unreserved_alphabet) == std::string::npos);
  }
}

TEST_CASE("generated users and passwords are unique across 1000 generations", "[credentials]") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto c = unloc::generate_credentials();
    REQUIRE(c.has_value());
    seen.insert(c->user);
    seen.insert(c->password);
  }
  CHECK(seen.size() == 2000u);
}

TEST_CASE("generated credentials use all 64 characters of the alphabet", "[credentials]") {
  // 1000 passwords are 32000 characters: each of 64 is missing with probability ~e^-500.
  std::set<char> used_in_user;
  std::set<char> used_in_password;
  for (int i = 0; i < 1000; ++i) {
    const auto c = unloc::generate_credentials();
    REQUIRE(c.has_value());
    used_in_user.insert(c->user.begin(), c->user.end());
    used_in_password.insert(c->password.begin(), c->password.end());
  }
  CHECK(used_in_user.size() == 64u);
  CHECK(used_in_password.size() == 64u);
}

TEST_CASE("generated credentials make a webhook URL that parses back to them", "[credentials]") {
  const auto c = unloc::generate_credentials();
  REQUIRE(c.has_value());
  const auto url = unloc::make_webhook_url("https://vandelay.ind/accessEvents", *c);
  REQUIRE(url.has_value());
  const auto parts = unloc::parse_webhook_url(*url);
  REQUIRE(parts.has_value());
  REQUIRE(parts->credentials.has_value());
  CHECK(*parts->credentials == *c);
}

TEST_CASE("random_bytes fills requests larger than one getentropy call", "[credentials]") {
  std::vector<unsigned char> a(1000, 0);
  std::vector<unsigned char> b(1000, 0);
  REQUIRE(unloc::detail::random_bytes(a.data(), a.size()));
  REQUIRE(unloc::detail::random_bytes(b.data(), b.size()));
  CHECK(a != b);
  // Past the first 256-byte chunk the buffer must have been written too.
  int nonzero_tail = 0;
  for (std::size_t i = 512; i < a.size(); ++i) nonzero_tail += a[i] != 0 ? 1 : 0;
  CHECK(nonzero_tail > 300);
  CHECK(unloc::detail::random_bytes(nullptr, 0));
}

TEST_CASE("accepts the webhook URLs that Unloc accepts", "[credentials]") {
  for (const char* good : {
           "https://vandelay.ind/accessEvents",
           "HTTPS://Vandelay.IND",
           "HttpS://vandelay.ind/",
           "https://myuser:mypassword@vandelay.ind/accessEvents",
           "https://example.com:8443/a/b?c=d&e=f",
           "https://example.com?c=d",
           "https://127.0.0.1:1/",
           "https://[::1]:65535/x",
           "https://[2001:db8::1]/",
           "https://[::ffff:192.0.2.1]/",
           "https://[1:2:3:4:5:6:7:8]/",
           "https://example.com./hooks",
           "https://my_host-1.example.com/a%20b/@me/x:y;z=1",
       }) {
    CAPTURE(good);
    // Compared with "" so that a failure shows the error message.
    CHECK(logged(unloc::validate_webhook_url(good)).empty());
  }
}

TEST_CASE("rejects http, saying that Unloc requires https", "[credentials]") {
  const auto r = unloc::validate_webhook_url("http://vandelay.ind/accessEvents");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().category == error_category::invalid_input);
  CHECK(r.error().field == "url");
  CHECK(contains(r.error().message, "webhook URL must use https, got scheme 'http'"));
  CHECK(contains(r.error().message, "Unloc requires https"));
  const auto upper = unloc::validate_webhook_url("HTTP://vandelay.ind/");
  REQUIRE_FALSE(upper.has_value());
  CHECK(contains(upper.error().message, "got scheme 'HTTP'"));
  const auto ftp = unloc::validate_webhook_url("ftp://vandelay.ind/");
  REQUIRE_FALSE(ftp.has_value());
  CHECK(contains(ftp.error().message, "got scheme 'ftp'"));
}

TEST_CASE("rejects a webhook URL without a scheme or without '//'", "[credentials]") {
  for (const char* bad : {"vandelay.ind/accessEvents", "//vandelay.ind/", ":foo", "1https://x/",
                          "https:vandelay.ind/", "https:/vandelay.ind/"}) {
    CAPTURE(bad);
    const auto r = unloc::validate_webhook_url(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(contains(r.error().message, "'https://'"));
  }
}

TEST_CASE("rejects an empty webhook URL", "[credentials]") {
  const auto r = unloc::validate_webhook_url("");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message == "webhook URL is empty");
}

TEST_CASE("rejects a webhook URL without a host", "[credentials]") {
  for (const char* bad : {"https://", "https:///accessEvents", "https://:443/", "https://?x=1",
                          "https://user:pass@/accessEvents", "HTTPS://"}) {
    CAPTURE(bad);
    const auto r = unloc::validate_webhook_url(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == "webhook URL has no host");
  }
}

TEST_CASE("rejects a webhook URL with a fragment", "[credentials]") {
  for (const char* bad : {"https://vandelay.ind/accessEvents#top", "https://vandelay.ind#",
                          "https://vandelay.ind/?a=b#c"}) {
    CAPTURE(bad);
    const auto r = unloc::validate_webhook_url(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == "webhook URL must not have a fragment");
  }
}

TEST_CASE("rejects a port that is not a number from 1 to 65535", "[credentials]") {
  for (const char* bad :
       {"https://vandelay.ind:0/", "https://vandelay.ind:65536/",
        "https://vandelay.ind:99999999999999999999999/", "https://vandelay.ind:80a/",
        "https://vandelay.ind:-1/", "https://vandelay.ind:/", "https://vandelay.ind:+443/",
        "https://[::1]:0/", "https://vandelay.ind:443:443/"}) {
    CAPTURE(bad);
    const auto r = unloc::validate_webhook_url(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(contains(r.error().message, "port"));
  }
  CHECK(unloc::validate_webhook_url("https://vandelay.ind:1/").has_value());
  CHECK(unloc::validate_webhook_url("https://vandelay.ind:65535/").has_value());
}

TEST_CASE("rejects whitespace, control and non-ASCII characters in a webhook URL",
          "[credentials]") {
  struct bad_case {
    std::string url;
    std::string message;
  };
  const std::vector<bad_case> cases = {
      {" https://vandelay.ind/", "webhook URL contains a space at position 0"},
      {"https://vandelay.ind/a b", "webhook URL contains a space at position 22"},
      {"https://vandelay.ind/\t", "webhook URL contains a control character (0x09) at position 21"},
      {"https://vandelay.ind/\n", "webhook URL contains a control character (0x0a) at position 21"},
      {std::string("https://vandelay.ind/\0", 22),
       "webhook URL contains a control character (0x00) at position 21"},
      {"https://vandelay.ind/\x7f",
       "webhook URL contains a control character (0x7f) at position 21"},
  };
  for (const auto& bad : cases) {
    CAPTURE(bad.message);
    const auto r = unloc::validate_webhook_url(bad.url);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == bad.message);
  }
  const auto idn = unloc::validate_webhook_url("https://vandel\xc3\xa4y.ind/");
  REQUIRE_FALSE(idn.has_value());
  CHECK(contains(idn.error().message, "non-ASCII byte (0xc3) at position 14"));
}

TEST_CASE("accepts a webhook URL of 2048 characters and rejects one of 2049", "[credentials]") {
  const std::string base = "https://vandelay.ind/";
  const std::string longest = base + std::string(2048 - base.size(), 'a');
  CHECK(unloc::validate_webhook_url(longest).has_value());
  const auto r = unloc::validate_webhook_url(longest + "a");
  REQUIRE_FALSE(r.has_value());
  CHECK(contains(r.error().message, "2049 characters long"));
  CHECK(contains(r.error().message, "2048"));
}

TEST_CASE("rejects a user without a password in a webhook URL", "[credentials]") {
  const auto r = unloc::validate_webhook_url("https://myuser@vandelay.ind/accessEvents");
  REQUIRE_FALSE(r.has_value());
  CHECK(contains(r.error().message, "has a user but no password"));
}

TEST_CASE("rejects hosts that are not a name, an IPv4 or a bracketed IPv6 address",
          "[credentials]") {
  for (const char* bad :
       {"https://256.1.1.1/", "https://1.2.3/", "https://1.2.3.4.5/", "https://01.2.3.4/",
        "https://[::1/", "https://[::1]x/", "https://[]/", "https://[1:2:3:4:5:6:7:8:9]/",
        "https://[1::2::3]/", "https://[fe80::1%25eth0]/", "https://[1.2.3.4]/", "https://[::1:]/",
        "https://[12345::]/", "https://ho!st/", "https://a..b/", "https://.vandelay.ind/",
        "https://ho~st/", "https://ho%41st/", "https://ho%zzst/"}) {
    CAPTURE(bad);
    CHECK_FALSE(unloc::validate_webhook_url(bad).has_value());
  }
}

TEST_CASE("rejects characters a URL must percent-encode", "[credentials]") {
  const auto r = unloc::validate_webhook_url("https://vandelay.ind/a|b");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message ==
        "webhook URL contains the character '|' at position 22, which must be percent-encoded");
  for (const char* bad :
       {"https://vandelay.ind/{x}", "https://vandelay.ind/a|b", "https://vandelay.ind/a\"b",
        "https://vandelay.ind/a<b>", "https://vandelay.ind/a^b", "https://vandelay.ind/a`b",
        "https://evil.example\\@vandelay.ind/", "https://vandelay.ind/a[1]",
        "https://vandelay.ind/%4", "https://vandelay.ind/%g1"}) {
    CAPTURE(bad);
    CHECK_FALSE(unloc::validate_webhook_url(bad).has_value());
  }
}

TEST_CASE("parse_webhook_url takes a URL apart", "[credentials]") {
  SECTION("host, port and target") {
    const auto p = unloc::parse_webhook_url("HTTPS://Vandelay.ind:08443/a/b?c=d");
    REQUIRE(p.has_value());
    CHECK(p->scheme == "https");
    CHECK(p->host == "Vandelay.ind");
    CHECK(p->port == "8443");
    CHECK(p->target == "/a/b?c=d");
    CHECK_FALSE(p->credentials.has_value());
  }
  SECTION("no path gives the target '/'") {
    const auto p = unloc::parse_webhook_url("https://vandelay.ind");
    REQUIRE(p.has_value());
    CHECK(p->port.empty());
    CHECK(p->target == "/");
  }
  SECTION("a query without a path gets the '/' in front") {
    const auto p = unloc::parse_webhook_url("https://vandelay.ind?x=1");
    REQUIRE(p.has_value());
    CHECK(p->target == "/?x=1");
  }
  SECTION("an IPv6 host keeps its brackets") {
    const auto p = unloc::parse_webhook_url("https://u:p@[2001:db8::1]:8443/x");
    REQUIRE(p.has_value());
    CHECK(p->host == "[2001:db8::1]");
    CHECK(p->port == "8443");
    REQUIRE(p->credentials.has_value());
    CHECK(*p->credentials == basic_credentials{"u", "p"});
  }
}

TEST_CASE("make_webhook_url inserts the credentials after https://", "[credentials]") {
  const auto url =
      unloc::make_webhook_url("https://vandelay.ind/accessEvents", {"myuser", "mypassword"});
  REQUIRE(url.has_value());
  CHECK(*url == "https://myuser:mypassword@vandelay.ind/accessEvents");
  const auto upper = unloc::make_webhook_url("HTTPS://[::1]:8443", {"u", "p"});
  REQUIRE(upper.has_value());
  CHECK(*upper == "HTTPS://u:p@[::1]:8443");
}

TEST_CASE("make_webhook_url rejects a URL that already has credentials", "[credentials]") {
  const auto r = unloc::make_webhook_url("https://a:b@vandelay.ind/", {"myuser", "mypassword"});
  REQUIRE_FALSE(r.has_value());
  CHECK(contains(r.error().message, "already has credentials"));
}

TEST_CASE("make_webhook_url rejects bad credentials without echoing the password",
          "[credentials]") {
  const auto r = unloc::make_webhook_url("https://vandelay.ind/", {"myuser", "Secr@etPw"});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message == "password contains the reserved character '@' at position 4");
  CHECK_FALSE(contains(logged(r), "Secr"));
  const auto user = unloc::make_webhook_url("https://vandelay.ind/", {"my:user", "Secret"});
  REQUIRE_FALSE(user.has_value());
  CHECK(user.error().message == "user contains the reserved character ':' at position 2");
  CHECK_FALSE(unloc::make_webhook_url("https://vandelay.ind/", {"", "Secret"}).has_value());
  CHECK_FALSE(unloc::make_webhook_url("https://vandelay.ind/", {"myuser", ""}).has_value());
}

TEST_CASE("make_webhook_url rejects an invalid URL and a result over 2048 characters",
          "[credentials]") {
  CHECK_FALSE(unloc::make_webhook_url("http://vandelay.ind/", {"u", "p"}).has_value());
  CHECK_FALSE(unloc::make_webhook_url("https://vandelay.ind/#x", {"u", "p"}).has_value());
  const std::string base = "https://vandelay.ind/";
  const std::string url = base + std::string(2048 - base.size() - 4, 'a');
  CHECK(unloc::make_webhook_url(url, {"u", "p"}).has_value());
  const auto r = unloc::make_webhook_url(url, {"u", "Secret"});
  REQUIRE_FALSE(r.has_value());
  CHECK(contains(r.error().message, "2048"));
  CHECK_FALSE(contains(logged(r), "Secret"));
}

TEST_CASE("redact_url replaces the password of a well-formed URL", "[credentials]") {
  CHECK(unloc::redact_url("https://user:s3cr3tPW@vandelay.ind/p") ==
        "https://user:REDACTED@vandelay.ind/p");
  CHECK(unloc::redact_url("https://user:s3cr3tPW@vandelay.ind") ==
        "https://user:REDACTED@vandelay.ind");
  CHECK(unloc::redact_url("HTTPS://user:s3cr3tPW@[::1]:8443/a?b=c") ==
        "HTTPS://user:REDACTED@[::1]:8443/a?b=c");
  CHECK(unloc::redact_url("https://user:s3cr3tPW@vandelay.ind/p@q") ==
        "https://user:REDACTED@vandelay.ind/p@q");
  CHECK(unloc::redact_url("//user:s3cr3tPW@vandelay.ind/p") == "//user:REDACTED@vandelay.ind/p");
}

TEST_CASE("redact_url covers a password that holds '/' up to its '@'", "[credentials]") {
  CHECK(unloc::redact_url("https://user:s3c/r3tPW@vandelay.ind/p") ==
        "https://user:REDACTED@vandelay.ind/p");
  CHECK(unloc::redact_url("https://user:s3c/r3tPW") == "https://user:REDACTED");
}

TEST_CASE("redact_url leaves a URL without a password as it is", "[credentials]") {
  for (const char* same :
       {"", "garbage", "https://vandelay.ind/p", "https://vandelay.ind:8443/p?q=1",
        "https://[::1]:8443/", "https://user@vandelay.ind/", "https://vandelay.ind/p@q",
        "https://vandelay.ind:8443/users/@me", "https://vandelay.ind:8443?x=1", "https:", "@", ":",
        "//vandelay.ind/a:b@c"}) {
    CAPTURE(same);
    CHECK(unloc::redact_url(same) == same);
  }
}

TEST_CASE("redact_url never leaks the password, whatever the shape", "[credentials]") {
  // Each holds the password "s3c...r3tPW", whole or split by a character it must not contain.
  for (const std::string& url : {
           std::string("https://user:s3cr3tPW@vandelay.ind/"),
           std::string("https://user:s3cr3tPW@"),
           std::string("https://user:s3cr3tPW@@vandelay.ind/"),
           std::string("https://user:s3c@r3tPW@vandelay.ind/"),
           std::string("https://user:s3c/r3tPW@vandelay.ind/"),
           std::string("https://user:s3c?r3tPW@vandelay.ind/"),
           std::string("https://user:12?r3tPW@vandelay.ind/"),
           std::string("https://user:12#r3tPW@vandelay.ind/"),
           std::string("https://user:s3c#r3tPW@vandelay.ind/"),
           std::string("https://user:s3c:r3tPW@vandelay.ind/"),
           std::string("https://user:s3c r3tPW@vandelay.ind/"),
           std::string("https://user:s3c\r\nr3tPW@vandelay.ind/"),
           std::string("https://user:s3c\\r3tPW@vandelay.ind/"),
           std::string("https://user:s3c%40r3tPW@vandelay.ind/"),
           std::string("https://user:s3cr3tPW/accessEvents"),
           std::string("https://user:s3cr3tPW"),
           std::string("https://user:s3c/r3tPW"),
           std::string("https://user:s3cr3tPW?x=1"),
           std::string("https://user:s3cr3tPW@vandelay.ind?mail=a@b"),
           std::string("https://us@er:s3cr3tPW@vandelay.ind/"),
           std::string("https://:s3cr3tPW@vandelay.ind/"),
           std::string("http://user:s3cr3tPW@vandelay.ind/"),
           std::string("ftp://user:s3cr3tPW@vandelay.ind/"),
           std::string("user:s3cr3tPW@vandelay.ind/accessEvents"),
           std::string("//user:s3cr3tPW@vandelay.ind/accessEvents"),
           std::string("https:/user:s3cr3tPW@vandelay.ind"),
           std::string("https:user:s3cr3tPW@vandelay.ind"),
           std::string(" https://user:s3cr3tPW@vandelay.ind"),
           std::string("user:s3cr3tPW@vandelay.ind//x"),
           std::string("garbage:s3cr3tPW"),
           std::string("https://user:s3cr3tPW@vandelay.ind\\path"),
           std::string("https://user:s3cr3tPW@[::1"),
           std::string("https://[user:s3cr3tPW@vandelay.ind/"),
           std::string("https://user:s3c\0r3tPW@vandelay.ind/", 36),
       }) {
    CAPTURE(url);
    const std::string redacted = unloc::redact_url(url);
    CAPTURE(redacted);
    CHECK(contains(redacted, "REDACTED"));
    CHECK_FALSE(contains(redacted, "s3c"));
    CHECK_FALSE(contains(redacted, "r3tPW"));
  }
}

TEST_CASE("redact_url hides a password before any text after '@'", "[credentials]") {
  // Property: "<scheme>://<user>:<password>@<anything>" never shows the password.
  std::mt19937 rng(7);
  const std::string_view pieces = ":/@?#[]% a1.\\";
  for (int i = 0; i < 2000; ++i) {
    std::string rest;
    const int n = static_cast<int>(rng() % 20);
    for (int k = 0; k < n; ++k) rest += pieces[rng() % pieces.size()];
    const std::string scheme = (i % 3 == 0) ? "https" : (i % 3 == 1) ? "HTTP" : "x-y";
    const std::string user = (i % 2 == 0) ? "user" : "";
    const std::string url = scheme + "://" + user + ":s3cr3tPW@" + rest;
    CAPTURE(url);
    const std::string redacted = unloc::redact_url(url);
    REQUIRE_FALSE(contains(redacted, "s3cr3tPW"));
  }
}

TEST_CASE("error messages never contain the password", "[credentials]") {
  const std::string password = "Pw9secretZ";
  for (const std::string& url : {
           "http://myuser:" + password + "@vandelay.ind/",
           "https://myuser:" + password + "@vandelay.ind/#frag",
           "https://myuser:" + password + "@vandelay.ind:99999/",
           "https://myuser:" + password + "@vandelay.ind:abc/",
           "https://myuser:" + password + "@/",
           "https://myuser:" + password + "@[::1/",
           "https://myuser:" + password + "@ho!st/",
           "https://myuser:" + password + "@vandelay.ind/%zz",
           "https://myuser:" + password + "@vandelay.ind/a b",
           "https://myuser:" + password + "@vandelay.ind/" + std::string(2100, 'a'),
           "https://myuser:" + password + "!@vandelay.ind/",
           "https://myuser:" + password + "/x@vandelay.ind/",
           "https://myuser:" + password + "?@vandelay.ind/",
           "https://myuser:" + password + "%@vandelay.ind/",
           "https://myuser:" + password,
           "https://myuser:" + password + "/accessEvents",
           "myuser:" + password + "@vandelay.ind",
           password + ":x",
       }) {
    CAPTURE(url);
    const auto parsed = unloc::parse_webhook_url(url);
    REQUIRE_FALSE(parsed.has_value());
    CHECK_FALSE(contains(logged(parsed), password));
    const auto made = unloc::make_webhook_url(url, {"u", "p"});
    REQUIRE_FALSE(made.has_value());
    CHECK_FALSE(contains(logged(made), password));
  }
}

TEST_CASE("no input makes the webhook URL functions throw", "[credentials]") {
  std::mt19937 rng(11);
  const std::string_view pieces = "https:/@?#[]%:0123456789abcdefABCDEF.-_~!$&'()*+,;= \t\x01\xff";
  for (int i = 0; i < 5000; ++i) {
    std::string text = i % 2 == 0 ? "https://" : "";
    const int n = static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) {
      text += i % 5 == 0 ? static_cast<char>(rng() & 0xff) : pieces[rng() % pieces.size()];
    }
    CAPTURE(text);
    REQUIRE_NOTHROW(static_cast<void>(unloc::parse_webhook_url(text)));
    REQUIRE_NOTHROW(static_cast<void>(unloc::validate_webhook_url(text)));
    REQUIRE_NOTHROW(static_cast<void>(unloc::make_webhook_url(text, {"u", "p"})));
    REQUIRE_NOTHROW(static_cast<void>(unloc::make_webhook_url("https://h/", {text, text})));
    REQUIRE_NOTHROW(static_cast<void>(unloc::check_credential(text, "password")));
    REQUIRE_NOTHROW(static_cast<void>(unloc::redact_url(text)));
  }
}

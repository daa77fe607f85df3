// libFuzzer target for the text parsers: UUIDs, RFC 3339 timestamps, webhook
// URLs with credentials, URL redaction and base64. Each gets the whole input;
// none may crash, hang or throw, and each checks a round-trip invariant.

#include <unloc/credentials.hpp>
#include <unloc/detail/base64.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/uuid.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

[[noreturn]] void fail(const char* invariant, std::string_view input) {
  std::fprintf(stderr, "invariant broken: %s\ninput (%zu bytes): %.*s\n", invariant, input.size(),
               static_cast<int>(input.size()), input.data());
  std::abort();
}

void check(bool holds, const char* invariant, std::string_view input) {
  if (!holds) fail(invariant, input);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

void fuzz_uuid(std::string_view text) {
  const auto parsed = unloc::uuid::parse(text);
  if (!parsed) return;
  const std::string canonical = parsed->to_string();
  check(canonical.size() == 36, "uuid::to_string has 36 characters", text);
  check(iequals(canonical, text), "uuid::to_string is the input in lower case", text);
  const auto again = unloc::uuid::parse(canonical);
  check(again.has_value() && *again == *parsed, "uuid::to_string re-parses equal", text);
}

void fuzz_timestamp(std::string_view text) {
  const auto parsed = unloc::parse_timestamp(text);
  if (!parsed) return;
  const std::string formatted = unloc::format_timestamp(*parsed);
  // An offset can move a year-0000 or year-9999 instant outside the 4-digit range;
  // format_timestamp then writes the expanded form, which parse_timestamp rejects.
  if (formatted.front() == '-' || formatted.front() == '+') return;
  check(formatted.size() == 24, "format_timestamp writes YYYY-MM-DDTHH:MM:SS.mmmZ", text);
  const auto again = unloc::parse_timestamp(formatted);
  check(again.has_value(), "format_timestamp output parses", text);
  check(*again == *parsed, "format_timestamp round trip parses equal", text);
  check(unloc::format_timestamp(*again) == formatted, "format_timestamp is stable", text);
}

void fuzz_webhook_url(std::string_view text) {
  const auto parsed = unloc::parse_webhook_url(text);
  const auto valid = unloc::validate_webhook_url(text);
  check(parsed.has_value() == valid.has_value(), "validate agrees with parse", text);
  const std::string redacted = unloc::redact_url(text);
  if (!parsed) return;
  check(parsed->scheme == "https", "a parsed webhook URL is https", text);
  check(!parsed->host.empty(), "a parsed webhook URL has a host", text);
  check(!parsed->target.empty() && (parsed->target.front() == '/'),
        "a parsed webhook URL has a target starting with '/'", text);

  if (parsed->credentials) {
    // "https://" user ":" password "@": the password becomes REDACTED, and what
    // follows is the rest of the URL from that '@' or, when redact_url errs
    // towards redacting too much, from a later '@'. Either way no password is left.
    const std::string& user = parsed->credentials->user;
    const std::string& password = parsed->credentials->password;
    const std::size_t password_at = 8 + user.size() + 1;
    const std::size_t at = password_at + password.size();
    check(text.substr(8, user.size()) == user && text[8 + user.size()] == ':' &&
              text.substr(password_at, password.size()) == password && text[at] == '@',
          "credentials are the text between '//' and '@'", text);
    const std::string head = std::string(text.substr(0, password_at)) + "REDACTED";
    check(redacted.compare(0, head.size(), head) == 0,
          "redact_url replaces the password with REDACTED", text);
    const std::string_view rest = std::string_view(redacted).substr(head.size());
    const std::size_t kept_from = text.size() - rest.size();
    check(rest.size() <= text.size() - at && text.substr(kept_from) == rest && !rest.empty() &&
              rest.front() == '@',
          "redact_url keeps only text from the '@' on after the password", text);
    return;
  }

  const std::string secret = "Fuzz-Secret_7q9W";
  if (text.find(secret) != std::string_view::npos) return;
  const auto with_credentials = unloc::make_webhook_url(text, {"fuzz-user", secret});
  if (!with_credentials) return;
  const auto reparsed = unloc::parse_webhook_url(*with_credentials);
  check(reparsed.has_value() && reparsed->credentials.has_value() &&
            reparsed->credentials->user == "fuzz-user" &&
            reparsed->credentials->password == secret && reparsed->host == parsed->host &&
            reparsed->port == parsed->port && reparsed->target == parsed->target,
        "make_webhook_url output parses back to the same URL and credentials", text);
  check(unloc::redact_url(*with_credentials).find(secret) == std::string::npos,
        "redact_url hides the password make_webhook_url inserted", text);
}

void fuzz_base64(std::string_view text) {
  const auto decoded = unloc::detail::base64_decode(text);
  if (decoded) {
    check(unloc::detail::base64_encode(*decoded) == text,
          "base64_decode accepts only the one canonical encoding", text);
  }
  const std::string encoded = unloc::detail::base64_encode(text);
  const auto back = unloc::detail::base64_decode(encoded);
  check(back.has_value() && *back == text, "base64 decode(encode(x)) == x", text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  fuzz_uuid(text);
  fuzz_timestamp(text);
  fuzz_webhook_url(text);
  fuzz_base64(text);
  return 0;
}

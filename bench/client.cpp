// unloc_bench_client: the client against the reference server over HTTPS on
// loopback, each figure beside its baseline (bench/run.sh runs it). The client
// secret comes from UNLOC_CLIENT_SECRET, as for the server.
//
//   calls URL CA PROJECT CLIENT_ID ROUNDS CALLS
//       client_calls: interleaved rounds of CALLS sequential list_webhooks calls,
//       raw libcurl (one reused handle, the same GET and headers) vs the client
//   paged-read URL CA PROJECT CLIENT_ID LOCK EVENTS SIDE
//       paged_read_rss_growth: reads LOCK's whole log page by page (EVENTS
//       expected) and reports the process's peak memory as SIDE (sdk|baseline)

#include <unloc/unloc.hpp>

#include "common.hpp"
#include <curl/curl.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

struct target {
  std::string url;
  std::string ca_file;
  std::string project;
  std::string client_id;
};

unloc::client make_client(const target& t) {
  unloc::client_options options;
  options.api_url = t.url;
  options.ca_file = t.ca_file;
  options.project_id = t.project;
  options.client_id = t.client_id;
  const char* secret = std::getenv("UNLOC_CLIENT_SECRET");
  options.client_secret = secret != nullptr ? secret : "";
  auto client = unloc::client::create(options);
  if (!client) bench::fail("client: " + unloc::to_string(client.error()));
  return std::move(*client);
}

std::size_t append_body(char* data, std::size_t size, std::size_t count, void* body) {
  static_cast<std::string*>(body)->append(data, size * count);
  return size * count;
}

// The baseline: one easy handle, reused, sending what the client sends.
class raw_curl {
 public:
  raw_curl(const target& t, const std::string& token) : handle_(curl_easy_init()) {
    url_ = t.url + "/v2/projects/" + t.project + "/webhooks";
    headers_ = curl_slist_append(headers_, "Accept: application/json");
    headers_ = curl_slist_append(headers_, ("Authorization: Bearer " + token).c_str());
    curl_easy_setopt(handle_, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(handle_, CURLOPT_CAINFO, t.ca_file.c_str());
    curl_easy_setopt(handle_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(handle_, CURLOPT_WRITEFUNCTION, &append_body);
    curl_easy_setopt(handle_, CURLOPT_WRITEDATA, &body_);
  }
  ~raw_curl() {
    curl_easy_cleanup(handle_);
    curl_slist_free_all(headers_);
  }
  raw_curl(const raw_curl&) = delete;
  raw_curl& operator=(const raw_curl&) = delete;

  void call() {
    body_.clear();
    const CURLcode code = curl_easy_perform(handle_);
    long status = 0;
    curl_easy_getinfo(handle_, CURLINFO_RESPONSE_CODE, &status);
    if (code != CURLE_OK || status != 200) {
      bench::fail(std::string("raw libcurl: ") + curl_easy_strerror(code) + ", status " +
                  std::to_string(status));
    }
  }

 private:
  CURL* handle_;
  curl_slist* headers_ = nullptr;
  std::string url_;
  std::string body_;
};

int calls(const target& t, int rounds, int calls_per_round) {
  const unloc::client client = make_client(t);
  auto token = client.token();
  if (!token) bench::fail("token: " + unloc::to_string(token.error()));
  raw_curl raw(t, token->value);
  const auto sdk_round = [&](int n) {
    const auto start = bench::clock::now();
    for (int i = 0; i < n; ++i) {
      auto hooks = client.list_webhooks();
      if (!hooks) bench::fail("list_webhooks: " + unloc::to_string(hooks.error()));
    }
    return n / bench::seconds_since(start);
  };
  const auto raw_round = [&](int n) {
    const auto start = bench::clock::now();
    for (int i = 0; i < n; ++i) raw.call();
    return n / bench::seconds_since(start);
  };
  // Each side opens its connection (one TLS handshake) before the clock starts.
  sdk_round(20);
  raw_round(20);
  for (int round = 0; round < rounds; ++round) {
    double base = 0;
    double ours = 0;
    if (round % 2 == 0) {
      base = raw_round(calls_per_round);
      ours = sdk_round(calls_per_round);
    } else {
      ours = sdk_round(calls_per_round);
      base = raw_round(calls_per_round);
    }
    bench::sample("client_calls", "baseline", base);
    bench::sample("client_calls", "sdk", ours);
  }
  return 0;
}

int paged_read(const target& t, const std::string& lock, long expected, const std::string& side) {
  const unloc::client client = make_client(t);
  auto lock_id = unloc::uuid::parse(lock);
  if (!lock_id) bench::fail("lock: " + lock_id.error().message);
  const auto start = bench::clock::now();
  std::size_t bytes = 0;
  auto read = client.read_access_log(unloc::access_log_query::lock(*lock_id),
                                     [&bytes](unloc::access_event&& e) {
                                       bytes += e.lock_name.size();  // touch it, keep nothing
                                       return true;
                                     });
  if (!read) bench::fail("read_access_log: " + unloc::to_string(read.error()));
  const std::size_t count = read->events;
  if (static_cast<long>(count) != expected) {
    bench::fail("read " + std::to_string(count) + " events, expected " + std::to_string(expected));
  }
  const double peak = bench::status_bytes("VmHWM");
  bench::sample("paged_read_rss_growth", side.c_str(), peak / bench::mib);
  std::printf("info paged-read: %zu events in %.2f s, peak %.1f MiB\n", count,
              bench::seconds_since(start), peak / bench::mib);
  bench::keep(bytes);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (argc >= 6) {
    const target t{argv[2], argv[3], argv[4], argv[5]};
    if (command == "calls" && argc == 8) return calls(t, std::stoi(argv[6]), std::stoi(argv[7]));
    if (command == "paged-read" && argc == 9)
      return paged_read(t, argv[6], std::stol(argv[7]), argv[8]);
  }
  std::fprintf(stderr,
               "usage: %s calls URL CA PROJECT CLIENT_ID ROUNDS CALLS\n"
               "       %s paged-read URL CA PROJECT CLIENT_ID LOCK EVENTS sdk|baseline\n",
               argv[0], argv[0]);
  return 2;
}

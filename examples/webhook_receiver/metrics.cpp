#include "metrics.hpp"

#include <algorithm>

namespace receiver {

namespace {

constexpr std::array<std::string_view, 11> outcome_names = {
    "accepted",      "unauthorized",           "not_found",      "method_not_allowed",
    "payload_too_large", "unsupported_media_type", "malformed_body", "invalid_event",
    "unavailable",   "duplicate",              "other"};
constexpr std::array<std::string_view, 2> cap_names = {"total", "per_client"};

// Upper bounds in microseconds. Lag: 0.1 s to a day (the platform retries for hours);
// handling: 1 ms to 10 s.
constexpr std::uint64_t ms = 1000;
constexpr std::uint64_t s = 1000 * ms;
constexpr std::array<std::uint64_t, 13> lag_bounds = {
    100 * ms, 500 * ms, 1 * s, 2 * s, 5 * s, 10 * s, 30 * s, 60 * s,
    300 * s, 900 * s, 3600 * s, 21600 * s, 86400 * s};
constexpr std::array<std::uint64_t, 13> handled_bounds = {
    1 * ms, 2500, 5 * ms, 10 * ms, 25 * ms, 50 * ms, 100 * ms,
    250 * ms, 500 * ms, 1 * s, 2500 * ms, 5 * s, 10 * s};

// Microseconds as seconds in decimal, exactly: 1500 -> "0.0015", 2000000 -> "2".
void append_seconds(std::string& out, std::uint64_t us) {
  out += std::to_string(us / s);
  std::uint64_t fraction = us % s;
  if (fraction == 0) return;
  std::string digits = std::to_string(fraction);
  digits.insert(0, 6 - digits.size(), '0');
  digits.erase(digits.find_last_not_of('0') + 1);
  out += '.';
  out += digits;
}

void append_header(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

}  // namespace

void duration_histogram::observe(std::chrono::microseconds value) noexcept {
  const auto us = value.count() < 0 ? std::uint64_t{0} : static_cast<std::uint64_t>(value.count());
  std::size_t bucket = 0;
  while (bucket < size_ && us > bounds_[bucket]) ++bucket;
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(us, std::memory_order_relaxed);
}

void duration_histogram::render(std::string& out, std::string_view name) const {
  // _count is the +Inf bucket, both from the same reads, so they agree even while
  // other threads observe.
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= size_; ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    out.append(name).append("_bucket{le=\"");
    if (i < size_) {
      append_seconds(out, bounds_[i]);
    } else {
      out += "+Inf";
    }
    out.append("\"} ").append(std::to_string(cumulative)).append("\n");
  }
  out.append(name).append("_sum ");
  append_seconds(out, sum_us_.load(std::memory_order_relaxed));
  out.append("\n").append(name).append("_count ").append(std::to_string(cumulative)).append("\n");
}

metrics::metrics() : lag_(lag_bounds), handled_(handled_bounds) {}

void metrics::delivery(std::string_view outcome) noexcept {
  std::size_t i = 0;
  while (i + 1 < outcome_names.size() && outcome_names[i] != outcome) ++i;
  deliveries_[i].fetch_add(1, std::memory_order_relaxed);
}

void metrics::lag(std::chrono::milliseconds lag) noexcept {
  // Clamped first: a forged `created` far away must not overflow the conversion.
  constexpr std::chrono::milliseconds year{365LL * 86400 * 1000};
  const auto clamped = std::clamp(lag, std::chrono::milliseconds{0}, year);
  lag_.observe(std::chrono::duration_cast<std::chrono::microseconds>(clamped));
}

void metrics::handled(std::chrono::steady_clock::duration duration) noexcept {
  handled_.observe(std::chrono::duration_cast<std::chrono::microseconds>(duration));
}

void metrics::connection_opened() noexcept { open_.fetch_add(1, std::memory_order_relaxed); }

void metrics::connection_closed() noexcept { open_.fetch_sub(1, std::memory_order_relaxed); }

void metrics::connection_refused(std::string_view cap) noexcept {
  refused_[cap == cap_names[1] ? 1 : 0].fetch_add(1, std::memory_order_relaxed);
}

std::string metrics::render() const {
  std::string out;
  out.reserve(4096);
  append_header(out, "unloc_receiver_deliveries_total", "counter",
                "Deliveries answered, by outcome (duplicate: a valid event already seen).");
  for (std::size_t i = 0; i < outcome_names.size(); ++i) {
    out.append("unloc_receiver_deliveries_total{outcome=\"").append(outcome_names[i]);
    out.append("\"} ").append(std::to_string(deliveries_[i].load(std::memory_order_relaxed)));
    out += '\n';
  }
  append_header(out, "unloc_receiver_event_lag_seconds", "histogram",
                "Time from an Access Event's creation to its delivery here.");
  lag_.render(out, "unloc_receiver_event_lag_seconds");
  append_header(out, "unloc_receiver_delivery_duration_seconds", "histogram",
                "Time to handle a delivery, from its first byte to the answer.");
  handled_.render(out, "unloc_receiver_delivery_duration_seconds");
  append_header(out, "unloc_receiver_connections_open", "gauge", "Connections open now.");
  out.append("unloc_receiver_connections_open ");
  out.append(std::to_string(open_.load(std::memory_order_relaxed))).append("\n");
  append_header(out, "unloc_receiver_connections_refused_total", "counter",
                "Connections refused by a cap (total or per client address).");
  for (std::size_t i = 0; i < cap_names.size(); ++i) {
    out.append("unloc_receiver_connections_refused_total{cap=\"").append(cap_names[i]);
    out.append("\"} ").append(std::to_string(refused_[i].load(std::memory_order_relaxed)));
    out += '\n';
  }
  return out;
}

}  // namespace receiver

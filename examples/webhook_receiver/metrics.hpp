#pragma once

// The receiver's Prometheus metrics: counters and histograms updated by the
// server threads, rendered for GET /metrics on the --metrics-listen listener.

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace receiver {

/// Fixed-bucket histogram of durations, in whole microseconds. Lock-free.
class duration_histogram {
 public:
  /// At most this many finite upper bounds (the +Inf bucket comes on top).
  static constexpr std::size_t max_bounds = 16;

  /// `bounds_us`: ascending upper bounds in microseconds (at most max_bounds).
  template <std::size_t N>
  explicit duration_histogram(const std::array<std::uint64_t, N>& bounds_us) noexcept
      : size_(N) {
    static_assert(N <= max_bounds, "too many buckets");
    for (std::size_t i = 0; i < N; ++i) bounds_[i] = bounds_us[i];
  }

  /// Records one observation (a negative one counts as 0). Thread-safe.
  void observe(std::chrono::microseconds value) noexcept;

  /// Appends the _bucket, _sum and _count lines of metric `name`.
  void render(std::string& out, std::string_view name) const;

 private:
  std::array<std::uint64_t, max_bounds> bounds_{};
  std::size_t size_;
  // Per-bucket (not cumulative) counts: one increment per observation; the last is +Inf.
  std::array<std::atomic<std::uint64_t>, max_bounds + 1> counts_{};
  std::atomic<std::uint64_t> sum_us_{0};
};

/// What the receiver counts, exposed in the Prometheus text format 0.0.4.
/// Thread-safe: every member may be called from any thread at any time; the
/// updates are relaxed atomic increments, cheap enough for every request.
class metrics {
 public:
  /// The Content-Type of `render()`'s text.
  static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

  metrics();

  /// Counts a delivery in unloc_receiver_deliveries_total{outcome}: `outcome`
  /// is unloc::to_string(delivery_outcome) ("accepted" for a new event) or
  /// "duplicate" (a valid event already seen); anything else counts as "other".
  void delivery(std::string_view outcome) noexcept;
  /// Observes the lag from an event's `created` to its receipt, in
  /// unloc_receiver_event_lag_seconds (a negative lag, from clock skew, counts as 0).
  void lag(std::chrono::milliseconds lag) noexcept;
  /// Observes the time taken to handle one delivery, from its first byte to the
  /// answer, in unloc_receiver_delivery_duration_seconds.
  void handled(std::chrono::steady_clock::duration duration) noexcept;
  /// A connection was accepted (unloc_receiver_connections_open goes up).
  void connection_opened() noexcept;
  /// An accepted connection was closed (unloc_receiver_connections_open goes down).
  void connection_closed() noexcept;
  /// A connection was refused by a cap, "total" or "per_client", in
  /// unloc_receiver_connections_refused_total{cap}.
  void connection_refused(std::string_view cap) noexcept;

  /// Every metric with its HELP and TYPE lines, in the Prometheus text format 0.0.4.
  [[nodiscard]] std::string render() const;

 private:
  static constexpr std::size_t outcome_count = 11;  // 9 delivery_outcomes, duplicate, other
  std::array<std::atomic<std::uint64_t>, outcome_count> deliveries_{};
  std::array<std::atomic<std::uint64_t>, 2> refused_{};  // total, per_client
  std::atomic<std::int64_t> open_{0};
  duration_histogram lag_;
  duration_histogram handled_;
};

}  // namespace receiver

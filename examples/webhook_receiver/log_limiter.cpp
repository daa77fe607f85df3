#include "log_limiter.hpp"

#include <utility>

namespace receiver {

namespace {

std::string summary(std::size_t suppressed) {
  return "... and " + std::to_string(suppressed) +
         (suppressed == 1 ? " more rejection suppressed" : " more rejections suppressed");
}

}  // namespace

log_limiter::log_limiter(std::size_t lines_per_interval,
                         std::chrono::steady_clock::duration interval, clock_type now)
    : lines_per_interval_(lines_per_interval), interval_(interval), now_(std::move(now)) {}

void log_limiter::reject(const std::string& line, const sink_type& sink) {
  std::size_t suppressed = 0;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto now = now_();
    if (written_ == 0 || now - interval_start_ >= interval_) {
      interval_start_ = now;
      written_ = 0;
    }
    if (written_ >= lines_per_interval_) {
      ++suppressed_;
      return;
    }
    ++written_;
    suppressed = std::exchange(suppressed_, 0);
  }
  if (suppressed > 0) sink(summary(suppressed));
  sink(line);
}

void log_limiter::flush(const sink_type& sink) {
  std::size_t suppressed = 0;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    suppressed = std::exchange(suppressed_, 0);
  }
  if (suppressed > 0) sink(summary(suppressed));
}

}  // namespace receiver

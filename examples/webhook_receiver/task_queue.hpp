#pragma once

// The receiver's worker threads: a fixed pool with a bounded queue.

#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace receiver {

/// A fixed number of threads serving httplib's connections, one at a time
/// each. httplib's own ThreadPool queues accepted connections without limit;
/// here `enqueue` (called by the accept loop) waits while `max_waiting` are
/// queued, so that a flood of connections waits in the kernel's listen
/// backlog rather than in this process's memory and file descriptors.
class bounded_task_queue final : public httplib::TaskQueue {
 public:
  bounded_task_queue(int threads, std::size_t max_waiting) : max_waiting_(max_waiting) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }

  ~bounded_task_queue() override {
    if (!workers_.empty()) shutdown();
  }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mutex_);
    has_room_.wait(lock, [this] { return jobs_.size() < max_waiting_ || stopping_; });
    jobs_.push_back(std::move(fn));
    has_job_.notify_one();
  }

  /// Runs the jobs already queued, then joins the threads.
  void shutdown() override {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    has_job_.notify_all();
    has_room_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        has_job_.wait(lock, [this] { return !jobs_.empty() || stopping_; });
        if (jobs_.empty()) return;  // stopping, and nothing left to do
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      has_room_.notify_one();
      job();
    }
  }

  const std::size_t max_waiting_;
  std::mutex mutex_;
  std::condition_variable has_job_;
  std::condition_variable has_room_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;             // guarded by mutex_
  std::vector<std::thread> workers_;  // touched by the owner's thread only
};

}  // namespace receiver

#include "fs/inode_reaper.h"

#include <chrono>

namespace tierfs {

namespace {

// How long the reaper lets FORGETs gather after the first of a batch: at
// 20,000 unlinks a second a batch is about a hundred inodes, and a lone
// unlink's object is gone 5 ms after its FORGET.
constexpr std::chrono::milliseconds kGather{5};

}  // namespace

void InodeReaper::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_) return;
  running_ = true;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void InodeReaper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_) return;
    stopping_ = true;
  }
  queued_.notify_one();
  thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  running_ = false;
}

void InodeReaper::Add(uint64_t ino) {
  bool queued = false, wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_ && !stopping_) {
      wake = queue_.empty();
      queue_.push_back(ino);
      queued = true;
    }
  }
  if (wake) queued_.notify_one();
  if (!queued) free_({ino});
}

void InodeReaper::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    queued_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (!stopping_) queued_.wait_for(lock, kGather, [this] { return stopping_; });
    std::vector<uint64_t> batch;
    batch.swap(queue_);
    const bool last = stopping_;
    lock.unlock();
    if (!batch.empty()) free_(batch);
    lock.lock();
    if (last && queue_.empty()) return;
  }
}

}  // namespace tierfs

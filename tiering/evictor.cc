#include "tiering/evictor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

namespace tierfs {

std::vector<EvictionCandidate> PickEvictions(std::vector<EvictionCandidate> all, uint64_t used,
                                             uint64_t target) {
  std::sort(all.begin(), all.end(), [](const EvictionCandidate& a, const EvictionCandidate& b) {
    return a.last_use_ns != b.last_use_ns ? a.last_use_ns < b.last_use_ns : a.ino < b.ino;
  });
  std::vector<EvictionCandidate> picked;
  for (const EvictionCandidate& c : all) {
    if (used < target) break;
    picked.push_back(c);
    used = used > c.bytes ? used - c.bytes : 0;
  }
  return picked;
}

Evictor::Evictor(EvictorHooks hooks, Watermarks marks, std::chrono::milliseconds interval)
    : hooks_(std::move(hooks)), marks_(marks), interval_(interval) {}

Evictor::~Evictor() {
  Stop();
}

void Evictor::Start() {
  if (thread_.joinable()) return;
  {
    MutexLock lock(&mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void Evictor::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void Evictor::Poke() {
  {
    MutexLock lock(&mu_);
    poked_ = true;
  }
  wake_.SignalAll();
}

void Evictor::SetWatermarks(Watermarks marks) {
  {
    MutexLock lock(&mu_);
    marks_ = marks;
  }
  Poke();
}

void Evictor::Loop() {
  MutexLock lock(&mu_);
  while (!stop_) {
    const auto deadline = std::chrono::steady_clock::now() + interval_ + backoff_;
    while (!stop_ && !poked_ && std::chrono::steady_clock::now() < deadline)
      wake_.WaitFor(&mu_, deadline - std::chrono::steady_clock::now());
    if (stop_) break;
    poked_ = false;
    lock.Unlock();
    RunOnce();
    lock.Lock();
  }
}

int Evictor::RunOnce() {
  Watermarks marks;
  {
    MutexLock lock(&mu_);
    marks = marks_;
  }
  uint64_t used = 0, capacity = 0;
  Status st = hooks_.usage(&used, &capacity);
  if (!st.ok()) {
    spdlog::error("evictor: {}", st.message());
    return 0;
  }
  if (double(used) <= marks.high * double(capacity)) return 0;
  auto back_off = [&](const Status& why) {
    MutexLock lock(&mu_);
    BackOff(std::chrono::milliseconds(60000));
    if (!hdd_down_logged_)
      spdlog::error(
          "evictor: ssd tier above its high watermark, but moves to hdd stop: {} "
          "(retrying with backoff, now {} ms)",
          why.message(), backoff_.count());
    hdd_down_logged_ = true;
  };
  st = hooks_.hdd_health();
  if (!st.ok()) {
    back_off(st);
    return 0;
  }
  std::vector<EvictionCandidate> all;
  st = hooks_.candidates(&all);
  if (!st.ok()) {
    spdlog::error("evictor: listing candidates: {}", st.message());
    return 0;
  }
  const uint64_t target = uint64_t(marks.low * double(capacity));
  const auto picked = PickEvictions(std::move(all), used, target);
  if (picked.empty()) {
    MutexLock lock(&mu_);
    BackOff(std::chrono::milliseconds(10000));  // a file that closes may move
    if (!nothing_logged_)
      spdlog::warn(
          "evictor: ssd tier {:.1f}% used (high {:.0f}%), but none of it is a file that may "
          "move to hdd (open, pinned there, or other data on that filesystem)",
          100.0 * double(used) / double(capacity), marks.high * 100);
    nothing_logged_ = true;
    return 0;
  }
  spdlog::info("evictor: ssd tier {:.1f}% used (high {:.0f}%): moving {} files to hdd",
               100.0 * double(used) / double(capacity), marks.high * 100, picked.size());
  int moved = 0;
  for (const EvictionCandidate& c : picked) {
    {
      MutexLock lock(&mu_);
      if (stop_) break;
    }
    st = hooks_.move_to_hdd(c);
    if (st.ok()) {
      moved++;
      continue;
    }
    if (st.err() == EIO || st.err() == ENOSPC || st.err() == EROFS) {
      back_off(st);
      return moved;
    }
    // Busy, written meanwhile, removed: the next pass looks again.
    spdlog::debug("evictor: inode {} stays: {}", c.ino, st.message());
  }
  MutexLock lock(&mu_);
  if (hdd_down_logged_) spdlog::info("evictor: moves to hdd work again");
  hdd_down_logged_ = false;
  nothing_logged_ = false;
  backoff_ = std::chrono::milliseconds(0);
  return moved;
}

}  // namespace tierfs

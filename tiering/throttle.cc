#include "tiering/throttle.h"

#include <thread>

namespace tierfs {

bool MoveThrottle::Acquire(const std::function<bool()>& should_abort) {
  MutexLock lock(&mu_);
  while (max_moves_ != 0 && active_ >= max_moves_) {
    // A bounded wait, because should_abort is the daemon's predicate and
    // nothing notifies us when it changes.
    slot_freed_.WaitFor(&mu_, std::chrono::milliseconds(5));
    if (!should_abort) continue;
    // Polled unlocked: the predicate may itself ask this throttle.
    lock.Unlock();
    const bool abort = should_abort();
    lock.Lock();
    if (abort) return false;
  }
  active_++;
  return true;
}

void MoveThrottle::Release() {
  {
    MutexLock lock(&mu_);
    if (active_ > 0) active_--;
  }
  slot_freed_.Signal();
}

void MoveThrottle::Pace(uint64_t bytes) {
  std::chrono::steady_clock::time_point until;
  {
    MutexLock lock(&mu_);
    if (rate_ == 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (next_ < now) next_ = now;
    next_ += std::chrono::nanoseconds(uint64_t(double(bytes) * 1e9 / double(rate_)));
    until = next_;
  }
  std::this_thread::sleep_until(until);
}

void MoveThrottle::SetLimits(uint64_t bytes_per_sec, unsigned max_moves) {
  {
    MutexLock lock(&mu_);
    rate_ = bytes_per_sec;
    max_moves_ = max_moves;
  }
  slot_freed_.SignalAll();
}

unsigned MoveThrottle::active() const {
  MutexLock lock(&mu_);
  return active_;
}

unsigned MoveThrottle::max_moves() const {
  MutexLock lock(&mu_);
  return max_moves_;
}

}  // namespace tierfs

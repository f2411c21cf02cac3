// MoveThrottle: the limits that moves share, so background migration leaves
// foreground checkpoint writes their bandwidth: a bandwidth cap over all
// moves that use the throttle, and a cap on how many moves run at once.
//
// Pacing is a virtual clock, not a bucket: each chunk reserves the next
// bytes/rate slice of time after the previous one (or after now, when the
// movers were idle), so idle periods never accumulate into a burst.
// Thread-safety: all methods may be called from many threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "meta/mutex.h"

namespace tierfs {

class MoveThrottle {
 public:
  // 0 means unlimited, for either limit.
  MoveThrottle(uint64_t bytes_per_sec, unsigned max_moves)
      : rate_(bytes_per_sec), max_moves_(max_moves) {}
  MoveThrottle(const MoveThrottle&) = delete;
  MoveThrottle& operator=(const MoveThrottle&) = delete;

  // Waits for a move slot. Returns false, holding no slot, when
  // `should_abort` (polled every few milliseconds) turns true first.
  bool Acquire(const std::function<bool()>& should_abort);
  void Release();
  // Sleeps until `bytes` more may pass under the bandwidth cap.
  void Pace(uint64_t bytes);
  // Changes the limits, e.g. on a policy reload; running moves follow.
  void SetLimits(uint64_t bytes_per_sec, unsigned max_moves);
  unsigned active() const;
  unsigned max_moves() const;  // 0 = unlimited

 private:
  mutable Mutex mu_;
  CondVar slot_freed_;  // waited on with mu_
  uint64_t rate_ GUARDED_BY(mu_);
  unsigned max_moves_ GUARDED_BY(mu_);
  unsigned active_ GUARDED_BY(mu_) = 0;
  std::chrono::steady_clock::time_point next_ GUARDED_BY(mu_){};
};

}  // namespace tierfs

// Evictor: keeps the SSD tier below its high watermark by moving the least
// recently used eligible files to the HDD tier until usage is below the low
// watermark, and backs off while the HDD tier is unusable.
//
// It owns one background thread that wakes every `interval` (or on Poke()),
// reads the SSD usage, and when above `high` asks for candidates and moves
// them in LRU order. What is eligible and how a move is done are the
// caller's (the daemon knows open files; tiering/ does not), given as hooks.
//
// Thread-safety: Start/Stop from one thread; Poke from any.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "meta/limits.h"
#include "meta/mutex.h"
#include "meta/status.h"

namespace tierfs {

struct EvictionCandidate {
  uint64_t ino = 0;
  uint64_t bytes = 0;       // space the move frees on the SSD tier
  int64_t last_use_ns = 0;  // latest of write and access
  std::string path;         // in the mount, for the log and the audit journal
};

// The candidates to move, oldest use first, whose bytes bring `used` below
// `target` bytes (all of them if even that is not enough).
std::vector<EvictionCandidate> PickEvictions(std::vector<EvictionCandidate> all, uint64_t used,
                                             uint64_t target);

struct EvictorHooks {
  // Used and total bytes of the SSD tier.
  std::function<Status(uint64_t* used, uint64_t* capacity)> usage;
  // Whether the HDD tier can take moves now (EIO with the cause if not).
  std::function<Status()> hdd_health;
  // Every SSD-resident file that may be moved now (not open for writing).
  std::function<Status(std::vector<EvictionCandidate>*)> candidates;
  // Moves one file to the HDD tier.
  std::function<Status(const EvictionCandidate&)> move_to_hdd;
};

class Evictor {
 public:
  Evictor(EvictorHooks hooks, Watermarks marks,
          std::chrono::milliseconds interval = std::chrono::milliseconds(500));
  ~Evictor();  // stops the thread
  Evictor(const Evictor&) = delete;
  Evictor& operator=(const Evictor&) = delete;

  void Start() EXCLUDES(mu_);
  void Stop() EXCLUDES(mu_);
  // Wakes the thread now (a write found the SSD tier filling up).
  void Poke() EXCLUDES(mu_);
  void SetWatermarks(Watermarks marks) EXCLUDES(mu_);
  // One pass, on the caller's thread: what the thread runs when woken.
  // Returns the number of files moved; failures are logged.
  int RunOnce() EXCLUDES(mu_);

 private:
  void Loop() EXCLUDES(mu_);

  // Doubles the wait before the next pass, from 1 s up to `most`.
  void BackOff(std::chrono::milliseconds most) REQUIRES(mu_) {
    backoff_ = std::min(most, std::max(std::chrono::milliseconds(1000), backoff_ * 2));
  }

  EvictorHooks hooks_;
  Mutex mu_;
  CondVar wake_;  // waited on with mu_
  Watermarks marks_ GUARDED_BY(mu_);
  const std::chrono::milliseconds interval_;
  std::chrono::milliseconds backoff_ GUARDED_BY(mu_){0};  // while the HDD tier is unusable
  bool poked_ GUARDED_BY(mu_) = false;
  bool stop_ GUARDED_BY(mu_) = false;
  bool hdd_down_logged_ GUARDED_BY(mu_) = false;
  // Above the high watermark with nothing to move (the tier is full of
  // other data): said once, and passes back off as while the HDD is down,
  // rather than log "moving 0 files" twice a second into that full disk.
  bool nothing_logged_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tierfs

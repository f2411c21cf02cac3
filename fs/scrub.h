// Scrubber: the background scrub of the HDD tier (tierfs(8), SCRUB). Bytes
// resting on the capacity tier for years rot unseen until someone reads
// them, so every `interval` of the policy's [scrub] (meta/limits.h
// ScrubLimits) a pass re-reads every regular HDD-resident file that has
// block sums and checks it (fs/verify_object.h, reporter "scrub"), at most
// at the policy's scrub bandwidth so readers and moves keep the disk.
//
// A corrupt file is logged, audited ("corrupt", rule "scrub"), counted and
// marked corrupt, so every read of it is EIO until an admin rewrites or
// removes it; a file already marked is counted in the pass, not reported
// again. Files open for writing are skipped (their sums are being
// replaced), as are files without sums. Each finished pass writes one
// "scrub" audit record (files, bytes, corrupt, errors, seconds) and is
// what `tierctl status` shows.
//
// Timing: the first pass starts one interval after Start, the next one
// interval after the previous pass ended; RequestPass (tierctl scrub)
// starts one now. The limits are asked for once a second, so a policy
// reload changes the interval and the bandwidth of the pass under way.
// Stop ends a pass promptly (within one block's read): an unmount never
// waits for a pass, and an unfinished pass is not recorded.
//
// Thread-safety: all public methods may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "meta/limits.h"
#include "meta/mutex.h"

namespace tierfs {

class Context;

// What one finished pass found.
struct ScrubPass {
  int64_t started_ns = 0, ended_ns = 0;
  uint64_t files = 0;    // checked: ok, found corrupt, or already marked corrupt
  uint64_t bytes = 0;    // read
  uint64_t corrupt = 0;  // of `files`
  uint64_t errors = 0;   // objects that could not be read
  uint64_t skipped = 0;  // open for writing, or without sums
  double seconds() const { return double(ended_ns - started_ns) / 1e9; }
};

class Scrubber {
 public:
  // `limits` gives the running policy's [scrub] (called from the thread).
  Scrubber(Context& c, std::function<ScrubLimits()> limits);
  ~Scrubber();
  Scrubber(const Scrubber&) = delete;
  Scrubber& operator=(const Scrubber&) = delete;

  void Start();
  void Stop();
  // Starts a pass as soon as the thread is free, whatever the interval.
  void RequestPass();

  struct Info {
    bool started = false;
    int64_t interval_ns = 0;  // 0: no scheduled passes
    uint64_t bytes_per_sec = 0;
    int64_t next_ns = 0;     // when the next pass is due; 0: none is
    int64_t running_ns = 0;  // when the pass under way started; 0: none is
    bool has_last = false;
    ScrubPass last;  // the last finished pass, when has_last
  };
  Info GetInfo();

 private:
  void Loop();
  // One pass on the scrub thread: false when Stop ended it.
  bool RunPass(ScrubPass* p);
  // Waits until `bytes` more may be read under the bandwidth: false when
  // stopping.
  bool Pace(uint64_t bytes);
  bool stopping();

  Context& c_;
  const std::function<ScrubLimits()> limits_fn_;
  Mutex mu_;
  CondVar wake_;  // Stop, RequestPass
  bool stop_ GUARDED_BY(mu_) = false;
  bool started_ GUARDED_BY(mu_) = false;
  bool requested_ GUARDED_BY(mu_) = false;
  ScrubLimits limits_ GUARDED_BY(mu_);
  int64_t base_ns_ GUARDED_BY(mu_) = 0;  // the next pass is due one interval after this
  int64_t running_ns_ GUARDED_BY(mu_) = 0;
  bool has_last_ GUARDED_BY(mu_) = false;
  ScrubPass last_ GUARDED_BY(mu_);
  // The pacing's virtual clock (scrub thread only): the last read started
  // then, `last_bytes_` long, paced at `paced_rate_`; the next may start at
  // `next_read_`.
  std::chrono::steady_clock::time_point last_read_{}, next_read_{};
  uint64_t last_bytes_ = 0, paced_rate_ = 0;
  std::thread thread_;
};

}  // namespace tierfs

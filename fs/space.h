// Space: the SSD tier's room. When it counts as full (its free space below
// a reserve of 1%, at least 4 MiB, kept for LMDB and writes in flight),
// where a new file starts, the reserve LMDB keeps on the state's own
// filesystem so removals always work, and the evictor (tiering/evictor.h)
// that keeps the tier below its high watermark by moving the least
// recently used files to the HDD tier through Placement; and the room
// promised to writers the kernel serves itself (FUSE passthrough), whose
// writes never reach tierfs and so cannot spill to the HDD tier.
//
// Thread-safety: all methods may be called from any thread; Start and Stop
// from the daemon's main thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>

#include "fs/inode_table.h"
#include "fs/placement.h"
#include "meta/limits.h"
#include "meta/mutex.h"
#include "meta/store.h"
#include "tiering/evictor.h"
#include "tiering/tier.h"

namespace tierfs {

class Space {
 public:
  Space(Store& store, Tiers tiers, InodeTable& table, Placement& placement, Watermarks marks);
  ~Space();

  // True when the SSD tier's free space is below its reserve plus what
  // promised writers may still write (rechecked at most every few
  // milliseconds far from full, at every call close to it); above the high
  // watermark it also pokes the evictor and the policy.
  bool SsdNearlyFull();
  // Promises inode `ino`'s writers room for `bytes` in all on the SSD tier,
  // if its free space covers them, what every other promise may still
  // write, and the reserve twice over; false otherwise (the writer goes
  // through tierfs, where a full tier spills). A second promise for an
  // inode already promised only counts its writer. What promised writers
  // may still write (their promise less their object's size) counts as
  // used for everything else: writes through tierfs spill sooner, and the
  // evictor starts sooner.
  bool PromiseRoom(uint64_t ino, uint64_t bytes);
  // One promised writer of `ino` closed; the last one ends the promise.
  void EndPromise(uint64_t ino);
  // Whether `bytes` more on the SSD tier keep it below its high watermark:
  // a rule moving files to the SSD tier moves no more than that, or the
  // evictor (above the high watermark) would move them straight back, and
  // the two would trade the same files for ever.
  bool RoomBelowHighWatermark(uint64_t bytes);
  // The tier a new regular file starts on: SSD unless it is nearly full or
  // failing (SsdFailing) while the HDD tier is usable.
  TierId TierForNewFile();
  // Whether the SSD tier's health check (Tier::CheckHealth: its identity
  // file unreadable, a filesystem shut down, gone or read-only) failed,
  // looked at most once a second. Each change is logged once. Writes to
  // files already there spill as any failed write does (fs/ops_write.cc).
  bool SsdFailing();
  // The SSD tier failed a call (EIO, EROFS): the next SsdFailing looks at
  // its health again rather than at the answer of up to a second ago.
  void RecheckSsdHealth() { ssd_health_checked_ns_.store(0, std::memory_order_relaxed); }
  // Whether a new name or node may be recorded: ENOSPC once the state's
  // filesystem is too full to keep LMDB's reserve, which is kept for
  // removals (unlink and rmdir never ask), so space can always be freed
  // through the mount.
  Status CheckMetaSpace(const char* what);
  // Sizes the LMDB reserve and starts the evictor. `tick` runs at each of
  // its periodic looks (orphans waiting for their tier); `poke_policy` asks
  // the policy engine to run early (above the high watermark).
  void Start(std::function<void()> tick, std::function<void()> poke_policy);
  void Stop();
  // A policy reload's watermarks.
  void SetWatermarks(Watermarks marks);
  // The watermarks in force (the command line's, else the policy's).
  Watermarks watermarks() const { return {high_mark_.load(), low_mark_.load()}; }

 private:
  Status Candidates(std::vector<EvictionCandidate>* out);
  // What promised writers may still write, in bytes.
  uint64_t Promised();

  struct Promise {
    uint64_t bytes = 0;
    uint32_t writers = 0;
  };
  Mutex promises_mu_;
  std::map<uint64_t, Promise> promises_ GUARDED_BY(promises_mu_);

  Store& store_;
  Tiers tiers_;
  InodeTable& table_;
  Placement& placement_;
  Watermarks initial_marks_;
  std::function<void()> poke_policy_;  // set by Start, before any caller may poke
  std::unique_ptr<Evictor> evictor_;
  std::atomic<uint64_t> meta_reserve_{0};  // bytes LMDB keeps past its end
  std::atomic<double> high_mark_;          // the evictor's, for pokes from the write path
  std::atomic<double> low_mark_;           // the evictor's, for status reports
  std::atomic<int64_t> space_checked_ns_{0};
  std::atomic<bool> ssd_close_to_full_{false};
  std::atomic<int64_t> ssd_health_checked_ns_{0};
  std::atomic<bool> ssd_failing_{false};
};

}  // namespace tierfs

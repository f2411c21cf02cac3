// BlockHasher: records a file's checksums (the whole-file xxh3_64 in
// Inode::checksum and one per 1 MiB block, meta/block_sums.h) after its last
// writer closed, on its own thread: a release replies at once, and a file
// written by many closes in a row is hashed once it rests. The thread, once
// woken, lets releases gather for a millisecond: a storm of small files
// then wakes it once a batch, not once a file.
//
// A result is committed only if nothing changed the bytes meanwhile. In the
// committing LMDB transaction: the inode's size, mtime and tier are those
// hashed, no handle has it open for writing, and no write arrived since the
// job was queued (LiveState::last_write against the table's epoch then).
// fs/ops_file.cc Open counts a writer (Handles::New) BEFORE it clears the
// checksum in its own write transaction, so either that clear comes after
// this commit (and drops it), or the commit sees the writer and gives up.
// A dropped result is not retried: the writer's own release queues the file
// again. Files whose job was dropped or still queued at unmount have no
// sums and are served unverified.
//
// A file written in order through tierfs comes with its sums already
// computed from the writes (fs/stream_sums.h): the job then commits them,
// under the same checks, without reading the file back.
//
// Thread-safety: Enqueue from any thread; Start/Stop from one.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "fs/inode_table.h"
#include "fs/stream_sums.h"
#include "meta/mutex.h"
#include "meta/store.h"
#include "tiering/tier.h"

namespace tierfs {

class BlockHasher {
 public:
  BlockHasher(Store& store, Tiers tiers, InodeTable& table)
      : store_(store), tiers_(tiers), table_(table) {}
  ~BlockHasher() { Stop(); }
  BlockHasher(const BlockHasher&) = delete;
  BlockHasher& operator=(const BlockHasher&) = delete;

  void Start();
  // Drops what is still queued and waits for the file being hashed.
  void Stop();
  // The last writer of `ino` closed: hash it soon. `epoch` is the table's
  // epoch (InodeTable::epoch) before that writer's handle went away.
  // `streamed`: the sums its writes gave, used when they cover exactly the
  // file's recorded size.
  // `passthrough_writer`: the kernel wrote the file itself, and a shared
  // mapping made through such a handle outlives it (it holds the backing
  // file, not the FUSE file): the job first asks whether the object is
  // still open for writing (Tier::WritableElsewhere). If so the file is not
  // hashed, its recorded attributes are forgotten (stat asks the object,
  // whose mtime such writes move) and it is logged; Placement does not move
  // it meanwhile, and its next writer's close queues it again.
  void Enqueue(uint64_t ino, uint64_t epoch, std::optional<StreamedSums> streamed = {},
               bool passthrough_writer = false);
  // Hashes inode `ino` now, on the caller's thread (the job's body):
  // ESTALE when the file changed, ENOENT when it is gone.
  Status HashNow(uint64_t ino, uint64_t epoch, const StreamedSums* streamed = nullptr);
  // Files whose sums were recorded since start, all of them and those
  // recorded from their writes without reading them back.
  uint64_t recorded() const { return recorded_.load(); }
  uint64_t recorded_streamed() const { return recorded_streamed_.load(); }
  // Called on the hasher's thread after the sums of a file on the HDD tier
  // were recorded, with its whole-file checksum (the daemon writes the
  // object's identity then: fs/archived_access.h). Set before Start.
  void OnHddRecorded(std::function<void(uint64_t ino, uint64_t checksum)> fn) {
    on_hdd_recorded_ = std::move(fn);
  }

 private:
  struct Job {
    uint64_t ino;
    uint64_t epoch;
    std::optional<StreamedSums> streamed;
    bool passthrough_writer = false;
  };
  void Loop();
  // True (and the record forgotten, and logged) when the object of `ino`
  // is still open for writing after its last passthrough writer closed.
  bool StillMappedForWriting(uint64_t ino);
  Status ReadAndSum(const Inode& n, BlockSummer* summer);

  Store& store_;
  Tiers tiers_;
  InodeTable& table_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;                // under mu_
  std::unordered_set<uint64_t> queued_;  // inodes in queue_, under mu_
  bool stop_ = true;                     // under mu_
  // Set by Stop before it joins: a file being read through (tens of GiB,
  // or sparse) is given up, not finished, so an unmount does not wait
  // for it (it gets no checksums, as tierfs(8) says).
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::atomic<uint64_t> recorded_{0};
  std::atomic<uint64_t> recorded_streamed_{0};
  std::function<void(uint64_t, uint64_t)> on_hdd_recorded_;
};

}  // namespace tierfs

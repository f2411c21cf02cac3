// The data mover: moves one regular file's data object between tiers so that
// a crash at any instant leaves the file whole on exactly one tier.
//
// MoveObject runs, in this order:
//   journal  a Store::MoveRecord (state copying) is committed and synced;
//   copy     io_uring copy to <to>/ns/<ns>/objects/xx/<ino>.moving, several aligned
//            chunks in flight, hashed (xxh3_64) in file order, paced; the
//            copy is written O_DIRECT unless the target tier refuses it;
//            space is reserved first (fallocate) unless the file is
//            sparse: then its holes are neither read nor written, and the
//            copy has the same holes (a 1 TiB file of 4 KiB data costs
//            the target 4 KiB, not 1 TiB);
//   identity the file's identity (tiering/identity.h) goes on the copy, as an
//            xattr or a sidecar; a failure to write it fails the move;
//   fsync    of the copy (object times are copied first: stat reports them);
//   verify   the copy is read back (from the medium when written O_DIRECT)
//            and its hash compared with the source's;
//   rename   of the copy to its final name, then a last check that the
//            source was neither written (should_abort) nor changed (stat);
//   commit   one LMDB transaction: inode.tier = to, inode.checksum, block sums, record
//            state switched; synced before the source goes away;
//   remove   of the source object, its directory fsynced, then the record is deleted.
// A failure before commit removes what the move created and leaves the file
// where it was. After a crash, RecoverMoves (run at startup, before serving)
// settles every record: the object on the tier the inode names is kept, the
// other copy and the temporary are removed.
//
// What the caller guarantees: a file is not written through a descriptor
// opened before a move switched it (abort the move via should_abort when a
// writer appears), and placement of a file being moved changes only through
// the mover. Hard links share one inode and so move once; xattrs, times,
// owner and mode live in LMDB and are not touched.
//
// Thread-safety: moves of different inodes may run concurrently (a second
// move of an inode with a journal record fails with EBUSY). RecoverMoves
// must not overlap any move.
// Errors: a Status whose message names the inode, both tiers and the step,
// e.g. "move of inode 42 ssd -> hdd: copy: write /hdd/ns/job1/objects/2a/2a.moving:
// No space left on device". ECANCELED: aborted, the file stayed put.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "meta/store.h"
#include "tiering/throttle.h"
#include "tiering/tier.h"

namespace tierfs {

// The steps above, for error messages and the test-only crash hook.
enum class MoveStep {
  kNone,
  kJournal,
  kCopy,
  kIdentity,
  kFsync,
  kVerify,
  kRename,
  kCommit,
  kRemove,
  kEnd
};
const char* MoveStepName(MoveStep step);

struct MoveResult;

struct MoveOptions {
  uint64_t max_bytes_per_sec = 0;  // 0 = unlimited; ignored when `throttle` is set
  unsigned queue_depth = 8;        // chunks in flight
  size_t chunk_bytes = 1 << 20;    // rounded up to a page
  // Limits shared by all moves (bandwidth and concurrent moves); may be null.
  // MoveObject waits for a slot before it journals anything.
  MoveThrottle* throttle = nullptr;
  // Held from the last source check through the placement commit, so that
  // whoever opens the object under the same lock sees either the old tier
  // before a writer could abort the move, or the new one. May be null.
  std::mutex* switch_lock = nullptr;
  // Tests only: return right after this step, doing none of the cleanup, as
  // if the daemon had been killed there (the result is EINTR).
  MoveStep crash_after = MoveStep::kNone;
  // Bytes of the copy written so far are added here (CopyParams::progress).
  std::atomic<uint64_t>* progress = nullptr;
  // The file's path in the mount, recorded in the copy's identity ("" when
  // unknown).
  std::string path;
  // Called once the switch is durable, before the source and the journal
  // record go (may be null): the caller writes its audit record here, so a
  // move that happened is recorded before anything could forget it. A crash
  // before the call leaves the record switched, and RecoverMoves reports it.
  std::function<void(const MoveResult&)> committed;
};

struct MoveResult {
  uint64_t bytes = 0;     // bytes copied
  uint64_t checksum = 0;  // xxh3_64 of the content, now also in the inode
  // xxh3_64 of each 1 MiB block (meta/block_sums.h), now also in LMDB.
  std::vector<uint64_t> block_sums;
};

// Moves inode `ino`'s object from `from` to `to`. `should_abort` is polled
// between chunks and once more just before the switch (the daemon returns
// true when a write to the file arrived); an aborted move leaves the file
// where it was and returns ECANCELED, as does a source object that changed
// during the copy. A file without an object (empty, never written) just
// switches placement. EINVAL: not a regular file, not on `from`, or
// from == to. EBUSY: the inode has a journal record already. EIO on a
// checksum mismatch: of the copy against the source, or of the source
// against the checksum (and block sums, naming the first bad block) the inode records (a corrupt
// source is never moved and never re-hashed into a new checksum), or a missing source object of a
// file whose recorded size is not 0. After a failure past commit (sync or source removal)
// the file lives on `to` and the record stays for RecoverMoves.
// `result` may be null.
Status MoveObject(Store& store, const Tier& from, const Tier& to, uint64_t ino,
                  const MoveOptions& opt, const std::function<bool()>& should_abort,
                  MoveResult* result);

// At startup, before serving: settles every journaled move, rolling it
// forward (placement switched: remove the source object) or back (not
// switched: remove the temporary and any renamed copy on the target). Should
// the named object be missing while the other tier holds one, the inode is
// pointed at the one that exists rather than losing data. Keeps going past a
// failing record and returns the first error; `handled` (may be null) counts
// the records settled. `rolled_forward` (may be null) gets the records of
// moves that had switched and now live on their target: the moves a crash
// may have kept from their audit record (MoveOptions::committed).
Status RecoverMoves(Store& store, const Tier& ssd, const Tier& hdd, int* handled,
                    std::vector<Store::MoveRecord>* rolled_forward = nullptr);

}  // namespace tierfs

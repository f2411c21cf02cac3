// Placement: which tier holds each regular file's bytes, and the one way to
// change it. Every move, whatever asks for it (a policy rule, the evictor, a
// reader promoting a file, a writer spilling to the HDD tier because the
// SSD tier is full, an admin's setxattr), goes through Run: it keeps the
// file out of any other move, has the mover copy, verify, switch and remove
// (tiering/mover.h), tells open handles to reopen, logs "moved inode N
// ('/path') ..." and leaves one audit record that names the path; a move
// refused because a tier cannot be used is recorded too (Refused). Routine
// refusals (EBUSY: open for writing or moving already; ECANCELED: written
// during the copy) are returned but not journaled: the evictor and the
// policy retry them.
//
// Placement changes only here and in crash recovery (Recover, before
// serving). Opening an object and switching placement exclude each other
// through Lock(ino), so a handle never opens an object a finished move is
// about to remove.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "fs/inode_table.h"
#include "fs/metrics.h"
#include "meta/audit.h"
#include "meta/limits.h"
#include "meta/mutex.h"
#include "meta/store.h"
#include "tiering/mover.h"
#include "tiering/throttle.h"
#include "tiering/tier.h"

namespace tierfs {

class Placement {
 public:
  using AuditFn = std::function<void(const AuditRecord&)>;
  // `metrics`, when given, counts every move that ends (fs/metrics.h).
  Placement(Store& store, Tiers tiers, InodeTable& table, AuditFn audit, const TierLimits& limits,
            Metrics* metrics = nullptr);

  // Held while an inode's object is opened and while a move switches it.
  std::mutex& Lock(uint64_t ino) { return locks_[ino % kLocks]; }

  // Moves regular file `ino` to tier `to`, throttled (--move-bandwidth,
  // --max-moves). `why` is the rule, or "manual", "evict", "promote";
  // `path` is the file's path in the mount, found when empty (PathOf).
  // Ok if it is there already (nothing is recorded then). EBUSY while it is
  // open for writing (a shared mapping that outlived its passthrough handle
  // included: MappedForWriting), read through passthrough or moving; ECANCELED when it
  // was written during the copy (it stays where it was); EIO when a tier
  // cannot be used or the source does not match its recorded checksum.
  Status Move(uint64_t ino, TierId to, const std::string& why, const std::string& path = "");
  // Move for every regular file below directory `dir` (hard links once), as
  // many at once as --max-moves allows; keeps going past failures and
  // returns the first. `path` is the directory's (found when empty).
  Status MoveTree(uint64_t dir, TierId to, const std::string& why, const std::string& path = "");
  // Moves a file that is being written to the HDD tier because the SSD tier
  // is full or failed the write (`cause`, for the log): unthrottled (a
  // writer waits), while holding `live.io` exclusively so no write lands in
  // the object being left. The caller must not hold it. Ok if it is on the
  // HDD tier already; EBUSY while the kernel writes it through a backing
  // file (passthrough); EIO when the bytes on the SSD tier cannot be read
  // back (or do not match what was recorded).
  Status Spill(uint64_t ino, LiveState& live, const std::string& cause);
  // For a stop (unmount, SIGTERM): a move under way gives up at its next
  // chunk, and every later Move is refused, both with ECANCELED and the file
  // left where it was, so the daemon never waits for a copy to end. Spills
  // are not affected (a writer waits on them; none runs once the session
  // has stopped).
  void CancelMoves();
  // For a read-only mount (-o ro): every Move is refused with EROFS (the
  // evictor, promotions and tierctl move alike), so nothing changes tier.
  void SetReadOnly() { read_only_.store(true); }
  bool read_only() const { return read_only_.load(); }
  bool IsMoving(uint64_t ino);
  // Runs `fn` unless `ino` is moving, and keeps a move of it from starting
  // meanwhile; Ok without running it when it is moving. For a change of the
  // source object's ctime (an identity xattr), which a move's copy would
  // take for a write and give up on (ECANCELED).
  Status UnlessMoving(uint64_t ino, const std::function<Status()>& fn);
  // While `ino` is moving: true, with the bytes of its object copied so
  // far (tierctl move's progress).
  bool Progress(uint64_t ino, uint64_t* copied);
  // Settles moves a crash interrupted (before serving).
  void Recover();
  // The move throttle's limits (a policy reload).
  void SetLimits(uint64_t bytes_per_sec, unsigned max_moves);
  // Moves at once now (0: unlimited).
  unsigned max_moves() const { return throttle_.max_moves(); }
  // Moves under way (copying) and moves waiting for a slot of --max-moves.
  struct Load {
    unsigned running = 0, queued = 0;
  };
  Load load() const;
  // A path of `ino` in the mount ("/a/b"): the name the kernel last looked
  // it up by, when the store confirms it, else the first one a walk of the
  // store finds; "" when it has none (unlinked).
  std::string PathOf(uint64_t ino);

 private:
  struct Job {
    uint64_t ino = 0;
    TierId from = TierId::kSsd, to = TierId::kSsd;
    std::string why, path;
    std::string cause;  // a spill's: why the SSD tier cannot take the write
    bool throttled = true;
    std::function<bool()> abort;  // written meanwhile: give up
  };
  Status Run(const Job& job);
  // True when `ino` has no open handle but its object on `tier` is still
  // open for writing elsewhere (Tier::WritableElsewhere): a shared mapping
  // made through a passthrough handle, which the kernel keeps on the
  // backing file after the handle's release. Its writes would land in the
  // object a move leaves. While handles are open, BusySince's rules hold
  // (tierfs's own descriptors of the object would answer yes).
  bool MappedForWriting(uint64_t ino, TierId tier);
  // A move refused before it started (a tier that cannot be used), recorded
  // as Run records a failure; returns `st`.
  Status Refused(const Job& job, const Status& st);
  void Record(const Job& job, const Status& st, const MoveResult& result);

  Store& store_;
  Tiers tiers_;
  InodeTable& table_;
  AuditFn audit_;
  MoveThrottle throttle_;
  Metrics* metrics_;
  std::atomic<bool> cancelled_{false};    // CancelMoves
  std::atomic<bool> read_only_{false};    // SetReadOnly
  std::atomic<unsigned> in_run_{0};       // in Run: waiting for a slot or copying
  std::atomic<unsigned> unthrottled_{0};  // of those, spills (they take no slot)
  Mutex moving_mu_;
  std::unordered_set<uint64_t> moving_ GUARDED_BY(moving_mu_);
  // Bytes copied of each move in progress (MoveOptions::progress).
  std::unordered_map<uint64_t, std::shared_ptr<std::atomic<uint64_t>>> progress_
      GUARDED_BY(moving_mu_);
  static constexpr size_t kLocks = 64;
  // Plain std::mutex: the mover takes one as its switch lock
  // (MoveOptions::switch_lock), and a lock per inode hash cannot be named
  // in GUARDED_BY; what it orders is the contract above.
  std::mutex locks_[kLocks];
};

// The entry `path` ("/a/b") names: its directory, its name there and its
// inode (parent and name may be null). EINVAL for the root; the store's
// error (ENOENT, ENOTDIR) naming the path when a component is missing.
Status ResolvePath(Store& store, const std::string& path, uint64_t* parent, std::string* name,
                   Inode* inode);

}  // namespace tierfs

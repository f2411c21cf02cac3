// InodeTable: the kernel's references to our inodes (lookup counts), so an
// unlinked inode lives on while the kernel can still reach it (an open file,
// a cwd) and is freed on the last forget; and, per referenced inode, the
// live state a move must respect (open writers, the time of the last write).
//
// Thread-safety: all methods are safe to call concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fs/stream_sums.h"
#include "meta/mutex.h"

namespace tierfs {

// What open handles do to an inode, read by moves without a table lookup
// per write. A handle keeps its inode's LiveState; the kernel keeps a lookup
// reference while the file is open, so the state outlives every handle.
struct LiveState {
  std::atomic<uint32_t> handles{0};  // open handles, readers included
  // When a handle was last opened: the access time the policy sees (reads
  // do not update atime in LMDB; an open per access is close enough).
  std::atomic<int64_t> last_open_ns{0};
  std::atomic<uint32_t> writers{0};     // handles open for writing
  std::atomic<uint64_t> last_write{0};  // table epoch of the last write
  // Bumped whenever the object moves to another tier: handles reopen their
  // object when theirs is older.
  std::atomic<uint32_t> placement{0};
  // How the kernel serves this inode's open handles (fs/passthrough.h).
  // While any handle reads through a backing file, the kernel accepts only
  // passthrough opens of that same backing file. Passthrough starts only
  // when no other handle is open: the kernel applies each open's mode when
  // the opener wakes, in any order, and a page-cache or direct open that
  // completed after a passthrough one would fail with EIO. Opens choose
  // under `modes`.
  Mutex modes;
  uint32_t other_handles GUARDED_BY(modes) = 0;  // page cache or direct
  std::atomic<uint32_t> passthrough_handles{0};  // changed under `modes`
  // Passthrough handles open for reading and writing: they may map the file
  // shared and write through the mapping, which changes the object's mtime
  // where neither tierfs nor the kernel's FUSE inode sees it (a msync goes
  // to the backing file). Changed under `modes`.
  std::atomic<uint32_t> mapping_writers{0};
  int backing_id GUARDED_BY(modes) = -1;  // while passthrough_handles > 0
  int backing_fd GUARDED_BY(modes) = -1;
  // Set when a handle created the object: its name in the tier's fan-out
  // directory is not durable until that directory is fsynced, which the
  // file's next fsync does (an fsynced file must not lose its object).
  std::atomic<bool> object_name_unsynced{false};
  // Writes (and a release recording the object's size) hold it shared;
  // spilling a file that is being written to the HDD tier holds it
  // exclusively, so no write lands in the object being left, and so does a
  // resize (setattr, O_TRUNC), so a release sees LMDB and the object both
  // resized or neither.
  std::shared_mutex io;
  // The checksums of what was written in order (fs/stream_sums.h).
  StreamSums stream_sums;
  // Whether the file may have a security.capability, which every write and
  // truncate removes (Context::DropCapabilities): caps_set counts the
  // setxattrs of it (starting at 1: a new state does not know), and
  // caps_cleared is the count at which LMDB was last seen without one. Equal:
  // the file has none, and a write costs no LMDB lookup. A setxattr bumps
  // caps_set after it commits, so a lookup that missed it leaves the two
  // unequal. caps_mu orders the lookups, so a second writer waits for the
  // first writer's removal instead of writing past it.
  std::atomic<uint64_t> caps_set{1};
  std::atomic<uint64_t> caps_cleared{0};
  Mutex caps_mu;
};

class InodeTable {
 public:
  // The kernel learnt of `ino` once more (an entry reply), as `name` in
  // directory `parent`: the name a move's log and audit give a file that the
  // caller knows only by inode (KnownPath).
  void Ref(uint64_t ino, uint64_t parent, std::string_view name);
  // `ino` is now `name` in `parent` (a rename).
  void Rename(uint64_t ino, uint64_t parent, std::string_view name);
  // The path ("/a/b") the kernel last looked `ino` up by, through the names
  // of its referenced ancestors; "" when a link of that chain is unknown.
  // With hard links it is one of the names, and it may be stale (a name
  // removed since): callers that record it check it against the store.
  std::string KnownPath(uint64_t ino);
  // The kernel dropped `n` references. Returns true when this was the last
  // reference of an inode marked orphan: the caller must free it now.
  bool Forget(uint64_t ino, uint64_t n);
  // The inode's link count reached zero. Returns true when the kernel holds
  // no reference, so the caller must free it now; otherwise the last Forget
  // will say so.
  bool MarkOrphan(uint64_t ino);

  // The live state of a referenced inode (created on first use).
  std::shared_ptr<LiveState> Live(uint64_t ino);
  // The live state of `ino` if it has one, else null; never creates an
  // entry, so a caller that knows an inode the kernel does not reference
  // (a move) leaves the table as it was: MarkOrphan must still say "free it
  // now" for that inode.
  std::shared_ptr<LiveState> FindLive(uint64_t ino);
  // True while a handle has `ino` open for writing (LiveState::writers).
  bool OpenForWriting(uint64_t ino);
  // True while a passthrough handle may write `ino` through a shared
  // mapping (LiveState::mapping_writers).
  bool MayWriteThroughMapping(uint64_t ino);
  // Records a write to `live` and returns its epoch.
  uint64_t NoteWrite(LiveState& live) {
    const uint64_t e = ++epoch_;
    live.last_write.store(e, std::memory_order_relaxed);
    return e;
  }
  uint64_t epoch() const { return epoch_.load(); }
  // True when `ino` is open for writing, is read through passthrough (the
  // kernel reads its object directly; a move would leave it reading the old
  // one), or was written after `since`.
  bool BusySince(uint64_t ino, uint64_t since);
  // The inodes that have open handles now.
  std::vector<uint64_t> OpenInodes();
  // When `ino` was last opened while the kernel knew it; 0 if unknown.
  int64_t LastOpen(uint64_t ino);

 private:
  struct Entry {
    uint64_t lookups = 0;
    bool orphan = false;
    uint64_t parent = 0;  // and name: as the kernel last looked it up
    std::string name;
    std::shared_ptr<LiveState> live;
  };
  Mutex mu_;
  std::unordered_map<uint64_t, Entry> entries_ GUARDED_BY(mu_);
  std::atomic<uint64_t> epoch_{0};
};

}  // namespace tierfs

// Handles: the open files of the mount and how the kernel serves each one
// (its I/O mode), with the rules the kernel imposes on mixing modes, in the
// manner of the kernel's own fs/fuse/iomode.c:
//   - any open while passthrough handles of the inode are open: passthrough
//     of the same backing file (the kernel accepts nothing else then);
//   - write-only (unless --cached-writes): direct (FOPEN_DIRECT_IO);
//   - read-only, or read-write with room promised on the SSD tier, no
//     other handle open, an object to read, not on the HDD tier while reads
//     are verified (fs/verified_read.h): passthrough;
//   - anything else: through the mount's page cache.
// A handle's object is opened lazily: a new file has no object until its
// first write, so creating and unlinking empty files costs no I/O on the
// tiers. A handle follows its file across moves (ObjectOf reopens when the
// inode's placement changed).
//
// Thread-safety: all methods may be called from any thread; one handle's
// ObjectOf calls are serialized by the handle's own lock.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "fs/inode_table.h"
#include "fs/passthrough.h"
#include "fs/placement.h"
#include "fs/verified_read.h"
#include "meta/store.h"
#include "tiering/tier.h"

namespace tierfs {

// How the kernel serves a handle's reads and writes.
enum class IoMode : uint8_t {
  kCached,       // through the mount's page cache (shared mmap works)
  kDirect,       // FOPEN_DIRECT_IO: each read and write comes to tierfs
  kPassthrough,  // the kernel reads the object itself (fs/passthrough.h)
};

// An object opened for a handle. The requests using it share it with the
// handle, so the object a move left behind (unlinked from its old tier) is
// closed, and its blocks there freed, as soon as the last request using it
// is done; not when the file is closed, which may be much later (a writer
// that spilled to the HDD tier keeps writing).
class ObjectFile {
 public:
  ObjectFile(int fd, TierId tier) : fd(fd), tier(tier) {}
  ~ObjectFile();
  ObjectFile(const ObjectFile&) = delete;
  ObjectFile& operator=(const ObjectFile&) = delete;

  const int fd;
  const TierId tier;  // where this object is
};
using ObjectRef = std::shared_ptr<const ObjectFile>;

// An open regular file.
struct FileHandle {
  uint64_t ino = 0;
  IoMode mode = IoMode::kCached;
  int backing_id = -1;  // kPassthrough: the inode's backing file id (LiveState)
  // Where the object is (refreshed when it opens); atomic, because a write
  // checks it while another write of the same handle reopens the object.
  std::atomic<TierId> tier{TierId::kSsd};
  ObjectRef object;               // opened on first use (ObjectOf); null before
  uint32_t object_placement = 0;  // live->placement when `object` was opened
  bool writable = false;          // counted in live->writers
  bool mapping_writer = false;    // counted in live->mapping_writers
  bool wrote = false;
  // A read-write handle promised room on the SSD tier (Space::PromiseRoom):
  // it may be served through passthrough.
  bool promised = false;
  // The tier refused uncached writes (RWF_DONTCACHE; fs/ops_write.cc
  // WriteBytes): this handle writes plainly from then on.
  std::atomic<bool> uncached_refused{false};
  std::shared_ptr<LiveState> live;
  std::mutex mu;  // guards `object` (and the making of `verify`)
  // Verified reads of the HDD tier (fs/verified_read.h); made on first use.
  std::unique_ptr<VerifyState> verify;
};

class Handles {
 public:
  // `direct_writes`: write-only opens bypass the page cache (--cached-writes
  // turns it off).
  Handles(Store& store, Tiers tiers, InodeTable& table, Placement& placement, bool direct_writes);

  // Sets up a handle of `n` opened with `flags` (counts it as a writer).
  FileHandle* New(const Inode& n, int flags);
  // Chooses how the kernel serves `fh` opened with `flags` (the rules
  // above), counts it, and returns the mode; for kPassthrough, `backing_id`
  // names the inode's backing file for the open reply.
  IoMode Admit(FileHandle& fh, int flags, bool may_passthrough, int* backing_id);
  // Undoes New and Admit: closes the object, drops the counts, frees `fh`.
  void Delete(FileHandle* fh);
  // The object of a handle, opening (and with `create`, creating) it on
  // first use or after a move; hold it while using its fd. Null with `st`
  // ENOENT when there is no object and !create; EIO when the HDD tier
  // holding it cannot be used.
  ObjectRef ObjectOf(FileHandle& fh, bool create, Status* st);
  // EIO when a regular file nobody has open for writing has lost bytes: its
  // object is missing while LMDB records a size, or shorter than recorded.
  // A longer object is legitimate (written, then killed before release
  // recorded the size). stat keeps reporting the recorded size of a missing
  // object; open and read fail with this.
  Status CheckObjectIntact(uint64_t ino);
  Passthrough& passthrough() { return passthrough_; }

 private:
  // Registers the inode's object as its backing file (under `live.modes`).
  bool StartPassthrough(uint64_t ino, LiveState& live) REQUIRES(live.modes);

  Store& store_;
  Tiers tiers_;
  InodeTable& table_;
  Placement& placement_;
  const bool direct_writes_;
  Passthrough passthrough_;
  std::atomic<bool> passthrough_warned_{false};  // the refusal is logged once
};

}  // namespace tierfs

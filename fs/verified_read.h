// Verified reads of HDD-resident files (tierfs(8), VERIFIED READS). The
// capacity tier is where bytes rest for years and rot unseen, so a read of
// a file placed there is served by tierfs itself, never by passthrough:
// each 1 MiB block of the object is read whole, hashed (xxh3_64) and
// compared with the block sum recorded when its last writer closed or a
// move copied it (fs/block_hasher.h, tiering/mover.h); only then is the
// requested range of it replied, from the verified buffer itself (no copy
// in tierfs). A handle keeps its last few verified blocks, so a reader
// asking less than a block at a time reads and hashes each block once, and
// the kernel's parallel readahead requests load different blocks at once
// (each on its own thread, like the reads of passthrough's readahead)
// rather than queueing behind one another.
//
// A mismatch is EIO, never the bytes: logged with the path, tier and block,
// audited ("corrupt"), counted (tierfs_corrupt_reads_total), and the inode
// is marked corrupt in LMDB (Inode::corrupt) so that every later open for
// reading is EIO until the file is truncated or removed. Files without
// recorded sums (written before this tierfs, or whose hash was dropped)
// and files open for writing are served unverified.
//
// Blocks are read with O_DIRECT where the tier allows it: on the capacity
// tier a cold block comes from the medium into the buffer that is hashed
// and replied, with no copy through the page cache.
//
// Thread-safety: one handle's reads share its VerifyState under its
// mutex, which is never held while a block is read or a reply is sent.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "meta/status.h"

namespace tierfs {

class Context;
struct FileHandle;

// Per handle: the sums it verifies against and its recently verified blocks.
struct VerifyState {
  std::mutex mu;
  std::condition_variable block_done;  // a load finished (waited on with mu)
  bool loaded = false;
  bool off = false;       // no sums, or a writer appeared: unverified
  uint64_t checksum = 0;  // Inode::checksum the sums belong to
  uint64_t size = 0;      // the file's recorded size
  uint64_t epoch = 0;     // InodeTable::epoch when the sums were loaded
  std::vector<uint64_t> sums;
  // Verified blocks, oldest first, and blocks being loaded (`bytes` null).
  // A reply holds its blocks' bytes by their shared_ptr, so a block may
  // leave this list while replies still send from it.
  struct Block {
    uint64_t index = 0;
    std::shared_ptr<const char[]> bytes;
  };
  std::vector<Block> blocks;
  // The object opened O_DIRECT for the block reads: cold blocks come from
  // the medium without a copy through the page cache (the mount's page
  // cache keeps what was verified). Shared, so a reopen after a move never
  // closes a descriptor another read is using. Null with `direct_refused`
  // where the tier refuses O_DIRECT: the handle's own descriptor is used.
  std::shared_ptr<const int> direct_fd;
  bool direct_refused = false;
  int64_t last_loaded = -2;     // the block loaded before: sequential readers get readahead
  std::set<uint64_t> reported;  // corrupt blocks logged and audited once per handle
};

// Serves the read of `size` bytes at `off` of handle `fh`, whose object
// `fd` is on the HDD tier, verified. Sets `*handled` false (and replies
// nothing) when the file cannot be verified: the caller serves it plainly.
Status VerifiedRead(Context& c, fuse_req_t req, FileHandle& fh, int fd, size_t size, off_t off,
                    bool* handled);

}  // namespace tierfs

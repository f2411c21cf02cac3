// Verified reads of HDD-resident files (tierfs(8), VERIFIED READS). The
// capacity tier is where bytes rest for years and rot unseen, so a read of
// a file placed there is served by tierfs itself, never by passthrough:
// each 1 MiB block of the object is read whole, hashed (xxh3_64) and
// compared with the block sum recorded when its last writer closed or a
// move copied it (fs/block_hasher.h, tiering/mover.h); only then is the
// requested range of it replied. A handle keeps its last verified block,
// so a sequential reader asking 128 KiB at a time reads and hashes each
// block once.
//
// A mismatch is EIO, never the bytes: logged with the path, tier and block,
// audited ("corrupt"), counted (tierfs_corrupt_reads_total), and the inode
// is marked corrupt in LMDB (Inode::corrupt) so that every later open for
// reading is EIO until the file is truncated or removed. Files without
// recorded sums (written before this tierfs, or whose hash was dropped)
// and files open for writing are served unverified.
//
// Thread-safety: one handle's reads are serialized by its VerifyState.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <cstdint>
#include <mutex>
#include <set>
#include <vector>

#include "meta/status.h"

namespace tierfs {

class Context;
struct FileHandle;

// Per handle: the sums it verifies against and its last verified block.
struct VerifyState {
  std::mutex mu;
  bool loaded = false;
  bool off = false;       // no sums, or a writer appeared: unverified
  uint64_t checksum = 0;  // Inode::checksum the sums belong to
  uint64_t size = 0;      // the file's recorded size
  uint64_t epoch = 0;     // InodeTable::epoch when the sums were loaded
  std::vector<uint64_t> sums;
  int64_t block = -1;        // the block `buf` holds, verified
  int64_t last_loaded = -2;  // the block read before: sequential readers get readahead
  std::vector<char> buf;
  std::set<uint64_t> reported;  // corrupt blocks logged and audited once per handle
};

// Serves the read of `size` bytes at `off` of handle `fh`, whose object
// `fd` is on the HDD tier, verified. Sets `*handled` false (and replies
// nothing) when the file cannot be verified: the caller serves it plainly.
Status VerifiedRead(Context& c, fuse_req_t req, FileHandle& fh, int fd, size_t size, off_t off,
                    bool* handled);

}  // namespace tierfs

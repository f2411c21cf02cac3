// Inode: the metadata record of one file, directory, symlink or special
// node, as stored in LMDB. Plain value type; no I/O.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>

namespace tierfs {

// Which tier holds a regular file's data object.
enum class TierId : uint8_t { kSsd = 0, kHdd = 1 };
inline const char* TierName(TierId t) {
  return t == TierId::kSsd ? "ssd" : "hdd";
}

constexpr uint64_t kRootIno = 1;

struct Inode {
  uint64_t ino = 0;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;
  uint64_t rdev = 0;
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  TierId tier = TierId::kSsd;
  uint8_t reserved[7] = {};
  uint64_t generation = 0;  // checkpoint generation, set by the policy engine
  // xxh3_64 of the object's bytes as verified by the last move (tiering/mover.h);
  // 0 when unknown: before any move, and from the moment the file is opened
  // for writing, truncated or written (fs/ops_file.cc, fs/ops_attr.cc clear
  // it), so a non-zero value vouches for the bytes and a move refuses a
  // source that no longer matches it.
  uint64_t checksum = 0;

  // reserved[6], bit 0: the object failed verification (fs/verified_read.h):
  // every open for reading is EIO until the file is truncated (O_TRUNC,
  // truncate) or removed. The other bits and bytes are free.
  bool corrupt() const { return reserved[6] & 1; }
  void set_corrupt(bool on) { reserved[6] = on ? (reserved[6] | 1) : (reserved[6] & ~1); }

  bool is_dir() const { return S_ISDIR(mode); }
  bool is_reg() const { return S_ISREG(mode); }
  bool is_symlink() const { return S_ISLNK(mode); }
};
// Stored byte for byte in LMDB: a size change is a format change.
static_assert(sizeof(Inode) == 88, "Inode is an on-disk record");

struct DirEntry {
  std::string name;
  uint64_t ino = 0;
  uint32_t type = 0;  // S_IFMT bits of the child
};

// Nanoseconds since the epoch, from the realtime clock.
int64_t NowNs();

}  // namespace tierfs

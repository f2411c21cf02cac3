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
  uint8_t reserved[7] = {};  // see corrupt() and object_attrs_recorded()
  uint64_t generation = 0;   // checkpoint generation, set by the policy engine
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

  // reserved[6], bit 1, with reserved[0..5]: the object's attributes are
  // recorded. size, mtime_ns and ctime_ns are then the object's (ctime the
  // later of ours and its), and reserved[0..5] hold its st_blocks (48 bits,
  // little-endian), as its last writer's close, the hasher's commit after
  // it, a setattr or the move that placed it left them (fs/object_attrs.h,
  // Store::CommitSums). A stat of the file is then answered from
  // this record, without a call on the tier (fs/context.cc FillStat), while
  // no handle has it open for writing. Whatever may change the object drops
  // the record in the same transaction (ForgetObjectAttrs): an open for
  // writing, O_TRUNC, a setattr of size or times, a placement switch
  // (Store::CommitMove; the repair at recovery), recover. So a crash cannot leave it standing over
  // a changed object: until the next close records it again, stat reads the object. Records older
  // than this field read as not recorded.
  bool object_attrs_recorded() const { return reserved[6] & 2; }
  uint64_t recorded_blocks() const {
    uint64_t blocks = 0;
    for (int i = 5; i >= 0; --i) blocks = (blocks << 8) | reserved[i];
    return blocks;
  }
  // Records `blocks` and sets the bit; size, mtime_ns and ctime_ns are the
  // caller's to set. A count beyond 48 bits (128 PiB) is not recorded.
  void RecordObjectAttrs(uint64_t blocks) {
    if (blocks >> 48) return ForgetObjectAttrs();
    for (int i = 0; i < 6; ++i, blocks >>= 8) reserved[i] = uint8_t(blocks);
    reserved[6] |= 2;
  }
  void ForgetObjectAttrs() {
    for (int i = 0; i < 6; ++i) reserved[i] = 0;
    reserved[6] &= ~2;
  }

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
// Times are kept as signed 64-bit nanoseconds since the epoch, so whole
// seconds from kTimeMinSec (1677-09-21T00:12:44Z) to kTimeMaxSec
// (2262-04-11T23:47:16Z) fit (division truncates toward zero: one second
// more either way would not, with its nanoseconds).
constexpr int64_t kNsPerSec = 1000000000;
constexpr int64_t kTimeMinSec = INT64_MIN / kNsPerSec;
constexpr int64_t kTimeMaxSec = INT64_MAX / kNsPerSec;

// A timespec (a stat's times, a utimensat's) in nanoseconds since the
// epoch. A time outside the range is clamped to its nearest end, with no
// nanoseconds, as the kernel clamps a time to a filesystem's
// s_time_min/s_time_max (timestamp_truncate): multiplying would overflow
// and wrap (1500 read back as 2084; xfstests generic/634).
inline int64_t TimespecNs(const struct timespec& ts) {
  if (ts.tv_sec <= kTimeMinSec) return kTimeMinSec * kNsPerSec;
  if (ts.tv_sec >= kTimeMaxSec) return kTimeMaxSec * kNsPerSec;
  return int64_t(ts.tv_sec) * kNsPerSec + ts.tv_nsec;
}

// The timespec of `ns` nanoseconds since the epoch. Rounds down: a time
// before 1970 has a negative tv_sec and tv_nsec in [0, 1e9), which is what
// the kernel and utimensat(2) accept (C++ division truncates toward zero,
// which gave a negative tv_nsec).
inline struct timespec NsTimespec(int64_t ns) {
  int64_t sec = ns / kNsPerSec, rem = ns % kNsPerSec;
  if (rem < 0) {
    sec -= 1;
    rem += kNsPerSec;
  }
  return {static_cast<time_t>(sec), static_cast<long>(rem)};
}

}  // namespace tierfs

// InodeTable: the kernel's references to our inodes (lookup counts), so an
// unlinked inode lives on while the kernel can still reach it (an open file,
// a cwd) and is freed on the last forget.
//
// Thread-safety: all methods are safe to call concurrently.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace tierfs {

class InodeTable {
 public:
  // The kernel learnt of `ino` once more (an entry reply).
  void Ref(uint64_t ino);
  // The kernel dropped `n` references. Returns true when this was the last
  // reference of an inode marked orphan: the caller must free it now.
  bool Forget(uint64_t ino, uint64_t n);
  // The inode's link count reached zero. Returns true when the kernel holds
  // no reference, so the caller must free it now; otherwise the last Forget
  // will say so.
  bool MarkOrphan(uint64_t ino);

 private:
  struct Entry {
    uint64_t lookups = 0;
    bool orphan = false;
  };
  std::mutex mu_;
  std::unordered_map<uint64_t, Entry> entries_;
};

}  // namespace tierfs

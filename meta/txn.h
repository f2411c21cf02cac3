// Internal to meta/: LMDB transaction guards and the typed accessors
// Store's .cc files share (keys: meta/keys.h). Not part of the public
// interface.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "meta/keys.h"
#include "meta/store.h"

namespace tierfs {

Status LmdbError(int rc, const std::string& what);

// Bytes on LMDB's free list that its next write transaction may take
// instead of growing the file: pages freed before the oldest live reader's
// snapshot (a reader keeps the pages freed after it began). 0 when it
// cannot tell. Opens a read transaction (MDB_NOTLS: also from a thread in a
// write transaction).
uint64_t ReusableBytes(MDB_env* env);

// ENAMETOOLONG past 255 bytes, as Linux filesystems; the kernel leaves the
// check to FUSE servers.
Status CheckName(const std::string& name);

// The data file's blocks past LMDB's last page, kept allocated while the
// environment is open with MDB_WRITEMAP (Store::Open). Through a writable
// map, LMDB writes the pages a transaction adds straight into the file, and
// a page in a hole of a full filesystem is SIGBUS, not an error a commit
// could return. So every write transaction first makes sure that ahead()
// bytes past the last page are allocated (fallocate: one call per few
// hundred commits), and fails with ENOSPC, naming the state, when they
// cannot be: the same answer a commit gives without the map. Pages on
// LMDB's free list count (ReusableBytes): a commit takes them before it
// grows the file, so a state whose filesystem filled up works again once
// removals have freed pages, with no block left to allocate. Found by
// WriteTxn through mdb_env_get_userctx; none in the plain mode (pwrite).
class MapAllocation {
 public:
  // `ahead`: what a write transaction may add without saying so (LMDB
  // copies ~10 pages per metadata change; a big value asks for its own
  // size): 1 MiB, less on a small filesystem (1/32 of it, at least 64 KiB),
  // so that it stays well inside the reserve removals use (fs/space.cc).
  MapAllocation(MDB_env* env, int fd, std::string dir, uint64_t ahead)
      : env_(env), fd_(fd), dir_(std::move(dir)), ahead_(ahead) {}
  uint64_t ahead() const { return ahead_; }
  // Ensures `need` bytes allocated past the last page; when fewer are,
  // allocates `topup` from there (only `need` when that fails). When even
  // that fails, reusable free-list pages count, if `contiguous` is false:
  // a large value takes a run of consecutive pages, which the free list may
  // not hold.
  Status Ensure(uint64_t need, uint64_t topup, bool contiguous = false);

 private:
  MDB_env* const env_;
  const int fd_;
  const std::string dir_;
  const uint64_t ahead_;
  std::atomic<uint64_t> allocated_end_{0};
};

class WriteTxn {
 public:
  explicit WriteTxn(MDB_env* env) : env_(env) {}
  ~WriteTxn() {
    if (txn_) mdb_txn_abort(txn_);
  }
  Status begin();
  Status commit();
  MDB_txn* get() const { return txn_; }

 private:
  MDB_env* env_;
  MDB_txn* txn_ = nullptr;
};

class ReadTxn {
 public:
  explicit ReadTxn(MDB_env* env) : env_(env) {}
  ~ReadTxn() {
    if (txn_) mdb_txn_abort(txn_);
  }
  Status begin();
  MDB_txn* get() const { return txn_; }

 private:
  MDB_env* env_;
  MDB_txn* txn_ = nullptr;
};

inline MDB_val Val(const std::string& s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

int GetRaw(MDB_txn* t, MDB_dbi db, const std::string& key, MDB_val* out);
Status PutRaw(MDB_txn* t, MDB_dbi db, const std::string& key, const std::string& value,
              const std::string& what);
Status DelKey(MDB_txn* t, MDB_dbi db, const std::string& key, const std::string& what);
Status DelPrefix(MDB_txn* t, MDB_dbi db, const std::string& prefix);
Status GetU64(MDB_txn* t, MDB_dbi db, const std::string& key, uint64_t* out);
Status PutU64(MDB_txn* t, MDB_dbi db, const std::string& key, uint64_t v);
// Calls fn for every key starting with prefix, in key order.
Status ForEachKey(MDB_txn* t, MDB_dbi db, const std::string& prefix,
                  const std::function<Status(const MDB_val&, const MDB_val&)>& fn);

template <typename T>
int GetPod(MDB_txn* t, MDB_dbi db, const std::string& key, T* out) {
  static_assert(std::is_trivially_copyable_v<T>);
  MDB_val v;
  int rc = GetRaw(t, db, key, &v);
  if (rc == 0) {
    if (v.mv_size != sizeof(T)) return MDB_CORRUPTED;
    std::memcpy(out, v.mv_data, sizeof(T));
  }
  return rc;
}

template <typename T>
Status PutPod(MDB_txn* t, MDB_dbi db, const std::string& key, const T& value,
              const std::string& what) {
  static_assert(std::is_trivially_copyable_v<T>);
  return PutRaw(t, db, key, std::string(reinterpret_cast<const char*>(&value), sizeof(T)), what);
}

// Records `blocks` (with `whole`, which must equal Inode::checksum for them
// to count) as inode `ino`'s block sums (meta/store_block_sums.cc).
Status PutBlockSums(MDB_txn* t, MDB_dbi db, uint64_t ino, uint64_t whole,
                    const std::vector<uint64_t>& blocks);

// A hold record as Store::SetHold wrote it (meta/store_holds.cc).
Status DecodeHold(const MDB_val& v, uint64_t ino, Store::Hold* out);

struct DentryValue {
  uint64_t ino = 0;
  uint32_t type = 0;
  uint32_t pad = 0;
};

struct Store::Dbs {
  MDB_dbi inodes = 0, dentries = 0, symlinks = 0, xattrs = 0, orphans = 0, meta = 0;
  MDB_dbi holds = 0;       // ino -> hold (meta/store_holds.cc)
  MDB_dbi moves = 0;       // the move journal: ino -> Store::MoveRecord (meta/store_journal.cc)
  MDB_dbi block_sums = 0;  // ino -> BlockSums (meta/store_block_sums.cc)

  Status OpenAll(MDB_txn* t);
  Status LoadInode(MDB_txn* t, uint64_t ino, Inode* out);
  // Writes back inode `ino` as `n`, which an update changed. Every site that clears the
  // checksum (a write, truncate, open for writing) drops the block sums
  // with it, in the same transaction: here, when it differs from
  // `old_checksum`, the one loaded.
  Status StoreUpdated(MDB_txn* t, uint64_t ino, const Inode& n, uint64_t old_checksum);
  // LoadInode that fails with ENOTDIR unless it is a directory.
  Status LoadDir(MDB_txn* t, uint64_t ino, Inode* out);
  Status LoadDentry(MDB_txn* t, uint64_t parent, const std::string& name, DentryValue* out);
  Status StoreDentry(MDB_txn* t, uint64_t parent, const std::string& name, const DentryValue& d);
  Status ForEachDentry(MDB_txn* t, uint64_t parent,
                       const std::function<Status(const std::string&, const DentryValue&)>& fn);
  // Sets `empty`; a cursor error is returned, never read as "empty".
  Status DirIsEmpty(MDB_txn* t, uint64_t dir, bool* empty);
  // Removes the entry `name` -> d.ino from `parent`, dropping the link count
  // (a directory must be empty) and recording an orphan at nlink 0.
  Status RemoveEntry(MDB_txn* t, uint64_t parent, const std::string& name, const DentryValue& d,
                     int64_t now, Removed* removed);
};

}  // namespace tierfs

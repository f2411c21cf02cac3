#include "meta/txn.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace tierfs {

Status LmdbError(int rc, const std::string& what) {
  int err = EIO;
  if (rc == MDB_MAP_FULL) err = ENOSPC;
  if (rc > 0) err = rc;  // LMDB passes system errors through as errno values
  return Status::Error(err, what + ": " + mdb_strerror(rc));
}

Status CheckName(const std::string& name) {
  if (name.size() > 255)
    return Status::Error(ENAMETOOLONG, "name of " + std::to_string(name.size()) + " bytes");
  return Status::Ok();
}

uint64_t ReusableBytes(MDB_env* env) {
  MDB_stat stat;
  if (mdb_env_stat(env, &stat) != 0) return 0;
  // The oldest snapshot a reader holds; mdb_reader_list is LMDB's only way
  // to tell: a header line, then "pid thread txnid" per reader slot in use
  // ("-" for a slot without a transaction).
  uint64_t oldest = UINT64_MAX;
  auto each_line = [](const char* line, void* ctx) {
    unsigned long long txnid = 0;
    char pid[32], thread[32];
    if (std::sscanf(line, "%31s %31s %llu", pid, thread, &txnid) == 3 && pid[0] != 'p')
      *static_cast<uint64_t*>(ctx) = std::min<uint64_t>(*static_cast<uint64_t*>(ctx), txnid);
    return 0;
  };
  ReadTxn txn(env);
  if (!txn.begin().ok()) return 0;
  if (mdb_reader_list(env, each_line, &oldest) < 0) return 0;
  uint64_t pages = 0;
  MDB_cursor* c = nullptr;
  if (mdb_cursor_open(txn.get(), 0, &c) != 0) return 0;
  MDB_val k, v;
  // The free DB: key a transaction id, value the page list it freed, whose
  // first word is its length. Keys ascend: stop at the first too new.
  for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    size_t freed_by = 0;
    if (k.mv_size != sizeof freed_by || v.mv_size < sizeof(size_t)) break;
    std::memcpy(&freed_by, k.mv_data, sizeof freed_by);
    if (freed_by >= oldest) break;
    size_t count = 0;
    std::memcpy(&count, v.mv_data, sizeof count);
    pages += count;
  }
  mdb_cursor_close(c);
  return pages * stat.ms_psize;
}

Status MapAllocation::Ensure(uint64_t need, uint64_t topup, bool contiguous) {
  MDB_envinfo info;
  MDB_stat stat;
  if (mdb_env_info(env_, &info) != 0 || mdb_env_stat(env_, &stat) != 0)
    return Status::Error(EIO, "state " + dir_ + ": cannot read the LMDB map's size");
  const uint64_t used = (uint64_t(info.me_last_pgno) + 1) * stat.ms_psize;
  if (allocated_end_.load() >= std::min<uint64_t>(used + need, info.me_mapsize))
    return Status::Ok();
  // EOPNOTSUPP only without the writable map (Store::Open): nothing to keep.
  auto allocate = [&](uint64_t bytes) {
    const uint64_t end = std::min<uint64_t>(used + bytes, info.me_mapsize);
    return end <= used ||
           fallocate(fd_, FALLOC_FL_KEEP_SIZE, off_t(used), off_t(end - used)) == 0 ||
           errno == EOPNOTSUPP;
  };
  uint64_t end = std::min<uint64_t>(used + std::max(need, topup), info.me_mapsize);
  if (!allocate(end - used)) {
    end = std::min<uint64_t>(used + need, info.me_mapsize);
    if (!allocate(end - used)) {
      const int err = errno;
      const uint64_t allocated = allocated_end_.load();
      const uint64_t have =
          (allocated > used ? allocated - used : 0) + (contiguous ? 0 : ReusableBytes(env_));
      if (have >= need) return Status::Ok();
      return Status::Errno(err, "allocate " + std::to_string((end - used) >> 10) +
                                    " KiB for metadata in the state " + dir_ + " (" +
                                    std::to_string(have >> 10) + " KiB free in its LMDB file)");
    }
  }
  allocated_end_.store(end);
  return Status::Ok();
}

Status WriteTxn::begin() {
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn_);
  if (rc != 0) return LmdbError(rc, "begin write transaction");
  // Under LMDB's writer lock: the last page cannot move meanwhile.
  if (auto* alloc = static_cast<MapAllocation*>(mdb_env_get_userctx(env_))) {
    Status st = alloc->Ensure(alloc->ahead(), 4 * alloc->ahead());
    if (!st.ok()) {
      mdb_txn_abort(txn_);
      txn_ = nullptr;
      return st;
    }
  }
  return Status::Ok();
}

Status WriteTxn::commit() {
  int rc = mdb_txn_commit(txn_);
  txn_ = nullptr;  // committed or freed either way
  return rc == 0 ? Status::Ok() : LmdbError(rc, "commit transaction");
}

Status ReadTxn::begin() {
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn_);
  return rc == 0 ? Status::Ok() : LmdbError(rc, "begin read transaction");
}

int GetRaw(MDB_txn* t, MDB_dbi db, const std::string& key, MDB_val* out) {
  MDB_val k = Val(key);
  return mdb_get(t, db, &k, out);
}

Status PutRaw(MDB_txn* t, MDB_dbi db, const std::string& key, const std::string& value,
              const std::string& what) {
  // A value larger than WriteTxn's allowance (block sums of a huge file)
  // takes its own pages, copied once more if a later put moves them.
  if (auto* alloc = static_cast<MapAllocation*>(mdb_env_get_userctx(mdb_txn_env(t)));
      alloc && value.size() > alloc->ahead() / 4) {
    Status st = alloc->Ensure(alloc->ahead() + 2 * value.size(),
                              4 * alloc->ahead() + 2 * value.size(), /*contiguous=*/true);
    if (!st.ok()) return Status::Error(st.err(), what + ": " + st.message());
  }
  MDB_val k = Val(key), v = Val(value);
  int rc = mdb_put(t, db, &k, &v, 0);
  return rc == 0 ? Status::Ok() : LmdbError(rc, what);
}

Status DelKey(MDB_txn* t, MDB_dbi db, const std::string& key, const std::string& what) {
  MDB_val k = Val(key);
  int rc = mdb_del(t, db, &k, nullptr);
  return rc == 0 || rc == MDB_NOTFOUND ? Status::Ok() : LmdbError(rc, what);
}

Status ForEachKey(MDB_txn* t, MDB_dbi db, const std::string& prefix,
                  const std::function<Status(const MDB_val&, const MDB_val&)>& fn) {
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(t, db, &c);
  if (rc != 0) return LmdbError(rc, "open cursor");
  MDB_val k = Val(prefix), v;
  Status st;
  rc = prefix.empty() ? mdb_cursor_get(c, &k, &v, MDB_FIRST)
                      : mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  while (rc == 0 && st.ok()) {
    if (k.mv_size < prefix.size() || std::memcmp(k.mv_data, prefix.data(), prefix.size()) != 0)
      break;
    st = fn(k, v);
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  if (!st.ok()) return st;
  return rc == 0 || rc == MDB_NOTFOUND ? Status::Ok() : LmdbError(rc, "iterate cursor");
}

Status DelPrefix(MDB_txn* t, MDB_dbi db, const std::string& prefix) {
  std::vector<std::string> keys;
  Status st = ForEachKey(t, db, prefix, [&](const MDB_val& k, const MDB_val&) {
    keys.emplace_back(static_cast<const char*>(k.mv_data), k.mv_size);
    return Status::Ok();
  });
  for (const auto& key : keys) {
    if (!st.ok()) break;
    st = DelKey(t, db, key, "delete key");
  }
  return st;
}

Status GetU64(MDB_txn* t, MDB_dbi db, const std::string& key, uint64_t* out) {
  int rc = GetPod(t, db, key, out);
  return rc == 0 ? Status::Ok() : LmdbError(rc, "read " + key);
}

Status PutU64(MDB_txn* t, MDB_dbi db, const std::string& key, uint64_t v) {
  return PutPod(t, db, key, v, "write " + key);
}

Status Store::Dbs::OpenAll(MDB_txn* t) {
  struct {
    const char* name;
    MDB_dbi* dbi;
  } all[] = {{"inodes", &inodes}, {"dentries", &dentries}, {"symlinks", &symlinks},
             {"xattrs", &xattrs}, {"orphans", &orphans},   {"meta", &meta},
             {"moves", &moves},   {"holds", &holds},       {"block_sums", &block_sums}};
  for (auto& d : all) {
    int rc = mdb_dbi_open(t, d.name, MDB_CREATE, d.dbi);
    if (rc != 0) return LmdbError(rc, std::string("open database ") + d.name);
  }
  return Status::Ok();
}

Status Store::Dbs::LoadInode(MDB_txn* t, uint64_t ino, Inode* out) {
  int rc = GetPod(t, inodes, InoKey(ino), out);
  if (rc == MDB_NOTFOUND) return Status::Error(ENOENT, "no inode " + std::to_string(ino));
  return rc == 0 ? Status::Ok() : LmdbError(rc, "read inode " + std::to_string(ino));
}

Status Store::Dbs::StoreUpdated(MDB_txn* t, uint64_t ino, const Inode& n, uint64_t old_checksum) {
  const std::string what = "inode " + std::to_string(ino);
  Status st = PutPod(t, inodes, InoKey(ino), n, "update " + what);
  if (st.ok() && old_checksum != 0 && n.checksum != old_checksum)
    st = DelKey(t, block_sums, InoKey(ino), "drop block sums of " + what);
  return st;
}

Status Store::Dbs::LoadDir(MDB_txn* t, uint64_t ino, Inode* out) {
  Status st = LoadInode(t, ino, out);
  if (st.ok() && !out->is_dir())
    return Status::Error(ENOTDIR, "inode " + std::to_string(ino) + " is not a directory");
  if (st.ok() && out->nlink == 0)
    return Status::Error(ENOENT, "directory inode " + std::to_string(ino) + " was removed");
  return st;
}

Status Store::Dbs::LoadDentry(MDB_txn* t, uint64_t parent, const std::string& name,
                              DentryValue* out) {
  int rc = GetPod(t, dentries, DentryKey(parent, name), out);
  if (rc == MDB_NOTFOUND)
    return Status::Error(ENOENT, "no '" + name + "' in inode " + std::to_string(parent));
  return rc == 0 ? Status::Ok() : LmdbError(rc, "read entry '" + name + "'");
}

Status Store::Dbs::StoreDentry(MDB_txn* t, uint64_t parent, const std::string& name,
                               const DentryValue& d) {
  return PutPod(t, dentries, DentryKey(parent, name), d, "write entry '" + name + "'");
}

Status Store::Dbs::ForEachDentry(
    MDB_txn* t, uint64_t parent,
    const std::function<Status(const std::string&, const DentryValue&)>& fn) {
  return ForEachKey(t, dentries, DentryPrefix(parent), [&](const MDB_val& k, const MDB_val& v) {
    DentryValue d;
    if (v.mv_size != sizeof(d)) return Status::Error(EIO, "corrupt directory entry");
    std::memcpy(&d, v.mv_data, sizeof(d));
    return fn(NameFromKey(k), d);
  });
}

Status Store::Dbs::DirIsEmpty(MDB_txn* t, uint64_t dir, bool* empty) {
  *empty = true;
  Status st = ForEachKey(t, dentries, DentryPrefix(dir), [&](const MDB_val&, const MDB_val&) {
    *empty = false;
    return Status::Error(ECANCELED, "stop");  // one entry is enough
  });
  if (!*empty || st.ok()) return Status::Ok();
  return Status::Error(st.err(), "listing directory " + std::to_string(dir) + ": " + st.message());
}

Status Store::Dbs::RemoveEntry(MDB_txn* t, uint64_t parent, const std::string& name,
                               const DentryValue& d, int64_t now, Removed* removed) {
  Inode dir, victim;
  Status st = LoadDir(t, parent, &dir);
  if (st.ok()) st = LoadInode(t, d.ino, &victim);
  if (!st.ok()) return st;
  if (victim.is_dir()) {
    bool empty = false;
    st = DirIsEmpty(t, d.ino, &empty);
    if (!st.ok()) return st;
    if (!empty) return Status::Error(ENOTEMPTY, "directory '" + name + "' is not empty");
    victim.nlink = 0;
    dir.nlink--;
  } else {
    victim.nlink--;
  }
  victim.ctime_ns = now;
  dir.mtime_ns = dir.ctime_ns = now;
  st = DelKey(t, dentries, DentryKey(parent, name), "remove entry '" + name + "'");
  if (st.ok()) st = PutPod(t, inodes, InoKey(parent), dir, "update parent of '" + name + "'");
  if (st.ok()) st = PutPod(t, inodes, InoKey(d.ino), victim, "update '" + name + "'");
  if (st.ok() && victim.nlink == 0)
    st = PutRaw(t, orphans, InoKey(d.ino), "", "record orphan '" + name + "'");
  if (st.ok() && removed) *removed = Removed{d.ino, victim.nlink};
  return st;
}

}  // namespace tierfs

#include "meta/store.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <thread>

#include "meta/txn.h"

namespace tierfs {

int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return TimespecNs(ts);
}

namespace {

std::string InoStr(uint64_t ino) {
  return "inode " + std::to_string(ino);
}

// Creates and opens the environment in `dir` with `flags`; closes it again
// on failure (LMDB's rule), leaving *env null.
int OpenEnv(const std::string& dir, const StoreOptions& opt, unsigned flags, MDB_env** env) {
  int rc = mdb_env_create(env);
  if (rc == 0) rc = mdb_env_set_maxdbs(*env, 16);
  if (rc == 0) rc = mdb_env_set_mapsize(*env, opt.map_size);
  if (rc == 0) rc = mdb_env_set_maxreaders(*env, 512);
  if (rc == 0) rc = mdb_env_open(*env, dir.c_str(), flags, 0600);
  if (rc != 0 && *env) {
    mdb_env_close(*env);
    *env = nullptr;
  }
  return rc;
}

}  // namespace

Status Store::Open(const std::string& dir, std::unique_ptr<Store>* out, const StoreOptions& opt) {
  std::unique_ptr<Store> s(new Store());
  s->dbs_ = std::make_unique<Dbs>();
  // NOSYNC: commits reach the page cache, which survives a daemon crash;
  // Sync() is what makes them durable against power loss (fsync, fsyncdir).
  // NOTLS: read transactions are not tied to libfuse's worker threads.
  // WRITEMAP: a commit writes its pages into the map instead of one pwrite
  // each (about ten per create or unlink: a third of the daemon's time per
  // metadata operation on this project's VM, docs/BENCHMARKS.md). LMDB then
  // sizes the file to the whole map, sparse; MapAllocation (meta/txn.h)
  // keeps the blocks past the last page allocated, so a full filesystem
  // fails a commit with ENOSPC instead of killing the daemon with SIGBUS.
  // Where that cannot be done (no fallocate, no sparse file of the map's
  // size), the plain mode: pwrite, whose ENOSPC a commit returns itself.
  const unsigned flags = MDB_NOSYNC | MDB_NOTLS;
  int fd = -1;
  int rc = OpenEnv(dir, opt, flags | MDB_WRITEMAP, &s->env_);
  bool writemap = rc == 0;
  if (writemap &&
      (mdb_env_get_fd(s->env_, &fd) != 0 || fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4096) != 0)) {
    mdb_env_close(s->env_);
    s->env_ = nullptr;
    writemap = false;
  }
  if (!writemap) rc = OpenEnv(dir, opt, flags, &s->env_);
  if (rc == 0) rc = mdb_env_get_fd(s->env_, &fd);
  if (rc != 0) return LmdbError(rc, "open LMDB environment in " + dir);
  struct statvfs fsinfo;
  const uint64_t capacity =
      fstatvfs(fd, &fsinfo) == 0 ? uint64_t(fsinfo.f_blocks) * fsinfo.f_frsize : 0;
  const uint64_t ahead =
      capacity == 0 ? 1 << 20 : std::clamp<uint64_t>(capacity / 32, 64 << 10, 1 << 20);
  s->alloc_ = std::make_unique<MapAllocation>(s->env_, fd, dir, ahead);
  if (writemap) mdb_env_set_userctx(s->env_, s->alloc_.get());
  s->dir_ = dir;
  int dead = 0;
  mdb_reader_check(s->env_, &dead);  // slots of a killed daemon

  WriteTxn txn(s->env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  st = s->dbs_->OpenAll(txn.get());
  if (!st.ok()) return st;
  Inode root;
  if (GetPod(txn.get(), s->dbs_->inodes, InoKey(kRootIno), &root) == MDB_NOTFOUND) {
    root.ino = kRootIno;
    root.mode = S_IFDIR | 0755;
    root.uid = getuid();
    root.gid = getgid();
    root.nlink = 2;
    root.atime_ns = root.mtime_ns = root.ctime_ns = NowNs();
    st = PutPod(txn.get(), s->dbs_->inodes, InoKey(kRootIno), root, "create root");
    if (st.ok()) st = PutU64(txn.get(), s->dbs_->meta, kNextInoKey, kRootIno + 1);
    if (!st.ok()) return st;
  }
  // States made before the key existed are format 1.
  uint64_t format = 0;
  rc = GetPod(txn.get(), s->dbs_->meta, kFormatKey, &format);
  if (rc == MDB_NOTFOUND) {
    format = kFormat;
    st = PutU64(txn.get(), s->dbs_->meta, kFormatKey, kFormat);
  } else if (rc != 0) {
    st = LmdbError(rc, "read the format of state " + dir);
  }
  if (!st.ok()) return st;
  if (format != kFormat)
    return Status::Error(EINVAL, "state " + dir + " has format " + std::to_string(format) +
                                     "; this tierfs reads format " + std::to_string(kFormat));
  st = txn.commit();
  if (!st.ok()) return st;
  *out = std::move(s);
  return Status::Ok();
}

Status Store::CheckRoom(const char* what) {
  MDB_envinfo info;
  MDB_stat stat;
  if (mdb_env_info(env_, &info) != 0 || mdb_env_stat(env_, &stat) != 0 || stat.ms_psize == 0)
    return Status::Ok();  // cannot tell: LMDB itself still refuses a full map
  const uint64_t total = info.me_mapsize / stat.ms_psize;
  const uint64_t reserve = std::clamp<uint64_t>(total / 8, 64, 16384);
  const uint64_t untouched = total > info.me_last_pgno + 1 ? total - info.me_last_pgno - 1 : 0;
  if (untouched >= reserve) return Status::Ok();
  // Near the end of the map: add the pages on LMDB's free list.
  const uint64_t reusable = ReusableBytes(env_) / stat.ms_psize;
  if (untouched + reusable >= reserve) return Status::Ok();
  return Status::Error(ENOSPC,
                       std::string(what) + ": the LMDB state in " + dir_ + " is full (" +
                           std::to_string(untouched + reusable) + " of " + std::to_string(total) +
                           " pages free, " + std::to_string(reserve) +
                           " kept for removals; see --map-size): remove files to make room");
}

Store::~Store() {
  if (env_) {
    mdb_env_sync(env_, 1);
    mdb_env_close(env_);
  }
}

Status Store::Sync() {
  int rc = mdb_env_sync(env_, 1);
  return rc == 0 ? Status::Ok() : LmdbError(rc, "sync LMDB environment");
}

Status Store::GetInode(uint64_t ino, Inode* out) {
  ReadTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  return dbs_->LoadInode(txn.get(), ino, out);
}

Status Store::Lookup(uint64_t parent, const std::string& name, Inode* out) {
  Status st = CheckName(name);
  if (!st.ok()) return st;
  ReadTxn txn(env_);
  st = txn.begin();
  if (!st.ok()) return st;
  DentryValue d;
  st = dbs_->LoadDentry(txn.get(), parent, name, &d);
  if (!st.ok()) return st;
  return dbs_->LoadInode(txn.get(), d.ino, out);
}

Status Store::ListDir(uint64_t parent, std::vector<DirEntry>* entries, std::vector<Inode>* inodes) {
  ReadTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  entries->clear();
  if (inodes) inodes->clear();
  return dbs_->ForEachDentry(txn.get(), parent, [&](const std::string& name, const DentryValue& d) {
    entries->push_back(DirEntry{name, d.ino, d.type});
    if (!inodes) return Status::Ok();
    inodes->emplace_back();
    return dbs_->LoadInode(txn.get(), d.ino, &inodes->back());
  });
}

Status Store::ReadSymlink(uint64_t ino, std::string* target) {
  ReadTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  MDB_val v;
  int rc = GetRaw(txn.get(), dbs_->symlinks, InoKey(ino), &v);
  if (rc == MDB_NOTFOUND) return Status::Error(EINVAL, InoStr(ino) + " is not a symlink");
  if (rc != 0) return LmdbError(rc, "read symlink of " + InoStr(ino));
  target->assign(static_cast<const char*>(v.mv_data), v.mv_size);
  return Status::Ok();
}

Status Store::Create(uint64_t parent, const std::string& name, const NewNode& node, Inode* out) {
  Status st = CheckName(name);
  if (st.ok()) st = CheckRoom(("create " + name).c_str());
  if (!st.ok()) return st;
  WriteTxn txn(env_);
  st = txn.begin();
  if (!st.ok()) return st;
  MDB_txn* t = txn.get();
  Inode dir;
  st = dbs_->LoadDir(t, parent, &dir);
  if (!st.ok()) return st;
  DentryValue existing;
  st = dbs_->LoadDentry(t, parent, name, &existing);
  if (st.ok()) return Status::Error(EEXIST, "'" + name + "' exists in " + InoStr(parent));
  if (st.err() != ENOENT) return st;

  uint64_t ino = 0;
  st = GetU64(t, dbs_->meta, kNextInoKey, &ino);
  if (st.ok()) st = PutU64(t, dbs_->meta, kNextInoKey, ino + 1);
  if (!st.ok()) return st;

  const int64_t now = NowNs();
  Inode n;
  n.ino = ino;
  n.mode = node.mode;
  n.uid = node.uid;
  n.gid = node.gid;
  n.rdev = node.rdev;
  n.nlink = S_ISDIR(node.mode) ? 2 : 1;
  n.tier = node.tier;
  n.atime_ns = n.mtime_ns = n.ctime_ns = now;
  if (S_ISLNK(node.mode)) {
    n.size = node.symlink_target.size();
    st = PutRaw(t, dbs_->symlinks, InoKey(ino), node.symlink_target, "store symlink target");
    if (!st.ok()) return st;
  }
  if (S_ISDIR(node.mode)) dir.nlink++;
  dir.mtime_ns = dir.ctime_ns = now;
  st = PutPod(t, dbs_->inodes, InoKey(ino), n, "create " + InoStr(ino));
  if (st.ok()) st = PutPod(t, dbs_->inodes, InoKey(parent), dir, "update " + InoStr(parent));
  if (st.ok()) st = dbs_->StoreDentry(t, parent, name, DentryValue{ino, node.mode & S_IFMT});
  for (const auto& [xname, value] : node.xattrs)
    if (st.ok()) st = PutRaw(t, dbs_->xattrs, XattrKey(ino, xname), value, "write xattr " + xname);
  if (st.ok()) st = txn.commit();
  if (st.ok()) *out = n;
  return st;
}

Status Store::Link(uint64_t ino, uint64_t new_parent, const std::string& new_name, Inode* out) {
  Status st = CheckName(new_name);
  if (st.ok()) st = CheckRoom(("link " + new_name).c_str());
  if (!st.ok()) return st;
  WriteTxn txn(env_);
  st = txn.begin();
  if (!st.ok()) return st;
  MDB_txn* t = txn.get();
  Inode dir, n;
  st = dbs_->LoadDir(t, new_parent, &dir);
  if (st.ok()) st = dbs_->LoadInode(t, ino, &n);
  if (!st.ok()) return st;
  if (n.is_dir()) return Status::Error(EPERM, "hard link to directory " + InoStr(ino));
  if (n.nlink == 0) return Status::Error(ENOENT, InoStr(ino) + " was unlinked");
  DentryValue existing;
  st = dbs_->LoadDentry(t, new_parent, new_name, &existing);
  if (st.ok()) return Status::Error(EEXIST, "'" + new_name + "' exists in " + InoStr(new_parent));
  const int64_t now = NowNs();
  n.nlink++;
  n.ctime_ns = now;
  dir.mtime_ns = dir.ctime_ns = now;
  st = PutPod(t, dbs_->inodes, InoKey(ino), n, "link " + InoStr(ino));
  if (st.ok())
    st = PutPod(t, dbs_->inodes, InoKey(new_parent), dir, "update " + InoStr(new_parent));
  if (st.ok()) st = dbs_->StoreDentry(t, new_parent, new_name, DentryValue{ino, n.mode & S_IFMT});
  if (st.ok()) st = txn.commit();
  if (st.ok()) *out = n;
  return st;
}

Status Store::RetryRemoval(const std::function<Status()>& op) {
  Status st = op();
  if (st.ok() || st.err() != ENOSPC) return st;
  {
    MutexLock lock(&copy_mu_);
    while (copies_ > 0) copies_ended_.Wait(&copy_mu_);
  }
  // Other readers pin pages the same way for as long as they read (a
  // policy scan walks the whole tree in one transaction, about a second
  // for a million files; a lookup's thread may be preempted): try again,
  // backing off, for a while before the removal gives up.
  const auto give_up = std::chrono::steady_clock::now() + kRemovalPatience;
  for (auto wait = std::chrono::milliseconds(1);; wait = std::min(2 * wait, kRemovalBackoffMax)) {
    st = op();
    if (st.ok() || st.err() != ENOSPC || std::chrono::steady_clock::now() >= give_up) return st;
    std::this_thread::sleep_for(wait);
  }
}

Status Store::Unlink(uint64_t parent, const std::string& name, Removed* removed) {
  return RetryRemoval([&] { return UnlinkOnce(parent, name, removed); });
}

Status Store::Rmdir(uint64_t parent, const std::string& name, Removed* removed) {
  return RetryRemoval([&] { return RmdirOnce(parent, name, removed); });
}

Status Store::UnlinkOnce(uint64_t parent, const std::string& name, Removed* removed) {
  WriteTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  DentryValue d;
  st = dbs_->LoadDentry(txn.get(), parent, name, &d);
  if (!st.ok()) return st;
  if (S_ISDIR(d.type)) return Status::Error(EISDIR, "unlink of directory '" + name + "'");
  st = dbs_->RemoveEntry(txn.get(), parent, name, d, NowNs(), removed);
  if (st.ok()) st = txn.commit();
  return st;
}

Status Store::RmdirOnce(uint64_t parent, const std::string& name, Removed* removed) {
  WriteTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  DentryValue d;
  st = dbs_->LoadDentry(txn.get(), parent, name, &d);
  if (!st.ok()) return st;
  if (!S_ISDIR(d.type)) return Status::Error(ENOTDIR, "rmdir of non-directory '" + name + "'");
  st = dbs_->RemoveEntry(txn.get(), parent, name, d, NowNs(), removed);
  if (st.ok()) st = txn.commit();
  return st;
}

Status Store::Update(uint64_t ino, const std::function<Status(Inode&)>& mutate, Inode* out) {
  WriteTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  Inode n;
  st = dbs_->LoadInode(txn.get(), ino, &n);
  const uint64_t old_checksum = n.checksum;
  if (st.ok()) st = mutate(n);
  if (st.ok()) st = dbs_->StoreUpdated(txn.get(), ino, n, old_checksum);
  if (st.ok()) st = txn.commit();
  if (st.ok() && out) *out = n;
  return st;
}

Status Store::DeleteInode(uint64_t ino) {
  return DeleteInodes({ino});
}

Status Store::DeleteInodes(const std::vector<uint64_t>& inos) {
  return RetryRemoval([&] {
    WriteTxn txn(env_);
    Status st = txn.begin();
    if (!st.ok()) return st;
    MDB_txn* t = txn.get();
    for (uint64_t ino : inos) {
      st = DelKey(t, dbs_->inodes, InoKey(ino), "delete " + InoStr(ino));
      if (st.ok()) st = DelKey(t, dbs_->symlinks, InoKey(ino), "delete symlink of " + InoStr(ino));
      if (st.ok()) st = DelKey(t, dbs_->orphans, InoKey(ino), "delete orphan " + InoStr(ino));
      if (st.ok()) st = DelPrefix(t, dbs_->xattrs, XattrPrefix(ino));
      if (st.ok()) st = DelKey(t, dbs_->holds, InoKey(ino), "delete hold of " + InoStr(ino));
      if (st.ok())
        st = DelKey(t, dbs_->block_sums, InoKey(ino), "delete block sums of " + InoStr(ino));
      if (!st.ok()) return st;
    }
    return txn.commit();
  });
}

Status Store::ListOrphans(std::vector<uint64_t>* out) {
  ReadTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  out->clear();
  return ForEachKey(txn.get(), dbs_->orphans, "", [&](const MDB_val& k, const MDB_val&) {
    out->push_back(InoFromKey(k));
    return Status::Ok();
  });
}

Status Store::ReserveSpace(uint64_t bytes) {
  // Only when the file has grown into the second half of the reserve:
  // fallocate over allocated space walks every page of it on tmpfs (a
  // check per create made creates there 20x slower).
  Status st = alloc_->Ensure(bytes / 2, bytes);
  if (st.ok()) return st;
  return Status::Error(
      st.err(), "reserve " + std::to_string(bytes >> 20) + " MiB for metadata: " + st.message());
}

Status Store::StatFs(struct statvfs* out) {
  int fd = -1;
  int rc = mdb_env_get_fd(env_, &fd);
  if (rc != 0) return LmdbError(rc, "LMDB data file");
  if (fstatvfs(fd, out) != 0) return Status::Errno(errno, "statfs of the state");
  return Status::Ok();
}

Status Store::ForEachInode(const std::function<Status(const Inode&)>& fn) {
  ReadTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  return ForEachKey(txn.get(), dbs_->inodes, "", [&](const MDB_val&, const MDB_val& v) {
    if (v.mv_size != sizeof(Inode)) return Status::Error(EIO, "inode record of a wrong size");
    Inode n;
    std::memcpy(&n, v.mv_data, sizeof n);
    return fn(n);
  });
}

Status Store::GetMeta(const std::string& key, std::string* value) {
  ReadTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  MDB_val v;
  int rc = GetRaw(txn.get(), dbs_->meta, key, &v);
  if (rc == MDB_NOTFOUND) return Status::Error(ENOENT, "meta key " + key);
  if (rc != 0) return LmdbError(rc, "read meta key " + key);
  value->assign(static_cast<const char*>(v.mv_data), v.mv_size);
  return Status::Ok();
}

Status Store::PutMeta(const std::string& key, const std::string& value) {
  WriteTxn txn(env_);
  Status st = txn.begin();
  if (st.ok()) st = PutRaw(txn.get(), dbs_->meta, key, value, "write meta key " + key);
  if (st.ok()) st = txn.commit();
  return st;
}

}  // namespace tierfs

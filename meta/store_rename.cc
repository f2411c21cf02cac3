// Store::Rename: plain, RENAME_NOREPLACE and RENAME_EXCHANGE, each one LMDB
// transaction. Loops (a directory moved under itself) are refused by the
// kernel's VFS before the request reaches us.
#include <linux/fs.h>

#include "meta/txn.h"

namespace tierfs {

namespace {

Status TouchDirs(MDB_txn* t, Store::Dbs& dbs, uint64_t old_parent, uint64_t new_parent,
                 int old_nlink_delta, int64_t now) {
  Inode odir;
  Status st = dbs.LoadDir(t, old_parent, &odir);
  if (!st.ok()) return st;
  odir.mtime_ns = odir.ctime_ns = now;
  if (old_parent == new_parent)
    return PutPod(t, dbs.inodes, InoKey(old_parent), odir, "update directory");
  odir.nlink += old_nlink_delta;
  st = PutPod(t, dbs.inodes, InoKey(old_parent), odir, "update source directory");
  Inode ndir;
  if (st.ok()) st = dbs.LoadDir(t, new_parent, &ndir);
  if (!st.ok()) return st;
  ndir.mtime_ns = ndir.ctime_ns = now;
  ndir.nlink -= old_nlink_delta;
  return PutPod(t, dbs.inodes, InoKey(new_parent), ndir, "update target directory");
}

Status TouchCtime(MDB_txn* t, Store::Dbs& dbs, uint64_t ino, int64_t now) {
  Inode n;
  Status st = dbs.LoadInode(t, ino, &n);
  if (!st.ok()) return st;
  n.ctime_ns = now;
  return PutPod(t, dbs.inodes, InoKey(ino), n, "update ctime of inode " + std::to_string(ino));
}

}  // namespace

Status Store::Rename(uint64_t old_parent, const std::string& old_name, uint64_t new_parent,
                     const std::string& new_name, unsigned flags, Removed* replaced) {
  return RetryRemoval(
      [&] { return RenameOnce(old_parent, old_name, new_parent, new_name, flags, replaced); });
}

Status Store::RenameOnce(uint64_t old_parent, const std::string& old_name, uint64_t new_parent,
                         const std::string& new_name, unsigned flags, Removed* replaced) {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
    return Status::Error(EINVAL, "unsupported rename flags " + std::to_string(flags));
  if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
    return Status::Error(EINVAL, "RENAME_NOREPLACE with RENAME_EXCHANGE");
  if (replaced) *replaced = Removed{};
  Status st = CheckName(new_name);
  if (!st.ok()) return st;
  WriteTxn txn(env_);
  st = txn.begin();
  if (!st.ok()) return st;
  MDB_txn* t = txn.get();
  Inode dir;
  st = dbs_->LoadDir(t, old_parent, &dir);
  if (st.ok()) st = dbs_->LoadDir(t, new_parent, &dir);
  DentryValue src, dst;
  if (st.ok()) st = dbs_->LoadDentry(t, old_parent, old_name, &src);
  if (!st.ok()) return st;
  Status dst_st = dbs_->LoadDentry(t, new_parent, new_name, &dst);
  if (!dst_st.ok() && dst_st.err() != ENOENT) return dst_st;
  const bool dst_exists = dst_st.ok();
  const bool src_dir = S_ISDIR(src.type);
  const int64_t now = NowNs();

  if (flags & RENAME_EXCHANGE) {
    if (!dst_exists) return dst_st;
    const bool dst_dir = S_ISDIR(dst.type);
    st = dbs_->StoreDentry(t, old_parent, old_name, dst);
    if (st.ok()) st = dbs_->StoreDentry(t, new_parent, new_name, src);
    // A directory that changes parent moves its ".." link with it.
    const int delta = (src_dir ? -1 : 0) + (dst_dir ? 1 : 0);
    if (st.ok()) st = TouchDirs(t, *dbs_, old_parent, new_parent, delta, now);
    if (st.ok()) st = TouchCtime(t, *dbs_, src.ino, now);
    if (st.ok()) st = TouchCtime(t, *dbs_, dst.ino, now);
    if (st.ok()) st = txn.commit();
    return st;
  }

  if (dst_exists) {
    if (flags & RENAME_NOREPLACE) return Status::Error(EEXIST, "'" + new_name + "' exists");
    if (dst.ino == src.ino) return Status::Ok();  // two links to one inode: POSIX no-op
    if (src_dir && !S_ISDIR(dst.type))
      return Status::Error(ENOTDIR, "rename directory over non-directory '" + new_name + "'");
    if (!src_dir && S_ISDIR(dst.type))
      return Status::Error(EISDIR, "rename non-directory over directory '" + new_name + "'");
    st = dbs_->RemoveEntry(t, new_parent, new_name, dst, now, replaced);
    if (!st.ok()) return st;
  }
  st = DelKey(t, dbs_->dentries, DentryKey(old_parent, old_name), "remove '" + old_name + "'");
  if (st.ok()) st = dbs_->StoreDentry(t, new_parent, new_name, src);
  if (st.ok()) st = TouchDirs(t, *dbs_, old_parent, new_parent, src_dir ? -1 : 0, now);
  if (st.ok()) st = TouchCtime(t, *dbs_, src.ino, now);
  if (st.ok()) st = txn.commit();
  return st;
}

}  // namespace tierfs

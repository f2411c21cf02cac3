// Store's extended attributes: one LMDB record per (inode, name).
#include <sys/xattr.h>

#include "meta/txn.h"

namespace tierfs {

Status Store::SetXattr(uint64_t ino, const std::string& name, const std::string& value, int flags) {
  Status st = CheckRoom(("set extended attribute " + name).c_str());
  if (!st.ok()) return st;
  WriteTxn txn(env_);
  st = txn.begin();
  if (!st.ok()) return st;
  MDB_txn* t = txn.get();
  Inode n;
  st = dbs_->LoadInode(t, ino, &n);
  if (!st.ok()) return st;
  MDB_val old;
  const int rc = GetRaw(t, dbs_->xattrs, XattrKey(ino, name), &old);
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbError(rc, "read xattr " + name);
  if ((flags & XATTR_CREATE) && rc == 0) return Status::Error(EEXIST, "xattr " + name + " exists");
  if ((flags & XATTR_REPLACE) && rc == MDB_NOTFOUND)
    return Status::Error(ENODATA, "no xattr " + name);
  n.ctime_ns = NowNs();
  st = PutRaw(t, dbs_->xattrs, XattrKey(ino, name), value, "write xattr " + name);
  if (st.ok()) st = PutPod(t, dbs_->inodes, InoKey(ino), n, "update ctime");
  if (st.ok()) st = txn.commit();
  return st;
}

Status Store::GetXattr(uint64_t ino, const std::string& name, std::string* value) {
  ReadTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  MDB_val v;
  const int rc = GetRaw(txn.get(), dbs_->xattrs, XattrKey(ino, name), &v);
  if (rc == MDB_NOTFOUND) return Status::Error(ENODATA, "no xattr " + name);
  if (rc != 0) return LmdbError(rc, "read xattr " + name);
  value->assign(static_cast<const char*>(v.mv_data), v.mv_size);
  return Status::Ok();
}

Status Store::ListXattr(uint64_t ino, std::vector<std::string>* names) {
  ReadTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  names->clear();
  return ForEachKey(txn.get(), dbs_->xattrs, XattrPrefix(ino),
                    [&](const MDB_val& k, const MDB_val&) {
                      names->push_back(NameFromKey(k));
                      return Status::Ok();
                    });
}

Status Store::RemoveXattr(uint64_t ino, const std::string& name) {
  return RetryRemoval([&] {
    WriteTxn txn(env_);
    Status st = txn.begin();
    if (!st.ok()) return st;
    MDB_txn* t = txn.get();
    MDB_val v;
    const int rc = GetRaw(t, dbs_->xattrs, XattrKey(ino, name), &v);
    if (rc == MDB_NOTFOUND) return Status::Error(ENODATA, "no xattr " + name);
    Inode n;
    st = dbs_->LoadInode(t, ino, &n);
    if (!st.ok()) return st;
    n.ctime_ns = NowNs();
    st = DelKey(t, dbs_->xattrs, XattrKey(ino, name), "remove xattr " + name);
    if (st.ok()) st = PutPod(t, dbs_->inodes, InoKey(ino), n, "update ctime");
    if (st.ok()) st = txn.commit();
    return st;
  });
}

}  // namespace tierfs

// Store's extended attributes: one LMDB record per (inode, name).
#include <linux/limits.h>
#include <sys/xattr.h>

#include "meta/txn.h"

namespace tierfs {

Status Store::SetXattr(uint64_t ino, const std::string& name, const std::string& value, int flags) {
  return UpdateWithXattr(
      ino, name,
      [&](Inode& n, std::optional<std::string>* stored) {
        if ((flags & XATTR_CREATE) && stored->has_value())
          return Status::Error(EEXIST, "xattr " + name + " exists");
        if ((flags & XATTR_REPLACE) && !stored->has_value())
          return Status::Error(ENODATA, "no xattr " + name);
        stored->emplace(value);
        n.ctime_ns = NowNs();
        return Status::Ok();
      },
      nullptr);
}

// listxattr(2) returns at most XATTR_LIST_MAX bytes of names (each with its
// NUL): a name that would make the list longer is refused, as a filesystem
// out of xattr room refuses it (ENOSPC), or listxattr, getfattr -d and
// cp -a would fail (E2BIG) or drop every attribute of the file.
Status Store::CheckNameRoom(MDB_txn* t, uint64_t ino, const std::string& name) {
  size_t bytes = name.size() + 1;
  Status st = ForEachKey(t, dbs_->xattrs, XattrPrefix(ino), [&](const MDB_val& k, const MDB_val&) {
    bytes += NameFromKey(k).size() + 1;
    return Status::Ok();
  });
  if (st.ok() && bytes > XATTR_LIST_MAX)
    return Status::Error(ENOSPC, "inode " + std::to_string(ino) + ": adding xattr " + name +
                                     " would make its names " + std::to_string(bytes) +
                                     " bytes, over listxattr's " + std::to_string(XATTR_LIST_MAX));
  return st;
}

Status Store::UpdateWithXattr(
    uint64_t ino, const std::string& name,
    const std::function<Status(Inode&, std::optional<std::string>*)>& mutate, Inode* out) {
  Status st =
      CheckRoom(("set extended attribute " + name + " of inode " + std::to_string(ino)).c_str());
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
  std::optional<std::string> value;
  if (rc == 0) value.emplace(static_cast<const char*>(old.mv_data), old.mv_size);
  const uint64_t old_checksum = n.checksum;
  st = mutate(n, &value);
  if (!st.ok()) return st;
  if (value && rc == MDB_NOTFOUND) st = CheckNameRoom(t, ino, name);
  if (!st.ok()) return st;
  if (value)
    st = PutRaw(t, dbs_->xattrs, XattrKey(ino, name), *value, "write xattr " + name);
  else if (rc == 0)
    st = DelKey(t, dbs_->xattrs, XattrKey(ino, name), "remove xattr " + name);
  if (st.ok()) st = dbs_->StoreUpdated(t, ino, n, old_checksum);
  if (st.ok()) st = txn.commit();
  if (st.ok() && out) *out = n;
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

Status Store::ForEachXattrNamed(
    const std::string& name,
    const std::function<Status(uint64_t ino, const std::string& value)>& fn) {
  ReadTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  return ForEachKey(txn.get(), dbs_->xattrs, "", [&](const MDB_val& k, const MDB_val& v) {
    if (NameFromKey(k) != name) return Status::Ok();
    return fn(InoFromKey(k), std::string(static_cast<const char*>(v.mv_data), v.mv_size));
  });
}

Status Store::ForEachXattr(const std::function<Status(uint64_t ino, const std::string& name,
                                                      const std::string& value)>& fn) {
  ReadTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  return ForEachKey(txn.get(), dbs_->xattrs, "", [&](const MDB_val& k, const MDB_val& v) {
    return fn(InoFromKey(k), NameFromKey(k),
              std::string(static_cast<const char*>(v.mv_data), v.mv_size));
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

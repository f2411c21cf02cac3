#include "fs/archived_access.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tiering/identity.h"

namespace tierfs {

Status RefreshArchivedAccess(Store& store, const Tier& hdd, uint64_t ino) {
  Inode n;
  Status st = store.GetInode(ino, &n);
  if (!st.ok() || !n.is_reg() || n.tier != TierId::kHdd) return st;
  const std::string object = hdd.ObjectPath(ino);
  ObjectIdentity id;
  st = ReadIdentity(object, &id);
  if (st.err() == ENODATA || st.err() == ENOENT) return Status::Ok();  // a move writes it
  if (!st.ok()) return st;
  id.mode = n.mode;
  id.uid = n.uid;
  id.gid = n.gid;
  id.ctime_ns = n.ctime_ns;
  id.access_acl.clear();
  id.acl_unknown = false;
  st = store.GetXattr(ino, kAccessAclXattr, &id.access_acl);
  if (!st.ok() && st.err() != ENODATA) return st;
  st = ReadArchivedXattrs(store, ino, &id);
  if (!st.ok()) return st;
  const int fd = hdd.OpenObject(ino, O_RDONLY, &st);
  if (fd < 0) return st.err() == ENOENT ? Status::Ok() : st;  // moved back meanwhile
  st = WriteIdentity(hdd, ino, fd, id, nullptr);
  if (st.ok() && fsync(fd) != 0) st = Status::Errno(errno, "fsync " + object);
  close(fd);
  if (!st.ok()) return Status::Error(st.err(), "identity of " + object + ": " + st.message());
  return Status::Ok();
}

Status WriteArchivedIdentity(Store& store, const Tier& hdd, uint64_t ino, const std::string& path,
                             uint64_t checksum) {
  Inode n;
  Status st = store.GetInode(ino, &n);
  if (!st.ok() || !n.is_reg() || n.tier != TierId::kHdd || n.checksum != checksum) return st;
  const int fd = hdd.OpenObject(ino, O_RDONLY, &st);
  if (fd < 0) return st.err() == ENOENT ? Status::Ok() : st;  // moved back meanwhile
  const std::string object = hdd.ObjectPath(ino);
  struct stat obj;
  if (fstat(fd, &obj) != 0) {
    st = Status::Errno(errno, "stat " + object);
    close(fd);
    return st;
  }
  if (uint64_t(obj.st_size) != n.size || TimespecNs(obj.st_mtim) != n.mtime_ns) {
    close(fd);
    return Status::Ok();  // written since it was hashed
  }
  ObjectIdentity id;
  st = IdentityFromStore(store, n, hdd.namespace_name(), path, n.size, n.mtime_ns, checksum, &id);
  if (st.ok()) st = WriteIdentity(hdd, ino, fd, id, nullptr);
  if (st.ok() && fsync(fd) != 0) st = Status::Errno(errno, "fsync " + object);
  close(fd);
  if (!st.ok()) return Status::Error(st.err(), "identity of " + object + ": " + st.message());
  return Status::Ok();
}

}  // namespace tierfs

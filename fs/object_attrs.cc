#include "fs/object_attrs.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

namespace tierfs {

Status RecordObjectAttrs(Store& store, const Tiers& tiers, InodeTable& table, uint64_t ino,
                         Inode* out) {
  return store.Update(
      ino,
      [&](Inode& i) {
        i.ForgetObjectAttrs();
        if (!i.is_reg() || table.OpenForWriting(ino)) return Status::Ok();
        struct stat obj;
        const Status found = tiers[i.tier].StatObject(ino, &obj);
        if (found.err() == ENOENT && i.size == 0) {
          i.RecordObjectAttrs(0);  // no object yet: an empty file
        } else if (found.ok() && uint64_t(obj.st_size) == i.size &&
                   TimespecNs(obj.st_mtim) == i.mtime_ns) {
          i.ctime_ns = std::max(i.ctime_ns, TimespecNs(obj.st_ctim));
          i.RecordObjectAttrs(uint64_t(obj.st_blocks));
        }
        return Status::Ok();
      },
      out);
}

}  // namespace tierfs

#include "fs/object_attrs.h"

#include <algorithm>
#include <cerrno>

namespace tierfs {

std::optional<Store::ObjectAttrs> AgreeingObjectAttrs(const Inode& n, const Status& found,
                                                      const struct stat& obj) {
  if (found.ok() && uint64_t(obj.st_size) == n.size && TimespecNs(obj.st_mtim) == n.mtime_ns)
    return Store::ObjectAttrs{uint64_t(obj.st_blocks), TimespecNs(obj.st_ctim)};
  if (found.err() == ENOENT && n.size == 0) return Store::ObjectAttrs{0, n.ctime_ns};
  return std::nullopt;
}

Status RecordObjectAttrs(Store& store, const Tiers& tiers, InodeTable& table, uint64_t ino,
                         Inode* out) {
  return store.Update(
      ino,
      [&](Inode& i) {
        i.ForgetObjectAttrs();
        if (!i.is_reg() || table.OpenForWriting(ino)) return Status::Ok();
        struct stat obj {};
        const Status found = tiers[i.tier].StatObject(ino, &obj);
        if (const auto attrs = AgreeingObjectAttrs(i, found, obj)) {
          i.ctime_ns = std::max(i.ctime_ns, attrs->ctime_ns);
          i.RecordObjectAttrs(attrs->blocks);
        }
        return Status::Ok();
      },
      out);
}

}  // namespace tierfs

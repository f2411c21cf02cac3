// opendir, readdir, readdirplus, releasedir, fsyncdir.
//
// A directory handle holds a snapshot of the entries taken at opendir (and
// again at offset 0, i.e. rewinddir), so offsets stay stable while other
// threads add and remove entries, as POSIX allows.
#include <sys/stat.h>

#include <vector>

#include "fs/op_table.h"

namespace tierfs {

namespace {

struct DirHandle {
  uint64_t ino = 0;
  std::vector<DirEntry> entries;
  std::vector<Inode> inodes;  // filled for readdirplus
  bool with_attrs = false;
};

DirHandle* Dir(fuse_file_info* fi) {
  return reinterpret_cast<DirHandle*>(fi->fh);
}

Status Snapshot(Context& c, DirHandle& d, bool with_attrs) {
  d.with_attrs = with_attrs;
  Status st = c.store().ListDir(d.ino, &d.entries, with_attrs ? &d.inodes : nullptr);
  // "." and ".." lead the listing; the kernel resolves ".." itself.
  d.entries.insert(d.entries.begin(),
                   {DirEntry{".", d.ino, S_IFDIR}, DirEntry{"..", d.ino, S_IFDIR}});
  if (with_attrs) d.inodes.insert(d.inodes.begin(), 2, Inode{});
  return st;
}

Status OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Context& c = Ctx(req);
  Inode n;
  Status st = c.store().GetInode(ino, &n);
  if (!st.ok()) return st;
  if (!n.is_dir())
    return Status::Error(ENOTDIR, "opendir of inode " + std::to_string(ino) + ": not a directory");
  auto* d = new DirHandle();
  d->ino = ino;
  fi->fh = reinterpret_cast<uint64_t>(d);
  fi->cache_readdir = 0;
  if (fuse_reply_open(req, fi) != 0) delete d;
  return Status::Ok();
}

Status ReadDirCommon(fuse_req_t req, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  Context& c = Ctx(req);
  DirHandle& d = *Dir(fi);
  const bool fresh = off == 0 || d.entries.empty() || d.with_attrs != plus;
  if (fresh) {
    Status st = Snapshot(c, d, plus);
    if (!st.ok()) return st;
  }
  std::vector<char> buf(size);
  size_t used = 0;
  for (size_t i = size_t(off); i < d.entries.size(); ++i) {
    const DirEntry& e = d.entries[i];
    const off_t next = off_t(i + 1);
    size_t need;
    if (plus) {
      fuse_entry_param ep = {};
      const bool real = i >= 2;  // "." and ".." carry no lookup reference
      // A snapshot from an earlier request may predate a close that
      // recorded the file's attributes anew (FillStat trusts records), or a
      // chmod: the kernel would take its attributes as current.
      if (real && !fresh) {
        Inode now;
        if (c.store().GetInode(e.ino, &now).ok()) d.inodes[i] = now;
      }
      if (real)
        c.FillEntry(d.inodes[i], &ep);
      else
        ep.attr.st_mode = S_IFDIR, ep.attr.st_ino = e.ino;
      need = fuse_add_direntry_plus(req, buf.data() + used, size - used, e.name.c_str(), &ep, next);
      if (need > size - used) break;
      if (real) c.table().Ref(e.ino, d.ino, e.name);
    } else {
      struct stat s = {};
      s.st_ino = e.ino;
      s.st_mode = e.type;
      need = fuse_add_direntry(req, buf.data() + used, size - used, e.name.c_str(), &s, next);
      if (need > size - used) break;
    }
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
  return Status::Ok();
}

Status ReadDir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  return ReadDirCommon(req, size, off, fi, false);
}

Status ReadDirPlus(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  return ReadDirCommon(req, size, off, fi, true);
}

Status ReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete Dir(fi);
  fuse_reply_err(req, 0);
  return Status::Ok();
}

Status FsyncDir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  Context& c = Ctx(req);
  Status st = c.store().Sync();
  if (!st.ok()) return st;
  fuse_reply_err(req, 0);
  return Status::Ok();
}

}  // namespace

void AddDirOps(fuse_lowlevel_ops* ops) {
  ops->opendir = Op<OpenDir, "opendir", ReadsOnly>;
  ops->readdir = Op<ReadDir, "readdir", ReadsOnly>;
  ops->readdirplus = Op<ReadDirPlus, "readdirplus", ReadsOnly>;
  ops->releasedir = Op<ReleaseDir, "releasedir", ReadsOnly>;
  ops->fsyncdir = Op<FsyncDir, "fsyncdir", ReadsOnly>;
}

}  // namespace tierfs

#include "fs/passthrough.h"

#include <linux/fuse.h>
#include <sys/ioctl.h>

#include <cerrno>

namespace tierfs {

namespace {

// From the kernel's uapi <linux/fuse.h> of 6.9 and later; Debian 12's
// headers (6.1) predate them.
constexpr uint32_t kFopenPassthrough = 1u << 7;
struct BackingMap {
  int32_t fd;
  uint32_t flags;
  uint64_t padding;
};
constexpr unsigned long kIocBackingOpen = _IOW(229, 1, BackingMap);
constexpr unsigned long kIocBackingClose = _IOW(229, 2, uint32_t);
// fuse_open_out with the field libfuse 3.14 still calls padding.
struct OpenOut {
  uint64_t fh;
  uint32_t open_flags;
  int32_t backing_id;
};

// A timeout in seconds as the kernel wants it (libfuse's calc_timeout_sec).
uint64_t Seconds(double t) {
  if (t > double(UINT64_MAX)) return UINT64_MAX;
  return t < 0.0 ? 0 : uint64_t(t);
}
uint32_t Nanoseconds(double t) {
  if (t < 0.0 || t > double(UINT64_MAX)) return 0;
  return uint32_t((t - double(uint64_t(t))) * 1.0e9);
}

// fuse_entry_out as libfuse 3.14's fill_entry would fill it.
fuse_entry_out EntryOut(const fuse_entry_param& e) {
  fuse_entry_out out{};
  out.nodeid = e.ino;
  out.generation = e.generation;
  out.entry_valid = Seconds(e.entry_timeout);
  out.entry_valid_nsec = Nanoseconds(e.entry_timeout);
  out.attr_valid = Seconds(e.attr_timeout);
  out.attr_valid_nsec = Nanoseconds(e.attr_timeout);
  const struct stat& s = e.attr;
  out.attr.ino = s.st_ino;
  out.attr.mode = s.st_mode;
  out.attr.nlink = uint32_t(s.st_nlink);
  out.attr.uid = s.st_uid;
  out.attr.gid = s.st_gid;
  out.attr.rdev = uint32_t(s.st_rdev);
  out.attr.size = uint64_t(s.st_size);
  out.attr.blksize = uint32_t(s.st_blksize);
  out.attr.blocks = uint64_t(s.st_blocks);
  out.attr.atime = uint64_t(s.st_atim.tv_sec);
  out.attr.mtime = uint64_t(s.st_mtim.tv_sec);
  out.attr.ctime = uint64_t(s.st_ctim.tv_sec);
  out.attr.atimensec = uint32_t(s.st_atim.tv_nsec);
  out.attr.mtimensec = uint32_t(s.st_mtim.tv_nsec);
  out.attr.ctimensec = uint32_t(s.st_ctim.tv_nsec);
  return out;
}

}  // namespace

int Passthrough::OpenBacking(int fd) {
  BackingMap map = {fd, 0, 0};
  int id = ioctl(dev_fd_, kIocBackingOpen, &map);
  return id < 0 ? -errno : id;
}

void Passthrough::CloseBacking(int id) {
  uint32_t backing = uint32_t(id);
  ioctl(dev_fd_, kIocBackingClose, &backing);
}

int Passthrough::ReplyOpen(fuse_req_t req, uint64_t fh, int backing_id) {
  OpenOut out = {fh, kFopenPassthrough, backing_id};
  return fuse_reply_buf(req, reinterpret_cast<const char*>(&out), sizeof out);
}

int Passthrough::ReplyCreate(fuse_req_t req, const fuse_entry_param& e, uint64_t fh,
                             int backing_id) {
  struct {
    fuse_entry_out entry;
    OpenOut open;
  } out = {EntryOut(e), {fh, kFopenPassthrough, backing_id}};
  static_assert(sizeof out == sizeof(fuse_entry_out) + sizeof(OpenOut));
  return fuse_reply_buf(req, reinterpret_cast<const char*>(&out), sizeof out);
}

}  // namespace tierfs

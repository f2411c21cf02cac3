#include "fs/passthrough.h"

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

}  // namespace tierfs

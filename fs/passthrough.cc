#include "fs/passthrough.h"

#include <linux/fuse.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fs/context.h"

namespace tierfs {

namespace {

// From the kernel's uapi <linux/fuse.h> of 6.9 and later; Debian 12's
// headers (6.1) predate them.
constexpr uint64_t kFusePassthrough = 1ULL << 37;
constexpr uint32_t kFopenPassthrough = 1u << 7;
struct BackingMap {
  int32_t fd;
  uint32_t flags;
  uint64_t padding;
};
constexpr unsigned long kIocBackingOpen = _IOW(229, 1, BackingMap);
constexpr unsigned long kIocBackingClose = _IOW(229, 2, uint32_t);
// fuse_init_out as the kernel reads it: max_stack_depth follows flags2.
constexpr size_t kInitOutStackDepthOffset = 36;
constexpr size_t kInitOutMinSize = 64;
// fuse_open_out with the field libfuse 3.14 still calls padding.
struct OpenOut {
  uint64_t fh;
  uint32_t open_flags;
  int32_t backing_id;
};

Passthrough& Of(void* userdata) {
  return static_cast<Context*>(userdata)->passthrough();
}

}  // namespace

bool Passthrough::Install(fuse_session* se, bool enable) {
  enable_ = enable;
  dev_fd_ = fuse_session_fd(se);
  if (!enable_) return true;
  fuse_custom_io io = {};
  io.read = Read;
  io.writev = Writev;
  return fuse_session_custom_io(se, &io, dev_fd_) == 0;
}

ssize_t Passthrough::Read(int fd, void* buf, size_t len, void* userdata) {
  ssize_t n = read(fd, buf, len);
  if (n < ssize_t(sizeof(fuse_in_header) + sizeof(fuse_init_in))) return n;
  fuse_in_header in;
  std::memcpy(&in, buf, sizeof in);
  if (in.opcode != FUSE_INIT) return n;
  fuse_init_in init;
  std::memcpy(&init, static_cast<char*>(buf) + sizeof in, sizeof init);
  Passthrough& self = Of(userdata);
  const uint64_t offered =
      (init.flags & FUSE_INIT_EXT) ? init.flags | (uint64_t(init.flags2) << 32) : init.flags;
  self.offered_ = self.enable_ && (offered & kFusePassthrough);
  self.init_unique_ = in.unique;
  return n;
}

ssize_t Passthrough::Writev(int fd, struct iovec* iov, int count, void* userdata) {
  Passthrough& self = Of(userdata);
  if (self.offered_.load() && count >= 2 && iov[0].iov_len >= sizeof(fuse_out_header) &&
      iov[1].iov_len >= kInitOutMinSize) {
    fuse_out_header out;
    std::memcpy(&out, iov[0].iov_base, sizeof out);
    if (out.error == 0 && out.unique == self.init_unique_.load()) {
      fuse_init_out init;
      std::memcpy(&init, iov[1].iov_base, sizeof init);
      // The kernel refuses passthrough together with the writeback cache.
      if ((init.flags & FUSE_INIT_EXT) && !(init.flags & FUSE_WRITEBACK_CACHE)) {
        init.flags2 |= uint32_t(kFusePassthrough >> 32);
        std::memcpy(iov[1].iov_base, &init, sizeof init);
        const uint32_t depth = 1;
        std::memcpy(static_cast<char*>(iov[1].iov_base) + kInitOutStackDepthOffset, &depth,
                    sizeof depth);
        self.accepted_ = true;
      }
      self.offered_ = false;
    }
  }
  return writev(fd, iov, count);
}

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

// FUSE passthrough for readers: the kernel reads a file opened read-only
// straight from its object on the tier, with no round trip through tierfs.
//
// The kernel (6.9 and later) offers FUSE_PASSTHROUGH in INIT, but libfuse
// 3.14 does not know the flag and never accepts it. So tierfs installs its
// own I/O functions on the session (fuse_session_custom_io, public libfuse
// API): reads pass through unchanged except that the INIT request is
// noted, and the INIT reply gets FUSE_PASSTHROUGH and a stacking depth of 1
// added when the kernel offered it. An open reply then names a backing
// file registered with the FUSE_DEV_IOC_BACKING_OPEN ioctl.
//
// Anything that fails (an older kernel, no CAP_SYS_ADMIN, a tier on a
// filesystem that cannot back another) leaves tierfs serving reads itself.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>

#include <atomic>
#include <cstdint>

namespace tierfs {

class Passthrough {
 public:
  // Installs the I/O functions on a mounted session. `enable` false: plain
  // reads and writes, nothing added to INIT.
  bool Install(fuse_session* se, bool enable);
  // True once the kernel offered passthrough in INIT and we accepted.
  bool active() const { return accepted_.load(); }
  // Registers `fd` as a backing file: its id, or -errno.
  int OpenBacking(int fd);
  void CloseBacking(int id);
  // The open reply for a passthrough open of handle `fh` (libfuse 3.14's
  // fuse_reply_open has no backing id). 0 or -errno as fuse_reply_buf.
  static int ReplyOpen(fuse_req_t req, uint64_t fh, int backing_id);

 private:
  static ssize_t Read(int fd, void* buf, size_t len, void* userdata);
  static ssize_t Writev(int fd, struct iovec* iov, int count, void* userdata);
  bool enable_ = false;
  int dev_fd_ = -1;
  std::atomic<uint64_t> init_unique_{0};
  std::atomic<bool> offered_{false};
  std::atomic<bool> accepted_{false};
};

}  // namespace tierfs

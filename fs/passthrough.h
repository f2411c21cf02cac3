// FUSE passthrough for readers: the kernel reads a file opened read-only
// straight from its object on the tier, with no round trip through tierfs.
//
// The kernel (6.9 and later) offers FUSE_PASSTHROUGH in INIT, but libfuse
// 3.14 does not know the flag and never accepts it; the session's own I/O
// functions (fs/session_io.h) accept it in the INIT reply. An open reply
// then names a backing file registered with the FUSE_DEV_IOC_BACKING_OPEN
// ioctl.
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
  // The mounted session whose device registers backing files.
  void Attach(fuse_session* se) { dev_fd_ = fuse_session_fd(se); }
  // Called when the INIT reply accepts passthrough.
  void Accept() { accepted_ = true; }
  // True once the kernel offered passthrough in INIT and we accepted.
  bool active() const { return accepted_.load(); }
  // Registers `fd` as a backing file: its id, or -errno.
  int OpenBacking(int fd);
  void CloseBacking(int id);
  // The open reply for a passthrough open of handle `fh` (libfuse 3.14's
  // fuse_reply_open has no backing id). 0 or -errno as fuse_reply_buf.
  static int ReplyOpen(fuse_req_t req, uint64_t fh, int backing_id);
  // The same for a create: the new entry `e`, then the passthrough open.
  static int ReplyCreate(fuse_req_t req, const fuse_entry_param& e, uint64_t fh, int backing_id);

 private:
  int dev_fd_ = -1;
  std::atomic<bool> accepted_{false};
};

}  // namespace tierfs

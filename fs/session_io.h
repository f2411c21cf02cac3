// The FUSE session's own I/O functions (fuse_session_custom_io, public
// libfuse API). tierfs sees every request before libfuse does and may amend
// the INIT reply, for kernel features libfuse 3.14 cannot negotiate or pass
// on:
//
// - FUSE_PASSTHROUGH (see fs/passthrough.h): accepted, with a stacking depth
//   of 1, when the kernel offers it and passthrough is enabled.
// - max_pages: one page more than max_write needs, so that a max_write-sized
//   write from a buffer that is not page-aligned is one request, not two
//   (the kernel grants up to fs.fuse.max_pages_limit, which fs/daemon.cc
//   raises where it can).
// - FUSE_HANDLE_KILLPRIV_V2: accepted when offered. The kernel then no
//   longer asks for security.capability before every write through the page
//   cache (the superblock gets SB_NOSEC), and leaves clearing set-user-ID and
//   set-group-ID bits to the filesystem, flagging the requests that must
//   clear them: WRITE (FUSE_WRITE_KILL_SUIDGID), SETATTR of size or owner
//   (FATTR_KILL_SUIDGID) and OPEN with O_TRUNC (FUSE_OPEN_KILL_SUIDGID).
//
// libfuse drops those flags before any handler sees them, so the read hook
// applies them itself (Context::KillSuidSgid) before handing the request on.
// The kernel flags direct-I/O writes by callers without CAP_FSETID whether or
// not KILLPRIV_V2 was negotiated, so the flags are honoured on every mount.
//
// - FUSE_OVER_IO_URING (fs/fuse_uring.h): accepted when offered, unless
//   --no-io-uring; the transport starts once the INIT reply is written.
// - FUSE_SETXATTR_EXT: accepted when offered. The kernel then says with
//   each SETXATTR of an access ACL whether set-group-ID must go
//   (FUSE_SETXATTR_ACL_KILL_SGID: the caller is outside the file's group
//   and lacks CAP_FSETID). libfuse 3.14 reads only the old layout, so the
//   read hook rewrites each SETXATTR to it, with that flag carried as
//   kSetxattrAclKillSgid in the `flags` the handler gets.
//
// Thread-safety: the hooks run on every worker thread at once.
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "fs/fuse_uring.h"

namespace tierfs {

// Set in a setxattr handler's `flags` when the kernel asked to clear
// set-group-ID with this access ACL (never a flag of setxattr(2): the kernel
// refuses any but XATTR_CREATE and XATTR_REPLACE).
constexpr int kSetxattrAclKillSgid = 1 << 30;

class SessionIo {
 public:
  // Installs the functions on a mounted session whose userdata is the
  // daemon's Context. `passthrough`: accept FUSE_PASSTHROUGH if offered;
  // `uring_threads`: threads per queue of FUSE over io_uring, 0 for none.
  bool Install(fuse_session* se, bool passthrough, unsigned uring_threads);
  // Ends the io_uring transport's threads, if it runs; before the session
  // is destroyed.
  void Stop();
  // Whether the kernel says in each SETXATTR if set-group-ID must go
  // (kSetxattrAclKillSgid); else the handler has to decide it itself.
  bool setxattr_ext() const { return setxattr_ext_.load(std::memory_order_relaxed); }
  // Makes the kernel drop inode `ino`'s cached attributes (after tierfs
  // changed them on its own, as clearing set-ID bits does). Attributes
  // only: it takes no lock a request in progress may hold.
  void InvalidateAttrs(uint64_t ino) {
    if (se_) fuse_lowlevel_notify_inval_inode(se_, ino, -1, 0);
  }

 private:
  static ssize_t Read(int fd, void* buf, size_t len, void* userdata);
  static ssize_t Writev(int fd, struct iovec* iov, int count, void* userdata);
  // Sees (and may rewrite) a request of `len` bytes; returns its new length.
  static size_t Inspect(void* buf, size_t len, void* userdata);
  void NoteInit(const void* buf, size_t len);
  // True when the reply accepts FUSE over io_uring (uring_ is then made).
  bool AmendInit(struct iovec* iov, int count, void* userdata);
  fuse_session* se_ = nullptr;
  bool passthrough_wanted_ = false;
  unsigned uring_threads_ = 0;
  std::unique_ptr<FuseUring> uring_;
  std::atomic<bool> uring_running_{false};
  std::atomic<bool> init_pending_{false};
  std::atomic<uint64_t> init_unique_{0};
  std::atomic<uint64_t> offered_{0};       // the kernel's INIT flags (flags2 in the high half)
  std::atomic<bool> setxattr_ext_{false};  // accepted FUSE_SETXATTR_EXT
  // What a request's handler wrote before its reply happens before any
  // request the kernel sends after that reply (a RELEASE after the OPEN
  // that made the handle, a WRITE after the CREATE): the kernel orders
  // them, on whichever thread or ring each arrives. Every reply is a
  // release on this counter and every request an acquire, which states
  // that order where ThreadSanitizer can see it (for /dev/fuse, libfuse's
  // worker mutex happened to). One relaxed-cost atomic per request.
  std::atomic<uint64_t> kernel_order_{0};
};

}  // namespace tierfs

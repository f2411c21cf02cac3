#include "fs/session_io.h"

#include <linux/fuse.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "fs/context.h"

namespace tierfs {

namespace {

// From the kernel's uapi <linux/fuse.h> of 6.9 and later; Debian 12's
// headers (6.1) predate it.
constexpr uint64_t kFusePassthrough = 1ULL << 37;
// fuse_init_out as the kernel reads it: max_stack_depth follows flags2.
constexpr size_t kInitOutStackDepthOffset = 36;
constexpr size_t kInitOutMinSize = 64;

Context& Ctx(void* userdata) {
  return *static_cast<Context*>(userdata);
}

// Reads a request argument of type T that follows the header, if present.
template <typename T>
bool ArgOf(const void* buf, ssize_t n, T* arg) {
  if (n < ssize_t(sizeof(fuse_in_header) + sizeof(T))) return false;
  std::memcpy(arg, static_cast<const char*>(buf) + sizeof(fuse_in_header), sizeof(T));
  return true;
}

// Whether the request asks the filesystem to clear set-ID bits first, and
// why (for the log should clearing fail).
const char* KillRequest(const fuse_in_header& in, const void* buf, ssize_t n) {
  switch (in.opcode) {
    case FUSE_WRITE: {
      fuse_write_in w;
      return ArgOf(buf, n, &w) && (w.write_flags & FUSE_WRITE_KILL_SUIDGID) ? "write" : nullptr;
    }
    case FUSE_SETATTR: {
      fuse_setattr_in s;
      return ArgOf(buf, n, &s) && (s.valid & FATTR_KILL_SUIDGID) ? "setattr" : nullptr;
    }
    case FUSE_OPEN: {
      fuse_open_in o;
      return ArgOf(buf, n, &o) && (o.open_flags & FUSE_OPEN_KILL_SUIDGID) ? "open" : nullptr;
    }
    default:
      return nullptr;
  }
}

// Rewrites a SETXATTR of the extended layout (fuse_setxattr_in, 16 bytes)
// to the one libfuse 3.14 reads (8 bytes: size, flags), the kernel's
// set-group-ID flag folded into `flags`. Returns the request's new length.
size_t ToCompatSetxattr(void* buf, size_t n) {
  constexpr size_t kHeader = sizeof(fuse_in_header);
  constexpr size_t kExt = sizeof(fuse_setxattr_in), kCompat = FUSE_COMPAT_SETXATTR_IN_SIZE;
  fuse_setxattr_in arg;
  if (!ArgOf(buf, ssize_t(n), &arg)) return n;
  char* bytes = static_cast<char*>(buf);
  if (arg.setxattr_flags & FUSE_SETXATTR_ACL_KILL_SGID) arg.flags |= uint32_t(kSetxattrAclKillSgid);
  std::memcpy(bytes + kHeader, &arg, kCompat);
  std::memmove(bytes + kHeader + kCompat, bytes + kHeader + kExt, n - kHeader - kExt);
  fuse_in_header in;
  std::memcpy(&in, buf, sizeof in);
  in.len -= uint32_t(kExt - kCompat);
  std::memcpy(buf, &in, sizeof in);
  return n - (kExt - kCompat);
}

}  // namespace

bool SessionIo::Install(fuse_session* se, bool passthrough, unsigned uring_threads) {
  se_ = se;
  passthrough_wanted_ = passthrough;
  uring_threads_ = uring_threads;
  init_pending_ = true;
  fuse_custom_io io = {};
  io.read = Read;
  io.writev = Writev;
  return fuse_session_custom_io(se, &io, fuse_session_fd(se)) == 0;
}

ssize_t SessionIo::Read(int fd, void* buf, size_t len, void* userdata) {
  ssize_t n = read(fd, buf, len);
  if (n >= ssize_t(sizeof(fuse_in_header))) n = ssize_t(Inspect(buf, size_t(n), userdata));
  return n;
}

size_t SessionIo::Inspect(void* buf, size_t n, void* userdata) {
  fuse_in_header in;
  std::memcpy(&in, buf, sizeof in);
  Context& c = Ctx(userdata);
  (void)c.session_io().kernel_order_.load(std::memory_order_acquire);
  if (in.opcode == FUSE_INIT) {
    c.session_io().NoteInit(buf, n);
  } else if (in.opcode == FUSE_SETXATTR && c.session_io().setxattr_ext()) {
    return ToCompatSetxattr(buf, n);
  } else if (const char* why = KillRequest(in, buf, ssize_t(n))) {
    bool changed = false;
    Status st = c.KillSuidSgid(in.nodeid, &changed);
    if (!st.ok()) spdlog::warn("clearing set-ID bits before a {}: {}", why, st.message());
    // The kernel keeps the mode it has cached (for a day): without this it
    // would go on showing, and honouring at exec, the bits just cleared.
    if (changed) c.session_io().InvalidateAttrs(in.nodeid);
  }
  return n;
}

void SessionIo::NoteInit(const void* buf, size_t len) {
  fuse_in_header in;
  fuse_init_in init;
  if (!ArgOf(buf, ssize_t(len), &init)) return;
  std::memcpy(&in, buf, sizeof in);
  const uint64_t flags2 = (init.flags & FUSE_INIT_EXT) ? uint64_t(init.flags2) << 32 : 0;
  offered_ = init.flags | flags2;
  init_unique_ = in.unique;
}

ssize_t SessionIo::Writev(int fd, struct iovec* iov, int count, void* userdata) {
  SessionIo& self = Ctx(userdata).session_io();
  self.kernel_order_.fetch_add(1, std::memory_order_release);
  ssize_t n = 0;
  if (self.uring_running_.load() && self.uring_->Complete(iov, count, &n)) return n;
  if (!self.init_pending_.load() || !self.AmendInit(iov, count, userdata))
    return writev(fd, iov, count);
  // The kernel takes ring registrations only once it has the INIT reply.
  n = writev(fd, iov, count);
  if (n < 0) return n;
  // Before Start: a ring thread may answer its first request before
  // Start returns (Complete ignores replies until the rings are made).
  self.uring_running_ = true;
  self.uring_->Start();
  return n;
}

void SessionIo::Stop() {
  if (uring_) uring_->Stop();
}

bool SessionIo::AmendInit(struct iovec* iov, int count, void* userdata) {
  if (count < 2 || iov[0].iov_len < sizeof(fuse_out_header) || iov[1].iov_len < kInitOutMinSize)
    return false;
  fuse_out_header out;
  std::memcpy(&out, iov[0].iov_base, sizeof out);
  if (out.unique != init_unique_.load() || offered_.load() == 0) return false;
  init_pending_ = false;
  if (out.error != 0) return false;
  fuse_init_out init;
  std::memcpy(&init, iov[1].iov_base, sizeof init);
  const uint64_t offered = offered_.load();
  if (offered & FUSE_HANDLE_KILLPRIV_V2) init.flags |= FUSE_HANDLE_KILLPRIV_V2;
  if (offered & FUSE_SETXATTR_EXT) {
    init.flags |= FUSE_SETXATTR_EXT;
    setxattr_ext_ = true;  // before the reply: the first SETXATTR comes after it
  }
  // The kernel refuses passthrough together with the writeback cache.
  bool passthrough = false;
  if (passthrough_wanted_ && (offered & kFusePassthrough) && (init.flags & FUSE_INIT_EXT) &&
      !(init.flags & FUSE_WRITEBACK_CACHE)) {
    init.flags2 |= uint32_t(kFusePassthrough >> 32);
    passthrough = true;
  }
  // libfuse asks for max_write's pages; one more lets a max_write-sized
  // write from a buffer that is not page-aligned travel as one request.
  if ((init.flags & FUSE_MAX_PAGES) && init.max_write > 0) {
    const uint32_t page = uint32_t(sysconf(_SC_PAGESIZE));
    const uint32_t pages = (init.max_write + page - 1) / page + 1;
    if (init.max_pages < pages) init.max_pages = uint16_t(pages);
  }
  bool uring = false;
  if (uring_threads_ > 0 && (offered & kFuseOverIoUring) && (init.flags & FUSE_INIT_EXT)) {
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    const size_t pages = (init.flags & FUSE_MAX_PAGES) ? init.max_pages : 32;
    const size_t payload = std::max({size_t(8192), size_t(init.max_write), pages * page});
    auto rings = std::make_unique<FuseUring>(
        se_, fuse_session_fd(se_), uring_threads_, payload,
        [userdata](void* buf, size_t len) { return Inspect(buf, len, userdata); });
    // Accepted only once the rings exist: from the reply on, the kernel
    // holds every request until they are registered (fs/fuse_uring.h).
    Status made = rings->Prepare();
    if (made.ok()) {
      init.flags2 |= uint32_t(kFuseOverIoUring >> 32);
      uring_ = std::move(rings);
      uring = true;
    } else {
      spdlog::warn("{}: requests come through /dev/fuse", made.message());
    }
  } else if (uring_threads_ > 0) {
    spdlog::info(
        "the kernel does not offer FUSE over io_uring (kernel before 6.14, or "
        "/sys/module/fuse/parameters/enable_uring is N): requests come through /dev/fuse");
  }
  std::memcpy(iov[1].iov_base, &init, sizeof init);
  // After the copy above: Debian 12's fuse_init_out calls this field unused.
  if (passthrough) {
    const uint32_t depth = 1;
    std::memcpy(static_cast<char*>(iov[1].iov_base) + kInitOutStackDepthOffset, &depth,
                sizeof depth);
    Ctx(userdata).handles().passthrough().Accept();
  }
  return uring;
}

Status Context::KillSuidSgid(uint64_t ino, bool* changed) {
  if (changed) *changed = false;
  const std::string caps_name = "security.capability";
  Inode n;
  if (!store().GetInode(ino, &n).ok() || !n.is_reg()) return Status::Ok();
  // A held (immutable) file refuses the request itself; change nothing.
  if (!holds_.CheckMutable(ino, "clear set-ID bits").ok()) return Status::Ok();
  auto must_clear = [](mode_t mode) {
    return (mode & S_ISUID) || ((mode & S_ISGID) && (mode & S_IXGRP));
  };
  Status st;
  bool mode_cleared = false;
  if (must_clear(n.mode)) {
    st = store().Update(
        ino,
        [&](Inode& i) {
          if (i.mode & S_ISUID) i.mode &= ~S_ISUID;
          if (i.mode & S_IXGRP) i.mode &= ~S_ISGID;
          i.ctime_ns = NowNs();
          return Status::Ok();
        },
        &n);
    mode_cleared = st.ok();
    if (mode_cleared && changed) *changed = true;
  }
  std::string caps;
  bool dropped = false;
  if (st.ok() && store().GetXattr(ino, caps_name, &caps).ok()) {
    st = store().RemoveXattr(ino, caps_name);
    dropped = st.ok();
  }
  if (!st.ok())
    return Status::Error(st.err(), "inode " + std::to_string(ino) + ": " + st.message());
  // A file written in place on the HDD tier (pinned there): its identity
  // must not keep what the write took away (fs/archived_access.h).
  if ((mode_cleared || dropped) && store().GetInode(ino, &n).ok()) RefreshAccessOnHdd(*this, n);
  return st;
}

}  // namespace tierfs

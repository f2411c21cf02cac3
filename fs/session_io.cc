#include "fs/session_io.h"

#include <linux/fuse.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

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

}  // namespace

bool SessionIo::Install(fuse_session* se, bool passthrough) {
  passthrough_wanted_ = passthrough;
  init_pending_ = true;
  fuse_custom_io io = {};
  io.read = Read;
  io.writev = Writev;
  return fuse_session_custom_io(se, &io, fuse_session_fd(se)) == 0;
}

ssize_t SessionIo::Read(int fd, void* buf, size_t len, void* userdata) {
  ssize_t n = read(fd, buf, len);
  if (n < ssize_t(sizeof(fuse_in_header))) return n;
  fuse_in_header in;
  std::memcpy(&in, buf, sizeof in);
  Context& c = Ctx(userdata);
  if (in.opcode == FUSE_INIT) {
    c.session_io().NoteInit(buf, size_t(n));
  } else if (const char* why = KillRequest(in, buf, n)) {
    Status st = c.KillSuidSgid(in.nodeid);
    if (!st.ok()) spdlog::warn("clearing set-ID bits before a {}: {}", why, st.message());
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
  if (self.init_pending_.load()) self.AmendInit(iov, count, userdata);
  return writev(fd, iov, count);
}

void SessionIo::AmendInit(struct iovec* iov, int count, void* userdata) {
  if (count < 2 || iov[0].iov_len < sizeof(fuse_out_header) || iov[1].iov_len < kInitOutMinSize)
    return;
  fuse_out_header out;
  std::memcpy(&out, iov[0].iov_base, sizeof out);
  if (out.unique != init_unique_.load() || offered_.load() == 0) return;
  init_pending_ = false;
  if (out.error != 0) return;
  fuse_init_out init;
  std::memcpy(&init, iov[1].iov_base, sizeof init);
  const uint64_t offered = offered_.load();
  if (offered & FUSE_HANDLE_KILLPRIV_V2) init.flags |= FUSE_HANDLE_KILLPRIV_V2;
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
  std::memcpy(iov[1].iov_base, &init, sizeof init);
  // After the copy above: Debian 12's fuse_init_out calls this field unused.
  if (passthrough) {
    const uint32_t depth = 1;
    std::memcpy(static_cast<char*>(iov[1].iov_base) + kInitOutStackDepthOffset, &depth,
                sizeof depth);
    Ctx(userdata).handles().passthrough().Accept();
  }
}

Status Context::KillSuidSgid(uint64_t ino) {
  const std::string caps_name = "security.capability";
  Inode n;
  if (!store().GetInode(ino, &n).ok() || !n.is_reg()) return Status::Ok();
  // A held (immutable) file refuses the request itself; change nothing.
  if (!holds_.CheckMutable(ino, "clear set-ID bits").ok()) return Status::Ok();
  auto must_clear = [](mode_t mode) {
    return (mode & S_ISUID) || ((mode & S_ISGID) && (mode & S_IXGRP));
  };
  Status st;
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
  }
  std::string caps;
  if (st.ok() && store().GetXattr(ino, caps_name, &caps).ok())
    st = store().RemoveXattr(ino, caps_name);
  if (!st.ok())
    return Status::Error(st.err(), "inode " + std::to_string(ino) + ": " + st.message());
  return st;
}

}  // namespace tierfs

// write, fallocate, copy_file_range: the calls that write a file's object
// and may spill it to the HDD tier (WithSpill) when the SSD tier is full or
// fails them. The rest of the data path is fs/ops_file.cc. Calls on an
// object go through its tier's Io (tiering/io.h), so a test can fail them;
// the paths that bypass an Io (libfuse's fd copy, copy_file_range) are
// taken only when it is plain POSIX.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <shared_mutex>
#include <string>
#include <vector>

#include "fs/op_table.h"

namespace tierfs {

namespace {

// A large write's pages start towards the disk at once, not at the writer's
// fsync: checkpoint writers fsync right after their last write, and a
// gigabyte of dirty pages then took the disk most of a second after the
// writes were done. Small writes (many small files) are left to the
// kernel's own writeback. make bench, two runs back to back: eight torch
// ranks' stall 1.11 s against 1.29 s without it, one writer 0.89 of raw
// against 0.80 (docs/BENCHMARKS.md).
//
// Such a write is also uncached (RWF_DONTCACHE, Linux 6.14+): a buffered
// write, so ENOSPC still comes at once and the file spills, whose pages
// the kernel writes back at once and drops once they are on the disk.
// Checkpoints are written once and read rarely; kept in the page cache
// they would push out what the job reads (its dataset), and on this VM a
// write into a page cache growing into long-unused memory copied at
// 0.5-1 GB/s, against 5-6 GB/s into the pages the last writeback freed
// (docs/BENCHMARKS.md, sixth run). Where the flag is refused (tmpfs, an
// older kernel), the write is plain and sync_file_range(SYNC_FILE_RANGE_WRITE)
// starts the writeback; it promises nothing (fsync still makes the bytes
// durable and reports any error), so its result is ignored.
constexpr size_t kEarlyWritebackMin = 256 << 10;
#ifndef RWF_DONTCACHE
constexpr int RWF_DONTCACHE = 0x80;  // linux/fs.h of 6.14; Debian 12's headers lack it
#endif

// Writes `n` bytes from `bytes` at `off` to `fd` on tier `t`, uncached
// where the tier's filesystem allows (above): the count, or -errno.
ssize_t WriteBytes(const Tier& t, FileHandle& fh, int fd, const char* bytes, size_t n, off_t off) {
  if (n < kEarlyWritebackMin) return t.io().Pwrite(fd, bytes, n, off);
  if (!fh.uncached_refused.load(std::memory_order_relaxed)) {
    ssize_t w = t.io().Pwritev2(fd, bytes, n, off, RWF_DONTCACHE);
    if (w != -EOPNOTSUPP) return w;
    fh.uncached_refused.store(true, std::memory_order_relaxed);
  }
  ssize_t w = t.io().Pwrite(fd, bytes, n, off);
  if (w > 0) sync_file_range(fd, off, w, SYNC_FILE_RANGE_WRITE);
  return w;
}

// Writes the `len` bytes `in` still holds at `off` through the handle's
// current object: the bytes written, or -errno when none were.
ssize_t WriteAt(Context& c, FileHandle& fh, fuse_bufvec* in, size_t len, off_t off, Status* st) {
  ObjectRef object = c.handles().ObjectOf(fh, true, st);
  if (!object) return -st->err();
  const int fd = object->fd;
  // An fd opened before the HDD tier went away (or read-only) would still
  // write into whatever it names: refuse as ObjectOf does on opening.
  if (object->tier == TierId::kHdd) {
    *st = c.CheckTierWritable(object->tier, fh.ino, "write");
    if (!st->ok()) return -st->err();
  }
  const Tier& t = c.tier(object->tier);
  fuse_buf& src = in->buf[in->idx];
  // The request's bytes, for the stream's checksums (splice is off: Init).
  const char* bytes = (src.flags & FUSE_BUF_IS_FD) || in->count != 1
                          ? nullptr
                          : static_cast<const char*>(src.mem) + in->off;
  auto streamed = [&](ssize_t w) {
    if (w <= 0) return;
    if (bytes)
      fh.live->stream_sums.Wrote(uint64_t(off), bytes, size_t(w));
    else
      fh.live->stream_sums.Spoil();
  };
  if (bytes) {
    // Through the Io, from the request's buffer, and `in` advanced past
    // what was written as fuse_buf_copy would.
    const size_t n = std::min(len, src.size - in->off);
    ssize_t w = WriteBytes(t, fh, fd, bytes, n, off);
    if (w < 0) *st = Status::Errno(int(-w), "write " + t.ObjectPath(fh.ino));
    if (w > 0) in->off += size_t(w);
    streamed(w);
    return w;
  }
  fuse_bufvec out = FUSE_BUFVEC_INIT(len);
  out.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  out.buf[0].fd = fd;
  out.buf[0].pos = off;
  ssize_t n = fuse_buf_copy(&out, in, fuse_buf_copy_flags(0));
  if (n < 0) *st = Status::Errno(int(-n), "write " + t.ObjectPath(fh.ino));
  streamed(n);
  return n;
}

constexpr const char* kSsdFull = "ssd tier full while it is being written";

// Why a call's failure on the SSD tier moves the file to the HDD tier, or
// "" when it does not: `err` is the errno the SSD tier gave (ENOSPC: full;
// EIO: a failing device; EROFS: its filesystem went read-only), `st` what
// failed.
std::string SpillCause(int err, const Status& st) {
  if (err == ENOSPC) return kSsdFull;
  if (err == EIO || err == EROFS) return "ssd tier failed a write: " + st.message();
  return "";
}

// Runs `attempt` (one try of a write, fallocate or copy_file_range on the
// handle's current object, holding LiveState::io shared): Ok, or what
// failed with the errno its target object's tier gave in `*target_err` (0
// when the failure was not the target's). Writes land on the SSD tier;
// when it is full (below its reserve when `check_room`, or the call fails
// with ENOSPC) or fails the call (EIO, EROFS), the file moves to the HDD
// tier (Placement::Spill) and `attempt` runs again there, so the
// application sees ENOSPC only when both tiers are full. The move reads
// back and verifies what the file has on the SSD tier, so it fails, and
// the SSD tier's error stands, when those bytes cannot be had; a file with
// nothing there yet (a new one) just goes on on the HDD tier.
template <typename Attempt>
Status WithSpill(Context& c, FileHandle& fh, const char* what, bool check_room, Attempt attempt) {
  Status st;
  for (int tries = 0; tries < 3; ++tries) {
    std::string cause;
    {
      std::shared_lock<std::shared_mutex> io(fh.live->io);
      if (check_room && tries == 0 && fh.tier == TierId::kSsd && c.space().SsdNearlyFull()) {
        cause = kSsdFull;
      } else {
        int target_err = 0;
        st = attempt(&target_err);
        if (st.ok() || fh.tier != TierId::kSsd) return st;
        cause = SpillCause(target_err, st);
        if (cause.empty()) return st;
        if (target_err != ENOSPC) c.space().RecheckSsdHealth();  // new files may avoid it
      }
    }
    Status moved = c.placement().Spill(fh.ino, *fh.live, cause);
    if (!moved.ok()) {
      spdlog::warn("{} of inode {}: {}, and spilling to hdd failed: {}", what, fh.ino, cause,
                   moved.message());
      if (tries > 0) return st;  // the SSD tier's own error stands
    }
  }
  return st.ok() ? Status::Error(ENOSPC, std::string(what) + " of inode " + std::to_string(fh.ino) +
                                             ": no tier took it")
                 : st;
}

// fuse_buf_copy advances `in` past what it wrote, so a retry resumes.
Status WriteBuf(fuse_req_t req, fuse_ino_t, fuse_bufvec* in, off_t off, fuse_file_info* fi) {
  Context& c = Ctx(req);
  FileHandle& fh = *Handle(fi);
  // Not for the kernel's writeback of mmap'ed pages (FUSE_WRITE_CACHE): a
  // store through a mapping keeps them on ext4 too, and write(2) through
  // the page cache passed the kernel's own file_remove_privs.
  if (!fi->writepage) {
    Status dropped = c.DropCapabilities(fh.ino, *fh.live);
    if (!dropped.ok()) return dropped;
  }
  const size_t len = fuse_buf_size(in);
  size_t done = 0;
  Status st = WithSpill(c, fh, "write", true, [&](int* target_err) {
    Status failed;
    const ssize_t n = WriteAt(c, fh, in, len - done, off + off_t(done), &failed);
    if (n > 0) done += size_t(n);
    if (n < 0) *target_err = int(-n);
    if (n < 0 || done == len) return failed;
    *target_err = ENOSPC;  // a short write: the tier filled up
    return Status::Error(ENOSPC, "write of inode " + std::to_string(fh.ino) + ": short");
  });
  if (done > 0) {
    c.table().NoteWrite(*fh.live);
    fh.wrote = true;
  }
  if (done > 0 || st.ok()) {
    fuse_reply_write(req, done);
    return Status::Ok();
  }
  return st;
}

Status Fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t off, off_t len, fuse_file_info* fi) {
  Context& c = Ctx(req);
  FileHandle& fh = *Handle(fi);
  // Every mode, as ext4 (file_modified) does: a punched hole changes bytes.
  Status st = c.DropCapabilities(fh.ino, *fh.live);
  if (!st.ok()) return st;
  // No look at the SSD tier's room first: a punched hole frees space.
  st = WithSpill(c, fh, "fallocate", false, [&](int* target_err) {
    Status failed;
    ObjectRef object = c.handles().ObjectOf(fh, true, &failed);
    if (!object) {
      *target_err = failed.err();
      return failed;
    }
    // As in WriteAt: an fd opened before its tier went away still writes.
    if (object->tier == TierId::kHdd) {
      failed = c.CheckTierWritable(object->tier, fh.ino, "fallocate");
      if (!failed.ok()) return failed;
    }
    const Tier& t = c.tier(object->tier);
    fh.live->stream_sums.Spoil();
    const int rc = t.io().Fallocate(object->fd, mode, off, len);
    if (rc == 0) return Status::Ok();
    *target_err = -rc;
    return Status::Errno(-rc, "fallocate " + t.ObjectPath(fh.ino));
  });
  if (!st.ok()) return st;
  c.table().NoteWrite(*fh.live);
  fh.wrote = true;
  fuse_reply_err(req, 0);
  return Status::Ok();
}

// Copies up to 1 MiB when the tiers are different filesystems (or either
// Io is not plain POSIX): the bytes copied, or -errno; `reading` tells
// which side failed.
ssize_t CopyByReadWrite(Io& in_io, int in, off_t off_in, Io& out_io, int out, off_t off_out,
                        size_t len, bool* reading) {
  std::vector<char> buf(std::min<size_t>(len, 1 << 20));
  *reading = true;
  ssize_t n = in_io.Pread(in, buf.data(), buf.size(), off_in);
  if (n <= 0) return n;
  *reading = false;
  return out_io.Pwrite(out, buf.data(), size_t(n), off_out);
}

Status CopyFileRange(fuse_req_t req, fuse_ino_t, off_t off_in, fuse_file_info* fi_in, fuse_ino_t,
                     off_t off_out, fuse_file_info* fi_out, size_t len, int flags) {
  Context& c = Ctx(req);
  Status st;
  ObjectRef from = c.handles().ObjectOf(*Handle(fi_in), false, &st);
  if (!from && st.err() == ENOENT) {
    fuse_reply_write(req, 0);  // no object: an empty source
    return Status::Ok();
  }
  if (!from) return st;
  FileHandle& hin = *Handle(fi_in);
  FileHandle& hout = *Handle(fi_out);
  const Tier& tin = c.tier(from->tier);
  st = c.DropCapabilities(hout.ino, *hout.live);
  if (!st.ok()) return st;
  ssize_t copied = 0;
  st = WithSpill(c, hout, "copy_file_range", true, [&](int* target_err) {
    Status failed;
    ObjectRef to = c.handles().ObjectOf(hout, true, &failed);
    if (!to) {
      *target_err = failed.err();
      return failed;
    }
    if (to->tier == TierId::kHdd) {
      failed = c.CheckTierWritable(TierId::kHdd, hout.ino, "copy_file_range");
      if (!failed.ok()) return failed;
    }
    const Tier& tout = c.tier(to->tier);
    hout.live->stream_sums.Spoil();
    off_t at_in = off_in, at_out = off_out;  // a retry starts over
    bool reading = false;
    ssize_t n = -EXDEV;
    if (tin.io().IsPlainPosix() && tout.io().IsPlainPosix()) {
      n = copy_file_range(from->fd, &at_in, to->fd, &at_out, len, flags);
      if (n < 0) n = -errno;
    }
    if (n == -EXDEV || n == -EOPNOTSUPP)
      n = CopyByReadWrite(tin.io(), from->fd, off_in, tout.io(), to->fd, off_out, len, &reading);
    if (n >= 0) {
      copied = n;
      return Status::Ok();
    }
    if (!reading) *target_err = int(-n);
    return Status::Errno(int(-n), reading ? "read " + tin.ObjectPath(hin.ino)
                                          : "copy to " + tout.ObjectPath(hout.ino));
  });
  if (!st.ok()) return st;
  c.table().NoteWrite(*hout.live);
  hout.wrote = true;
  fuse_reply_write(req, size_t(copied));
  return Status::Ok();
}

}  // namespace

void AddWriteOps(fuse_lowlevel_ops* ops) {
  ops->write_buf = Op<WriteBuf, "write", WritesThroughHandle>;
  ops->fallocate = Op<Fallocate, "fallocate", WritesThroughHandle>;
  ops->copy_file_range = Op<CopyFileRange, "copy_file_range", WritesThroughHandle>;
}

}  // namespace tierfs

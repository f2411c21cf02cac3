#include "fs/verified_read.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>

#include "fs/context.h"
#include "fs/fuse_uring.h"
#include "fs/verify_object.h"
#include "meta/block_sums.h"

namespace tierfs {

namespace {

// Whether the sums `v` holds may still be trusted for the file's bytes: a
// writer (open now, or a write since they were loaded) makes them stale.
bool StillValid(const VerifyState& v, const LiveState& live) {
  return live.writers.load() == 0 && live.last_write.load() <= v.epoch;
}

void Load(Context& c, FileHandle& fh, VerifyState& v) {
  v.loaded = true;
  v.epoch = c.table().epoch();
  Inode n;
  if (fh.live->writers.load() > 0 || !c.store().GetInode(fh.ino, &n).ok() ||
      !c.store().GetBlockSums(fh.ino, &v.sums).ok()) {
    v.off = true;
    return;
  }
  v.checksum = n.checksum;
  v.size = n.size;
}

// A block that does not match: report it (once per handle and block), mark
// the inode, and return the EIO the read gets.
Status Corrupt(Context& c, FileHandle& fh, VerifyState& v, uint64_t block, uint64_t actual) {
  const Tier& t = c.tier(TierId::kHdd);
  std::string path = c.table().KnownPath(fh.ino);
  if (path.empty()) path = "inode " + std::to_string(fh.ino);
  const CorruptBlock b{fh.ino,     path,  v.size,
                       v.checksum, block, MismatchText(v.sums[block], actual)};
  c.metrics().CountCorruptRead();
  if (v.reported.insert(block).second) ReportCorrupt(c, t, b, "verified read", "");
  return Status::Error(EIO, "read " + path + " on tier " + t.name() + ": block " +
                                std::to_string(block) + " does not match its checksum (" +
                                b.detail + ")");
}

// Blocks a handle keeps verified beyond those being read: the kernel's
// readahead (4 MiB, Init) asks for about this many at once.
constexpr size_t kKeptBlocks = 4;

// The handle's object opened O_DIRECT (null where the tier refuses it),
// reopened when the handle's descriptor names another object (a move).
// Called with v.mu held.
std::shared_ptr<const int> DirectFd(Context& c, FileHandle& fh, VerifyState& v, int fd) {
  if (v.direct_refused) return nullptr;
  struct stat want, have;
  if (fstat(fd, &want) != 0) return nullptr;
  if (v.direct_fd && fstat(*v.direct_fd, &have) == 0 && have.st_ino == want.st_ino &&
      have.st_dev == want.st_dev)
    return v.direct_fd;
  Status st;
  const int direct = c.tier(TierId::kHdd).OpenObject(fh.ino, O_RDONLY | O_DIRECT, &st);
  if (direct < 0) {
    if (st.err() == EINVAL) v.direct_refused = true;
    return nullptr;
  }
  v.direct_fd = std::shared_ptr<const int>(new int(direct), [](const int* p) {
    close(*p);
    delete p;
  });
  return v.direct_fd;
}

// Reads block `b` of the object and checks it, with `lock` released
// meanwhile: its verified bytes, EIO (corrupt, or the read failed), or
// ESTALE when a writer changed the file meanwhile (the read is then served
// plainly).
//
// `into`, when not empty, is the reply's own buffer (FuseUring::ReplyBuffer,
// room for the block rounded up for O_DIRECT): the block is read there and
// not kept, since the buffer is the kernel's again once replied.
Status LoadBlock(Context& c, FileHandle& fh, VerifyState& v, int fd, uint64_t b,
                 std::unique_lock<std::mutex>& lock, std::span<char> into,
                 std::shared_ptr<const char[]>* out) {
  const Tier& t = c.tier(TierId::kHdd);
  const uint64_t start = b * kSumBlockBytes;
  const size_t len = size_t(std::min<uint64_t>(kSumBlockBytes, v.size - start));
  const uint64_t expected = v.sums[b];
  v.blocks.push_back({b, nullptr});  // others wanting `b` wait for this load
  std::shared_ptr<const int> direct = DirectFd(c, fh, v, fd);
  // A sequential reader asks for the next blocks soon: without O_DIRECT,
  // have the kernel read them meanwhile, so the disk works while this one
  // is served (with it, the kernel's own readahead requests load them).
  if (!direct && b + 1 < v.sums.size() && v.last_loaded + 1 == int64_t(b))
    posix_fadvise(fd, off_t(start + kSumBlockBytes), off_t(2 * kSumBlockBytes),
                  POSIX_FADV_WILLNEED);
  v.last_loaded = int64_t(b);
  lock.unlock();
  // O_DIRECT wants the buffer, offset and length aligned; the last block's
  // read asks for the rounded-up length and gets the file's end.
  const size_t want = direct ? (len + kDirectAlign - 1) / kDirectAlign * kDirectAlign : len;
  std::shared_ptr<char[]> buf;
  if (into.size() >= want)  // not owned: the ring entry's buffer
    buf = std::shared_ptr<char[]>(std::shared_ptr<char[]>(), into.data());
  else
    buf = std::shared_ptr<char[]>(static_cast<char*>(std::aligned_alloc(kDirectAlign, want)),
                                  [](char* p) { std::free(p); });
  BlockRead r;
  if (buf)
    r = ReadObjectBlock(t, fh.ino, fd, direct ? *direct : -1, b, len, buf.get());
  else
    r.error = Status::Errno(ENOMEM, "read " + t.ObjectPath(fh.ino));
  const size_t got = r.got;
  const uint64_t actual = r.actual;
  const Status& read_error = r.error;
  lock.lock();
  if (r.direct_refused) {
    v.direct_refused = true;
    v.direct_fd = nullptr;
  }
  for (auto it = v.blocks.begin(); it != v.blocks.end(); ++it) {
    if (it->index == b && !it->bytes) {
      v.blocks.erase(it);
      break;
    }
  }
  v.block_done.notify_all();
  if (!read_error.ok()) return read_error;
  if (actual == expected && got == len) {
    if (into.size() >= want) {
      *out = std::move(buf);
      return Status::Ok();
    }
    v.blocks.push_back({b, buf});
    size_t ready = 0;
    for (const VerifyState::Block& k : v.blocks) ready += k.bytes != nullptr;
    for (auto it = v.blocks.begin(); ready > kKeptBlocks && it != v.blocks.end();) {
      if (it->bytes) {
        it = v.blocks.erase(it);
        --ready;
      } else {
        ++it;
      }
    }
    *out = std::move(buf);
    return Status::Ok();
  }
  // Not damage but a change: a writer came, or the file was rewritten.
  Inode n;
  if (!StillValid(v, *fh.live) || !c.store().GetInode(fh.ino, &n).ok() ||
      n.checksum != v.checksum) {
    v.off = true;
    return Status::Error(ESTALE, "changed");
  }
  return Corrupt(c, fh, v, b, actual);
}

// The verified bytes of block `b`: kept, being loaded by another of the
// handle's reads (waited for), or loaded now.
Status GetBlock(Context& c, FileHandle& fh, VerifyState& v, int fd, uint64_t b,
                std::unique_lock<std::mutex>& lock, std::span<char> into,
                std::optional<FuseUring::AnyCpu>& any_cpu, std::shared_ptr<const char[]>* out) {
  for (;;) {
    if (v.off) return Status::Error(ESTALE, "changed");
    auto it = std::find_if(v.blocks.begin(), v.blocks.end(),
                           [b](const VerifyState::Block& k) { return k.index == b; });
    if (it == v.blocks.end()) {
      // Reading and hashing a block is a millisecond of work the caller's
      // readahead asked for while the caller copies out the block before:
      // on a ring thread pinned to the caller's CPU, the two took turns.
      // Off its CPU until the reply is out (re-pinned before it, the
      // thread waited for that CPU to commit); a read of kept blocks
      // only stays pinned, without two affinity changes per request.
      if (!any_cpu.has_value()) any_cpu.emplace();
      return LoadBlock(c, fh, v, fd, b, lock, into, out);
    }
    if (it->bytes) {
      *out = it->bytes;
      return Status::Ok();
    }
    v.block_done.wait(lock);
  }
}

// The verified pieces of the read, as `iov` into `held` blocks. Never
// replies: once the reply is out, the application may close the file and
// the handle (with `v`) be freed by another thread's release.
Status VerifyRange(Context& c, FileHandle& fh, int fd, size_t size, off_t off,
                   std::vector<std::shared_ptr<const char[]>>& held, std::vector<iovec>& iov,
                   std::optional<FuseUring::AnyCpu>& any_cpu, bool* handled) {
  {
    std::lock_guard<std::mutex> lock(fh.mu);
    if (!fh.verify) fh.verify = std::make_unique<VerifyState>();
  }
  VerifyState& v = *fh.verify;
  std::unique_lock<std::mutex> lock(v.mu);
  if (!v.loaded) Load(c, fh, v);
  if (!v.off && !StillValid(v, *fh.live)) v.off = true;
  if (v.off) return Status::Ok();
  *handled = true;
  if (uint64_t(off) >= v.size || size == 0) return Status::Ok();
  const uint64_t end = std::min<uint64_t>(uint64_t(off) + size, v.size);
  const uint64_t first = uint64_t(off) / kSumBlockBytes, last = (end - 1) / kSumBlockBytes;
  // A read of one whole block (the kernel's readahead asks for 1 MiB at a
  // block's start) is loaded into the reply's own buffer where it has one.
  std::span<char> into;
  if (first == last && uint64_t(off) == first * kSumBlockBytes &&
      end == std::min<uint64_t>(v.size, (first + 1) * kSumBlockBytes))
    into = FuseUring::ReplyBuffer();
  for (uint64_t b = first; b <= last; ++b) {
    std::shared_ptr<const char[]> bytes;
    Status st = GetBlock(c, fh, v, fd, b, lock, into, any_cpu, &bytes);
    if (st.err() == ESTALE) {
      *handled = false;  // served plainly
      return Status::Ok();
    }
    if (!st.ok()) return st;
    const uint64_t bstart = b * kSumBlockBytes;
    const uint64_t from = std::max<uint64_t>(uint64_t(off), bstart);
    const uint64_t to = std::min<uint64_t>(end, bstart + kSumBlockBytes);
    iov.push_back({const_cast<char*>(bytes.get()) + (from - bstart), size_t(to - from)});
    held.push_back(std::move(bytes));
  }
  return Status::Ok();
}

}  // namespace

Status VerifiedRead(Context& c, fuse_req_t req, FileHandle& fh, int fd, size_t size, off_t off,
                    bool* handled) {
  *handled = false;
  std::optional<FuseUring::AnyCpu> any_cpu;  // set by a block load (GetBlock)
  std::vector<std::shared_ptr<const char[]>> held;
  std::vector<iovec> iov;
  Status st = VerifyRange(c, fh, fd, size, off, held, iov, any_cpu, handled);
  if (*handled && st.ok()) {
    if (iov.empty()) {
      fuse_reply_buf(req, nullptr, 0);
    } else {
      fuse_reply_iov(req, iov.data(), int(iov.size()));
    }
  }
  return st;
}

}  // namespace tierfs

#include "tiering/uring_copy.h"

#include "meta/block_sums.h"

#include <liburing.h>
#include <sys/stat.h>
#include <unistd.h>
#include "meta/xxh3.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

namespace tierfs {

namespace {

constexpr size_t kPage = 4096;

// Page-aligned so the same buffers serve O_DIRECT should a tier want it.
struct AlignedBuffer {
  explicit AlignedBuffer(size_t bytes) {
    if (posix_memalign(&p, kPage, bytes) != 0) p = nullptr;
  }
  ~AlignedBuffer() { std::free(p); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  char* data() const { return static_cast<char*>(p); }
  void* p = nullptr;
};

struct HashState {
  HashState() : s(XXH3_createState()) { XXH3_64bits_reset(s); }
  ~HashState() { XXH3_freeState(s); }
  XXH3_state_t* s;
};

size_t PageUp(size_t n) {
  return (n + kPage - 1) / kPage * kPage;
}

bool Aborted(const CopyParams& p) {
  return p.should_abort && *p.should_abort && (*p.should_abort)();
}

Status AbortStatus() {
  return Status::Error(ECANCELED, "aborted: the file was written");
}

// A copy whose source ends early was changed under it (the move is retried);
// a read-back that ends early found a broken copy.
Status EndedEarly(const CopyParams& p, bool copying) {
  if (copying) return Status::Error(ECANCELED, "source " + p.src_name + " shrank during the copy");
  return Status::Error(EIO, p.src_name + " is shorter than the file it should equal");
}

// What one chunk asks of the kernel. Reads ask for whole pages (an O_DIRECT
// read must; a buffered one just stops at end of file), and are complete once
// `len` bytes arrived. Direct writes send whole pages, zero-padded.
size_t ReadLength(size_t len) {
  return PageUp(len);
}
size_t WriteLength(const CopyParams& p, char* buf, size_t len) {
  if (!p.direct_out || len % kPage == 0) return len;
  std::memset(buf + len, 0, PageUp(len) - len);
  return PageUp(len);
}

// Whether a chunk of the file read lies wholly in a hole, asked for chunks in
// increasing offsets: one lseek(SEEK_DATA) and one lseek(SEEK_HOLE) per data
// run, so a dense file costs two calls and a sparse one two per extent.
// Where the filesystem cannot tell (lseek fails), everything is data. Past
// the file's end nothing is a hole: those chunks are read, and a file that
// is shorter than it should be is caught as it always was.
class HoleFinder {
 public:
  HoleFinder(int fd, bool on) : fd_(fd), on_(on) {
    if (on_) on_ = LearnEnd();
  }
  bool IsHole(uint64_t off, size_t len) {
    if (!on_) return false;
    if (off >= data_end_) Learn(off);
    const bool hole = on_ && off + len <= data_start_ && off + len <= end_;
    skipped_ = skipped_ || hole;
    return hole;
  }
  // Whether any chunk was a hole (the copy then ends short of `size`).
  bool skipped() const { return skipped_; }

 private:
  bool LearnEnd() {
    struct stat st;
    if (fstat(fd_, &st) != 0) return false;
    end_ = uint64_t(st.st_size);
    return true;
  }
  // The first data run at or after `off`: [data_start_, data_end_).
  void Learn(uint64_t off) {
    const off_t data = lseek(fd_, off_t(off), SEEK_DATA);
    if (data < 0) {
      // ENXIO: no data after `off`, a hole up to the end (which may have
      // moved since the start).
      on_ = errno == ENXIO && LearnEnd();
      data_start_ = data_end_ = UINT64_MAX;
      return;
    }
    const off_t hole = lseek(fd_, data, SEEK_HOLE);
    if (hole <= data) {
      on_ = false;
      return;
    }
    data_start_ = uint64_t(data);
    data_end_ = uint64_t(hole);
  }

  const int fd_;
  bool on_;
  bool skipped_ = false;
  uint64_t end_ = 0;  // the file's size when last asked
  uint64_t data_start_ = 0;
  uint64_t data_end_ = 0;
};

// The zeros a hole reads as, for the hash: allocated at the first hole.
class Zeros {
 public:
  explicit Zeros(size_t chunk) : chunk_(chunk) {}
  const char* get() {
    if (!buf_) buf_ = std::make_unique<char[]>(chunk_);  // value-initialized: zeros
    return buf_.get();
  }

 private:
  const size_t chunk_;
  std::unique_ptr<char[]> buf_;
};

bool Plain(const Io* io) {
  return io == nullptr || io->IsPlainPosix();
}
ssize_t ReadAt(const CopyParams& p, int fd, void* buf, size_t n, off_t off) {
  if (p.in_io) return p.in_io->Pread(fd, buf, n, off);
  ssize_t r = pread(fd, buf, n, off);
  return r < 0 ? -errno : r;
}
ssize_t WriteAt(const CopyParams& p, int fd, const void* buf, size_t n, off_t off) {
  if (p.out_io) return p.out_io->Pwrite(fd, buf, n, off);
  ssize_t r = pwrite(fd, buf, n, off);
  return r < 0 ? -errno : r;
}

// The fallback (no io_uring, or an Io that is not plain POSIX): one buffer,
// synchronous, same pacing and hashing. `out` < 0: hash only.
Status CopySync(int in, int out, uint64_t size, const CopyParams& p, char* buf, size_t chunk,
                HoleFinder* holes, Zeros* zeros, BlockSummer* h) {
  for (uint64_t off = 0; off < size;) {
    if (Aborted(p)) return AbortStatus();
    const size_t len = size_t(std::min<uint64_t>(chunk, size - off));
    if (holes->IsHole(off, len)) {
      h->Update(zeros->get(), len);
      if (out >= 0 && p.progress) p.progress->fetch_add(len, std::memory_order_relaxed);
      off += len;
      continue;
    }
    if (p.throttle) p.throttle->Pace(len);
    for (size_t done = 0; done < len;) {
      ssize_t n = ReadAt(p, in, buf + done, ReadLength(len) - done, off_t(off + done));
      if (n == -EINTR) continue;
      if (n < 0) return Status::Errno(int(-n), "read " + p.src_name);
      if (n == 0) return EndedEarly(p, out >= 0);
      done += size_t(n);
    }
    h->Update(buf, len);
    const size_t wlen = out < 0 ? 0 : WriteLength(p, buf, len);
    for (size_t done = 0; done < wlen;) {
      ssize_t n = WriteAt(p, out, buf + done, wlen - done, off_t(off + done));
      if (n == -EINTR) continue;
      if (n <= 0) return Status::Errno(n < 0 ? int(-n) : EIO, "write " + p.dst_name);
      done += size_t(n);
    }
    if (out >= 0 && p.progress) p.progress->fetch_add(len, std::memory_order_relaxed);
    off += len;
  }
  return Status::Ok();
}

enum class SlotState { kFree, kReading, kRead, kWriting };
struct Slot {
  char* buf = nullptr;
  uint64_t off = 0;
  size_t len = 0;     // bytes of the file this chunk holds
  size_t io_len = 0;  // bytes the current request moves in all (len, or padded)
  size_t done = 0;    // bytes of the current request completed
  bool hole = false;  // in a hole: nothing read or written, hashed as zeros
  SlotState state = SlotState::kFree;
};

// The io_uring path. Each slot cycles free -> reading -> read -> writing ->
// free (hash only, or a hole: read -> free; a hole is read at once). Reads may complete out of
// order, but the hash must see the bytes in file order, so read slots wait in `order` and are
// hashed (then written) from its front only. Returns with nothing in flight
// unless `*stranded`: then the kernel may still use the buffers and the
// caller must not free them.
Status CopyUring(io_uring* ring, int in, int out, uint64_t size, const CopyParams& p, char* bufs,
                 size_t chunk, unsigned depth, HoleFinder* holes, Zeros* zeros, BlockSummer* h,
                 bool* stranded) {
  std::vector<Slot> slots(depth);
  for (unsigned i = 0; i < depth; ++i) slots[i].buf = bufs + size_t(i) * chunk;
  std::deque<Slot*> order;
  unsigned inflight = 0;
  uint64_t next_off = 0;
  Status err;
  // At most one request per slot, so the SQ (depth entries) never runs out.
  auto queue = [&](Slot& s) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring);
    if (s.state == SlotState::kReading)
      io_uring_prep_read(sqe, in, s.buf + s.done, s.io_len - s.done, s.off + s.done);
    else
      io_uring_prep_write(sqe, out, s.buf + s.done, s.io_len - s.done, s.off + s.done);
    io_uring_sqe_set_data(sqe, &s);
    inflight++;
  };
  // Hashes the read slots at the front of `order`, then writes them.
  auto hash_in_order = [&] {
    while (err.ok() && !order.empty() && order.front()->state == SlotState::kRead) {
      Slot& s = *order.front();
      order.pop_front();
      h->Update(s.hole ? zeros->get() : s.buf, s.len);
      if (out < 0 || s.hole) {
        if (out >= 0 && p.progress) p.progress->fetch_add(s.len, std::memory_order_relaxed);
        s.state = SlotState::kFree;
        continue;
      }
      s.io_len = WriteLength(p, s.buf, s.len);
      s.done = 0;
      s.state = SlotState::kWriting;
      queue(s);
    }
  };
  for (;;) {
    for (Slot& s : slots) {
      if (!err.ok() || next_off >= size) break;
      if (s.state != SlotState::kFree) continue;
      if (Aborted(p)) {
        err = AbortStatus();
        break;
      }
      s.off = next_off;
      s.len = size_t(std::min<uint64_t>(chunk, size - next_off));
      s.hole = holes->IsHole(s.off, s.len);
      if (s.hole) {
        s.state = SlotState::kRead;
        order.push_back(&s);
        next_off += s.len;
        continue;
      }
      s.io_len = ReadLength(s.len);
      s.done = 0;
      s.state = SlotState::kReading;
      if (p.throttle) p.throttle->Pace(s.len);
      queue(s);
      // Start it now: under a bandwidth cap the next Pace() sleeps, and this
      // read should run meanwhile. A failed submit leaves it queued for the
      // submit below.
      io_uring_submit(ring);
      order.push_back(&s);
      next_off += s.len;
    }
    hash_in_order();
    if (inflight == 0) {
      if (!err.ok() || next_off >= size) break;
      continue;  // every slot was a hole: fill them again
    }
    int rc = io_uring_submit_and_wait(ring, 1);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      *stranded = true;  // unknown which requests the kernel took
      return Status::Errno(-rc, "io_uring submit while copying " + p.src_name);
    }
    io_uring_cqe* cqe;
    while (io_uring_peek_cqe(ring, &cqe) == 0) {
      Slot& s = *static_cast<Slot*>(io_uring_cqe_get_data(cqe));
      const int res = cqe->res;
      io_uring_cqe_seen(ring, cqe);
      inflight--;
      const bool reading = s.state == SlotState::kReading;
      if (res == -EINTR || res == -EAGAIN) {
        if (err.ok())
          queue(s);  // same request again
        else
          s.state = SlotState::kFree;
        continue;
      }
      if (res <= 0) {
        if (err.ok()) {
          if (reading && res == 0)
            err = EndedEarly(p, out >= 0);
          else
            err = Status::Errno(res < 0 ? -res : EIO, (reading ? "read " : "write ") +
                                                          (reading ? p.src_name : p.dst_name));
        }
        s.state = SlotState::kFree;
        continue;
      }
      s.done += size_t(res);
      const size_t needed = reading ? s.len : s.io_len;
      if (s.done < needed) {  // short transfer: ask for the rest
        if (err.ok())
          queue(s);
        else
          s.state = SlotState::kFree;
        continue;
      }
      if (!reading && p.progress) p.progress->fetch_add(s.len, std::memory_order_relaxed);
      s.state = reading ? SlotState::kRead : SlotState::kFree;
    }
    hash_in_order();
  }
  return err;
}

// Both entry points: `out` < 0 hashes only.
Status Run(int in, int out, uint64_t size, const CopyParams& p, uint64_t* hash) {
  const unsigned depth = std::max(1u, p.queue_depth);
  const size_t chunk = std::max(kPage, PageUp(p.chunk_bytes));
  auto bufs = std::make_unique<AlignedBuffer>(chunk * depth);
  if (!bufs->data()) return Status::Error(ENOMEM, "copy buffers for " + p.src_name);
  BlockSummer h(p.block_sums != nullptr);
  HoleFinder holes(in, p.skip_holes);
  Zeros zeros(chunk);
  Status st;
  io_uring ring;
  if (Plain(p.in_io) && Plain(p.out_io) && io_uring_queue_init(depth, &ring, 0) == 0) {
    bool stranded = false;
    st = CopyUring(&ring, in, out, size, p, bufs->data(), chunk, depth, &holes, &zeros, &h,
                   &stranded);
    io_uring_queue_exit(&ring);
    // Requests may outlive the ring's teardown; leaking beats a kernel write
    // into freed memory on a path that should never run.
    if (stranded) static_cast<void>(bufs.release());
  } else {
    st = CopySync(in, out, size, p, bufs->data(), chunk, &holes, &zeros, &h);
  }
  // A padded direct write left the file longer than the source; skipped
  // holes at the end left it shorter.
  if (st.ok() && out >= 0 && (holes.skipped() || (p.direct_out && size % kPage != 0))) {
    const int rc = p.out_io ? p.out_io->Ftruncate(out, off_t(size))
                            : (ftruncate(out, off_t(size)) == 0 ? 0 : -errno);
    if (rc != 0) st = Status::Errno(-rc, "truncate " + p.dst_name);
  }
  if (st.ok()) {
    std::vector<uint64_t> blocks;
    *hash = h.Finish(&blocks);
    if (p.block_sums) *p.block_sums = std::move(blocks);
  }
  return st;
}

}  // namespace

Status CopyAndHash(int in, int out, uint64_t size, const CopyParams& p, uint64_t* hash) {
  return Run(in, out, size, p, hash);
}

Status ReadAndHash(int fd, uint64_t size, const CopyParams& p, uint64_t* hash) {
  return Run(fd, -1, size, p, hash);
}

Status HashFile(int fd, uint64_t size, size_t chunk_bytes, const std::string& name,
                uint64_t* hash) {
  const size_t chunk = std::max(kPage, PageUp(chunk_bytes));
  AlignedBuffer buf(chunk);
  if (!buf.data()) return Status::Error(ENOMEM, "verify buffer for " + name);
  HashState h;
  for (uint64_t off = 0; off < size;) {
    ssize_t n = pread(fd, buf.data(), size_t(std::min<uint64_t>(chunk, size - off)), off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Errno(errno, "read back " + name);
    if (n == 0) return Status::Error(EIO, name + " is shorter than the source");
    XXH3_64bits_update(h.s, buf.data(), size_t(n));
    off += uint64_t(n);
  }
  *hash = XXH3_64bits_digest(h.s);
  return Status::Ok();
}

}  // namespace tierfs

#include "fs/fuse_uring.h"

#include <liburing.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <system_error>

namespace tierfs {

namespace {

// The kernel's uapi <linux/fuse.h> of 6.14 and later (Debian 12's predates
// it): the buffers of one ring entry and the 80 bytes of command in an
// SQE128.
constexpr size_t kInOutHeaderSize = 128;
constexpr size_t kOpHeaderSize = 128;
struct RingEntInOut {
  uint64_t flags;
  uint64_t commit_id;  // given back with the reply
  uint32_t payload_sz;
  uint32_t padding;
  uint64_t reserved;
};
struct RingHeader {
  char in_out[kInOutHeaderSize];  // fuse_in_header, then fuse_out_header
  char op_in[kOpHeaderSize];      // the operation's own header (may be empty)
  RingEntInOut ent;
};
struct CmdReq {
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;
  uint8_t padding[6];
};
constexpr uint32_t kCmdRegister = 1;
constexpr uint32_t kCmdCommitAndFetch = 2;
constexpr size_t kPage = 4096;  // the room before the payload for the headers

}  // namespace

struct FuseUring::Entry {
  uint16_t qid = 0;
  Ring* ring = nullptr;
  RingHeader* header = nullptr;  // its own page: the kernel pins it
  char* area = nullptr;          // kPage of room, then the payload buffer
  iovec iov[2] = {};
  uint32_t last_cmd = kCmdRegister;
  uint64_t commit_id = 0;
  // The request being served, 0 when none; Complete finds its entry by it.
  std::atomic<uint64_t> unique{0};
};

namespace {

// Per ring thread (never shared): the entry whose request it is serving,
// for ReplyBuffer and for Complete to find it without a search, and the
// CPU it is pinned to, for AnyCpu.
thread_local FuseUring::Entry* serving = nullptr;
thread_local int pinned_cpu = -1;

void PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

}  // namespace

std::span<char> FuseUring::ReplyBuffer() {
  if (!serving || serving->unique.load() == 0) return {};
  return {static_cast<char*>(serving->iov[1].iov_base), serving->iov[1].iov_len};
}

FuseUring::AnyCpu::AnyCpu() {
  if (pinned_cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int i = 0, n = get_nprocs_conf(); i < n && i < CPU_SETSIZE; ++i) CPU_SET(i, &set);
  if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0) pinned_to_ = pinned_cpu;
}

FuseUring::AnyCpu::~AnyCpu() {
  if (pinned_to_ >= 0) PinTo(pinned_to_);
}

struct FuseUring::Ring {
  io_uring uring{};
  bool ready = false;
  int wake_fd = -1;      // Stop writes it; a poll on it ends the thread
  std::mutex submit_mu;  // the SQ: replies may come from other threads
  std::vector<std::unique_ptr<Entry>> entries;
};

FuseUring::FuseUring(fuse_session* se, int dev_fd, unsigned threads_per_queue, size_t payload_size,
                     Inspect inspect)
    : se_(se),
      dev_fd_(dev_fd),
      threads_per_queue_(threads_per_queue == 0 ? 1 : threads_per_queue),
      payload_size_(payload_size),
      inspect_(std::move(inspect)) {}

FuseUring::~FuseUring() {
  Stop();
  for (auto& r : rings_) {
    if (r->ready) io_uring_queue_exit(&r->uring);
    if (r->wake_fd >= 0) close(r->wake_fd);
    for (auto& e : r->entries) {
      if (e->header) munmap(e->header, kPage);
      if (e->area) munmap(e->area, kPage + payload_size_);
    }
  }
}

namespace {

// The SQ has room for every entry's command and the wake-up poll; should it
// not, what is queued goes to the kernel first.
io_uring_sqe* NextSqe(io_uring* u) {
  io_uring_sqe* sqe = io_uring_get_sqe(u);
  while (sqe == nullptr) {
    io_uring_submit(u);
    sqe = io_uring_get_sqe(u);
  }
  return sqe;
}

// An SQE128 carries the command in its last 80 bytes (sqe->cmd).
constexpr size_t kCmdOffset = 48;
static_assert(offsetof(io_uring_sqe, addr3) == kCmdOffset);

void PrepareCmd(io_uring_sqe* sqe, int fd, uint32_t cmd, FuseUring::Entry* e, uint16_t qid,
                uint64_t commit_id) {
  unsigned char* raw = reinterpret_cast<unsigned char*>(sqe);
  std::memset(raw, 0, 128);
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fd;
  sqe->cmd_op = cmd;
  io_uring_sqe_set_data(sqe, e);
  CmdReq req{};
  req.qid = qid;
  req.commit_id = commit_id;
  std::memcpy(raw + kCmdOffset, &req, sizeof req);
}

}  // namespace

Status FuseUring::Prepare() {
  const unsigned queues = unsigned(get_nprocs_conf());
  for (unsigned q = 0; q < queues; ++q) {
    for (unsigned t = 0; t < threads_per_queue_; ++t) {
      auto ring = std::make_unique<Ring>();
      Ring* r = ring.get();
      rings_.push_back(std::move(ring));
      io_uring_params p{};
      p.flags = IORING_SETUP_SQE128;
      int rc = io_uring_queue_init_params(4, &r->uring, &p);
      if (rc < 0)
        return Status::Errno(-rc,
                             "FUSE over io_uring: set up a ring for queue " + std::to_string(q));
      r->ready = true;
      r->wake_fd = eventfd(0, EFD_CLOEXEC);
      if (r->wake_fd < 0) return Status::Errno(errno, "FUSE over io_uring: eventfd");
      auto e = std::make_unique<Entry>();
      e->qid = uint16_t(q);
      e->ring = r;
      Entry* entry = e.get();
      r->entries.push_back(std::move(e));  // the destructor unmaps what was mapped
      void* h = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (h != MAP_FAILED) entry->header = static_cast<RingHeader*>(h);
      void* a = mmap(nullptr, kPage + payload_size_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (a != MAP_FAILED) entry->area = static_cast<char*>(a);
      if (!entry->header || !entry->area)
        return Status::Errno(errno, "FUSE over io_uring: buffers for queue " + std::to_string(q));
      entry->iov[0] = {entry->header, sizeof(RingHeader)};
      entry->iov[1] = {entry->area + kPage, payload_size_};
    }
  }
  // Before the first thread: its first request may be answered at once.
  started_.store(true);
  // The threads wait for Start. One that cannot start (a pids limit, no
  // memory) fails the whole transport: every queue needs its entries.
  try {
    for (auto& r : rings_) threads_.emplace_back([this, ring = r.get()] { Serve(ring); });
  } catch (const std::system_error& e) {
    return Status::Error(EAGAIN, "FUSE over io_uring: started " + std::to_string(threads_.size()) +
                                     " of " + std::to_string(rings_.size()) +
                                     " ring threads: " + e.what());
  }
  spdlog::info("FUSE over io_uring: {} queues, {} threads each", queues, threads_per_queue_);
  return Status::Ok();
}

void FuseUring::Start() {
  SetGo(Go::kRegister);
}

void FuseUring::SetGo(Go go) {
  {
    std::lock_guard<std::mutex> lock(go_mu_);
    if (go_ != Go::kWait) return;
    go_ = go;
  }
  go_cv_.notify_all();
}

void FuseUring::Stop() {
  SetGo(Go::kAbandon);  // threads still waiting for Start end at once
  for (auto& r : rings_)
    if (r->wake_fd >= 0) {
      const uint64_t one = 1;
      if (write(r->wake_fd, &one, sizeof one) < 0) {
      }
    }
  if (threads_.empty()) return;
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  // Closing a ring cancels its entries' commands in the kernel.
  for (auto& r : rings_)
    if (r->ready) {
      io_uring_queue_exit(&r->uring);
      r->ready = false;
    }
  spdlog::info(
      "FUSE over io_uring: {} requests served through the ring, {} replies made in "
      "their buffer",
      served_.load(), in_place_.load());
}

// A queue without entries would leave its CPU's requests waiting forever,
// so a ring that fails ends the session, as SIGTERM does: libfuse's
// workers, asleep in read(2) on /dev/fuse, notice the end only when a
// signal interrupts them.
void FuseUring::EndSession() {
  fuse_session_exit(se_);
  kill(getpid(), SIGTERM);
}

void FuseUring::Serve(Ring* ring) {
  // On its queue's CPU: the caller of a request waits on that CPU, so the
  // ring thread runs there without a cross-CPU wake-up.
  {
    std::unique_lock<std::mutex> lock(go_mu_);
    go_cv_.wait(lock, [&] { return go_ != Go::kWait; });
    if (go_ == Go::kAbandon) return;
  }
  pinned_cpu = ring->entries[0]->qid;
  PinTo(pinned_cpu);
  // Registered from this thread: the kernel fills an entry in the task
  // that submitted its command, so each ring's requests wake its own thread.
  {
    std::lock_guard<std::mutex> lock(ring->submit_mu);
    for (auto& e : ring->entries) {
      io_uring_sqe* sqe = NextSqe(&ring->uring);
      PrepareCmd(sqe, dev_fd_, kCmdRegister, e.get(), e->qid, 0);
      sqe->addr = uint64_t(uintptr_t(e->iov));
      sqe->len = 2;
    }
    io_uring_sqe* poll = NextSqe(&ring->uring);
    io_uring_prep_poll_add(poll, ring->wake_fd, POLLIN);
    io_uring_sqe_set_data(poll, nullptr);
    const int rc = io_uring_submit(&ring->uring);
    if (rc < 0) {
      // The kernel holds every request until each queue has an entry.
      spdlog::error("FUSE over io_uring: register queue {}: {}; ending the session",
                    ring->entries[0]->qid, strerror(-rc));
      EndSession();
      return;
    }
  }
  for (;;) {
    io_uring_cqe* cqe = nullptr;
    const int rc = io_uring_wait_cqe(&ring->uring, &cqe);
    if (rc == -EINTR) continue;
    if (rc < 0) {
      spdlog::error("FUSE over io_uring: waiting for a request: {}", strerror(-rc));
      EndSession();
      return;
    }
    auto* e = static_cast<Entry*>(io_uring_cqe_get_data(cqe));
    const int res = cqe->res;
    io_uring_cqe_seen(&ring->uring, cqe);
    if (!e) return;  // the wake-up: Stop
    if (!Handle(ring, e, res)) return;
  }
}

// One completion of entry `e`: a request to serve, or why there is none.
bool FuseUring::Handle(Ring* ring, Entry* e, int res) {
  (void)commits_.load(std::memory_order_acquire);
  if (res == -EINTR || res == -EAGAIN) {  // try the same command again
    std::lock_guard<std::mutex> lock(ring->submit_mu);
    io_uring_sqe* sqe = NextSqe(&ring->uring);
    PrepareCmd(sqe, dev_fd_, e->last_cmd, e, e->qid, e->commit_id);
    if (e->last_cmd == kCmdRegister) {
      sqe->addr = uint64_t(uintptr_t(e->iov));
      sqe->len = 2;
    }
    io_uring_submit(&ring->uring);
    return true;
  }
  if (res < 0) {
    // The connection's end (unmount, abort) or a cancelled command.
    if (e->last_cmd == kCmdRegister && res != -ENOTCONN) {
      // The kernel, told in INIT that the ring comes, holds every request
      // until each queue has an entry: a refused one would hang the mount.
      spdlog::error(
          "FUSE over io_uring: the kernel refused an entry of queue {}: {}; ending the session",
          e->qid, strerror(-res));
      EndSession();
    } else if (res != -ENOTCONN && res != -ECONNABORTED && res != -ECANCELED) {
      spdlog::error("FUSE over io_uring: queue {}: {}; ending the session", e->qid, strerror(-res));
      EndSession();
    }
    return false;
  }
  fuse_in_header in;
  std::memcpy(&in, e->header->in_out, sizeof in);
  const size_t payload = e->header->ent.payload_sz;
  e->commit_id = e->header->ent.commit_id;
  // The operation's header is what the length leaves after the payload.
  const size_t op = in.len >= sizeof in + payload ? in.len - sizeof in - payload : SIZE_MAX;
  if (op > kOpHeaderSize || payload > payload_size_) {
    spdlog::error("FUSE over io_uring: request {} (opcode {}) of {} bytes with {} of payload",
                  in.unique, in.opcode, in.len, payload);
    EndSession();
    return false;
  }
  char* start = e->area + kPage - sizeof in - op;
  std::memcpy(start, &in, sizeof in);
  std::memcpy(start + sizeof in, e->header->op_in, op);
  e->unique.store(in.unique);
  served_.fetch_add(1, std::memory_order_relaxed);
  fuse_buf buf{};
  buf.size = inspect_ ? inspect_(start, in.len) : in.len;
  buf.mem = start;
  serving = e;
  fuse_session_process_buf(se_, &buf);
  serving = nullptr;
  return true;
}

bool FuseUring::Complete(const struct iovec* iov, int count, ssize_t* written) {
  if (!started_.load() || count < 1 || iov[0].iov_len < sizeof(fuse_out_header)) return false;
  fuse_out_header out;
  std::memcpy(&out, iov[0].iov_base, sizeof out);
  if (out.unique == 0) return false;  // a notification
  // Most replies come from the thread serving the request.
  Entry* e = serving && serving->unique.load() == out.unique ? serving : nullptr;
  for (auto& r : rings_)
    for (auto& x : r->entries)
      if (!e && x->unique.load() == out.unique) e = x.get();
  if (!e) return false;
  size_t n = 0;
  for (int i = 1; i < count; ++i) {
    if (n + iov[i].iov_len > payload_size_) {
      out.error = -EIO;
      n = 0;
      spdlog::error("FUSE over io_uring: a reply larger than the {} byte buffer", payload_size_);
      break;
    }
    char* to = e->area + kPage + n;
    if (iov[i].iov_base == to)
      in_place_.fetch_add(1, std::memory_order_relaxed);  // ReplyBuffer: already there
    else
      std::memcpy(to, iov[i].iov_base, iov[i].iov_len);
    n += iov[i].iov_len;
  }
  out.len = uint32_t(sizeof out + n);
  std::memcpy(e->header->in_out, &out, sizeof out);
  e->header->ent.payload_sz = uint32_t(n);
  e->unique.store(0);
  commits_.fetch_add(1, std::memory_order_release);
  Ring* r = e->ring;
  {
    std::lock_guard<std::mutex> lock(r->submit_mu);
    e->last_cmd = kCmdCommitAndFetch;
    io_uring_sqe* sqe = NextSqe(&r->uring);
    PrepareCmd(sqe, dev_fd_, kCmdCommitAndFetch, e, e->qid, e->commit_id);
    const int rc = io_uring_submit(&r->uring);
    if (rc < 0) {
      spdlog::error("FUSE over io_uring: commit a reply: {}", strerror(-rc));
      *written = rc;
      return true;
    }
  }
  *written = ssize_t(sizeof out + n);
  return true;
}

}  // namespace tierfs

// FUSE over io_uring (kernel 6.14 and later with CONFIG_FUSE_IO_URING, and
// the fuse module's enable_uring parameter set): the kernel hands requests
// to buffers the daemon registered with io_uring commands on /dev/fuse, one
// queue per possible CPU, and a reply travels together with the fetch of
// the next request in one submission, instead of a read(2) and a writev(2)
// per request. libfuse 3.14 does not speak it; tierfs owns the session's
// I/O (fs/session_io.h), which accepts FUSE_OVER_IO_URING in the INIT reply
// when asked to and starts this transport once that reply is written.
//
// Each ring request is laid out as /dev/fuse delivers it (header, the
// operation's header, its payload; the payload is not copied) and given to
// fuse_session_process_buf on the ring thread that fetched it. The reply
// comes back through SessionIo::Writev, which hands replies to ring
// requests to Complete; notifications, and the FORGET and INTERRUPT
// requests the kernel keeps on /dev/fuse, still go through /dev/fuse.
//
// Threads: the kernel sends a request to the queue of the CPU its caller
// runs on, and uses the ring only once every queue has an entry. Each queue
// gets `threads_per_queue` threads with an io_uring and one entry each, so a
// request that blocks (an fsync, a move) holds up one thread, not a CPU.
//
// A request that reads a disk and hashes a megabyte (a verified read) may
// leave its CPU for the time it takes (AnyCpu), and reply from the entry's
// own buffer without a copy (ReplyBuffer): pinned to the caller's CPU, a
// streaming reader and the ring thread filling its readahead took turns on
// one CPU, and verified reads ran at 0.6-0.9 GB/s against 1.3 through
// /dev/fuse (docs/BENCHMARKS.md).
//
// Errors: once the INIT reply accepts the transport, the kernel holds every
// request until each queue has an entry registered (kernel 6.14+
// fuse_block_alloc), so whatever can fail (rings, buffers, threads) is made
// before the reply accepts it (Prepare). When that fails (io_uring turned
// off by kernel.io_uring_disabled or a container's seccomp profile, no
// memory, a pids limit) the reply does not accept it and requests keep
// coming through /dev/fuse, where the libfuse loop reads. A registration
// the kernel refuses, or a ring thread that fails later (an unexpected
// error from the kernel, a malformed request), ends the session as SIGTERM
// does: a queue left without entries would hang its CPU's requests.
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>
#include <sys/uio.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "meta/status.h"

namespace tierfs {

// The INIT flag (in flags2, bit 41 of the combined flags) that offers and
// accepts the transport; <linux/fuse.h> of Debian 12 predates it.
constexpr uint64_t kFuseOverIoUring = 1ULL << 41;

class FuseUring {
 public:
  // Sees each request, laid out as /dev/fuse delivers it, before libfuse;
  // may rewrite it in place, and returns its length then.
  using Inspect = std::function<size_t(void* buf, size_t len)>;
  // `dev_fd`: the session's /dev/fuse descriptor; `payload_size`: the
  // kernel's largest payload, max(8 KiB, max_write, max_pages pages) of
  // the INIT reply (it refuses smaller buffers).
  FuseUring(fuse_session* se, int dev_fd, unsigned threads_per_queue, size_t payload_size,
            Inspect inspect);
  ~FuseUring();
  FuseUring(const FuseUring&) = delete;
  FuseUring& operator=(const FuseUring&) = delete;

  // Makes the rings, their buffers and threads (which wait for Start);
  // before the INIT reply accepts the transport. An error leaves nothing
  // running (the destructor cleans up).
  Status Prepare();
  // Lets the threads register every entry; only after the INIT reply
  // reached the kernel (it refuses registrations before).
  void Start();
  // Ends and joins the threads (the session's end; idempotent), and logs
  // how many requests came through the ring and how many of their replies
  // were made in ReplyBuffer.
  void Stop();
  // If `iov` is the reply to a request fetched through the ring, copies it
  // there and commits it, setting *written; false for anything else.
  bool Complete(const struct iovec* iov, int count, ssize_t* written);

  // On a ring thread serving a request: that entry's reply buffer (page
  // aligned, the payload size of the constructor). A reply whose data
  // starts at the buffer's start is committed without a copy, so a
  // handler may read the bytes it replies with straight into it. Empty on
  // other threads and once the request has its reply; after the reply the
  // kernel may put the next request there at any time.
  static std::span<char> ReplyBuffer();

  // While one lives, the ring thread that made it may run on any CPU (a
  // no-op on other threads): for work that should not share the caller's
  // CPU with the caller, such as reading and hashing a block the caller's
  // readahead asked for while the caller copies out the one before.
  class AnyCpu {
   public:
    AnyCpu();
    ~AnyCpu();
    AnyCpu(const AnyCpu&) = delete;
    AnyCpu& operator=(const AnyCpu&) = delete;

   private:
    int pinned_to_ = -1;  // the CPU to return to; -1: nothing was changed
  };

  struct Entry;
  struct Ring;

 private:
  // What the threads made by Prepare do: wait, register (Start), or end
  // without registering (Stop before Start).
  enum class Go { kWait, kRegister, kAbandon };
  void SetGo(Go go);
  void Serve(Ring* ring);
  bool Handle(Ring* ring, Entry* e, int res);
  void EndSession();

  fuse_session* const se_;
  const int dev_fd_;
  const unsigned threads_per_queue_;
  const size_t payload_size_;
  const Inspect inspect_;
  std::vector<std::unique_ptr<Ring>> rings_;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> served_{0};
  std::atomic<uint64_t> in_place_{0};  // replies made in ReplyBuffer (logged at Stop)
  std::atomic<bool> started_{false};   // rings_ is complete; ring requests may exist
  std::mutex go_mu_;
  std::condition_variable go_cv_;
  Go go_ = Go::kWait;  // guarded by go_mu_
  // A reply copied into an entry by one thread happens before the next
  // request the kernel puts there, read on the entry's ring thread: a
  // release per commit, an acquire per completion (the kernel orders them;
  // this says so where ThreadSanitizer can see it).
  std::atomic<uint64_t> commits_{0};
};

}  // namespace tierfs

// InodeReaper: frees the inodes the kernel has forgotten, in batches, off
// the thread that read the FORGET. An unlink storm (a dataset removed, old
// checkpoints thinned) brings one FORGET per file; each freed its inode in
// an LMDB write transaction of its own on a libfuse worker woken for it,
// work that competed for the CPU with the next unlinks. A FORGET now only
// queues its inode: the reaper wakes when the queue stops being empty,
// lets more gather for a moment, and frees them all with one transaction.
//
// Nothing is lost to a crash meanwhile: an inode is queued only after the
// unlink that dropped its last link recorded it as an orphan in LMDB
// (meta/txn.cc RemoveEntry), and Context::Recover frees every orphan at the
// next mount. Inode numbers are never reused (meta/store.h Create), so an
// inode freed a few milliseconds late cannot be confused with a new one.
//
// Thread-safety: Add from any thread; Start and Stop from one.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tierfs {

class InodeReaper {
 public:
  // Frees a batch of inodes (Context::FreeInodes); called on the reaper's
  // thread, or on Add's caller when the reaper is not running.
  using FreeBatch = std::function<void(const std::vector<uint64_t>&)>;
  explicit InodeReaper(FreeBatch free) : free_(std::move(free)) {}
  ~InodeReaper() { Stop(); }
  InodeReaper(const InodeReaper&) = delete;
  InodeReaper& operator=(const InodeReaper&) = delete;

  void Start();
  // Frees everything queued, then ends the thread (idempotent).
  void Stop();
  // Queues inode `ino` to be freed; frees it at once when not started.
  void Add(uint64_t ino);

 private:
  void Run();

  const FreeBatch free_;
  std::mutex mu_;
  std::condition_variable queued_;  // the queue stopped being empty, or Stop
  std::vector<uint64_t> queue_;     // guarded by mu_
  bool running_ = false;            // guarded by mu_
  bool stopping_ = false;           // guarded by mu_
  std::thread thread_;
};

}  // namespace tierfs

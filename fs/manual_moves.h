// ManualMoves: the queue of moves an admin or a file's owner asked for
// (tierctl move, the control socket's `move`). The control socket's handler
// threads are few (fs/control.h): a move that copies gigabytes must not hold
// one, so a request only queues a job and returns its id; one worker thread
// of this unit carries the jobs out in order through Placement::Move (its
// throttle, journal and audit records apply), and `Get` reports a job's
// progress (bytes copied of its total: the files done plus the current
// file's copy, Placement::Progress) for tierctl to poll.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <thread>

#include "fs/placement.h"
#include "meta/mutex.h"
#include "meta/store.h"

namespace tierfs {

class ManualMoves {
 public:
  struct Job {
    enum class State : uint8_t { kQueued, kMoving, kDone, kFailed };
    uint64_t id = 0;
    uint64_t ino = 0;  // a file, or a directory: every file below it
    TierId to = TierId::kSsd;
    std::string path;
    uint32_t uid = 0;  // who asked
    State state = State::kQueued;
    uint64_t files = 0, files_done = 0;
    uint64_t bytes = 0;    // of all its files (known once it started)
    uint64_t copied = 0;   // bytes moved so far (Get adds the current copy)
    std::string error;     // the first failure, naming the path
    uint64_t current = 0;  // the file being moved now
  };

  ManualMoves(Store& store, Placement& placement) : store_(store), placement_(placement) {}
  ~ManualMoves() { Stop(); }
  ManualMoves(const ManualMoves&) = delete;
  ManualMoves& operator=(const ManualMoves&) = delete;

  // Queues a move of `ino` (`path` in the mount) to `to`; returns the job's
  // id. Starts the worker on first use. ESHUTDOWN after Stop.
  Status Enqueue(uint64_t ino, TierId to, const std::string& path, uint32_t uid, uint64_t* id);
  // The job `id` as it stands; false when unknown (or long forgotten: the
  // last kKeep finished jobs are kept).
  bool Get(uint64_t id, Job* out);
  // Finishes the move in progress, drops the queue and joins the worker.
  void Stop();

  static const char* StateName(Job::State s);

 private:
  static constexpr size_t kKeep = 256;
  void Loop();
  void RunJob(uint64_t id);
  bool Stopping();

  Store& store_;
  Placement& placement_;
  Mutex mu_;
  CondVar wake_;
  std::map<uint64_t, Job> jobs_ GUARDED_BY(mu_);
  std::deque<uint64_t> queue_ GUARDED_BY(mu_);
  uint64_t next_id_ GUARDED_BY(mu_) = 1;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;  // started under mu_; joined by Stop
};

}  // namespace tierfs

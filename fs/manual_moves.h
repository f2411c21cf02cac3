// ManualMoves: the queue of moves an admin or a file's owner asked for
// (tierctl move, the control socket's `move`). The control socket's handler
// threads are few (fs/control.h): a move that copies gigabytes must not hold
// one, so a request only queues a job and returns its id; one worker thread
// of this unit carries the jobs out in order through Placement::Move (its
// throttle, journal and audit records apply), and `Get` reports a job's
// progress (bytes copied of its total: the files done plus the current
// file's copy, Placement::Progress) for tierctl to poll. A file of a job
// that was not moved (it failed, or the daemon stopped first) gets the hold
// it had before the request back (Holds::UndoMoveHolds): a failed move
// must not leave a hold naming a tier the file is not on, which no rule
// would ever move it past.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "fs/holds.h"
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

  // `audit` journals the holds a failed move gives back.
  ManualMoves(Store& store, Placement& placement, Holds& holds,
              std::function<void(const AuditRecord&)> audit)
      : store_(store), placement_(placement), holds_(holds), audit_(std::move(audit)) {}
  ~ManualMoves() { Stop(); }
  ManualMoves(const ManualMoves&) = delete;
  ManualMoves& operator=(const ManualMoves&) = delete;

  // Queues a move of `ino` (`path` in the mount) to `to`; returns the job's
  // id. Starts the worker on first use. ESHUTDOWN after Stop. `undo`: the
  // holds the request set for the move (Holds::HoldForMove), given back
  // where the move does not happen (failed, or dropped by Stop) through
  // Holds::UndoMoveHolds, with an "unpin" audit record; none for a pin
  // that names a tier (the pin was asked for, not only the move).
  Status Enqueue(uint64_t ino, TierId to, const std::string& path, uint32_t uid, uint64_t* id,
                 Holds::MoveHolds undo = {});
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
  // Gives back the holds of job `job` where its move did not happen.
  void Undo(const Job& job, const Holds::MoveHolds& undo, bool failed);

  Store& store_;
  Placement& placement_;
  Holds& holds_;
  const std::function<void(const AuditRecord&)> audit_;
  Mutex mu_;
  CondVar wake_;
  std::map<uint64_t, Job> jobs_ GUARDED_BY(mu_);
  std::deque<uint64_t> queue_ GUARDED_BY(mu_);
  // The holds to give back, of the jobs queued or running that have any.
  std::map<uint64_t, Holds::MoveHolds> undo_ GUARDED_BY(mu_);
  uint64_t next_id_ GUARDED_BY(mu_) = 1;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;  // started under mu_; joined by Stop
};

}  // namespace tierfs

#include "fs/manual_moves.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <unordered_set>
#include <vector>

namespace tierfs {

const char* ManualMoves::StateName(Job::State s) {
  switch (s) {
    case Job::State::kQueued:
      return "queued";
    case Job::State::kMoving:
      return "moving";
    case Job::State::kDone:
      return "done";
    case Job::State::kFailed:
      return "failed";
  }
  return "?";
}

Status ManualMoves::Enqueue(uint64_t ino, TierId to, const std::string& path, uint32_t uid,
                            uint64_t* id, Holds::MoveHolds undo) {
  MutexLock lock(&mu_);
  if (stop_) return Status::Error(ESHUTDOWN, "move " + path + ": the daemon is stopping");
  Job job;
  job.id = next_id_++;
  job.ino = ino;
  job.to = to;
  job.path = path;
  job.uid = uid;
  jobs_[job.id] = job;
  queue_.push_back(job.id);
  if (!undo.entries.empty()) undo_[job.id] = std::move(undo);
  *id = job.id;
  // Forget the oldest finished jobs (ids grow with time).
  size_t finished = 0;
  for (const auto& [k, j] : jobs_) finished += j.state >= Job::State::kDone;
  for (auto it = jobs_.begin(); finished > kKeep && it != jobs_.end();) {
    if (it->second.state >= Job::State::kDone) {
      it = jobs_.erase(it);
      --finished;
    } else {
      ++it;
    }
  }
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  wake_.SignalAll();
  return Status::Ok();
}

bool ManualMoves::Get(uint64_t id, Job* out) {
  uint64_t current = 0;
  {
    MutexLock lock(&mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return false;
    *out = it->second;
    current = out->state == Job::State::kMoving ? out->current : 0;
  }
  uint64_t copied = 0;
  if (current != 0 && placement_.Progress(current, &copied)) out->copied += copied;
  return true;
}

void ManualMoves::Stop() {
  std::vector<std::pair<Job, Holds::MoveHolds>> dropped;
  {
    MutexLock lock(&mu_);
    stop_ = true;
    for (uint64_t id : queue_) {
      jobs_[id].state = Job::State::kFailed;
      jobs_[id].error = jobs_[id].path + ": not moved, the daemon stopped";
      auto u = undo_.find(id);
      if (u == undo_.end()) continue;
      dropped.emplace_back(jobs_[id], std::move(u->second));
      undo_.erase(u);
    }
    queue_.clear();
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
  for (const auto& [job, undo] : dropped) Undo(job, undo, true);
}

void ManualMoves::Undo(const Job& job, const Holds::MoveHolds& undo, bool failed) {
  const int restored = holds_.UndoMoveHolds(undo, failed);
  if (restored == 0 || !audit_) return;
  AuditRecord rec;
  rec.action = "unpin";
  rec.rule = "manual";
  rec.path = job.path;
  rec.ino = job.ino;
  rec.to = TierName(job.to);
  rec.detail = "by uid " + std::to_string(job.uid) + ", the move to " + TierName(job.to) +
               " did not happen (" + (job.error.empty() ? "failed" : job.error) +
               "): " + std::to_string(restored) + " holds as they were before it";
  audit_(rec);
}

bool ManualMoves::Stopping() {
  MutexLock lock(&mu_);
  return stop_;
}

void ManualMoves::Loop() {
  MutexLock lock(&mu_);
  while (true) {
    while (!stop_ && queue_.empty()) wake_.Wait(&mu_);
    if (stop_) return;
    const uint64_t id = queue_.front();
    queue_.pop_front();
    jobs_[id].state = Job::State::kMoving;
    lock.Unlock();
    RunJob(id);
    lock.Lock();
  }
}

void ManualMoves::RunJob(uint64_t id) {
  Job job;
  {
    MutexLock lock(&mu_);
    job = jobs_[id];
  }
  // The files to move, hard links once, each with its path and size.
  struct File {
    uint64_t ino, size;
    std::string path;
  };
  std::vector<File> files;
  std::unordered_set<uint64_t> seen;
  Status st = store_.WalkBelow(job.ino, job.path, [&](const Store::TreeEntry& e) {
    if (e.inode->is_reg() && seen.insert(e.inode->ino).second)
      files.push_back({e.inode->ino, e.inode->size, e.path});
    return Status::Ok();
  });
  uint64_t total = 0;
  for (const File& f : files) total += f.size;
  {
    MutexLock lock(&mu_);
    jobs_[id].files = files.size();
    jobs_[id].bytes = total;
    if (!st.ok()) jobs_[id].error = st.message();
  }
  std::string first = st.ok() ? "" : st.message();
  for (const File& f : files) {
    {
      MutexLock lock(&mu_);
      if (stop_) {
        first = first.empty() ? job.path + ": not all moved, the daemon stopped" : first;
        break;
      }
      jobs_[id].current = f.ino;
    }
    // Busy (the policy or the evictor moving it, a writer): try again for
    // a while before calling it failed.
    Status moved = placement_.Move(f.ino, job.to, "manual", f.path);
    for (int tries = 0; moved.err() == EBUSY && tries < 50 && !Stopping(); ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      moved = placement_.Move(f.ino, job.to, "manual", f.path);
    }
    if (!moved.ok()) {
      spdlog::warn("manual move of {} to {}: {}", f.path, TierName(job.to), moved.message());
      if (first.empty()) first = f.path + ": " + moved.message();
    }
    MutexLock lock(&mu_);
    Job& j = jobs_[id];
    j.current = 0;
    j.files_done++;
    if (moved.ok()) j.copied += f.size;
  }
  Holds::MoveHolds undo;
  {
    MutexLock lock(&mu_);
    Job& j = jobs_[id];
    j.error = first;
    auto u = undo_.find(id);
    if (u != undo_.end()) {
      undo = std::move(u->second);
      undo_.erase(u);
    }
    job = j;
  }
  // Before the job reads as ended: whoever polls it then sees the holds
  // as they stay.
  if (!undo.entries.empty()) Undo(job, undo, !first.empty());
  MutexLock lock(&mu_);
  jobs_[id].state = first.empty() ? Job::State::kDone : Job::State::kFailed;
}

}  // namespace tierfs

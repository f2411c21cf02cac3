#include "fs/placement.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <sstream>
#include <thread>
#include <vector>

#include "fs/holds.h"
#include "fs/object_attrs.h"
#include "tiering/mover.h"

namespace tierfs {

namespace {

// How the log names a file: the inode always (with hard links a path is
// only one of its names), and the path when it has one.
std::string Naming(uint64_t ino, const std::string& path) {
  std::string s = "inode " + std::to_string(ino);
  return path.empty() ? s : s + " ('" + path + "')";
}

}  // namespace

Placement::Placement(Store& store, Tiers tiers, InodeTable& table, AuditFn audit,
                     const TierLimits& limits, Metrics* metrics)
    : store_(store),
      tiers_(tiers),
      table_(table),
      audit_(std::move(audit)),
      throttle_(limits.move_bytes_per_sec, limits.max_moves),
      metrics_(metrics) {}

Status Placement::Move(uint64_t ino, TierId to, const std::string& why, const std::string& path) {
  Inode n;
  Status st = store_.GetInode(ino, &n);
  if (!st.ok()) return st;
  if (!n.is_reg()) return Status::Error(EINVAL, "inode " + std::to_string(ino) + " is not a file");
  if (n.tier == to) return Status::Ok();
  if (read_only_.load())
    return Status::Error(EROFS, "inode " + std::to_string(ino) + " not moved to " + TierName(to) +
                                    ": the mount is read-only (-o ro)");
  if (cancelled_.load())
    return Status::Error(ECANCELED, "inode " + std::to_string(ino) + " not moved to " +
                                        TierName(to) + ": the daemon is stopping");
  // Unlinked, waiting to be freed (fs/inode_reaper.h): its object may be
  // gone already while its record stays, and no one can name its bytes.
  if (n.nlink == 0)
    return Status::Error(ECANCELED, "inode " + std::to_string(ino) + " was removed");
  Job job{ino, n.tier, to, why, path, "", true, nullptr};
  // The mover works through descriptors opened at mount, which would keep
  // writing into a tier directory that has been removed or unmounted.
  for (TierId t : {n.tier, to}) {
    st = tiers_[t].CheckHealth();
    if (!st.ok()) return Refused(job, st);
  }
  const uint64_t since = table_.epoch();
  if (table_.BusySince(ino, since))
    return Status::Error(EBUSY, "inode " + std::to_string(ino) +
                                    " is open for writing or being read through passthrough");
  // Asked once: a mapping made after this needs a handle opened for
  // writing, which BusySince sees (its release notes a write).
  if (MappedForWriting(ino, n.tier))
    return Status::Error(EBUSY, "inode " + std::to_string(ino) + ": its object " +
                                    tiers_[n.tier].ObjectPath(ino) +
                                    " is still mapped for writing after its last close");
  job.abort = [this, ino, since] { return cancelled_.load() || table_.BusySince(ino, since); };
  return Run(job);
}

void Placement::CancelMoves() {
  cancelled_.store(true);
}

bool Placement::MappedForWriting(uint64_t ino, TierId tier) {
  const std::shared_ptr<LiveState> live = table_.FindLive(ino);
  if (live && live->handles.load() > 0) return false;
  return tiers_[tier].WritableElsewhere(ino);
}

Status Placement::Spill(uint64_t ino, LiveState& live, const std::string& cause) {
  // No write of this inode runs while its bytes change tier.
  std::unique_lock<std::shared_mutex> io(live.io);
  Inode n;
  Status st = store_.GetInode(ino, &n);
  if (!st.ok()) return st;
  if (n.tier == TierId::kHdd) return Status::Ok();  // another writer spilled it
  // The kernel reads and writes the object itself through a backing file
  // it holds; a copy elsewhere would leave it on the old one.
  if (live.passthrough_handles.load() > 0)
    return Status::Error(
        EBUSY, "inode " + std::to_string(ino) + " is open through passthrough: it cannot move");
  const Job job{ino, TierId::kSsd, TierId::kHdd, "spill", "", cause, false, nullptr};
  st = tiers_.hdd->CheckHealth();
  if (!st.ok()) return Refused(job, st);
  return Run(job);
}

Status Placement::Run(const Job& job) {
  std::shared_ptr<std::atomic<uint64_t>> progress;
  {
    MutexLock lock(&moving_mu_);
    if (!moving_.insert(job.ino).second)
      return Status::Error(EBUSY, "inode " + std::to_string(job.ino) + " is already moving");
    progress = std::make_shared<std::atomic<uint64_t>>(0);
    progress_[job.ino] = progress;
  }
  MoveOptions opt;
  opt.progress = progress.get();
  if (job.throttled) opt.throttle = &throttle_;
  opt.switch_lock = &Lock(job.ino);
  if (job.to == TierId::kHdd) opt.path = job.path.empty() ? PathOf(job.ino) : job.path;
  // Journaled as soon as the switch is durable, before the mover lets go of
  // its record: a crash after this leaves no move unaudited (Recover
  // journals the ones a crash caught before it).
  bool recorded = false;
  opt.committed = [&](const MoveResult& r) {
    Record(job, Status::Ok(), r);
    recorded = true;
  };
  MoveResult result;
  in_run_++;
  if (!job.throttled) unthrottled_++;
  Status st =
      MoveObject(store_, tiers_[job.from], tiers_[job.to], job.ino, opt, job.abort, &result);
  if (!job.throttled) unthrottled_--;
  in_run_--;
  {
    MutexLock lock(&moving_mu_);
    moving_.erase(job.ino);
    progress_.erase(job.ino);
  }
  // Every move ends here, so this is where moves are counted.
  if (metrics_) metrics_->CountMove(job.to == TierId::kHdd, job.why, result.bytes, st.err());
  // Handles of the old object reopen once the switch is committed, even
  // when removing the old object failed after it: a spilled writer that
  // kept writing into the old object would lose those bytes (the file is
  // read from the new one). An inode without live state has no handle: one
  // opened later reads the placement switched already. Live() would create
  // an entry the kernel never references, and a later unlink or thinning
  // would then wait for a forget that never comes to free it.
  if (st.ok() || recorded)
    if (auto live = table_.FindLive(job.ino)) live->placement++;
  // The switch forgot the old object's attributes; stat answers from LMDB
  // again once the new object's are recorded (fs/object_attrs.h).
  if (recorded) {
    Status attrs = RecordObjectAttrs(store_, tiers_, table_, job.ino);
    if (!attrs.ok())
      spdlog::warn("recording the attributes of moved {}: {}", Naming(job.ino, job.path),
                   attrs.message());
  }
  if (!recorded) {
    if (st.err() == ECANCELED && cancelled_.load())
      spdlog::info("moving {} to {} ({}): given up, the daemon is stopping; it stays on {}",
                   Naming(job.ino, job.path), TierName(job.to), job.why, TierName(job.from));
    Record(job, st, result);
    return st;
  }
  if (!st.ok()) {
    // The file lives on the target, which is what the caller asked for; the
    // old object and the move's record stay for Recover (at the next start),
    // and the file cannot move again until then (EBUSY).
    spdlog::error(
        "moving {} to {} ({}): after the switch: {}; the old object is removed at the "
        "next start",
        Naming(job.ino, job.path), TierName(job.to), job.why, st.message());
  }
  return Status::Ok();
}

Status Placement::Refused(const Job& job, const Status& st) {
  if (metrics_) metrics_->CountMove(job.to == TierId::kHdd, job.why, 0, st.err());
  Record(job, st, MoveResult{});
  return st;
}

void Placement::Record(const Job& job, const Status& st, const MoveResult& result) {
  // Busy and aborted moves are routine (the evictor retries); keep the log
  // and the journal for moves that happened or failed for a reason worth
  // reading.
  if (st.err() == EBUSY || st.err() == ECANCELED) return;
  AuditRecord rec;
  rec.action = "move";
  rec.rule = job.why;
  rec.path = job.path.empty() ? PathOf(job.ino) : job.path;
  rec.ino = job.ino;
  rec.from = TierName(job.from);
  rec.to = TierName(job.to);
  rec.bytes = result.bytes;
  rec.has_checksum = st.ok();
  rec.checksum = result.checksum;
  const std::string naming = Naming(job.ino, rec.path);
  if (st.ok()) {
    // "moved inode N": tests and operators grep for it.
    spdlog::log(job.why == "spill" ? spdlog::level::warn : spdlog::level::info,
                "moved {} {} -> {} ({}): {} bytes, xxh3 {:016x}", naming, rec.from, rec.to,
                job.why == "spill" ? "spill: " + job.cause : job.why, result.bytes,
                result.checksum);
  } else {
    rec.result = st.message();
    // A corrupt or missing source is refused (tiering/mover.cc CheckRecorded).
    spdlog::log(st.err() == EIO ? spdlog::level::err : spdlog::level::warn,
                "moving {} to {} ({}): {}", naming, rec.to, job.why, st.message());
  }
  audit_(rec);
}

// Several moves at once: while one waits for its fsync and LMDB sync, another
// copies, which is what `cp -r` + one `sync` gets from the page cache.
Status Placement::MoveTree(uint64_t dir, TierId to, const std::string& why,
                           const std::string& path) {
  const std::string top = path.empty() ? PathOf(dir) : path;
  std::vector<std::pair<uint64_t, std::string>> files;
  std::unordered_set<uint64_t> seen;  // hard links share the object: one move each
  const int64_t now = NowNs();
  Status first = store_.WalkBelow(dir, top, [&](const Store::TreeEntry& e) {
    // Only a manual move may move what a manual pin keeps where it is.
    if (why != "manual" && Holds::ManualActive(e.hold, now)) return Status::Ok();
    if (e.inode->is_reg() && seen.insert(e.inode->ino).second)
      files.emplace_back(e.inode->ino, e.path);
    return Status::Ok();
  });
  std::mutex mu;
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < files.size();) {
      const auto& [file, file_path] = files[i];
      Status st;
      try {  // an exception leaving a helper thread would end the process
        st = Move(file, to, why, file_path);
      } catch (const std::exception& e) {
        st = Status::Error(EIO, "moving " + Naming(file, file_path) + ": " + e.what());
      }
      if (st.ok()) continue;
      std::lock_guard<std::mutex> lock(mu);
      if (first.ok()) first = st;
    }
  };
  const unsigned limit = throttle_.max_moves() == 0 ? 4 : throttle_.max_moves();
  const size_t helpers = std::min<size_t>(limit, files.size()) - (files.empty() ? 0 : 1);
  std::vector<std::thread> threads;
  // A thread that cannot start (no memory, a pids limit) is no reason to
  // fail the move: the threads that did start, and this one, share the
  // work. std::thread throws, and a vector of joinable threads destroyed
  // by that exception would end the process (std::terminate).
  for (size_t i = 0; i < helpers; ++i) {
    try {
      threads.emplace_back(work);
    } catch (const std::exception& e) {
      spdlog::warn(
          "moving {} to {}: started {} of {} helper threads ({}); the move goes on with "
          "fewer",
          Naming(dir, top), TierName(to), threads.size(), helpers, e.what());
      break;
    }
  }
  try {
    work();
  } catch (...) {
    // Nothing else may leave while helpers run: they use this frame.
    for (std::thread& t : threads) t.join();
    throw;
  }
  for (std::thread& t : threads) t.join();
  return first;
}

bool Placement::IsMoving(uint64_t ino) {
  MutexLock lock(&moving_mu_);
  return moving_.count(ino) > 0;
}

Status Placement::UnlessMoving(uint64_t ino, const std::function<Status()>& fn) {
  MutexLock lock(&moving_mu_);
  return moving_.count(ino) > 0 ? Status::Ok() : fn();
}

bool Placement::Progress(uint64_t ino, uint64_t* copied) {
  MutexLock lock(&moving_mu_);
  auto it = progress_.find(ino);
  if (it == progress_.end()) return false;
  *copied = it->second->load(std::memory_order_relaxed);
  return true;
}

void Placement::Recover() {
  int handled = 0;
  std::vector<Store::MoveRecord> forward;
  Status st = RecoverMoves(store_, *tiers_.ssd, *tiers_.hdd, &handled, &forward);
  if (!st.ok()) spdlog::error("recovering interrupted moves: {}", st.message());
  if (handled > 0) spdlog::info("settled {} moves interrupted by a crash", handled);
  // Moves that had switched when the daemon stopped may have missed their
  // audit record (MoveOptions::committed): journal them now.
  for (const Store::MoveRecord& r : forward) {
    AuditRecord rec;
    rec.action = "move";
    rec.rule = "crash recovery";
    rec.path = PathOf(r.ino);
    rec.ino = r.ino;
    rec.from = TierName(r.from);
    rec.to = TierName(r.to);
    Inode n;
    if (store_.GetInode(r.ino, &n).ok()) {
      rec.bytes = n.size;
      rec.checksum = n.checksum;
      rec.has_checksum = n.checksum != 0;
    }
    rec.detail =
        "settled at mount: switched before the daemon stopped (the move's own record, if "
        "it was written, precedes this one)";
    audit_(rec);
  }
}

Placement::Load Placement::load() const {
  // Read apart, so clamp: a move may start or end between the reads.
  const unsigned in_run = in_run_.load(), unthrottled = unthrottled_.load();
  const unsigned running = std::min(in_run, throttle_.active() + unthrottled);
  return Load{running, in_run - running};
}

void Placement::SetLimits(uint64_t bytes_per_sec, unsigned max_moves) {
  throttle_.SetLimits(bytes_per_sec, max_moves);
}

std::string Placement::PathOf(uint64_t ino) {
  if (ino == kRootIno) return "/";
  // The kernel's name, if the store still has it.
  const std::string known = table_.KnownPath(ino);
  Inode n;
  if (!known.empty() && ResolvePath(store_, known, nullptr, nullptr, &n).ok() && n.ino == ino)
    return known;
  std::string found;
  (void)store_.WalkBelow(kRootIno, "/", [&](const Store::TreeEntry& e) {
    if (e.inode->ino != ino) return Status::Ok();
    found = e.path;
    return Status::Error(ECANCELED, "found");  // ends the walk
  });
  return found;
}

Status ResolvePath(Store& store, const std::string& path, uint64_t* parent, std::string* name,
                   Inode* inode) {
  std::vector<std::string> names;
  std::istringstream parts(path);
  for (std::string part; std::getline(parts, part, '/');)
    if (!part.empty()) names.push_back(part);
  if (names.empty()) return Status::Error(EINVAL, "'" + path + "' names the root");
  uint64_t dir = kRootIno;
  for (size_t i = 0; i < names.size(); ++i) {
    Inode n;
    Status st = store.Lookup(dir, names[i], &n);
    if (!st.ok()) return Status::Error(st.err(), path + ": " + st.message());
    if (i + 1 == names.size()) {
      if (parent) *parent = dir;
      if (name) *name = names[i];
      *inode = n;
    }
    dir = n.ino;
  }
  return Status::Ok();
}

}  // namespace tierfs

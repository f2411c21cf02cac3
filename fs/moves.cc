// Context's side of moving files between tiers: who may be moved and when.
// The mover (tiering/mover.h) does the copy, verify, switch and removal; here
// we keep it away from files being written and report what is moving.
#include <spdlog/spdlog.h>

#include <atomic>
#include <thread>

#include "fs/context.h"
#include "tiering/mover.h"

namespace tierfs {

namespace {

// How a move names its file in the log: the inode always (the evictor and
// the open path know nothing else; with hard links a path is only one of
// its names), and the path when the caller knows it.
std::string Naming(uint64_t ino, const std::string& path, uint64_t below_dir) {
  std::string s = "inode " + std::to_string(ino);
  if (path.empty()) return s;
  if (below_dir != 0)
    return s + " ('" + path + "' below directory inode " + std::to_string(below_dir) + ")";
  return s + " ('" + path + "')";
}

}  // namespace

Status Context::MoveFile(uint64_t ino, TierId to, const std::string& why, const std::string& path,
                         uint64_t below_dir) {
  MoveResult result;
  TierId from = to;
  Status st = MoveFileUnaudited(ino, to, why, Naming(ino, path, below_dir), &from, &result);
  if (from == to && st.ok()) return st;  // nothing to do: nothing to record
  AuditRecord rec;
  rec.action = "move";
  rec.rule = why;
  rec.path = path;
  rec.ino = ino;
  rec.from = TierName(from);
  rec.to = TierName(to);
  rec.bytes = result.bytes;
  rec.has_checksum = st.ok();
  rec.checksum = result.checksum;
  // A manual move of a directory knows the paths below it, not its own.
  if (below_dir != 0 && !path.empty())
    rec.detail = "path below directory inode " + std::to_string(below_dir);
  if (!st.ok()) rec.result = st.message();
  // A corrupt or missing source is refused (tiering/mover.cc CheckRecorded).
  if (st.err() == EIO) spdlog::error("{}", st.message());
  // Busy and aborted moves are routine (the evictor retries); keep the
  // journal for moves that happened or failed for a reason worth reading.
  if (st.ok() || (st.err() != EBUSY && st.err() != ECANCELED)) Audit(rec);
  return st;
}

Status Context::MoveFileUnaudited(uint64_t ino, TierId to, const std::string& why,
                                  const std::string& naming, TierId* from, MoveResult* out) {
  Inode n;
  Status st = store_->GetInode(ino, &n);
  if (!st.ok()) return st;
  if (!n.is_reg()) return Status::Error(EINVAL, "inode " + std::to_string(ino) + " is not a file");
  *from = n.tier;
  if (n.tier == to) return Status::Ok();
  // The mover works through descriptors opened at mount, which would keep
  // writing into a tier directory that has been removed or unmounted.
  for (TierId t : {n.tier, to}) {
    st = tier(t).CheckHealth();
    if (!st.ok()) return st;
  }
  const uint64_t since = table_.epoch();
  if (table_.BusySince(ino, since))
    return Status::Error(EBUSY, "inode " + std::to_string(ino) +
                                    " is open for writing or being read through passthrough");
  {
    std::lock_guard<std::mutex> lock(moving_mu_);
    if (!moving_.insert(ino).second)
      return Status::Error(EBUSY, "inode " + std::to_string(ino) + " is already moving");
  }
  MoveOptions opt;
  opt.throttle = &throttle_;
  opt.switch_lock = &PlacementLock(ino);
  MoveResult& result = *out;
  st = tierfs::MoveObject(
      *store_, tier(n.tier), tier(to), ino, opt, [&] { return table_.BusySince(ino, since); },
      &result);
  {
    std::lock_guard<std::mutex> lock(moving_mu_);
    moving_.erase(ino);
  }
  if (st.ok()) {
    table_.Live(ino)->placement++;  // readers of the old object reopen
    // "moved inode N": tests and operators grep for it.
    spdlog::info("moved {} {} -> {} ({}): {} bytes, xxh3 {:016x}", naming, TierName(n.tier),
                 TierName(to), why, result.bytes, result.checksum);
  }
  return st;
}

Status Context::SpillToHdd(FileHandle& fh) {
  LiveState& live = *fh.live;
  // No write of this inode runs while its bytes change tier.
  std::unique_lock<std::shared_mutex> io(live.io);
  Inode n;
  Status st = store_->GetInode(fh.ino, &n);
  if (!st.ok()) return st;
  if (n.tier == TierId::kHdd) return Status::Ok();  // another writer spilled it
  // The kernel reads and writes the object itself through a backing file
  // it holds; a copy elsewhere would leave it on the old one.
  if (live.passthrough_handles.load() > 0)
    return Status::Error(
        EBUSY, "inode " + std::to_string(fh.ino) + " is open through passthrough: it cannot move");
  st = hdd_->CheckHealth();
  if (!st.ok()) return st;
  {
    std::lock_guard<std::mutex> lock(moving_mu_);
    if (!moving_.insert(fh.ino).second)
      return Status::Error(EBUSY, "inode " + std::to_string(fh.ino) + " is already moving");
  }
  MoveOptions opt;  // unthrottled: a writer is waiting
  opt.switch_lock = &PlacementLock(fh.ino);
  MoveResult result;
  st = tierfs::MoveObject(*store_, *ssd_, *hdd_, fh.ino, opt, nullptr, &result);
  {
    std::lock_guard<std::mutex> lock(moving_mu_);
    moving_.erase(fh.ino);
  }
  if (!st.ok()) return st;
  live.placement++;
  // Only the inode is known here (the handle has no path).
  spdlog::warn(
      "moved inode {} ssd -> hdd (spill: ssd tier full while it is being written): {} bytes so "
      "far, xxh3 {:016x}",
      fh.ino, result.bytes, result.checksum);
  AuditRecord rec;
  rec.action = "move";
  rec.rule = "spill";
  rec.ino = fh.ino;
  rec.from = "ssd";
  rec.to = "hdd";
  rec.bytes = result.bytes;
  rec.has_checksum = true;
  rec.checksum = result.checksum;
  Audit(rec);
  return Status::Ok();
}

void Context::CollectFiles(uint64_t ino, const std::string& path,
                           std::vector<std::pair<uint64_t, std::string>>* files, Status* first) {
  std::vector<DirEntry> entries;
  Status st = store_->ListDir(ino, &entries, nullptr);
  if (!st.ok() && first->ok()) *first = st;
  for (const DirEntry& e : entries) {
    const std::string child = path.empty() ? "" : path + "/" + e.name;
    if (S_ISDIR(e.type)) CollectFiles(e.ino, child, files, first);
    if (S_ISREG(e.type)) files->emplace_back(e.ino, child);
  }
}

// Several moves at once: while one waits for its fsync and LMDB sync, another
// copies, which is what `cp -r` + one `sync` gets from the page cache.
Status Context::MoveTree(uint64_t ino, TierId to, const std::string& why, const std::string& path) {
  std::vector<std::pair<uint64_t, std::string>> files;
  Status first;
  // A setxattr knows the directory's inode, not its path: name the files
  // by their path below it.
  const bool relative = path.empty();
  CollectFiles(ino, relative ? "." : path, &files, &first);
  if (relative)
    for (auto& f : files) f.second.erase(0, 2);  // "./"
  // Hard links share the object: one move each (two at once would collide).
  std::unordered_set<uint64_t> seen;
  std::erase_if(files, [&](const auto& f) { return !seen.insert(f.first).second; });
  std::mutex mu;
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < files.size();) {
      const auto& [file, file_path] = files[i];
      Status st;
      try {  // an exception leaving a helper thread would end the process
        st = MoveFile(file, to, why, file_path, relative ? ino : 0);
      } catch (const std::exception& e) {
        st = Status::Error(
            EIO, "moving " + Naming(file, file_path, relative ? ino : 0) + ": " + e.what());
      }
      if (st.ok()) continue;
      spdlog::warn("moving {} to {}: {}", Naming(file, file_path, relative ? ino : 0), TierName(to),
                   st.message());
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
          "moving directory inode {} to {}: started {} of {} helper threads ({}); the "
          "move goes on with fewer",
          ino, TierName(to), threads.size(), helpers, e.what());
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

bool Context::IsMoving(uint64_t ino) {
  std::lock_guard<std::mutex> lock(moving_mu_);
  return moving_.count(ino) > 0;
}

void Context::RecoverMoves() {
  int handled = 0;
  Status st = tierfs::RecoverMoves(*store_, *ssd_, *hdd_, &handled);
  if (!st.ok()) spdlog::error("recovering interrupted moves: {}", st.message());
  if (handled > 0) spdlog::info("settled {} moves interrupted by a crash", handled);
}

}  // namespace tierfs

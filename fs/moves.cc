// Context's side of moving files between tiers: who may be moved and when.
// The mover (tiering/mover.h) does the copy, verify, switch and removal; here
// we keep it away from files being written and report what is moving.
#include <spdlog/spdlog.h>

#include "fs/context.h"
#include "tiering/mover.h"

namespace tierfs {

Status Context::MoveFile(uint64_t ino, TierId to, const std::string& why, const std::string& path) {
  MoveResult result;
  TierId from = to;
  Status st = MoveFileUnaudited(ino, to, &from, &result);
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
  if (!st.ok()) rec.result = st.message();
  // Busy and aborted moves are routine (the evictor retries); keep the
  // journal for moves that happened or failed for a reason worth reading.
  if (st.ok() || (st.err() != EBUSY && st.err() != ECANCELED)) Audit(rec);
  return st;
}

Status Context::MoveFileUnaudited(uint64_t ino, TierId to, TierId* from, MoveResult* out) {
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
    return Status::Error(EBUSY, "inode " + std::to_string(ino) + " is open for writing");
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
    spdlog::info("moved inode {} {} -> {}: {} bytes, xxh3 {:016x}", ino, TierName(n.tier),
                 TierName(to), result.bytes, result.checksum);
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
  spdlog::warn("ssd tier full: inode {} spilled to hdd while being written ({} bytes so far)",
               fh.ino, result.bytes);
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

Status Context::MoveTree(uint64_t ino, TierId to, const std::string& why, const std::string& path) {
  std::vector<DirEntry> entries;
  Status first = store_->ListDir(ino, &entries, nullptr);
  for (const DirEntry& e : entries) {
    Status st;
    const std::string child = path.empty() ? "" : path + "/" + e.name;
    if (S_ISDIR(e.type)) st = MoveTree(e.ino, to, why, child);
    if (S_ISREG(e.type)) st = MoveFile(e.ino, to, why, child);
    if (!st.ok()) {
      spdlog::warn("moving '{}' to {}: {}", e.name, TierName(to), st.message());
      if (first.ok()) first = st;
    }
  }
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

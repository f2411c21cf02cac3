// Context's side of the SSD tier's space: when it counts as full, where new
// files go, and the evictor that keeps it under its high watermark.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>

#include "fs/context.h"

namespace tierfs {

namespace {

// Free space the SSD tier keeps for LMDB and for writes already in flight:
// below it, writes go to the HDD tier. 1% of the tier, at least 4 MiB.
uint64_t Reserve(uint64_t capacity) {
  return std::max<uint64_t>(capacity / 100, 4 << 20);
}

constexpr int64_t kSpaceCheckNs = 5'000'000;

// The LMDB reserve: what metadata may still grow by once the tier is full.
uint64_t MetaReserve(uint64_t capacity) {
  return std::min(Reserve(capacity), capacity / 8);
}

}  // namespace

bool Context::SsdNearlyFull() {
  // Far from full, a look every few milliseconds will do; close to it, every
  // write looks, so that writers racing into the last megabytes spill in time.
  const int64_t now = NowNs();
  int64_t checked = space_checked_ns_.load(std::memory_order_relaxed);
  if (!ssd_close_to_full_.load(std::memory_order_relaxed)) {
    if (now - checked < kSpaceCheckNs) return false;
    if (!space_checked_ns_.compare_exchange_strong(checked, now)) return false;
  }
  Tier::Space space;
  if (!ssd_->GetSpace(&space).ok()) return false;
  const uint64_t reserve = Reserve(space.capacity);
  const bool full = space.free < reserve;
  ssd_close_to_full_.store(space.free < 4 * reserve + (64 << 20), std::memory_order_relaxed);
  // Tops up the LMDB reserve while there is room; a shortfall is for the
  // creates that check it themselves, not for this write.
  (void)CheckMetaSpace("write");
  if (space.used_fraction() > high_mark_.load()) {
    // Above the high watermark: the evictor moves the coldest files, and the
    // policy runs early (thinning may free more, and sooner).
    if (evictor_) evictor_->Poke();
    if (policy_runner_) policy_runner_->Poke();
  }
  return full;
}

TierId Context::TierForNewFile() {
  if (!SsdNearlyFull()) return TierId::kSsd;
  Tier::Space hdd;
  if (!hdd_->CheckHealth().ok() || !hdd_->GetSpace(&hdd).ok() || hdd.free < Reserve(hdd.capacity))
    return TierId::kSsd;  // the HDD tier cannot help: try the SSD tier anyway
  return TierId::kHdd;
}

Status Context::CheckMetaSpace(const char* what) {
  const uint64_t reserve = meta_reserve_.load(std::memory_order_relaxed);
  if (reserve == 0) return Status::Ok();
  Status st = store_->ReserveSpace(reserve);
  if (st.ok()) return st;
  return Status::Error(st.err() == EIO ? ENOSPC : st.err(),
                       std::string(what) + " refused: metadata reserve: " + st.message());
}

void Context::StartBackground() {
  // Sized by the state's own filesystem (by default the SSD tier's).
  struct statvfs v;
  if (store_->StatFs(&v).ok()) {
    meta_reserve_ = MetaReserve(uint64_t(v.f_blocks) * v.f_frsize);
    Status st = CheckMetaSpace("mount");
    if (!st.ok()) spdlog::warn("state filesystem: {}", st.message());
  }
  EvictorHooks hooks;
  hooks.usage = [this](uint64_t* used, uint64_t* capacity) {
    // The evictor's periodic tick: also when orphans wait for their tier.
    RetryUnfreed();
    Tier::Space space;
    Status st = ssd_->GetSpace(&space);
    *capacity = space.capacity;
    *used = space.capacity - std::min(space.free, space.capacity);
    return st;
  };
  hooks.hdd_health = [this] { return hdd_->CheckHealth(); };
  hooks.candidates = [this](std::vector<EvictionCandidate>* out) {
    const uint64_t now = table_.epoch();
    return store_->ForEachInode([&](const Inode& n) {
      if (!n.is_reg() || n.tier != TierId::kSsd || table_.BusySince(n.ino, now))
        return Status::Ok();
      struct stat obj;
      if (!ssd_->StatObject(n.ino, &obj).ok() || obj.st_blocks == 0) return Status::Ok();
      EvictionCandidate c;
      c.ino = n.ino;
      c.bytes = uint64_t(obj.st_blocks) * 512;
      c.last_use_ns = std::max(int64_t(obj.st_atim.tv_sec) * 1000000000 + obj.st_atim.tv_nsec,
                               int64_t(obj.st_mtim.tv_sec) * 1000000000 + obj.st_mtim.tv_nsec);
      out->push_back(c);
      return Status::Ok();
    });
  };
  hooks.move_to_hdd = [this](uint64_t ino) { return MoveFile(ino, TierId::kHdd, "evict"); };
  high_mark_ = options_.watermarks.high;
  evictor_ = std::make_unique<Evictor>(std::move(hooks), options_.watermarks);
  evictor_->Start();
  CountHolds();
  if (policy_runner_) policy_runner_->Start();
}

void Context::StopBackground() {
  if (policy_runner_) policy_runner_->Stop();
  if (evictor_) evictor_->Stop();
}

}  // namespace tierfs

#include "fs/space.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <unordered_set>

namespace tierfs {

namespace {

// Free space the SSD tier keeps for LMDB and for writes already in flight:
// below it, writes go to the HDD tier. 1% of the tier, at least 4 MiB.
uint64_t Reserve(uint64_t capacity) {
  return std::max<uint64_t>(capacity / 100, 4 << 20);
}

constexpr int64_t kSpaceCheckNs = 5'000'000;
// How often a create looks at the SSD tier's health (three system calls).
constexpr int64_t kSsdHealthCheckNs = 1'000'000'000;

// The LMDB reserve: what metadata may still grow by once the tier is full.
uint64_t MetaReserve(uint64_t capacity) {
  return std::min(Reserve(capacity), capacity / 8);
}

}  // namespace

Space::Space(Store& store, Tiers tiers, InodeTable& table, Placement& placement, Watermarks marks)
    : store_(store),
      tiers_(tiers),
      table_(table),
      placement_(placement),
      initial_marks_(marks),
      high_mark_(marks.high),
      low_mark_(marks.low) {}

Space::~Space() {
  Stop();
}

bool Space::SsdNearlyFull() {
  // Far from full, a look every few milliseconds will do; close to it, every
  // write looks, so that writers racing into the last megabytes spill in time.
  const int64_t now = NowNs();
  int64_t checked = space_checked_ns_.load(std::memory_order_relaxed);
  if (!ssd_close_to_full_.load(std::memory_order_relaxed)) {
    if (now - checked < kSpaceCheckNs) return false;
    if (!space_checked_ns_.compare_exchange_strong(checked, now)) return false;
  }
  Tier::Space space;
  if (!tiers_.ssd->GetSpace(&space).ok()) return false;
  const uint64_t reserve = Reserve(space.capacity) + Promised();
  const bool full = space.free < reserve;
  ssd_close_to_full_.store(space.free < 4 * reserve + (64 << 20), std::memory_order_relaxed);
  // Tops up the LMDB reserve while there is room; a shortfall is for the
  // creates that check it themselves, not for this write.
  (void)CheckMetaSpace("write");
  if (space.used_fraction() > high_mark_.load()) {
    // Above the high watermark: the evictor moves the coldest files, and the
    // policy runs early (thinning may free more, and sooner).
    if (evictor_) evictor_->Poke();
    if (poke_policy_) poke_policy_();
  }
  return full;
}

uint64_t Space::Promised() {
  MutexLock lock(&promises_mu_);
  uint64_t total = 0;
  for (const auto& [ino, promise] : promises_) {
    struct stat obj;
    const uint64_t written =
        tiers_.ssd->StatObject(ino, &obj).ok() ? uint64_t(obj.st_blocks) * 512 : 0;
    if (promise.bytes > written) total += promise.bytes - written;
  }
  return total;
}

bool Space::PromiseRoom(uint64_t ino, uint64_t bytes) {
  {
    MutexLock lock(&promises_mu_);
    auto it = promises_.find(ino);
    if (it != promises_.end()) {
      it->second.writers++;
      return true;
    }
  }
  Tier::Space space;
  if (!tiers_.ssd->GetSpace(&space).ok()) return false;
  // Two promises racing may both pass on the same free space: the reserve
  // counted twice is the margin for that.
  if (space.free < 2 * Reserve(space.capacity) + Promised() + bytes) return false;
  MutexLock lock(&promises_mu_);
  Promise& p = promises_[ino];
  p.bytes = std::max(p.bytes, bytes);
  p.writers++;
  return true;
}

void Space::EndPromise(uint64_t ino) {
  MutexLock lock(&promises_mu_);
  auto it = promises_.find(ino);
  if (it != promises_.end() && --it->second.writers == 0) promises_.erase(it);
}

bool Space::SsdFailing() {
  const int64_t now = NowNs();
  int64_t checked = ssd_health_checked_ns_.load(std::memory_order_relaxed);
  if (now - checked < kSsdHealthCheckNs ||
      !ssd_health_checked_ns_.compare_exchange_strong(checked, now))
    return ssd_failing_.load(std::memory_order_relaxed);
  const Status health = tiers_.ssd->CheckHealth();
  const bool failing = !health.ok();
  if (ssd_failing_.exchange(failing) != failing) {
    if (failing)
      spdlog::error("{}: new files start on the hdd tier until it is healthy again",
                    health.message());
    else
      spdlog::warn("ssd tier {} is healthy again: new files start there", tiers_.ssd->root());
  }
  return failing;
}

bool Space::RoomBelowHighWatermark(uint64_t bytes) {
  Tier::Space space;
  if (!tiers_.ssd->GetSpace(&space).ok()) return false;
  const uint64_t used =
      std::min(space.capacity, space.capacity - std::min(space.free, space.capacity) + Promised());
  return double(used) + double(bytes) < high_mark_.load() * double(space.capacity);
}

TierId Space::TierForNewFile() {
  // Each new file on a failed SSD tier would cost a failed write there, a
  // spill and a logged error: they start on the HDD tier instead.
  if (!SsdNearlyFull() && !SsdFailing()) return TierId::kSsd;
  Tier::Space hdd;
  if (!tiers_.hdd->CheckHealth().ok() || !tiers_.hdd->GetSpace(&hdd).ok() ||
      hdd.free < Reserve(hdd.capacity))
    return TierId::kSsd;  // the HDD tier cannot help: try the SSD tier anyway
  return TierId::kHdd;
}

Status Space::CheckMetaSpace(const char* what) {
  const uint64_t reserve = meta_reserve_.load(std::memory_order_relaxed);
  if (reserve == 0) return Status::Ok();
  Status st = store_.ReserveSpace(reserve);
  if (st.ok()) return st;
  return Status::Error(st.err() == EIO ? ENOSPC : st.err(),
                       std::string(what) + " refused: metadata reserve: " + st.message());
}

Status Space::Candidates(std::vector<EvictionCandidate>* out) {
  const uint64_t now = table_.epoch();
  std::unordered_set<uint64_t> seen;  // a hard-linked file once
  return store_.WalkTree([&](const Store::TreeEntry& e) {
    const Inode& n = *e.inode;
    if (!n.is_reg() || n.tier != TierId::kSsd || !seen.insert(n.ino).second ||
        table_.BusySince(n.ino, now))
      return Status::Ok();
    struct stat obj;
    if (!tiers_.ssd->StatObject(n.ino, &obj).ok() || obj.st_blocks == 0) return Status::Ok();
    EvictionCandidate c;
    c.ino = n.ino;
    c.bytes = uint64_t(obj.st_blocks) * 512;
    c.last_use_ns = std::max(TimespecNs(obj.st_atim), TimespecNs(obj.st_mtim));
    c.path = e.path;
    out->push_back(std::move(c));
    return Status::Ok();
  });
}

void Space::Start(std::function<void()> tick, std::function<void()> poke_policy) {
  // Sized by the state's own filesystem (by default the SSD tier's).
  struct statvfs v;
  if (store_.StatFs(&v).ok()) {
    meta_reserve_ = MetaReserve(uint64_t(v.f_blocks) * v.f_frsize);
    Status st = CheckMetaSpace("mount");
    if (!st.ok()) spdlog::warn("state filesystem: {}", st.message());
  }
  poke_policy_ = std::move(poke_policy);
  EvictorHooks hooks;
  hooks.usage = [this, tick = std::move(tick)](uint64_t* used, uint64_t* capacity) {
    tick();
    Tier::Space space;
    Status st = tiers_.ssd->GetSpace(&space);
    *capacity = space.capacity;
    *used = space.capacity - std::min(space.free, space.capacity);
    *used = std::min(space.capacity, *used + Promised());
    return st;
  };
  hooks.hdd_health = [this] {
    // Said once, as a tier that cannot take moves is (tiering/evictor.h).
    if (placement_.read_only())
      return Status::Error(EROFS, "the mount is read-only (-o ro): nothing is moved");
    return tiers_.hdd->CheckHealth();
  };
  hooks.candidates = [this](std::vector<EvictionCandidate>* out) { return Candidates(out); };
  hooks.move_to_hdd = [this](const EvictionCandidate& c) {
    return placement_.Move(c.ino, TierId::kHdd, "evict", c.path);
  };
  evictor_ = std::make_unique<Evictor>(std::move(hooks),
                                       Watermarks{initial_marks_.high, initial_marks_.low});
  evictor_->Start();
}

void Space::Stop() {
  if (evictor_) evictor_->Stop();
}

void Space::SetWatermarks(Watermarks marks) {
  high_mark_ = marks.high;
  low_mark_ = marks.low;
  initial_marks_ = marks;  // the evictor's, if it has not started yet
  if (evictor_) evictor_->SetWatermarks(marks);
}

}  // namespace tierfs

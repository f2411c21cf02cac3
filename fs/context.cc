#include "fs/context.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>

#include "fs/archived_access.h"
#include "fs/object_attrs.h"

namespace tierfs {

Context::Context(const Options& options, std::unique_ptr<Store> store, std::unique_ptr<Tier> ssd,
                 std::unique_ptr<Tier> hdd, std::unique_ptr<AuditLog> audit, Policy policy)
    : options_(options),
      store_(std::move(store)),
      ssd_(std::move(ssd)),
      hdd_(std::move(hdd)),
      tiers_{ssd_.get(), hdd_.get()},
      audit_(std::move(audit)),
      metrics_(NowNs()),
      placement_(
          *store_, tiers_, table_, [this](const AuditRecord& r) { Audit({r}); },
          EffectiveLimits(options_, policy.limits), &metrics_),
      handles_(*store_, tiers_, table_, placement_, options_.direct_writes),
      space_(*store_, tiers_, table_, placement_,
             EffectiveLimits(options_, policy.limits).watermarks),
      refusals_([this](const std::vector<AuditRecord>& r) { Audit(r); }),
      holds_(*store_,
             [this](const Holds::Caller& by, uint64_t ino, const char* what, const Store::Hold& h) {
               refusals_.Note(
                   RefusalAudit::RecordOf(by.uid, by.pid, ino, table_.KnownPath(ino), what, h),
                   what, NowNs());
             }),
      tree_ops_(
          TreeOps::Parts{store_.get(), tiers_, &table_, &placement_, &holds_, &space_, &options_,
                         [this](const std::vector<AuditRecord>& r) { Audit(r); },
                         [this](const Removed& r) { OnRemoved(r); },
                         [this](const std::vector<AuditRecord>& r) { return AppendAudit(r); }}),
      manual_moves_(*store_, placement_, holds_, [this](const AuditRecord& r) { Audit({r}); }) {
  policy_runner_ =
      std::make_unique<PolicyRunner>(tree_ops_, std::move(policy), options_.policy_file,
                                     int64_t(options_.scan_interval_s * 1e9), &metrics_);
  // A file written on the HDD tier had no move to write its identity.
  hasher_.OnHddRecorded([this](uint64_t ino, uint64_t checksum) {
    const std::string path = placement_.PathOf(ino);
    Status st = placement_.UnlessMoving(
        ino, [&] { return WriteArchivedIdentity(*store_, *hdd_, ino, path, checksum); });
    if (!st.ok())
      spdlog::error("inode {} was written on the HDD tier; recover cannot name it: {}", ino,
                    st.message());
  });
}

Context::~Context() {
  StopBackground();
}

double Context::FillStat(const Inode& n, struct stat* st) {
  *st = {};
  st->st_ino = n.ino;
  st->st_mode = n.mode;
  st->st_nlink = n.nlink;
  st->st_uid = n.uid;
  st->st_gid = n.gid;
  st->st_rdev = n.rdev;
  st->st_size = n.size;
  st->st_blksize = 1 << 20;
  st->st_blocks = (n.size + 511) / 512;
  st->st_atim = NsTimespec(n.atime_ns);
  st->st_mtim = NsTimespec(n.mtime_ns);
  st->st_ctim = NsTimespec(n.ctime_ns);
  if (!n.is_reg()) return options_.attr_timeout;
  // Recorded by the last writer's close, the hasher's commit, a setattr of
  // size or times, or a move (meta/inode.h, fs/object_attrs.h): the object
  // is as recorded while nobody has it open for writing. A listing
  // of a million files then makes no call on the tiers: on an HDD tier
  // each would be a seek (find over 1.1 million files: 3.5 s against 15-20).
  if (n.object_attrs_recorded() && !table_.OpenForWriting(n.ino)) {
    st->st_blocks = blkcnt_t(n.recorded_blocks());
    return options_.attr_timeout;
  }
  struct stat obj;
  if (tier(n.tier).StatObject(n.ino, &obj).ok()) {
    // Writes touch only the object, so its size, blocks and times are the
    // current ones; setattr keeps the object's mtime equal to ours.
    st->st_size = obj.st_size;
    st->st_blocks = obj.st_blocks;
    st->st_mtim = obj.st_mtim;
    if (TimespecNs(obj.st_ctim) > n.ctime_ns) st->st_ctim = obj.st_ctim;
  }
  return table_.MayWriteThroughMapping(n.ino) ? 0 : options_.attr_timeout;
}

void Context::RecordObjectAttrs(uint64_t ino, Inode* n) {
  Status st = tierfs::RecordObjectAttrs(*store_, tiers_, table_, ino, n);
  if (!st.ok()) {
    const std::string path = table_.KnownPath(ino);
    spdlog::warn("recording the object attributes of {} (inode {}): {}",
                 path.empty() ? "an unnamed file" : path, ino, st.message());
  }
}

void Context::FillEntry(const Inode& n, fuse_entry_param* e) {
  *e = {};
  e->ino = n.ino;
  e->generation = 1;
  e->entry_timeout = options_.entry_timeout;
  e->attr_timeout = FillStat(n, &e->attr);
}

void Context::ReplyEntry(fuse_req_t req, const Inode& n, uint64_t parent, const char* name) {
  fuse_entry_param e;
  FillEntry(n, &e);
  table_.Ref(n.ino, parent, name);
  if (fuse_reply_entry(req, &e) != 0) table_.Forget(n.ino, 1);  // request was interrupted
}

Status Context::CheckTierWritable(TierId t, uint64_t ino, const char* what) const {
  Status st = tier(t).CheckHealth();
  if (st.ok()) return st;
  return Status::Error(st.err(), std::string(what) + " of inode " + std::to_string(ino) +
                                     " refused: " + st.message());
}

bool Context::CheckCapabilities(uint64_t ino, LiveState& live, bool remove, Status* st) {
  if (live.caps_cleared.load(std::memory_order_acquire) ==
      live.caps_set.load(std::memory_order_acquire))
    return false;
  MutexLock lock(&live.caps_mu);
  // Read before the lookup: a setxattr committing after it bumps caps_set
  // past `set`, and the next write looks again.
  const uint64_t set = live.caps_set.load(std::memory_order_acquire);
  if (live.caps_cleared.load(std::memory_order_acquire) == set) return false;
  static constexpr const char* kCaps = "security.capability";
  std::string caps;
  Status got = store().GetXattr(ino, kCaps, &caps);
  if (got.ok() && remove) {
    got = store().RemoveXattr(ino, kCaps);
    // A file written in place on the HDD tier (pinned there): its identity
    // must not keep the capability (fs/archived_access.h).
    Inode n;
    if (got.ok() && store().GetInode(ino, &n).ok()) RefreshAccessOnHdd(*this, n);
  }
  if (got.ok() && !remove) return true;
  if (got.ok() || got.err() == ENODATA) {
    live.caps_cleared.store(set, std::memory_order_release);
    return false;
  }
  *st = Status::Error(got.err(), std::string(remove ? "removing" : "looking up") +
                                     " security.capability of inode " + std::to_string(ino) + ": " +
                                     got.message());
  return true;
}

Status Context::DropCapabilities(uint64_t ino, LiveState& live) {
  Status st;
  CheckCapabilities(ino, live, true, &st);
  return st;
}

bool Context::MayHaveCapabilities(uint64_t ino, LiveState& live) {
  Status st;
  const bool has = CheckCapabilities(ino, live, false, &st);
  if (!st.ok()) spdlog::warn("{}: its writers do not use passthrough", st.message());
  return has;
}

void Context::NoteCapabilitiesSet(uint64_t ino) {
  if (std::shared_ptr<LiveState> live = table_.FindLive(ino))
    live->caps_set.fetch_add(1, std::memory_order_acq_rel);
}

void Context::FreeInode(uint64_t ino) {
  FreeInodes({ino});
}

void Context::FreeInodes(const std::vector<uint64_t>& inos) {
  std::vector<uint64_t> gone;  // objects removed: their records may go
  gone.reserve(inos.size());
  for (uint64_t ino : inos)
    if (RemoveObjectOf(ino)) gone.push_back(ino);
  if (gone.empty()) return;
  Status st = store_->DeleteInodes(gone);
  if (st.ok() || gone.size() == 1) {
    if (!st.ok()) spdlog::error("freeing inode {}: {}", gone[0], st.message());
    return;
  }
  for (uint64_t ino : gone) {  // one at a time: free all that can be
    st = store_->DeleteInode(ino);
    if (!st.ok()) spdlog::error("freeing inode {}: {}", ino, st.message());
  }
}

bool Context::RemoveObjectOf(uint64_t ino) {
  // Under the placement lock, which a move holds while it checks its source
  // and switches: either the move switched first and the object removed is
  // the new one, or the old one goes first and the move, finding its source
  // gone, undoes its copy. Without it a move could switch between the read
  // of the tier and the removal, and leave its copy with no inode naming it.
  std::lock_guard<std::mutex> placement(placement_.Lock(ino));
  Inode n;
  if (!store_->GetInode(ino, &n).ok()) return false;
  if (n.is_reg()) {
    // A read-only tier refuses; a tier gone (replaced or lazily unmounted)
    // is still reached through the directory fd opened at mount.
    Status st = tiers_[n.tier].RemoveObject(ino);
    MutexLock lock(&unfreed_mu_);
    if (!st.ok()) {
      // Deleting the inode now would leak the object forever: nothing else
      // names it. The orphan record keeps it until the tier can be written.
      if (unfreed_.insert(ino).second)
        spdlog::warn("freeing inode {}: object kept until its tier is writable: {}", ino,
                     st.message());
      return false;
    }
    if (unfreed_.erase(ino))
      spdlog::info("freed inode {}: its {} tier is writable again", ino, TierName(n.tier));
  }
  return true;
}

void Context::RetryUnfreed() {
  constexpr int64_t kRetryNs = 1'000'000'000;
  const int64_t now = NowNs();
  std::vector<uint64_t> inos;
  {
    MutexLock lock(&unfreed_mu_);
    if (unfreed_.empty() || now - unfreed_retry_ns_.load() < kRetryNs) return;
    unfreed_retry_ns_ = now;
    inos.assign(unfreed_.begin(), unfreed_.end());
  }
  for (uint64_t ino : inos) FreeInode(ino);
}

void Context::OnRemoved(const Removed& removed) {
  if (removed.ino != 0 && removed.nlink == 0 && table_.MarkOrphan(removed.ino))
    FreeInode(removed.ino);
}

Status Context::SyncAll() {
  Status st = store_->Sync();
  Status s1 = ssd_->SyncFs();
  Status s2 = hdd_->SyncFs();
  if (!st.ok()) return st;
  return s1.ok() ? s2 : s1;
}

void Context::SetSession(fuse_session* se) {
  tree_ops_.SetSession(se);
  handles_.passthrough().Attach(se);
}

void Context::Recover() {
  placement_.Recover();  // before anything reads placement
  // No move runs now: a manual placement naming a tier its file is not on
  // is one whose move never completed (fs/holds.h DropStalePlacements).
  if (!options_.read_only) {
    std::vector<AuditRecord> records;
    const int dropped = holds_.DropStalePlacements(&records);
    for (AuditRecord& rec : records) rec.path = placement_.PathOf(rec.ino);
    Audit(records);
    if (dropped > 0)
      spdlog::info("removed {} manual placements whose move never completed", dropped);
  }
  std::vector<uint64_t> orphans;
  Status st = store_->ListOrphans(&orphans);
  if (!st.ok()) spdlog::error("listing orphans: {}", st.message());
  for (uint64_t ino : orphans) FreeInode(ino);
  if (!orphans.empty()) spdlog::info("freed {} inodes unlinked while open", orphans.size());
}

void Context::Audit(const std::vector<AuditRecord>& records) {
  if (!audit_ || records.empty()) return;
  Status st = audit_->Append(records);
  if (st.ok()) return;
  spdlog::error("audit: {}; records not journaled:", st.message());
  for (const AuditRecord& rec : records) spdlog::error("  {}", AuditLog::Format(rec, NowNs()));
}

Status Context::AppendAudit(const std::vector<AuditRecord>& records) {
  if (!audit_ || records.empty()) return Status::Ok();
  return audit_->Append(records);
}

void Context::StartBackground() {
  holds_.Count();
  if (options_.read_only) placement_.SetReadOnly();
  space_.Start(
      [this] {
        RetryUnfreed();
        refusals_.Flush(NowNs());  // the counts of ended windows
      },
      [this] { policy_runner_->Poke(); });
  if (options_.read_only)
    spdlog::info("read-only mount (-o ro): the policy engine does not run");
  else
    policy_runner_->Start();
  hasher_.Start();
  reaper_.Start();
}

void Context::StopBackground() {
  // First: the threads stopped below would each wait for their move.
  placement_.CancelMoves();
  reaper_.Stop();
  hasher_.Stop();
  manual_moves_.Stop();
  policy_runner_->Stop();
  space_.Stop();
  refusals_.Flush(INT64_MAX);  // no count of a refusal is lost at unmount
}

}  // namespace tierfs

#include "fs/context.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>

namespace tierfs {

namespace {

struct timespec ToTimespec(int64_t ns) {
  return {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

int64_t FromTimespec(const struct timespec& ts) {
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

Context::Context(const Options& options, std::unique_ptr<Store> store, std::unique_ptr<Tier> ssd,
                 std::unique_ptr<Tier> hdd, std::unique_ptr<AuditLog> audit)
    : options_(options),
      store_(std::move(store)),
      ssd_(std::move(ssd)),
      hdd_(std::move(hdd)),
      audit_(std::move(audit)),
      throttle_(options.move_bytes_per_sec, options.max_moves) {}

void Context::FillStat(const Inode& n, struct stat* st) const {
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
  st->st_atim = ToTimespec(n.atime_ns);
  st->st_mtim = ToTimespec(n.mtime_ns);
  st->st_ctim = ToTimespec(n.ctime_ns);
  struct stat obj;
  if (n.is_reg() && tier(n.tier).StatObject(n.ino, &obj).ok()) {
    // Writes touch only the object, so its size, blocks and times are the
    // current ones; setattr keeps the object's mtime equal to ours.
    st->st_size = obj.st_size;
    st->st_blocks = obj.st_blocks;
    st->st_mtim = obj.st_mtim;
    if (FromTimespec(obj.st_ctim) > n.ctime_ns) st->st_ctim = obj.st_ctim;
  }
}

void Context::FillEntry(const Inode& n, fuse_entry_param* e) const {
  *e = {};
  e->ino = n.ino;
  e->generation = 1;
  e->attr_timeout = options_.attr_timeout;
  e->entry_timeout = options_.entry_timeout;
  FillStat(n, &e->attr);
}

void Context::ReplyEntry(fuse_req_t req, const Inode& n) {
  fuse_entry_param e;
  FillEntry(n, &e);
  table_.Ref(n.ino);
  if (fuse_reply_entry(req, &e) != 0) table_.Forget(n.ino, 1);  // request was interrupted
}

void Context::ReplyError(fuse_req_t req, const Status& st, const char* op) {
  const int err = st.ok() ? EIO : st.err();
  switch (err) {
    case ENOENT:
    case EEXIST:
    case ENOTEMPTY:
    case ENOTDIR:
    case EISDIR:
    case ENODATA:
    case ERANGE:
    case EPERM:
    case EACCES:
    case EINVAL:
    case ENXIO:
    case ENOSPC:
    case EXDEV:
    case EOPNOTSUPP:
    case ENAMETOOLONG:
    case EFBIG:
    case EBUSY:
    case ECANCELED:
      break;
    default:
      spdlog::error("{}: {}", op, st.ok() ? "unknown error" : st.message());
  }
  fuse_reply_err(req, err);
}

FileHandle* Context::NewHandle(const Inode& n, int flags) {
  auto* fh = new FileHandle();
  fh->ino = n.ino;
  fh->tier = n.tier;
  fh->live = table_.Live(n.ino);
  fh->writable = (flags & O_ACCMODE) != O_RDONLY;
  fh->live->handles++;
  fh->live->last_open_ns.store(NowNs(), std::memory_order_relaxed);
  if (fh->writable) fh->live->writers++;
  return fh;
}

IoMode Context::AdmitHandle(FileHandle& fh, int flags, bool may_passthrough, int* backing_id) {
  LiveState& live = *fh.live;
  std::lock_guard<std::mutex> modes(live.modes);
  const int access = flags & O_ACCMODE;
  if (live.passthrough_handles.load() == 0) {
    IoMode mode = IoMode::kCached;
    if (access == O_WRONLY && options_.direct_writes) mode = IoMode::kDirect;
    if (mode == IoMode::kDirect || access != O_RDONLY || !may_passthrough ||
        !passthrough_.active() || live.other_handles > 0 || !StartPassthrough(fh.ino, live)) {
      live.other_handles++;
      return fh.mode = mode;
    }
  }
  // The kernel reads (and, for a handle opened for writing, writes) the
  // object itself: tierfs sees no WRITE, so release must record the size.
  live.passthrough_handles++;
  *backing_id = fh.backing_id = live.backing_id;
  if (fh.writable) fh.wrote = true;
  return fh.mode = IoMode::kPassthrough;
}

bool Context::StartPassthrough(uint64_t ino, LiveState& live) {
  // Under the placement lock: a move either sees this handle (and gives
  // up) or has switched already, and the object registered is the new one.
  std::lock_guard<std::mutex> placement(PlacementLock(ino));
  Inode n;
  Status st = store_->GetInode(ino, &n);
  if (st.ok() && n.tier == TierId::kHdd) st = hdd_->CheckHealth();
  // No object yet (an empty file): served by tierfs, which creates it.
  int fd = st.ok() ? tier(n.tier).OpenObject(ino, O_RDWR, &st) : -1;
  if (fd < 0) return false;
  const int id = passthrough_.OpenBacking(fd);
  if (id < 0) {
    close(fd);
    if (!passthrough_warned_.exchange(true))
      spdlog::warn("passthrough of {} refused by the kernel ({}); reads go through tierfs",
                   tier(n.tier).ObjectPath(ino), std::strerror(-id));
    return false;
  }
  live.backing_id = id;
  live.backing_fd = fd;
  return true;
}

Status Context::CheckTierWritable(TierId t, uint64_t ino, const char* what) const {
  Status st = tier(t).CheckHealth();
  if (st.ok()) return st;
  return Status::Error(st.err(), std::string(what) + " of inode " + std::to_string(ino) +
                                     " refused: " + st.message());
}

Status Context::CheckObjectIntact(uint64_t ino) {
  // Under the placement lock: a move switching meanwhile removes the object
  // the inode named a moment ago.
  std::lock_guard<std::mutex> placement(PlacementLock(ino));
  Inode n;
  Status st = store_->GetInode(ino, &n);
  if (!st.ok() || !n.is_reg() || n.size == 0) return st;
  if (table_.Live(ino)->writers.load() > 0) return Status::Ok();  // LMDB's size lags
  struct stat obj;
  st = tier(n.tier).StatObject(ino, &obj);
  const std::string what =
      "inode " + std::to_string(ino) + ": object " + tier(n.tier).ObjectPath(ino) + " ";
  if (st.err() == ENOENT)
    return Status::Error(EIO, what + "is missing; " + std::to_string(n.size) + " bytes lost");
  if (!st.ok()) return st;
  if (uint64_t(obj.st_size) < n.size)
    return Status::Error(EIO, what + "has " + std::to_string(obj.st_size) + " bytes, " +
                                  std::to_string(n.size) + " recorded: truncated");
  return Status::Ok();
}

void Context::DeleteHandle(FileHandle* fh) {
  {
    LiveState& live = *fh->live;
    std::lock_guard<std::mutex> modes(live.modes);
    if (fh->mode != IoMode::kPassthrough) live.other_handles--;
    // The kernel looked the backing file up when each open completed; the
    // last release ends the inode's passthrough.
    if (fh->mode == IoMode::kPassthrough && --live.passthrough_handles == 0) {
      passthrough_.CloseBacking(live.backing_id);
      close(live.backing_fd);
      live.backing_id = live.backing_fd = -1;
    }
  }
  if (fh->fd >= 0) close(fh->fd);
  for (int fd : fh->retired_fds) close(fd);
  if (fh->writable) fh->live->writers--;
  fh->live->handles--;
  delete fh;
}

int Context::ObjectFd(FileHandle& fh, bool create, Status* st) {
  const uint32_t placement_now = fh.live->placement.load();
  std::lock_guard<std::mutex> lock(fh.mu);
  if (fh.fd >= 0 && fh.fd_placement == placement_now) return fh.fd;
  // The file may have moved since the handle was opened. An older fd stays
  // open until release: another thread may be in the middle of using it.
  if (fh.fd >= 0) fh.retired_fds.push_back(fh.fd);
  std::lock_guard<std::mutex> placement(PlacementLock(fh.ino));
  Inode n;
  if (store_->GetInode(fh.ino, &n).ok()) fh.tier = n.tier;
  // O_RDWR even for read-only opens: with the writeback cache the kernel
  // reads pages of files that were opened write-only.
  fh.fd_placement = placement_now;
  // The HDD tier may be gone (unmounted, removed, failing): EIO then, not
  // an empty file or whatever an unrelated directory holds.
  if (fh.tier == TierId::kHdd) {
    *st = hdd_->CheckHealth();
    if (!st->ok()) return fh.fd = -1;
  }
  fh.fd = tier(fh.tier).OpenObject(fh.ino, O_RDWR, st);
  if (fh.fd < 0 && create && st->err() == ENOENT) {
    *st = Status::Ok();
    fh.fd = tier(fh.tier).OpenObject(fh.ino, O_RDWR | O_CREAT | O_EXCL, st);
    if (fh.fd >= 0) {
      fh.live->object_name_unsynced = true;
    } else if (st->err() == EEXIST) {  // made meanwhile by a path that syncs its own
      *st = Status::Ok();
      fh.fd = tier(fh.tier).OpenObject(fh.ino, O_RDWR, st);
    }
  }
  return fh.fd;
}

void Context::FreeInode(uint64_t ino) {
  Inode n;
  if (!store_->GetInode(ino, &n).ok()) return;
  if (n.is_reg()) {
    // A read-only tier refuses; a tier gone (replaced or lazily unmounted)
    // is still reached through the directory fd opened at mount.
    Status st = tier(n.tier).RemoveObject(ino);
    std::lock_guard<std::mutex> lock(unfreed_mu_);
    if (!st.ok()) {
      // Deleting the inode now would leak the object forever: nothing else
      // names it. The orphan record keeps it until the tier can be written.
      if (unfreed_.insert(ino).second)
        spdlog::warn("freeing inode {}: object kept until its tier is writable: {}", ino,
                     st.message());
      return;
    }
    if (unfreed_.erase(ino))
      spdlog::info("freed inode {}: its {} tier is writable again", ino, TierName(n.tier));
  }
  Status st = store_->DeleteInode(ino);
  if (!st.ok()) spdlog::error("freeing inode {}: {}", ino, st.message());
}

void Context::RetryUnfreed() {
  constexpr int64_t kRetryNs = 1'000'000'000;
  const int64_t now = NowNs();
  std::vector<uint64_t> inos;
  {
    std::lock_guard<std::mutex> lock(unfreed_mu_);
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

void Context::ReapOrphans() {
  std::vector<uint64_t> orphans;
  Status st = store_->ListOrphans(&orphans);
  if (!st.ok()) spdlog::error("listing orphans: {}", st.message());
  for (uint64_t ino : orphans) FreeInode(ino);
  if (!orphans.empty()) spdlog::info("freed {} inodes unlinked while open", orphans.size());
}

void Context::Audit(const AuditRecord& rec) {
  Audit(std::vector<AuditRecord>{rec});
}

void Context::Audit(const std::vector<AuditRecord>& records) {
  if (!audit_ || records.empty()) return;
  Status st = audit_->Append(records);
  if (st.ok()) return;
  spdlog::error("audit: {}; records not journaled:", st.message());
  for (const AuditRecord& rec : records) spdlog::error("  {}", AuditLog::Format(rec, NowNs()));
}

}  // namespace tierfs

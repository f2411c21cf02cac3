#include "fs/handles.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>

namespace tierfs {

Handles::Handles(Store& store, Tiers tiers, InodeTable& table, Placement& placement,
                 bool direct_writes)
    : store_(store),
      tiers_(tiers),
      table_(table),
      placement_(placement),
      direct_writes_(direct_writes) {}

FileHandle* Handles::New(const Inode& n, int flags) {
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

IoMode Handles::Admit(FileHandle& fh, int flags, bool may_passthrough, int* backing_id) {
  LiveState& live = *fh.live;
  MutexLock modes(&live.modes);
  const int access = flags & O_ACCMODE;
  if (live.passthrough_handles.load() == 0) {
    IoMode mode = IoMode::kCached;
    if (access == O_WRONLY && direct_writes_) mode = IoMode::kDirect;
    if (mode == IoMode::kDirect || (access != O_RDONLY && !fh.promised) || !may_passthrough ||
        !passthrough_.active() || live.other_handles > 0 || !StartPassthrough(fh.ino, live)) {
      live.other_handles++;
      return fh.mode = mode;
    }
  }
  // The kernel reads (and, for a handle opened for writing, writes) the
  // object itself: tierfs sees no WRITE, so release must record the size.
  live.passthrough_handles++;
  *backing_id = fh.backing_id = live.backing_id;
  if (fh.writable) {
    fh.wrote = true;
    live.stream_sums.Spoil();  // its writes will not pass through tierfs
  }
  if (access == O_RDWR) live.mapping_writers++;
  fh.mapping_writer = access == O_RDWR;
  return fh.mode = IoMode::kPassthrough;
}

bool Handles::StartPassthrough(uint64_t ino, LiveState& live) {
  // Under the placement lock: a move either sees this handle (and gives
  // up) or has switched already, and the object registered is the new one.
  std::lock_guard<std::mutex> placement(placement_.Lock(ino));
  Inode n;
  Status st = store_.GetInode(ino, &n);
  if (st.ok() && n.tier == TierId::kHdd) st = tiers_.hdd->CheckHealth();
  // No object yet (an empty file): served by tierfs, which creates it.
  int fd = st.ok() ? tiers_[n.tier].OpenObject(ino, O_RDWR, &st) : -1;
  if (fd < 0) return false;
  const int id = passthrough_.OpenBacking(fd);
  if (id < 0) {
    close(fd);
    if (!passthrough_warned_.exchange(true))
      spdlog::warn("passthrough of {} refused by the kernel ({}); reads go through tierfs",
                   tiers_[n.tier].ObjectPath(ino), std::strerror(-id));
    return false;
  }
  live.backing_id = id;
  live.backing_fd = fd;
  return true;
}

void Handles::Delete(FileHandle* fh) {
  {
    LiveState& live = *fh->live;
    MutexLock modes(&live.modes);
    if (fh->mode != IoMode::kPassthrough) live.other_handles--;
    // The kernel looked the backing file up when each open completed; the
    // last release ends the inode's passthrough.
    if (fh->mapping_writer) live.mapping_writers--;
    if (fh->mode == IoMode::kPassthrough && --live.passthrough_handles == 0) {
      passthrough_.CloseBacking(live.backing_id);
      close(live.backing_fd);
      live.backing_id = live.backing_fd = -1;
    }
  }
  fh->object.reset();  // closed here unless a request still uses it
  if (fh->writable) fh->live->writers--;
  fh->live->handles--;
  delete fh;
}

ObjectFile::~ObjectFile() {
  if (fd >= 0) close(fd);
}

ObjectRef Handles::ObjectOf(FileHandle& fh, bool create, Status* st) {
  const uint32_t placement_now = fh.live->placement.load();
  std::lock_guard<std::mutex> lock(fh.mu);
  if (fh.object && fh.object_placement == placement_now) return fh.object;
  // The file may have moved since the handle opened its object. The handle
  // lets go of the old one; requests still using it keep it open.
  fh.object.reset();
  std::lock_guard<std::mutex> placement(placement_.Lock(fh.ino));
  Inode n;
  if (store_.GetInode(fh.ino, &n).ok()) fh.tier = n.tier;
  // O_RDWR even for read-only opens: with the writeback cache the kernel
  // reads pages of files that were opened write-only.
  fh.object_placement = placement_now;
  // The HDD tier may be gone (unmounted, removed, failing): EIO then, not
  // an empty file or whatever an unrelated directory holds.
  if (fh.tier == TierId::kHdd) {
    *st = tiers_.hdd->CheckHealth();
    if (!st->ok()) return nullptr;
  }
  const Tier& tier = tiers_[fh.tier];
  int fd = tier.OpenObject(fh.ino, O_RDWR, st);
  if (fd < 0 && create && st->err() == ENOENT) {
    *st = Status::Ok();
    fd = tier.OpenObject(fh.ino, O_RDWR | O_CREAT | O_EXCL, st);
    if (fd >= 0) {
      fh.live->object_name_unsynced = true;
    } else if (st->err() == EEXIST) {  // made meanwhile by a path that syncs its own
      *st = Status::Ok();
      fd = tier.OpenObject(fh.ino, O_RDWR, st);
    }
  }
  if (fd < 0) return nullptr;
  fh.object = std::make_shared<const ObjectFile>(fd, fh.tier);
  return fh.object;
}

Status Handles::CheckObjectIntact(uint64_t ino) {
  // Under the placement lock: a move switching meanwhile removes the object
  // the inode named a moment ago.
  std::lock_guard<std::mutex> placement(placement_.Lock(ino));
  Inode n;
  Status st = store_.GetInode(ino, &n);
  if (!st.ok() || !n.is_reg() || n.size == 0) return st;
  if (table_.Live(ino)->writers.load() > 0) return Status::Ok();  // LMDB's size lags
  const Tier& tier = tiers_[n.tier];
  struct stat obj;
  st = tier.StatObject(ino, &obj);
  const std::string what =
      "inode " + std::to_string(ino) + ": object " + tier.ObjectPath(ino) + " ";
  if (st.err() == ENOENT)
    return Status::Error(EIO, what + "is missing; " + std::to_string(n.size) + " bytes lost");
  if (!st.ok()) return st;
  if (uint64_t(obj.st_size) < n.size)
    return Status::Error(EIO, what + "has " + std::to_string(obj.st_size) + " bytes, " +
                                  std::to_string(n.size) + " recorded: truncated");
  return Status::Ok();
}

}  // namespace tierfs

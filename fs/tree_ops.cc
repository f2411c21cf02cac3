#include "fs/tree_ops.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>

#include "tiering/uring_copy.h"

namespace tierfs {

Status TreeOps::RemovePath(const std::string& path, uint64_t ino, const BeforeRemoving& before,
                           std::vector<RemovedFile>* files) {
  files->clear();
  // Resolve by name: the tree may have changed since the scan.
  uint64_t parent = 0;
  std::string name;
  Inode top;
  Status st = ResolvePath(*p_.store, path, &parent, &name, &top);
  if (st.err() == EINVAL) return Status::Error(EINVAL, "refusing to remove the root");
  if (!st.ok()) return Status::Error(ESTALE, st.message());
  if (top.ino != ino)
    return Status::Error(ESTALE, path + " no longer names inode " + std::to_string(ino));

  // Everything to remove, parents before children, from one snapshot.
  struct Item {
    uint64_t parent;
    std::string name;
    std::string path;
    Inode inode;
  };
  std::vector<Item> order;
  st = p_.store->WalkBelow(ino, path, [&](const Store::TreeEntry& e) {
    if (order.empty())
      order.push_back({parent, name, path, *e.inode});
    else
      order.push_back({e.parent, e.name, e.path, *e.inode});
    return Status::Ok();
  });
  if (!st.ok()) return st;
  // The last word before deleting: nothing open, nothing held.
  const auto open = p_.table->OpenInodes();
  const int64_t now = NowNs();
  for (const Item& item : order) {
    if (std::find(open.begin(), open.end(), item.inode.ino) != open.end())
      return Status::Error(EBUSY,
                           item.path + " (inode " + std::to_string(item.inode.ino) + ") is open");
    Store::Hold h;
    if (p_.store->GetHold(item.inode.ino, &h).ok() && Holds::Retains(h, now))
      return Status::Error(EPERM, item.path + " (inode " + std::to_string(item.inode.ino) +
                                      ") is held by rule '" + h.rule + "'");
  }
  // What is deleted is recorded with the checksum of its bytes, so that an
  // audit can tell later exactly which data went. `files` gets each file once
  // it is removed: a removal that fails part way has removed some, and those
  // must be audited (and no others).
  std::vector<RemovedFile> sums(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const Item& item = order[i];
    if (!item.inode.is_reg()) continue;
    sums[i] = RemovedFile{item.path, item.inode.ino, 0, 0};
    st = HashObject(item.inode, &sums[i].bytes, &sums[i].checksum);
    if (!st.ok()) return Status::Error(st.err(), "checksum before thinning: " + st.message());
  }
  // The kernel locks the parent and the child of every entry we tell it was
  // deleted. A request holding one of those locks for long (a setxattr
  // moving a tree) would keep this thread waiting, uninterruptibly, for
  // the whole move, and a kill -9 meanwhile would never complete (the
  // thread never leaves the kernel, so the connection is never released
  // and the request never ends). Defer to the next scan instead.
  std::vector<uint64_t> locks = {parent};
  for (const Item& item : order) locks.push_back(item.inode.ino);
  {
    MutexLock lock(&kernel_locks_mu_);
    for (size_t i = 0; i < locks.size(); ++i) {
      const std::string what = i == 0 ? "the parent directory of " + path : order[i - 1].path;
      if (in_flight_[locks[i] % kSlots].load() > 0 && !locked_by_request_.count(locks[i]))
        return Status::Error(EBUSY, "deferred: a request on " + what + " (inode " +
                                        std::to_string(locks[i]) + ") is in progress; " + path +
                                        " is thinned after it");
      if (!locked_by_request_.count(locks[i])) continue;
      return Status::Error(EBUSY, "deferred: a setxattr request (a move to another tier) on " +
                                      what + " (inode " + std::to_string(locks[i]) +
                                      ") is in progress; " + path + " is thinned after it");
    }
    notifying_.insert(locks.begin(), locks.end());
  }
  struct Done {
    TreeOps* t;
    const std::vector<uint64_t>& locks;
    ~Done() {
      MutexLock lock(&t->kernel_locks_mu_);
      for (uint64_t ino : locks) t->notifying_.erase(t->notifying_.find(ino));
    }
  } done{this, locks};
  if (before) {
    std::vector<RemovedFile> going;
    for (size_t i = order.size(); i-- > 0;)  // in the order they go
      if (order[i].inode.is_reg()) going.push_back(sums[i]);
    st = before(going);
    if (!st.ok()) return st;
  }
  fuse_session* se = session_.load();
  // Children first: each directory is empty by the time it is removed.
  for (size_t i = order.size(); i-- > 0;) {
    const auto it = order.begin() + i;
    Removed removed;
    st = it->inode.is_dir() ? p_.store->Rmdir(it->parent, it->name, &removed)
                            : p_.store->Unlink(it->parent, it->name, &removed);
    if (!st.ok()) return Status::Error(st.err(), path + ": " + st.message());
    if (it->inode.is_reg()) files->push_back(std::move(sums[i]));
    if (se) {
      fuse_lowlevel_notify_delete(se, it->parent, it->inode.ino, it->name.data(), it->name.size());
      // The kernel clears the inode's nlink on a notified delete; a hard link
      // outside the generation still names it, so make it ask again (attributes
      // only: the bytes are unchanged).
      if (removed.ino != 0 && removed.nlink > 0)
        fuse_lowlevel_notify_inval_inode(se, it->inode.ino, -1, 0);
    }
    p_.on_removed(removed);
  }
  return p_.store->Sync();  // a thinning, like an audit record, must not come back
}

Status TreeOps::BeginLockedRequest(uint64_t ino, const char* what) {
  MutexLock lock(&kernel_locks_mu_);
  if (notifying_.count(ino))
    return Status::Error(EBUSY, std::string(what) + " of inode " + std::to_string(ino) +
                                    ": the policy engine is removing entries there; retry");
  locked_by_request_.insert(ino);
  return Status::Ok();
}

void TreeOps::EndLockedRequest(uint64_t ino) {
  MutexLock lock(&kernel_locks_mu_);
  locked_by_request_.erase(locked_by_request_.find(ino));
}

Status TreeOps::HashObject(const Inode& n, uint64_t* bytes, uint64_t* checksum) {
  // No lock: if a move switches the object meanwhile, the descriptor still
  // reads the same bytes.
  Inode now;
  Status st = p_.store->GetInode(n.ino, &now);
  if (!st.ok()) return st;
  const Tier& tier = p_.tiers[now.tier];
  int fd = tier.OpenObject(n.ino, O_RDONLY, &st);
  if (fd < 0 && st.err() == ENOENT) {  // never written: empty
    *bytes = 0;
    return HashFile(-1, 0, 1, "", checksum);
  }
  if (fd < 0) return st;
  struct stat s;
  st = fstat(fd, &s) == 0 ? Status::Ok() : Status::Errno(errno, "stat");
  if (st.ok()) {
    *bytes = uint64_t(s.st_size);
    st = HashFile(fd, *bytes, 1 << 20, tier.ObjectPath(n.ino), checksum);
  }
  close(fd);
  return st;
}

Status TreeOps::Walk(const std::function<Status(const Store::TreeEntry&)>& visit) {
  return p_.store->WalkTree(visit);
}

std::vector<uint64_t> TreeOps::OpenInodes() {
  return p_.table->OpenInodes();
}

int64_t TreeOps::LastOpen(uint64_t ino) {
  return p_.table->LastOpen(ino);
}

Status TreeOps::ReadPointer(const Inode& n, size_t max, std::string* out) {
  out->clear();
  const Tier& tier = p_.tiers[n.tier];
  Status st;
  int fd = tier.OpenObject(n.ino, O_RDONLY, &st);
  if (fd < 0) return st.err() == ENOENT ? Status::Ok() : st;
  out->resize(max);
  ssize_t got = pread(fd, out->data(), max, 0);
  if (got < 0) st = Status::Errno(errno, "read pointer file " + tier.ObjectPath(n.ino));
  close(fd);
  out->resize(got > 0 ? size_t(got) : 0);
  return st;
}

Status TreeOps::Move(uint64_t ino, TierId to, const std::string& rule, const std::string& path) {
  Inode n;
  Status st = p_.store->GetInode(ino, &n);
  if (!st.ok()) return st;
  if (n.is_dir()) return p_.placement->MoveTree(ino, to, rule, path);
  if (!n.is_reg() || n.tier == to) return Status::Ok();
  // Pinned manually since the scan planned this: the pin wins.
  Store::Hold h;
  if (p_.store->GetHold(ino, &h).ok() && Holds::ManualActive(&h, NowNs())) return Status::Ok();
  if (to == TierId::kSsd && !p_.space->RoomBelowHighWatermark(n.size))
    return Status::Error(EBUSY, "deferred: " + path + " (" + std::to_string(n.size) +
                                    " bytes) would take the ssd tier past its high watermark");
  return p_.placement->Move(ino, to, rule, path);
}

Status TreeOps::HoldTree(uint64_t ino, const Store::Hold& hold, int* changed) {
  return p_.holds->HoldTree(ino, hold, changed);
}

int TreeOps::ExpireHolds(int64_t now, std::vector<AuditRecord>* records) {
  return p_.holds->ExpireHolds(now, records);
}

// <hdd>/ns/<namespace>/manifests/<series>/<file>: written whole (temporary,
// fsync, rename, fsync of the directory), so a reader after a crash finds
// the old manifest or the new one, never a part.
Status TreeOps::WriteManifest(const std::string& name, const std::string& text) {
  // Not into a namespace another state took over (Tier::RequireOwner), nor
  // onto a tier that is away: tried again at the next scan.
  Status health = p_.tiers.hdd->CheckHealth();
  if (!health.ok()) return health;
  const std::string top = p_.tiers.hdd->namespace_dir() + "/manifests";
  const std::string path = top + "/" + name;
  const std::string dir = path.substr(0, path.find_last_of('/'));
  for (const std::string& d : {top, dir})
    if (mkdir(d.c_str(), 0755) != 0 && errno != EEXIST)
      return Status::Error(errno,
                           "manifest directory " + d + " on the hdd tier: " + std::strerror(errno));
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Error(errno, "manifest " + tmp + ": " + std::strerror(errno));
  bool ok = write(fd, text.data(), text.size()) == ssize_t(text.size());
  if (ok) ok = fsync(fd) == 0;
  const int err = ok ? 0 : (errno ? errno : EIO);
  close(fd);
  if (ok && rename(tmp.c_str(), path.c_str()) != 0) ok = false;
  if (!ok) {
    const int e = err ? err : errno;
    unlink(tmp.c_str());
    return Status::Error(e, "manifest " + path + ": " + std::strerror(e));
  }
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return Status::Ok();
}

void TreeOps::SetLimits(const TierLimits& policy_limits) {
  const TierLimits limits = EffectiveLimits(*p_.options, policy_limits);
  p_.space->SetWatermarks(limits.watermarks);
  p_.placement->SetLimits(limits.move_bytes_per_sec, limits.max_moves);
}

}  // namespace tierfs

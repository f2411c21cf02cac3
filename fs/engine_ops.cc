// Context's side of the policy engine: thinning a generation out of the
// tree (with the kernel told, since it caches entries for long), holds and
// the immutability they impose, and the limits a policy sets.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "fs/context.h"
#include "tiering/uring_copy.h"

namespace tierfs {

namespace {

// Every inode at and below `ino`, parents before children.
Status CollectTree(Store& store, uint64_t ino, std::vector<Inode>* out) {
  Inode n;
  Status st = store.GetInode(ino, &n);
  if (!st.ok()) return st;
  out->push_back(n);
  for (size_t i = out->size() - 1; i < out->size(); ++i) {
    if (!(*out)[i].is_dir()) continue;
    std::vector<DirEntry> entries;
    std::vector<Inode> inodes;
    st = store.ListDir((*out)[i].ino, &entries, &inodes);
    if (!st.ok()) return st;
    out->insert(out->end(), inodes.begin(), inodes.end());
  }
  return Status::Ok();
}

bool HoldActive(const Store::Hold& h, int64_t now) {
  return h.until_ns == 0 || h.until_ns > now;
}

}  // namespace

void Context::SetPolicyRunner(std::unique_ptr<PolicyRunner> runner) {
  policy_runner_ = std::move(runner);
}

Status Context::RemovePath(const std::string& path, uint64_t ino, std::vector<RemovedFile>* files) {
  files->clear();
  // Resolve the parent by name: the tree may have changed since the scan.
  uint64_t parent = kRootIno;
  std::string name;
  std::istringstream parts(path);
  std::vector<std::string> names;
  for (std::string part; std::getline(parts, part, '/');)
    if (!part.empty()) names.push_back(part);
  if (names.empty()) return Status::Error(EINVAL, "refusing to remove the root");
  for (size_t i = 0; i + 1 < names.size(); ++i) {
    Inode d;
    Status st = store_->Lookup(parent, names[i], &d);
    if (!st.ok()) return Status::Error(ESTALE, path + ": " + st.message());
    parent = d.ino;
  }
  name = names.back();
  Inode top;
  Status st = store_->Lookup(parent, name, &top);
  if (!st.ok() || top.ino != ino)
    return Status::Error(ESTALE, path + " no longer names inode " + std::to_string(ino));

  // Everything to remove, parents before children, in one walk.
  struct Item {
    uint64_t parent;
    std::string name;
    std::string path;
    Inode inode;
  };
  std::vector<Item> order = {{parent, name, path, top}};
  for (size_t i = 0; i < order.size(); ++i) {
    if (!order[i].inode.is_dir()) continue;
    std::vector<DirEntry> entries;
    std::vector<Inode> inodes;
    st = store_->ListDir(order[i].inode.ino, &entries, &inodes);
    if (!st.ok()) return st;
    for (size_t j = 0; j < entries.size(); ++j)
      order.push_back(
          {order[i].inode.ino, entries[j].name, order[i].path + "/" + entries[j].name, inodes[j]});
  }
  // The last word before deleting: nothing open, nothing held.
  const auto open = table_.OpenInodes();
  const int64_t now = NowNs();
  for (const Item& item : order) {
    if (std::find(open.begin(), open.end(), item.inode.ino) != open.end())
      return Status::Error(EBUSY,
                           item.path + " (inode " + std::to_string(item.inode.ino) + ") is open");
    Store::Hold h;
    if (store_->GetHold(item.inode.ino, &h).ok() && HoldActive(h, now))
      return Status::Error(EPERM, item.path + " (inode " + std::to_string(item.inode.ino) +
                                      ") is held by rule '" + h.rule + "'");
  }
  // What is deleted is recorded with the checksum of its bytes, so that an
  // audit can tell later exactly which data went.
  for (const Item& item : order) {
    if (!item.inode.is_reg()) continue;
    RemovedFile f{item.path, item.inode.ino, 0, 0};
    st = HashObject(item.inode, &f.bytes, &f.checksum);
    if (!st.ok()) return Status::Error(st.err(), "checksum before thinning: " + st.message());
    files->push_back(std::move(f));
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
    std::lock_guard<std::mutex> lock(kernel_locks_mu_);
    for (size_t i = 0; i < locks.size(); ++i) {
      if (!locked_by_request_.count(locks[i])) continue;
      const std::string what = i == 0 ? "the parent directory of " + path : order[i - 1].path;
      return Status::Error(EBUSY, "deferred: a setxattr request (a move to another tier) on " +
                                      what + " (inode " + std::to_string(locks[i]) +
                                      ") is in progress; " + path + " is thinned after it");
    }
    notifying_.insert(locks.begin(), locks.end());
  }
  struct Done {
    Context* c;
    const std::vector<uint64_t>& locks;
    ~Done() {
      std::lock_guard<std::mutex> lock(c->kernel_locks_mu_);
      for (uint64_t ino : locks) c->notifying_.erase(c->notifying_.find(ino));
    }
  } done{this, locks};
  // Children first: each directory is empty by the time it is removed.
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Removed removed;
    st = it->inode.is_dir() ? store_->Rmdir(it->parent, it->name, &removed)
                            : store_->Unlink(it->parent, it->name, &removed);
    if (!st.ok()) return Status::Error(st.err(), path + ": " + st.message());
    if (session_) {
      fuse_lowlevel_notify_delete(session_, it->parent, it->inode.ino, it->name.data(),
                                  it->name.size());
      // The kernel clears the inode's nlink on a notified delete; a hard link
      // outside the generation still names it, so make it ask again (attributes
      // only: the bytes are unchanged).
      if (removed.ino != 0 && removed.nlink > 0)
        fuse_lowlevel_notify_inval_inode(session_, it->inode.ino, -1, 0);
    }
    OnRemoved(removed);
  }
  return store_->Sync();  // a thinning, like an audit record, must not come back
}

Status Context::BeginLockedRequest(uint64_t ino, const char* what) {
  std::lock_guard<std::mutex> lock(kernel_locks_mu_);
  if (notifying_.count(ino))
    return Status::Error(EBUSY, std::string(what) + " of inode " + std::to_string(ino) +
                                    ": the policy engine is removing entries there; retry");
  locked_by_request_.insert(ino);
  return Status::Ok();
}

void Context::EndLockedRequest(uint64_t ino) {
  std::lock_guard<std::mutex> lock(kernel_locks_mu_);
  locked_by_request_.erase(locked_by_request_.find(ino));
}

Status Context::HashObject(const Inode& n, uint64_t* bytes, uint64_t* checksum) {
  // No lock: if a move switches the object meanwhile, the descriptor still
  // reads the same bytes.
  Inode now;
  Status st = store_->GetInode(n.ino, &now);
  if (!st.ok()) return st;
  int fd = tier(now.tier).OpenObject(n.ino, O_RDONLY, &st);
  if (fd < 0 && st.err() == ENOENT) {  // never written: empty
    *bytes = 0;
    return HashFile(-1, 0, 1, "", checksum);
  }
  if (fd < 0) return st;
  struct stat s;
  st = fstat(fd, &s) == 0 ? Status::Ok() : Status::Errno(errno, "stat");
  if (st.ok()) {
    *bytes = uint64_t(s.st_size);
    st = HashFile(fd, *bytes, 1 << 20, tier(now.tier).ObjectPath(n.ino), checksum);
  }
  close(fd);
  return st;
}

Status Context::HoldTree(uint64_t ino, const Store::Hold& hold, int* changed) {
  *changed = 0;
  std::vector<Inode> tree;
  Status st = CollectTree(*store_, ino, &tree);
  if (!st.ok()) return st;
  for (const Inode& n : tree) {
    Store::Hold have;
    if (store_->GetHold(n.ino, &have).ok() && have.until_ns == hold.until_ns &&
        have.immutable == hold.immutable && have.rule == hold.rule)
      continue;
    st = store_->SetHold(n.ino, hold);
    if (!st.ok()) return st;
    (*changed)++;
  }
  if (*changed > 0) CountHolds();
  return Status::Ok();
}

Status Context::CheckMutable(uint64_t ino, const char* what) {
  if (immutable_holds_.load(std::memory_order_relaxed) == 0) return Status::Ok();
  Store::Hold h;
  if (!store_->GetHold(ino, &h).ok() || !h.immutable || !HoldActive(h, NowNs()))
    return Status::Ok();
  return Status::Error(EPERM, std::string(what) + " of inode " + std::to_string(ino) +
                                  " refused: held immutable by rule '" + h.rule + "'");
}

Status Context::CheckEntryMutable(uint64_t parent, const char* name, const char* what) {
  if (immutable_holds_.load(std::memory_order_relaxed) == 0) return Status::Ok();
  Inode n;
  if (!store_->Lookup(parent, name, &n).ok()) return Status::Ok();  // the operation will say
  return CheckMutable(n.ino, what);
}

void Context::CountHolds() {
  std::vector<std::pair<uint64_t, Store::Hold>> holds;
  // Unknown after an error: 1 makes CheckMutable ask LMDB (never a stale 0).
  if (!store_->ListHolds(&holds).ok()) return (void)(immutable_holds_ = 1);
  int n = 0;
  for (const auto& [ino, h] : holds) n += h.immutable ? 1 : 0;
  immutable_holds_ = n;
}

void Context::ApplyPolicyLimits(const Policy& policy) {
  if (!options_.watermarks_from_cli) {
    options_.watermarks = Watermarks{policy.ssd_high_watermark, policy.ssd_low_watermark};
    high_mark_ = policy.ssd_high_watermark;
    if (evictor_)
      evictor_->SetWatermarks(Watermarks{policy.ssd_high_watermark, policy.ssd_low_watermark});
  }
  if (!options_.throttle_from_cli)
    throttle_.SetLimits(policy.move_bandwidth_bytes_per_s, policy.max_moves);
}

}  // namespace tierfs

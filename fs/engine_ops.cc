// Context's side of the policy engine: thinning a generation out of the
// tree (with the kernel told, since it caches entries for long), holds and
// the immutability they impose, and the limits a policy sets.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <sstream>

#include "fs/context.h"

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

Status Context::RemovePath(const std::string& path, uint64_t ino, uint64_t* files) {
  *files = 0;
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

  std::vector<Inode> tree;
  st = CollectTree(*store_, ino, &tree);
  if (!st.ok()) return st;
  // The last word before deleting: nothing open, nothing held.
  const auto open = table_.OpenInodes();
  const int64_t now = NowNs();
  for (const Inode& n : tree) {
    if (std::find(open.begin(), open.end(), n.ino) != open.end())
      return Status::Error(EBUSY, path + ": inode " + std::to_string(n.ino) + " is open");
    Store::Hold h;
    if (store_->GetHold(n.ino, &h).ok() && HoldActive(h, now))
      return Status::Error(
          EPERM, path + ": inode " + std::to_string(n.ino) + " is held by rule '" + h.rule + "'");
  }
  // Children first: each directory is empty by the time it is removed.
  struct Item {
    uint64_t parent;
    std::string name;
    Inode inode;
  };
  std::vector<Item> order = {{parent, name, top}};
  for (size_t i = 0; i < order.size(); ++i) {
    if (!order[i].inode.is_dir()) continue;
    std::vector<DirEntry> entries;
    std::vector<Inode> inodes;
    st = store_->ListDir(order[i].inode.ino, &entries, &inodes);
    if (!st.ok()) return st;
    for (size_t j = 0; j < entries.size(); ++j)
      order.push_back({order[i].inode.ino, entries[j].name, inodes[j]});
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Removed removed;
    st = it->inode.is_dir() ? store_->Rmdir(it->parent, it->name, &removed)
                            : store_->Unlink(it->parent, it->name, &removed);
    if (!st.ok()) return Status::Error(st.err(), path + ": " + st.message());
    if (session_)
      fuse_lowlevel_notify_delete(session_, it->parent, it->inode.ino, it->name.data(),
                                  it->name.size());
    OnRemoved(removed);
    if (it->inode.is_reg()) (*files)++;
  }
  return store_->Sync();  // a thinning, like an audit record, must not come back
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
  if (!store_->ListHolds(&holds).ok()) return;
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

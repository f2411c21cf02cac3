#include "fs/holds.h"

#include <spdlog/spdlog.h>

#include <string>
#include <vector>

namespace tierfs {

Status Holds::HoldTree(uint64_t ino, const Store::Hold& hold, int* changed) {
  *changed = 0;
  std::vector<uint64_t> tree;
  Status st = store_.WalkBelow(ino, "", [&](const Store::TreeEntry& e) {
    tree.push_back(e.inode->ino);
    return Status::Ok();
  });
  if (!st.ok()) return st;
  const int64_t now = NowNs();
  for (uint64_t n : tree) {
    Store::Hold have;
    const bool had = store_.GetHold(n, &have).ok();
    // A rule's pin never replaces a manual one in force (fs/holds.h).
    if (had && !hold.manual && have.manual && !have.placement_only && Active(have, now)) continue;
    if (had && have.until_ns == hold.until_ns && have.immutable == hold.immutable &&
        have.rule == hold.rule && have.manual == hold.manual && have.tier == hold.tier &&
        have.placement_only == hold.placement_only && have.uid == hold.uid)
      continue;
    st = store_.SetHold(n, hold);
    if (!st.ok()) break;
    (*changed)++;
  }
  if (*changed > 0) Count();
  return st;
}

Status Holds::HoldForMove(uint64_t ino, TierId to, uint32_t uid, int* changed, MoveHolds* undo) {
  *changed = 0;
  MoveHolds local;
  MoveHolds& tree = undo ? *undo : local;
  tree.to = to;
  tree.entries.clear();
  const int64_t now = NowNs();
  Status st = store_.WalkBelow(ino, "", [&](const Store::TreeEntry& e) {
    Store::Hold h;
    if (e.hold && Active(*e.hold, now) &&
        (e.hold->immutable || (e.hold->manual && !e.hold->placement_only))) {
      h.until_ns = e.hold->until_ns;
      h.immutable = e.hold->immutable;
    } else {
      h.placement_only = true;
    }
    h.since_ns = now;
    h.rule = "manual";
    h.manual = true;
    h.tier = to;
    h.uid = uid;
    MoveHolds::Entry entry;
    entry.ino = e.inode->ino;
    entry.is_reg = e.inode->is_reg();
    if (e.hold) entry.before = *e.hold;
    entry.set = h;
    tree.entries.push_back(std::move(entry));
    return Status::Ok();
  });
  size_t set = 0;
  while (st.ok() && set < tree.entries.size()) {
    st = store_.SetHold(tree.entries[set].ino, tree.entries[set].set);
    if (st.ok()) set++;
  }
  *changed = int(set);
  tree.entries.resize(set);  // only what was set is to be undone
  if (*changed > 0) Count();
  return st;
}

namespace {

bool SameHold(const Store::Hold& a, const Store::Hold& b) {
  return a.until_ns == b.until_ns && a.since_ns == b.since_ns && a.immutable == b.immutable &&
         a.rule == b.rule && a.manual == b.manual && a.placement_only == b.placement_only &&
         a.tier == b.tier && a.uid == b.uid;
}

}  // namespace

int Holds::UndoMoveHolds(const MoveHolds& undo, bool failed) {
  int restored = 0;
  bool kept = false;  // a file that kept the new hold (it is on the tier)
  std::vector<const MoveHolds::Entry*> others;
  auto restore = [&](const MoveHolds::Entry& e) {
    Store::Hold now;
    if (!store_.GetHold(e.ino, &now).ok() || !SameHold(now, e.set)) return;  // changed since
    const Status st = e.before ? store_.SetHold(e.ino, *e.before) : store_.RemoveHold(e.ino);
    if (st.ok()) {
      restored++;
    } else {
      spdlog::warn("inode {}: giving its hold back after a manual move: {}", e.ino, st.message());
    }
  };
  for (const MoveHolds::Entry& e : undo.entries) {
    if (!e.is_reg) {
      others.push_back(&e);
      continue;
    }
    Inode n;
    if (!store_.GetInode(e.ino, &n).ok()) continue;  // removed meanwhile
    if (n.tier == undo.to) {
      kept = true;
      continue;
    }
    restore(e);
  }
  if (failed && !kept)
    for (const MoveHolds::Entry* e : others) restore(*e);
  if (restored > 0) Count();
  return restored;
}

int Holds::DropStalePlacements(std::vector<AuditRecord>* records) {
  std::vector<std::pair<uint64_t, Store::Hold>> holds;
  Status st = store_.ListHolds(&holds);
  if (!st.ok()) {
    spdlog::error("listing holds: {}", st.message());
    return 0;
  }
  int dropped = 0;
  for (const auto& [ino, h] : holds) {
    if (!h.manual || !h.placement_only || !h.tier) continue;
    Inode n;
    if (!store_.GetInode(ino, &n).ok() || !n.is_reg() || n.tier == *h.tier) continue;
    st = store_.RemoveHold(ino);
    AuditRecord rec;
    rec.action = "unpin";
    rec.rule = h.rule;
    rec.ino = ino;
    rec.detail = "at mount: a manual placement on " + std::string(TierName(*h.tier)) + " by uid " +
                 std::to_string(h.uid) + " that never took effect (the file is on " +
                 TierName(n.tier) + "); the policy places it again";
    if (!st.ok()) rec.result = st.message();
    records->push_back(std::move(rec));
    if (st.ok()) dropped++;
  }
  if (dropped > 0) Count();
  return dropped;
}

int Holds::ExpireHolds(int64_t now, std::vector<AuditRecord>* records) {
  std::vector<std::pair<uint64_t, Store::Hold>> holds;
  if (!store_.ListHolds(&holds).ok()) return 0;
  int expired = 0;
  for (const auto& [ino, h] : holds) {
    if (Active(h, now)) continue;
    Status st = store_.RemoveHold(ino);
    AuditRecord rec;
    rec.action = "unpin";
    rec.rule = h.rule;
    rec.ino = ino;
    rec.detail = "hold expired";
    if (!st.ok()) rec.result = st.message();
    records->push_back(std::move(rec));
    if (st.ok()) expired++;
  }
  if (expired > 0) Count();
  return expired;
}

Status Holds::CheckMutable(uint64_t ino, const char* what, const Caller* by) {
  if (immutable_holds_.load(std::memory_order_relaxed) == 0) return Status::Ok();
  Store::Hold h;
  if (!store_.GetHold(ino, &h).ok() || !h.immutable || !Active(h, NowNs())) return Status::Ok();
  if (by && on_refusal_) on_refusal_(*by, ino, what, h);
  return Status::Error(EPERM, std::string(what) + " of inode " + std::to_string(ino) +
                                  " refused: held immutable by rule '" + h.rule + "'");
}

Status Holds::CheckEntryMutable(uint64_t parent, const char* name, const char* what,
                                const Caller* by) {
  if (immutable_holds_.load(std::memory_order_relaxed) == 0) return Status::Ok();
  Inode n;
  if (!store_.Lookup(parent, name, &n).ok()) return Status::Ok();  // the operation will say
  return CheckMutable(n.ino, what, by);
}

void Holds::Count() {
  std::vector<std::pair<uint64_t, Store::Hold>> holds;
  // Unknown after an error: 1 makes CheckMutable ask LMDB (never a stale 0).
  if (!store_.ListHolds(&holds).ok()) {
    immutable_holds_ = 1;
    retaining_holds_ = 1;
    return;
  }
  int n = 0, retaining = 0;
  for (const auto& [ino, h] : holds) {
    n += h.immutable ? 1 : 0;
    retaining += h.placement_only ? 0 : 1;
  }
  immutable_holds_ = n;
  retaining_holds_ = retaining;
}

}  // namespace tierfs

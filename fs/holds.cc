#include "fs/holds.h"

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

Status Holds::HoldForMove(uint64_t ino, TierId to, uint32_t uid, int* changed) {
  *changed = 0;
  std::vector<std::pair<uint64_t, Store::Hold>> tree;
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
    tree.emplace_back(e.inode->ino, h);
    return Status::Ok();
  });
  for (size_t i = 0; st.ok() && i < tree.size(); ++i) {
    st = store_.SetHold(tree[i].first, tree[i].second);
    if (st.ok()) (*changed)++;
  }
  if (*changed > 0) Count();
  return st;
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
  if (!store_.ListHolds(&holds).ok()) return (void)(immutable_holds_ = 1);
  int n = 0;
  for (const auto& [ino, h] : holds) n += h.immutable ? 1 : 0;
  immutable_holds_ = n;
}

}  // namespace tierfs

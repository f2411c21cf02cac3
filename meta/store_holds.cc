// Holds: Store::SetHold, GetHold, RemoveHold, ListHolds (see meta/store.h).
// A record is a fixed header followed by the rule name. The manual-hold
// fields took bytes that were zero padding before, so older records decode
// unchanged (not manual, no tier, uid 0) and the format key stays as it is.
#include <cstring>
#include <string>
#include <vector>

#include "meta/store.h"
#include "meta/txn.h"

namespace tierfs {

namespace {

struct HoldHeader {
  int64_t until_ns;
  int64_t since_ns;
  uint8_t immutable;
  uint8_t manual;  // 0: a rule's, 1: a manual pin, 2: a manual placement only
  uint8_t tier;    // 0: none, else TierId + 1
  uint8_t pad;
  uint32_t uid;
};
static_assert(sizeof(HoldHeader) == 24, "the on-disk hold header is 24 bytes");

std::string Encode(const Store::Hold& h) {
  HoldHeader head{};
  head.until_ns = h.until_ns;
  head.since_ns = h.since_ns;
  head.immutable = h.immutable ? 1 : 0;
  head.manual = h.manual ? (h.placement_only ? 2 : 1) : 0;
  head.tier = h.tier ? uint8_t(uint8_t(*h.tier) + 1) : 0;
  head.uid = h.uid;
  return std::string(reinterpret_cast<const char*>(&head), sizeof head) + h.rule;
}

}  // namespace

Status DecodeHold(const MDB_val& v, uint64_t ino, Store::Hold* out) {
  if (v.mv_size < sizeof(HoldHeader))
    return Status::Error(EIO, "hold of inode " + std::to_string(ino) + " is truncated");
  HoldHeader head;
  std::memcpy(&head, v.mv_data, sizeof head);
  out->until_ns = head.until_ns;
  out->since_ns = head.since_ns;
  out->immutable = head.immutable != 0;
  out->manual = head.manual != 0;
  out->placement_only = head.manual == 2;
  out->tier.reset();
  if (head.tier == 1 || head.tier == 2) out->tier = TierId(head.tier - 1);
  out->uid = head.uid;
  out->rule.assign(static_cast<const char*>(v.mv_data) + sizeof head, v.mv_size - sizeof head);
  return Status::Ok();
}

Status Store::SetHold(uint64_t ino, const Hold& hold) {
  WriteTxn txn(env_);
  Status st = txn.begin();
  if (st.ok()) {
    st = PutRaw(txn.get(), dbs_->holds, InoKey(ino), Encode(hold),
                "hold of inode " + std::to_string(ino));
  }
  if (st.ok()) st = txn.commit();
  return st;
}

Status Store::GetHold(uint64_t ino, Hold* out) {
  ReadTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  MDB_val v;
  int rc = GetRaw(txn.get(), dbs_->holds, InoKey(ino), &v);
  if (rc == MDB_NOTFOUND)
    return Status::Error(ENOENT, "inode " + std::to_string(ino) + " has no hold");
  if (rc != 0) return LmdbError(rc, "read hold of inode " + std::to_string(ino));
  return DecodeHold(v, ino, out);
}

Status Store::RemoveHold(uint64_t ino) {
  WriteTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  MDB_val v;
  if (GetRaw(txn.get(), dbs_->holds, InoKey(ino), &v) == MDB_NOTFOUND) return Status::Ok();
  st = DelKey(txn.get(), dbs_->holds, InoKey(ino), "hold of inode " + std::to_string(ino));
  if (st.ok()) st = txn.commit();
  return st;
}

Status Store::ListHolds(std::vector<std::pair<uint64_t, Hold>>* out) {
  ReadTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  out->clear();
  return ForEachKey(txn.get(), dbs_->holds, "", [&](const MDB_val& k, const MDB_val& v) {
    Hold h;
    const uint64_t ino = InoFromKey(k);
    Status s = DecodeHold(v, ino, &h);
    if (s.ok()) out->emplace_back(ino, std::move(h));
    return s;
  });
}

}  // namespace tierfs

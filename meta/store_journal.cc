// The move journal: Store::BeginMove, CommitMove, EndMove, ListMoves.
//
// Contract (see meta/store.h): a record (ino -> MoveRecord) exists from
// before a move's copy starts until its source or temporary object is gone.
// CommitMove switches the inode's placement and the record's state in one
// transaction, so after a crash the record plus the inode's tier say exactly
// which object is the live one. Thread-safety: as every Store call, each is
// one LMDB transaction; LMDB serializes writers.
#include <string>
#include <vector>

#include "meta/store.h"
#include "meta/txn.h"

namespace tierfs {

namespace {

static_assert(sizeof(Store::MoveRecord) == 24, "MoveRecord is an on-disk record");

std::string MoveStr(uint64_t ino) {
  return "move journal record of inode " + std::to_string(ino);
}

}  // namespace

Status Store::BeginMove(const MoveRecord& rec) {
  WriteTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  MDB_txn* t = txn.get();
  MoveRecord existing;
  int rc = GetPod(t, dbs_->moves, InoKey(rec.ino), &existing);
  if (rc == 0)
    return Status::Error(EBUSY, MoveStr(rec.ino) + " exists (" + TierName(existing.from) + " -> " +
                                    TierName(existing.to) + "): a move is running or unrecovered");
  if (rc != MDB_NOTFOUND) return LmdbError(rc, "read " + MoveStr(rec.ino));
  // Checked in the same transaction as the insert, so the placement the
  // record describes is the one the inode had when the move began.
  Inode n;
  st = dbs_->LoadInode(t, rec.ino, &n);
  if (!st.ok()) return st;
  if (!n.is_reg())
    return Status::Error(EINVAL, "inode " + std::to_string(rec.ino) + " is not a regular file");
  if (n.tier != rec.from)
    return Status::Error(EINVAL, "inode " + std::to_string(rec.ino) + " is on the " +
                                     TierName(n.tier) + " tier, not " + TierName(rec.from));
  MoveRecord r = rec;
  r.state = MoveState::kCopying;
  st = PutPod(t, dbs_->moves, InoKey(rec.ino), r, "write " + MoveStr(rec.ino));
  if (st.ok()) st = txn.commit();
  return st;
}

Status Store::CommitMove(uint64_t ino, TierId to, uint64_t checksum,
                         const std::vector<uint64_t>* block_sums) {
  WriteTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  MDB_txn* t = txn.get();
  MoveRecord rec;
  int rc = GetPod(t, dbs_->moves, InoKey(ino), &rec);
  if (rc == MDB_NOTFOUND) return Status::Error(ENOENT, "no " + MoveStr(ino));
  if (rc != 0) return LmdbError(rc, "read " + MoveStr(ino));
  if (rec.state != MoveState::kCopying || rec.to != to)
    return Status::Error(ESTALE,
                         MoveStr(ino) + " is not a copy toward the " + TierName(to) + " tier");
  Inode n;
  st = dbs_->LoadInode(t, ino, &n);
  if (!st.ok()) return st;
  // Only the journaled move may change this inode's placement; if it did
  // change, switching now would point the file at a stale copy.
  if (n.tier != rec.from)
    return Status::Error(ESTALE, "inode " + std::to_string(ino) + " moved to the " +
                                     TierName(n.tier) + " tier during its move");
  n.tier = to;
  n.checksum = checksum;
  n.ForgetObjectAttrs();  // the old object's; the caller may record the new one's
  rec.state = MoveState::kSwitched;
  st = PutPod(t, dbs_->inodes, InoKey(ino), n, "switch placement of inode " + std::to_string(ino));
  if (st.ok()) st = PutPod(t, dbs_->moves, InoKey(ino), rec, "update " + MoveStr(ino));
  if (st.ok() && block_sums) st = PutBlockSums(t, dbs_->block_sums, ino, checksum, *block_sums);
  if (st.ok()) st = txn.commit();
  return st;
}

Status Store::EndMove(uint64_t ino) {
  WriteTxn txn(env_);
  Status st = txn.begin();
  if (st.ok()) st = DelKey(txn.get(), dbs_->moves, InoKey(ino), "delete " + MoveStr(ino));
  if (st.ok()) st = txn.commit();
  return st;
}

Status Store::ListMoves(std::vector<MoveRecord>* out) {
  ReadTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  out->clear();
  return ForEachKey(txn.get(), dbs_->moves, "", [&](const MDB_val& k, const MDB_val& v) {
    MoveRecord r;
    if (v.mv_size != sizeof(r)) return Status::Error(EIO, "corrupt " + MoveStr(InoFromKey(k)));
    std::memcpy(&r, v.mv_data, sizeof(r));
    out->push_back(r);
    return Status::Ok();
  });
}

}  // namespace tierfs

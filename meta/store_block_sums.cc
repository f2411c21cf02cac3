// Block checksums in LMDB (meta/store.h, "Block checksums").
#include <algorithm>
#include <cstring>

#include "meta/block_sums.h"
#include "meta/txn.h"

namespace tierfs {

namespace {

std::string InoStr(uint64_t ino) {
  return "inode " + std::to_string(ino);
}

}  // namespace

Status PutBlockSums(MDB_txn* t, MDB_dbi db, uint64_t ino, uint64_t whole,
                    const std::vector<uint64_t>& blocks) {
  // The whole-file checksum first: sums recorded for other bytes (by an
  // older tierfs that moved the file without them) never pass for these.
  std::string v(sizeof(uint64_t) * (blocks.size() + 1), '\0');
  std::memcpy(v.data(), &whole, sizeof whole);
  if (!blocks.empty())
    std::memcpy(v.data() + sizeof whole, blocks.data(), blocks.size() * sizeof(uint64_t));
  return PutRaw(t, db, InoKey(ino), v, "record block sums of " + InoStr(ino));
}

Status Store::GetBlockSums(uint64_t ino, std::vector<uint64_t>* out) {
  ReadTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  Inode n;
  st = dbs_->LoadInode(txn.get(), ino, &n);
  if (!st.ok()) return st;
  MDB_val v;
  const int rc = GetRaw(txn.get(), dbs_->block_sums, InoKey(ino), &v);
  if (rc == MDB_NOTFOUND) return Status::Error(ENOENT, "no block sums for " + InoStr(ino));
  if (rc != 0) return LmdbError(rc, "read block sums of " + InoStr(ino));
  uint64_t whole = 0;
  const size_t count = v.mv_size / sizeof(uint64_t);
  if (v.mv_size % sizeof(uint64_t) != 0 || count == 0)
    return Status::Error(EIO, "block sums of " + InoStr(ino) + " are damaged");
  std::memcpy(&whole, v.mv_data, sizeof whole);
  if (n.checksum == 0 || whole != n.checksum || count - 1 != SumBlockCount(n.size))
    return Status::Error(ENOENT, "block sums of " + InoStr(ino) + " are stale");
  out->resize(count - 1);
  if (count > 1)
    std::memcpy(out->data(), static_cast<const char*>(v.mv_data) + sizeof whole,
                out->size() * sizeof(uint64_t));
  return Status::Ok();
}

Status Store::CommitSums(uint64_t ino, const std::function<bool(const Inode&)>& still_valid,
                         uint64_t whole, const std::vector<uint64_t>& blocks,
                         const ObjectAttrs* attrs) {
  Status st = CheckRoom(("record the checksums of " + InoStr(ino)).c_str());
  if (!st.ok()) return st;
  WriteTxn txn(env_);
  st = txn.begin();
  if (!st.ok()) return st;
  Inode n;
  st = dbs_->LoadInode(txn.get(), ino, &n);
  if (!st.ok()) return st;
  if (!still_valid(n)) return Status::Error(ESTALE, InoStr(ino) + " changed while it was hashed");
  n.checksum = whole;
  if (attrs) {
    n.ctime_ns = std::max(n.ctime_ns, attrs->ctime_ns);
    n.RecordObjectAttrs(attrs->blocks);
  }
  st = PutPod(txn.get(), dbs_->inodes, InoKey(ino), n, "record checksum of " + InoStr(ino));
  if (st.ok()) st = PutBlockSums(txn.get(), dbs_->block_sums, ino, whole, blocks);
  if (st.ok()) st = txn.commit();
  return st;
}

Status Store::MarkCorrupt(uint64_t ino, uint64_t checksum) {
  return Update(
      ino,
      [&](Inode& n) {
        if (n.checksum != checksum)
          return Status::Error(ESTALE, InoStr(ino) + " was rewritten since it was verified");
        n.set_corrupt(true);
        return Status::Ok();
      },
      nullptr);
}

}  // namespace tierfs

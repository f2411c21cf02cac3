// Store: copies of the environment for snapshots, and the meta edits
// recovery makes (meta/store.h, "Snapshots and recovery").
#include "meta/store.h"
#include "meta/txn.h"

namespace tierfs {

Status Store::CopyCompactTo(int fd, const std::string& what) {
  {
    MutexLock lock(&copy_mu_);
    copies_++;
  }
  const int rc = mdb_env_copyfd2(env_, fd, MDB_CP_COMPACT);
  {
    MutexLock lock(&copy_mu_);
    if (--copies_ == 0) copies_ended_.SignalAll();
  }
  return rc == 0 ? Status::Ok() : LmdbError(rc, "copy the state to " + what);
}

Status Store::DeleteMeta(const std::string& key) {
  WriteTxn txn(env_);
  Status st = txn.begin();
  if (st.ok()) st = DelKey(txn.get(), dbs_->meta, key, "delete meta key " + key);
  if (st.ok()) st = txn.commit();
  return st;
}

Status Store::RaiseNextIno(uint64_t ino) {
  WriteTxn txn(env_);
  Status st = txn.begin();
  uint64_t next = 0;
  if (st.ok()) st = GetU64(txn.get(), dbs_->meta, kNextInoKey, &next);
  if (st.ok() && next < ino) st = PutU64(txn.get(), dbs_->meta, kNextInoKey, ino);
  if (st.ok()) st = txn.commit();
  return st;
}

}  // namespace tierfs

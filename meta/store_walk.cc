// Store::WalkTree: the whole namespace from one LMDB read transaction (see
// meta/store.h). Holds are few, so they are read once up front rather than
// looked up per entry.
#include <unordered_map>
#include <utility>
#include <vector>

#include "meta/store.h"
#include "meta/txn.h"

namespace tierfs {

Status Store::WalkTree(const std::function<Status(const TreeEntry&)>& visit) {
  ReadTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  MDB_txn* t = txn.get();

  std::unordered_map<uint64_t, Hold> holds;
  st = ForEachKey(t, dbs_->holds, "", [&](const MDB_val& k, const MDB_val& v) {
    const uint64_t ino = InoFromKey(k);
    return DecodeHold(v, ino, &holds[ino]);
  });
  if (!st.ok()) return st;

  // Depth first with an explicit stack: trees may be deeper than a thread's
  // stack would like.
  std::vector<std::pair<uint64_t, std::string>> dirs = {{kRootIno, ""}};
  Inode inode;
  TreeEntry entry;
  while (!dirs.empty()) {
    // Not a structured binding: clang before 16 (make thread-check) cannot
    // capture one in the lambda below.
    const uint64_t dir = dirs.back().first;
    const std::string dir_path = std::move(dirs.back().second);
    dirs.pop_back();
    st = dbs_->ForEachDentry(t, dir, [&](const std::string& name, const DentryValue& d) {
      Status s = dbs_->LoadInode(t, d.ino, &inode);
      if (!s.ok()) return s;
      entry.path = dir_path + "/" + name;
      entry.inode = &inode;
      entry.symlink_target.clear();
      if (inode.is_symlink()) {
        MDB_val v;
        int rc = GetRaw(t, dbs_->symlinks, InoKey(d.ino), &v);
        if (rc == 0) entry.symlink_target.assign(static_cast<const char*>(v.mv_data), v.mv_size);
      }
      auto h = holds.find(d.ino);
      entry.hold = h == holds.end() ? nullptr : &h->second;
      if (inode.is_dir()) dirs.emplace_back(d.ino, entry.path);
      return visit(entry);
    });
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

}  // namespace tierfs

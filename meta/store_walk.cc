// Store::WalkBelow and WalkTree: a tree from one LMDB read transaction (see
// meta/store.h).
#include <utility>
#include <vector>

#include "meta/store.h"
#include "meta/txn.h"

namespace tierfs {

namespace {

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

// Fills what an entry carries besides its inode, from the walk's
// transaction. Holds are looked up per entry rather than read up front: a
// pin rule holds every inode of its tree, so they need not be few.
Status FillExtras(MDB_txn* t, const Store::Dbs& dbs, Store::TreeEntry* entry, Store::Hold* hold) {
  const uint64_t ino = entry->inode->ino;
  entry->symlink_target.clear();
  MDB_val v;
  if (entry->inode->is_symlink()) {
    const int rc = GetRaw(t, dbs.symlinks, InoKey(ino), &v);
    if (rc == 0)
      entry->symlink_target.assign(static_cast<const char*>(v.mv_data), v.mv_size);
    else if (rc != MDB_NOTFOUND)
      return LmdbError(rc, "read the target of " + entry->path);
  }
  entry->hold = nullptr;
  const int rc = GetRaw(t, dbs.holds, InoKey(ino), &v);
  if (rc == MDB_NOTFOUND) return Status::Ok();
  if (rc != 0) return LmdbError(rc, "read the hold of " + entry->path);
  Status st = DecodeHold(v, ino, hold);
  if (st.ok()) entry->hold = hold;
  return st;
}

}  // namespace

Status Store::WalkBelow(uint64_t ino, const std::string& path,
                        const std::function<Status(const TreeEntry&)>& visit) {
  ReadTxn txn(env_);
  Status st = txn.begin();
  if (!st.ok()) return st;
  MDB_txn* t = txn.get();

  Inode inode;
  Hold hold;
  TreeEntry entry;
  entry.path = path;
  entry.inode = &inode;
  st = dbs_->LoadInode(t, ino, &inode);
  if (st.ok()) st = FillExtras(t, *dbs_, &entry, &hold);
  if (st.ok()) st = visit(entry);
  if (!st.ok() || !inode.is_dir()) return st;

  // Depth first with an explicit stack: trees may be deeper than a thread's
  // stack would like.
  std::vector<std::pair<uint64_t, std::string>> dirs = {{ino, path}};
  while (!dirs.empty()) {
    // Not a structured binding: clang before 16 (make thread-check) cannot
    // capture one in the lambda below.
    const uint64_t dir = dirs.back().first;
    const std::string dir_path = std::move(dirs.back().second);
    dirs.pop_back();
    entry.parent = dir;
    st = dbs_->ForEachDentry(t, dir, [&](const std::string& name, const DentryValue& d) {
      entry.name = name;
      entry.path = JoinPath(dir_path, name);
      Status s = dbs_->LoadInode(t, d.ino, &inode);
      if (s.err() == ENOENT)
        return Status::Error(
            EIO, entry.path + " names inode " + std::to_string(d.ino) + ", which does not exist");
      if (s.ok()) s = FillExtras(t, *dbs_, &entry, &hold);
      if (!s.ok()) return s;
      if (inode.is_dir()) dirs.emplace_back(d.ino, entry.path);
      return visit(entry);
    });
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

Status Store::WalkTree(const std::function<Status(const TreeEntry&)>& visit) {
  return WalkBelow(kRootIno, "/", [&](const TreeEntry& e) {
    return e.parent == 0 ? Status::Ok() : visit(e);  // not the root itself
  });
}

}  // namespace tierfs

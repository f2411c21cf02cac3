// The tree of `tierfs view` (fs/view_tree.h).
#include "fs/view_tree.h"

#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <set>

#include "fs/namespace_setup.h"
#include "fs/recover_copy.h"
#include "fs/recover_journal.h"
#include "fs/snapshot.h"
#include "meta/audit_mirror.h"
#include "meta/block_sums.h"
#include "meta/store.h"
#include "meta/xxh3.h"
#include "tiering/identity.h"

namespace tierfs {

namespace {

constexpr char kRecoveredDir[] = "recovered";

// A made directory's number comes from its path, so that a refresh gives
// the same directory the same number (the kernel may still hold it), above
// 2^62, where no state's inode numbers reach.
uint64_t MadeDirIno(const std::string& path, const std::map<uint64_t, ViewNode>& nodes) {
  constexpr uint64_t kBase = uint64_t(1) << 62;
  uint64_t ino = kBase | (XXH3_64bits(path.data(), path.size()) & (kBase - 1));
  while (nodes.count(ino)) ino = kBase | ((ino + 1) & (kBase - 1));
  return ino;
}

int64_t MtimeNs(const struct stat& sb) {
  return TimespecNs(sb.st_mtim);
}

class ViewBuilder {
 public:
  ViewBuilder(const std::string& scratch, ViewTree* tree) : scratch_(scratch), t_(*tree) {}
  Status ReadSnapshot();
  Status ReadRemovals();
  Status ReadObjects();
  void PlaceUnknown();
  void Finish();

 private:
  struct Unknown {
    ObjectIdentity id;
    std::string path;
    struct stat sb;
  };
  void AttachLinks(uint64_t ino);
  // The directory `dirs` names (outermost first), made as needed; 0 when
  // one of them is there and is not a directory.
  // Made directories are the file's owner's, mode 0700, or root's once
  // they hold files of several owners: their real modes are not known, and
  // a mode that let others in could open a private directory to them.
  uint64_t MakeDirs(const std::vector<std::string>& dirs, int64_t time_ns, uint32_t uid,
                    uint32_t gid);

  std::string scratch_;
  ViewTree& t_;
  std::set<uint64_t> known_;         // every inode of the snapshot, orphans too
  std::map<uint64_t, Inode> files_;  // its regular files with names
  std::map<uint64_t, std::vector<std::pair<uint64_t, std::string>>> links_;
  std::map<uint64_t, std::vector<uint64_t>> sums_;
  std::set<uint64_t> seen_;
  std::map<uint64_t, JournalRemoval> removals_;
  std::map<uint64_t, Unknown> unknown_;
  std::set<uint64_t> made_;  // directories MakeDirs made
};

// Who may read the file as the identity says: its owners, mode and access
// ACL (an ACL too long for the identity leaves the file to its owner).
void ApplyAccess(const ObjectIdentity& id, ViewNode* v) {
  v->mode = (v->mode & S_IFMT) | (id.mode & 07777);
  if (id.acl_unknown) v->mode &= ~mode_t(077);
  v->access_acl = id.access_acl;
  v->uid = id.uid;
  v->gid = id.gid;
}

void FillFromInode(const Inode& n, ViewNode* v) {
  v->ino = n.ino;
  v->mode = n.mode;
  v->uid = n.uid;
  v->gid = n.gid;
  v->nlink = n.nlink;
  v->size = n.size;
  v->atime_ns = n.atime_ns;
  v->mtime_ns = n.mtime_ns;
  v->ctime_ns = n.ctime_ns;
}

Status ViewBuilder::ReadSnapshot() {
  ViewNode& root = t_.nodes[kRootIno];
  root.ino = kRootIno;
  root.mode = S_IFDIR | 0755;
  root.path.assign(1, '/');  // not = "/": g++ 12 warns wrongly (-Wrestrict)
  root.atime_ns = root.mtime_ns = root.ctime_ns = NowNs();  // no snapshot: an empty root now
  std::vector<std::string> snaps;
  Status st = ListSnapshots(SnapshotDir(t_.ns_dir), &snaps);
  if (!st.ok() || snaps.empty()) return st;
  t_.snapshot = SnapshotDir(t_.ns_dir) + "/" + snaps.back();
  // LMDB opens an environment read-write with its lock file beside it:
  // the copy is opened, never the snapshot the owner may prune meanwhile.
  const std::string copy = scratch_ + "/data.mdb";
  st = CopyToNewFile(t_.snapshot, copy, 0600, CopySource::kFollowLinks);
  if (!st.ok()) return st;
  {
    std::unique_ptr<Store> store;
    st = Store::Open(scratch_, &store);
    Inode n;
    if (st.ok()) st = store->GetInode(kRootIno, &n);
    if (st.ok()) FillFromInode(n, &root);
    if (st.ok())
      st = store->ForEachInode([this](const Inode& i) {
        known_.insert(i.ino);
        return Status::Ok();
      });
    if (st.ok())
      st = store->WalkTree([this](const Store::TreeEntry& e) {
        const Inode& n = *e.inode;
        ViewNode& v = t_.nodes[n.ino];
        if (v.ino == 0) {
          FillFromInode(n, &v);
          v.path = e.path;
          v.symlink_target = e.symlink_target;
        }
        if (!n.is_reg()) {
          t_.nodes[e.parent].children[e.name] = n.ino;
          return Status::Ok();
        }
        files_[n.ino] = n;
        links_[n.ino].emplace_back(e.parent, e.name);
        return Status::Ok();
      });
    // The owner's ACLs, which the view serves for the kernel to enforce.
    using AclField = std::string ViewNode::*;
    const std::pair<const char*, AclField> acls[] = {
        {kAccessAclXattr, &ViewNode::access_acl},
        {"system.posix_acl_default", &ViewNode::default_acl}};
    for (const auto& acl : acls)
      if (st.ok())
        st = store->ForEachXattrNamed(acl.first, [&](uint64_t ino, const std::string& value) {
          if (auto node = t_.nodes.find(ino); node != t_.nodes.end())
            node->second.*acl.second = value;
          return Status::Ok();
        });
    // And their annotations (user.*, trusted.*, security.*).
    if (st.ok())
      st = store->ForEachXattr(
          [this](uint64_t ino, const std::string& name, const std::string& value) {
            auto node = t_.nodes.find(ino);
            if (node != t_.nodes.end() && IsArchivedXattr(name)) node->second.xattrs[name] = value;
            return Status::Ok();
          });
    for (auto it = files_.begin(); st.ok() && it != files_.end(); ++it) {
      std::vector<uint64_t> sums;
      const Status sums_st = store->GetBlockSums(it->first, &sums);
      if (sums_st.ok())
        sums_[it->first] = std::move(sums);
      else if (sums_st.err() != ENOENT)
        st = sums_st;
    }
  }
  for (const char* name : {"data.mdb", "lock.mdb"}) unlink((scratch_ + "/" + name).c_str());
  if (!st.ok()) return Status::Error(st.err(), st.message() + " (snapshot " + t_.snapshot + ")");
  return Status::Ok();
}

// A minute before the snapshot's name, as recover reads them: a removal is
// journaled just before it happens, the snapshot named just before it is
// copied.
Status ViewBuilder::ReadRemovals() {
  const int64_t since = t_.snapshot.empty() ? 0 : SnapshotTimeNs(t_.snapshot);
  return ReadJournalRemovals(t_.ns_dir + "/" + kAuditMirrorDir + "/audit.jsonl",
                             since > 60000000000 ? since - 60000000000 : 0, &removals_);
}

void ViewBuilder::AttachLinks(uint64_t ino) {
  for (const auto& [parent, name] : links_[ino]) t_.nodes[parent].children[name] = ino;
  t_.nodes[ino].nlink = uint32_t(links_[ino].size());
}

Status ViewBuilder::ReadObjects() {
  return ForEachObject(t_.ns_dir, [this](uint64_t ino, const std::string& path) {
    struct stat sb;
    if (stat(path.c_str(), &sb) != 0 || !S_ISREG(sb.st_mode)) {
      ++t_.unplaced;  // gone since it was listed (a move back, a thinning), or not a file
      return Status::Ok();
    }
    ObjectIdentity id;
    const bool has_id = ReadIdentity(path, &id).ok();
    const uint64_t size = uint64_t(sb.st_size);
    const int64_t mtime_ns = MtimeNs(sb);
    const bool vouched = has_id && id.size == size && id.mtime_ns == mtime_ns;
    auto f = files_.find(ino);
    if (f == files_.end() && (removals_.count(ino) || known_.count(ino))) {
      ++t_.removed;  // thinned or deleted; the owner frees the object
      return Status::Ok();
    }
    if (removals_.count(ino)) return Status::Ok();  // the same, of the snapshot: Finish counts it
    if (f == files_.end()) {
      if (!has_id || !S_ISREG(id.mode)) {
        ++t_.unplaced;
        return Status::Ok();
      }
      unknown_[ino] = Unknown{id, path, sb};
      return Status::Ok();
    }
    seen_.insert(ino);
    const Inode& snap = f->second;
    ViewNode& v = t_.nodes[ino];
    // A chmod, chown, setfacl or xattr change since the snapshot rewrote
    // the identity (fs/archived_access.h): the newer of the two says who may
    // read and what the attributes are (the snapshot's when the identity's
    // were too large to record, or it is from an older tierfs).
    if (has_id && id.ino == ino && id.ctime_ns > snap.ctime_ns) {
      ApplyAccess(id, &v);
      if (id.xattrs_recorded) v.xattrs = id.xattrs;
    }
    v.object = path;
    v.size = size;
    v.mtime_ns = mtime_ns;
    v.checksum = vouched                                            ? id.xxh3
                 : (snap.size == size && snap.mtime_ns == mtime_ns) ? snap.checksum
                                                                    : 0;
    auto sums = sums_.find(ino);
    if (v.checksum != 0 && v.checksum == snap.checksum && sums != sums_.end() &&
        sums->second.size() == SumBlockCount(size))
      v.sums = sums->second;
    AttachLinks(ino);
    return Status::Ok();
  });
}

uint64_t ViewBuilder::MakeDirs(const std::vector<std::string>& dirs, int64_t time_ns, uint32_t uid,
                               uint32_t gid) {
  uint64_t ino = kRootIno;
  std::string path;
  for (const std::string& part : dirs) {
    path += "/" + part;
    ViewNode& dir = t_.nodes[ino];
    auto child = dir.children.find(part);
    if (child == dir.children.end()) {
      const uint64_t made = MadeDirIno(path, t_.nodes);
      dir.children[part] = made;
      made_.insert(made);
      ViewNode& v = t_.nodes[made];
      v.ino = made;
      v.mode = S_IFDIR | 0700;
      v.uid = uid;
      v.gid = gid;
      v.atime_ns = v.mtime_ns = v.ctime_ns = time_ns;
      v.path = path;
      ino = made;
      continue;
    }
    ViewNode& v = t_.nodes[child->second];
    if (!S_ISDIR(v.mode)) return 0;
    if (made_.count(child->second) && (v.uid != uid || v.gid != gid)) v.uid = v.gid = 0;
    ino = child->second;
  }
  return ino;
}

// Objects archived after the snapshot, in inode order, under their
// identity's path (the first to claim a name has it).
void ViewBuilder::PlaceUnknown() {
  for (const auto& [ino, u] : unknown_) {
    const ObjectIdentity& id = u.id;
    std::string path = id.path, name;
    std::vector<std::string> dirs;
    uint64_t parent =
        SplitArchivedPath(id, &dirs, &name) ? MakeDirs(dirs, id.mtime_ns, id.uid, id.gid) : 0;
    if (parent == 0 || t_.nodes[parent].children.count(name)) {
      name = std::to_string(ino);
      path = std::string("/") + kRecoveredDir + "/" + name;
      parent = MakeDirs({kRecoveredDir}, id.mtime_ns, id.uid, id.gid);
      if (parent == 0) {
        ++t_.unplaced;
        continue;
      }
    }
    t_.nodes[parent].children[name] = ino;
    ViewNode& v = t_.nodes[ino];
    v.ino = ino;
    v.mode = id.mode;
    ApplyAccess(id, &v);
    v.xattrs = id.xattrs;
    v.size = uint64_t(u.sb.st_size);
    v.atime_ns = v.mtime_ns = MtimeNs(u.sb);
    v.ctime_ns = id.ctime_ns;
    v.object = u.path;
    v.path = path;
    v.checksum = (id.size == v.size && id.mtime_ns == v.mtime_ns) ? id.xxh3 : 0;
  }
}

// Files of the snapshot without an object: empty ones need none; the others
// are only on the owner's SSD tier (or gone since) and are left out.
void ViewBuilder::Finish() {
  for (const auto& [ino, n] : files_) {
    if (seen_.count(ino)) continue;
    if (n.size == 0 && !removals_.count(ino)) {
      AttachLinks(ino);
      continue;
    }
    t_.nodes.erase(ino);
    if (removals_.count(ino))
      ++t_.removed;
    else
      ++t_.ssd_only;
  }
  for (auto& [ino, v] : t_.nodes) {
    if (!S_ISDIR(v.mode)) continue;
    v.nlink = 2;
    for (const auto& [name, child] : v.children)
      if (S_ISDIR(t_.nodes[child].mode)) ++v.nlink;
  }
}

}  // namespace

Status BuildViewTree(const std::string& hdd_dir, const std::string& ns,
                     const std::string& scratch_dir, ViewTree* out) {
  *out = ViewTree{};
  out->built_ns = NowNs();
  Status st = FindHddNamespace(hdd_dir, ns, &out->ns, &out->ns_dir);
  ViewBuilder b(scratch_dir, out);
  if (st.ok()) st = b.ReadSnapshot();
  if (st.ok()) st = b.ReadRemovals();
  if (st.ok()) st = b.ReadObjects();
  if (!st.ok()) return st;
  b.PlaceUnknown();
  b.Finish();
  return Status::Ok();
}

}  // namespace tierfs

// Recover: the state rebuilt from the capacity tier (fs/recover.h).
#include "fs/recover.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>

#include "fs/namespace_setup.h"
#include "fs/recover_copy.h"
#include "fs/recover_journal.h"
#include "fs/recover_sums.h"
#include "fs/snapshot.h"
#include "meta/audit_verify.h"
#include "meta/store.h"
#include "tiering/identity.h"
#include "tiering/tier.h"

namespace tierfs {

namespace {

constexpr char kRecoveredDir[] = "recovered";

// A file's names in the snapshot's tree.
struct Names {
  std::vector<std::pair<uint64_t, std::string>> links;  // (parent, name)
  std::string path;                                     // the first, for the report
};

class Recovery {
 public:
  Recovery(const RecoverOptions& opt, RecoverReport* report) : opt_(opt), report_(report) {}
  Status Run();

 private:
  Status ChooseNamespace();
  Status MakeState();
  Status ReadSnapshot();
  Status SettleObjects();
  Status SettleUnseen();
  Status Recreate(uint64_t ino, const ObjectIdentity& id);
  Status MakeDirs(const std::vector<std::string>& dirs, uint64_t* ino, bool* clash);
  Status RemoveNames(uint64_t ino);
  Status ApplyArchivedXattrs(uint64_t ino, const ObjectIdentity& id);
  Status ReadRemovals();
  void AddRemoval(uint64_t ino, const std::string& path, uint64_t size, const std::string& what);
  void Add(const char* status, uint64_t ino, const std::string& path, uint64_t size,
           const std::string& detail = "") {
    RecoverEntry e;
    e.status = status;
    e.ino = ino;
    e.path = path;
    e.size = size;
    e.detail = detail;
    report_->entries.push_back(std::move(e));
  }

  const RecoverOptions& opt_;
  RecoverReport* report_;
  std::string ns_dir_;
  NamespaceLock lock_;  // of ns_dir_, for the whole run
  std::unique_ptr<Store> store_;
  std::unique_ptr<Tier> hdd_;
  std::map<uint64_t, Inode> files_;  // the snapshot's regular files with names
  std::map<uint64_t, Names> names_;
  std::map<uint64_t, bool> seen_;  // files whose object the HDD holds
  std::map<uint64_t, ObjectIdentity> unknown_;
  // Thinned or deleted after the snapshot, by the journal (old inode numbers).
  std::map<uint64_t, JournalRemoval> removals_;
};

Status Recovery::ChooseNamespace() {
  return FindHddNamespace(opt_.hdd_dir, opt_.ns, &report_->ns, &ns_dir_);
}

// The new state: the newest snapshot as its data.mdb, or an empty state.
Status Recovery::MakeState() {
  // Before anything changes: a namespace still mounted somewhere is not
  // lost, and a mount must not start while its objects are being settled.
  Status st =
      LockNamespace(ns_dir_, "recover into " + opt_.state_dir, LockKind::kExclusive, &lock_);
  if (!st.ok())
    return Status::Error(st.err(), st.message() +
                                       "; unmount it first (recover is for a "
                                       "namespace whose SSD tier or state is lost)");
  if (mkdir(opt_.state_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::Errno(errno, "create " + opt_.state_dir);
  struct stat sb;
  if (stat((opt_.state_dir + "/data.mdb").c_str(), &sb) == 0)
    return Status::Error(EEXIST, "state directory " + opt_.state_dir +
                                     " already holds a state (data.mdb); give an empty one");
  std::vector<std::string> snaps;
  st = ListSnapshots(SnapshotDir(ns_dir_), &snaps);
  if (!st.ok()) return st;
  if (!snaps.empty()) {
    report_->snapshot = SnapshotDir(ns_dir_) + "/" + snaps.back();
    st = CopyToNewFile(report_->snapshot, opt_.state_dir + "/data.mdb", 0600,
                       CopySource::kFollowLinks);
    if (!st.ok()) return st;
  }
  st = Store::Open(opt_.state_dir, &store_);
  if (!st.ok()) return st;
  st = store_->DeleteMeta("ssd_identity");
  if (!st.ok()) return st;
  std::vector<std::string> owned = {ns_dir_};
  if (!opt_.ssd_dir.empty()) {
    std::unique_ptr<Tier> ssd;
    st = Tier::Open(TierId::kSsd, opt_.ssd_dir, report_->ns, &ssd);
    if (st.ok()) st = store_->PutMeta("ssd_identity", ssd->identity());
    if (!st.ok()) return st;
    owned.push_back(ssd->namespace_dir());
  }
  st = Tier::Open(TierId::kHdd, opt_.hdd_dir, report_->ns, &hdd_);
  if (!st.ok()) return st;
  // The snapshot's state id (or none) gives way to a new one: the state
  // this replaces may not mount the namespace again (fs/namespace_setup.h).
  st = TakeOverNamespace(*store_, report_->ns, owned, &report_->previous_owner);
  if (!st.ok()) return st;
  st = store_->GetMeta("state_id", &report_->owner);
  if (!st.ok()) return st;
  // The chain continues in the new state from the HDD tier's copy of the
  // journal. The old head stays when that copy verifies against it; else
  // (no copy, or one that ends before the head) it is kept for the record
  // and the next append writes a new one.
  JournalCopy journal;
  st = CopyAuditJournal(ns_dir_, opt_.state_dir, &journal);
  if (!st.ok()) return st;
  report_->journal = journal.summary;
  const std::string head = ns_dir_ + "/" + kAuditHeadName;
  if (!journal.head_ok && stat(head.c_str(), &sb) == 0) {
    mkdir(SnapshotDir(ns_dir_).c_str(), 0700);
    const std::string kept = SnapshotDir(ns_dir_) + "/audit.head.before-recover";
    if (rename(head.c_str(), kept.c_str()) != 0)
      return Status::Errno(errno, "keep the old audit head " + head + " as " + kept);
    report_->journal += "; the old head is kept as " + kept;
  }
  return Status::Ok();
}

// A minute before the snapshot's name: a deletion is journaled just before
// it happens, and the snapshot is named just before it is copied.
Status Recovery::ReadRemovals() {
  const int64_t since = report_->snapshot.empty() ? 0 : SnapshotTimeNs(report_->snapshot);
  return ReadJournalRemovals(opt_.state_dir + "/audit.jsonl",
                             since > 60000000000 ? since - 60000000000 : 0, &removals_);
}

void Recovery::AddRemoval(uint64_t ino, const std::string& path, uint64_t size,
                          const std::string& what) {
  const JournalRemoval& r = removals_.at(ino);
  RecoverEntry e;
  e.status = r.action == "thin" ? "thinned" : "deleted";
  e.ino = ino;
  e.path = path;
  e.size = size;
  e.time = r.time;
  e.rule = r.rule;
  e.uid = r.uid;
  e.detail = (r.action == "thin" ? "thinned by rule '" + r.rule + "'"
                                 : "deleted by uid " + std::to_string(r.uid) + " (held by rule '" +
                                       r.rule + "')") +
             " at " + r.time + " as " + r.path + ", after the snapshot" + what;
  report_->entries.push_back(std::move(e));
}

Status Recovery::ReadSnapshot() {
  std::vector<Store::MoveRecord> moves;
  Status st = store_->ListMoves(&moves);
  for (size_t i = 0; st.ok() && i < moves.size(); ++i) st = store_->EndMove(moves[i].ino);
  if (!st.ok()) return st;
  return store_->WalkTree([this](const Store::TreeEntry& e) {
    if (!e.inode->is_reg()) return Status::Ok();
    files_[e.inode->ino] = *e.inode;
    Names& n = names_[e.inode->ino];
    if (n.path.empty()) n.path = e.path;
    n.links.emplace_back(e.parent, e.name);
    return Status::Ok();
  });
}

Status Recovery::SettleObjects() {
  return ForEachObject(ns_dir_, [this](uint64_t ino, const std::string& path) {
    ObjectIdentity id;
    const Status id_st = ReadIdentity(path, &id);
    auto f = files_.find(ino);
    if (f == files_.end()) {
      Inode any;
      if (store_->GetInode(ino, &any).ok()) return Status::Ok();  // an orphan: the mount frees it
      if (removals_.count(ino)) {
        AddRemoval(ino, id_st.ok() ? id.path : "", id_st.ok() ? id.size : 0,
                   "; its object is left at " + path);
        return Status::Ok();
      }
      if (!id_st.ok()) {
        Add("unplaced", ino, path, 0, id_st.message());
        return Status::Ok();
      }
      unknown_[ino] = id;
      return Status::Ok();
    }
    if (removals_.count(ino)) return Status::Ok();  // a stray: SettleUnseen reports it
    seen_[ino] = true;
    struct stat sb;
    if (stat(path.c_str(), &sb) != 0) return Status::Errno(errno, "stat " + path);
    // The object is the truth for its bytes. Its identity vouches for
    // them only while the object is as the move left it (the mover gives
    // the copy the source's mtime, which the identity records): a file
    // written on HDD since then has no known checksum.
    const uint64_t size = uint64_t(sb.st_size);
    const int64_t mtime_ns = TimespecNs(sb.st_mtim);
    const bool vouched = id_st.ok() && id.size == size && id.mtime_ns == mtime_ns;
    const bool kept = f->second.tier == TierId::kHdd;
    // An object without an identity (moved by an older tierfs) keeps the
    // snapshot's checksum while its size agrees.
    const uint64_t checksum =
        vouched ? id.xxh3
                : (!id_st.ok() && kept && f->second.size == size ? f->second.checksum : 0);
    // The snapshot's record of the object's attributes may predate changes
    // to the object: stat reads the object until its next close or move.
    if (!kept || f->second.size != size || f->second.checksum != checksum ||
        f->second.object_attrs_recorded()) {
      Status st = store_->Update(
          ino,
          [&](Inode& n) {
            n.tier = TierId::kHdd;
            n.size = size;
            n.checksum = checksum;
            n.ForgetObjectAttrs();
            return Status::Ok();
          },
          nullptr);
      if (!st.ok()) return st;
    }
    // A chmod, chown, setfacl or xattr change since the snapshot rewrote
    // the identity (fs/archived_access.h): the newer of the two says who may
    // read and what the file's attributes are. The ctime goes last (below):
    // the attributes' update leaves it alone.
    std::string detail;
    const bool newer = id_st.ok() && id.ino == ino && id.ctime_ns > f->second.ctime_ns;
    if (newer && id.xattrs_recorded) {
      Status st = ApplyArchivedXattrs(ino, id);
      if (!st.ok()) return st;
    } else if (newer && id.xattrs_unknown) {
      detail =
          "its extended attributes changed after the snapshot and were too large for its "
          "identity: the snapshot's are kept";
    }
    if (newer) {
      Status st = store_->UpdateWithXattr(
          ino, kAccessAclXattr,
          [&](Inode& n, std::optional<std::string>* acl) {
            n.mode = (n.mode & S_IFMT) | (id.mode & 07777);
            if (id.acl_unknown) n.mode &= ~uint32_t(077);
            n.uid = id.uid;
            n.gid = id.gid;
            n.ctime_ns = id.ctime_ns;
            if (id.access_acl.empty())
              acl->reset();
            else
              *acl = id.access_acl;
            return Status::Ok();
          },
          nullptr);
      if (!st.ok()) return st;
    }
    if (kept) {
      Add("kept", ino, names_[ino].path, size, detail);
      return Status::Ok();
    }
    Add("placed", ino, names_[ino].path, size,
        "moved to HDD after the snapshot" + (detail.empty() ? "" : "; " + detail));
    return Status::Ok();
  });
}

// Files of the snapshot whose bytes the HDD tier does not hold.
Status Recovery::SettleUnseen() {
  for (const auto& [ino, n] : files_) {
    if (seen_.count(ino)) continue;
    if (removals_.count(ino)) {
      AddRemoval(ino, names_[ino].path, n.size, "");
      Status st = RemoveNames(ino);
      if (!st.ok()) return st;
      continue;
    }
    // An empty file needs no object, if it is empty: a size of 0 the
    // snapshot took while the file was being written (neither its object's
    // attributes nor a checksum recorded, as after a writer killed before
    // its close; a closed empty file has both) says nothing of the bytes it
    // had on the SSD tier.
    const bool size_unknown =
        n.tier == TierId::kSsd && !n.object_attrs_recorded() && n.checksum == 0;
    if (n.size == 0 && !size_unknown) continue;
    const bool lost = n.tier == TierId::kSsd;
    Add(lost ? "lost" : "missing", ino, names_[ino].path, n.size,
        !lost         ? "no object on the HDD tier, and the audit journal does not say why"
        : n.size == 0 ? "its bytes were on the lost SSD tier (how many is unknown: it was being "
                        "written when the state was copied)"
                      : "its bytes were on the lost SSD tier");
    Status st = RemoveNames(ino);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

// Makes inode `ino`'s extended attributes those `id` records (an xattr
// change after the snapshot rewrote the identity): the snapshot's that the
// identity does not have were removed since. Its system.* ones (ACLs) are
// the caller's; the inode's ctime is left as it is.
Status Recovery::ApplyArchivedXattrs(uint64_t ino, const ObjectIdentity& id) {
  std::vector<std::string> names;
  Status st = store_->ListXattr(ino, &names);
  for (const std::string& name : names) {
    if (!st.ok()) break;
    if (!IsArchivedXattr(name) || id.xattrs.count(name)) continue;
    st = store_->UpdateWithXattr(
        ino, name,
        [](Inode&, std::optional<std::string>* value) {
          value->reset();
          return Status::Ok();
        },
        nullptr);
  }
  for (const auto& entry : id.xattrs) {
    if (!st.ok()) break;
    // `entry`, not a structured binding: clang (make thread-check) cannot
    // capture those.
    st = store_->UpdateWithXattr(
        ino, entry.first,
        [&entry](Inode&, std::optional<std::string>* stored) {
          *stored = entry.second;
          return Status::Ok();
        },
        nullptr);
  }
  if (!st.ok())
    return Status::Error(st.err(), "inode " + std::to_string(ino) +
                                       ": extended attributes from its identity: " + st.message());
  return Status::Ok();
}

// Unlinked, the inode is an orphan the next mount frees.
Status Recovery::RemoveNames(uint64_t ino) {
  for (const auto& [parent, name] : names_[ino].links) {
    Removed removed;
    Status st = store_->Unlink(parent, name, &removed);
    if (!st.ok() && st.err() != ENOENT) return st;
  }
  return Status::Ok();
}

// Looks up or creates each directory of `dirs` (outermost first); `clash`
// when one exists and is not a directory.
Status Recovery::MakeDirs(const std::vector<std::string>& dirs, uint64_t* ino, bool* clash) {
  *ino = kRootIno;
  *clash = false;
  for (const std::string& part : dirs) {
    Inode n;
    Status st = store_->Lookup(*ino, part, &n);
    if (st.err() == ENOENT) {
      NewNode dir;
      dir.mode = S_IFDIR | 0755;
      st = store_->Create(*ino, part, dir, &n);
    }
    if (!st.ok()) return st;
    if (!n.is_dir()) {
      *clash = true;
      return Status::Ok();
    }
    *ino = n.ino;
  }
  return Status::Ok();
}

Status Recovery::Recreate(uint64_t old_ino, const ObjectIdentity& id) {
  std::string path = id.path, name;
  std::vector<std::string> dirs;
  bool clash = !SplitArchivedPath(id, &dirs, &name) || !S_ISREG(id.mode);
  uint64_t parent = kRootIno;
  Inode n;
  NewNode node;
  node.mode = S_ISREG(id.mode) ? id.mode : (S_IFREG | 0600);
  node.uid = id.uid;
  node.gid = id.gid;
  node.tier = TierId::kHdd;
  // The access ACL it was archived with; one too long for the identity
  // leaves the file to its owner (tiering/identity.h).
  if (!id.access_acl.empty()) node.xattrs.emplace_back(kAccessAclXattr, id.access_acl);
  if (id.acl_unknown) node.mode &= ~uint32_t(077);
  // Its other attributes, as recorded (none when they were too large).
  for (const auto& [name, value] : id.xattrs) node.xattrs.emplace_back(name, value);
  Status st;
  if (!clash) st = MakeDirs(dirs, &parent, &clash);
  if (!st.ok()) return st;
  if (!clash) {
    st = store_->Create(parent, name, node, &n);
    if (st.err() == EEXIST) clash = true;
    if (!st.ok() && !clash) return st;
  }
  if (clash) {
    path = std::string("/") + kRecoveredDir + "/" + std::to_string(old_ino);
    st = MakeDirs({kRecoveredDir}, &parent, &clash);
    if (st.ok() && clash) st = Status::Error(EEXIST, "/recovered is not a directory");
    if (st.ok()) st = store_->Create(parent, std::to_string(old_ino), node, &n);
    if (!st.ok()) return st;
  }
  st = store_->Update(
      n.ino,
      [&](Inode& i) {
        i.size = id.size;
        i.mtime_ns = id.mtime_ns;
        i.ctime_ns = id.ctime_ns;
        i.checksum = id.xxh3;
        i.tier = TierId::kHdd;
        return Status::Ok();
      },
      nullptr);
  if (!st.ok()) return st;
  // The object takes the new inode's name (numbers above every object's,
  // RaiseNextIno, so no rename overwrites an object still to place).
  const std::string from = hdd_->ObjectPath(old_ino), to = hdd_->ObjectPath(n.ino);
  if (rename(from.c_str(), to.c_str()) != 0) return Status::Errno(errno, "rename " + from);
  rename((from + kIdentitySidecarSuffix).c_str(), (to + kIdentitySidecarSuffix).c_str());
  for (uint64_t i : {old_ino, n.ino}) {
    st = hdd_->SyncObjectDir(i);
    if (!st.ok()) return st;
  }
  Add("recreated", n.ino, path, id.size,
      (path == id.path ? "archived after the snapshot" : "archived as " + id.path) +
          std::string(id.xattrs_unknown ? "; its extended attributes were too large for its "
                                          "identity and are not recovered"
                                        : ""));
  return Status::Ok();
}

Status Recovery::Run() {
  Status st = ChooseNamespace();
  if (st.ok()) st = MakeState();
  if (st.ok()) st = ReadSnapshot();
  if (st.ok()) st = ReadRemovals();
  if (st.ok()) st = SettleObjects();
  if (st.ok()) st = SettleUnseen();
  if (!st.ok()) return st;
  if (!unknown_.empty()) {
    st = store_->RaiseNextIno(unknown_.rbegin()->first + 1);
    if (!st.ok()) return st;
  }
  for (const auto& [ino, id] : unknown_) {
    st = Recreate(ino, id);
    if (!st.ok()) Add("unplaced", ino, id.path, id.size, st.message());
  }
  for (RecoverEntry& e : report_->entries) {
    if (e.status != "kept" && e.status != "placed" && e.status != "recreated") continue;
    st = SumRecoveredFile(*store_, *hdd_, &e);
    if (!st.ok()) return st;
  }
  st = store_->Sync();
  if (!st.ok()) return st;
  // The chain's first record after recovery says what recovery did.
  return AppendRecoverRecord(ns_dir_, opt_.state_dir, *report_);
}

}  // namespace

bool RecoverReport::complete() const {
  for (const RecoverEntry& e : entries)
    if (e.status == "missing" || e.status == "unplaced" || e.status == "corrupt") return false;
  return true;
}

Status Recover(const RecoverOptions& options, RecoverReport* report) {
  return Recovery(options, report).Run();
}

}  // namespace tierfs

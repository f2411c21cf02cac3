// lookup, forget, getattr, setattr, access, statfs.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "fs/archived_access.h"
#include "fs/delete_audit.h"
#include "fs/op_table.h"
#include "fs/peer_access.h"
#include "fs/posix_acl.h"

namespace tierfs {

namespace {

Status Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Context& c = Ctx(req);
  Inode n;
  Status st = c.store().Lookup(parent, name, &n);
  if (st.err() == ENOENT) {
    // A negative entry the kernel may cache: we are the only writer and
    // every create goes through the kernel, which then drops it.
    fuse_entry_param e = {};
    e.entry_timeout = c.options().negative_timeout;
    fuse_reply_entry(req, &e);
    return Status::Ok();
  }
  if (!st.ok()) return st;
  c.ReplyEntry(req, n, parent, name);
  return Status::Ok();
}

// An unlinked inode the kernel forgets is freed by the reaper, in a batch
// (fs/inode_reaper.h).
void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Context& c = Ctx(req);
  if (c.table().Forget(ino, nlookup)) c.reaper().Add(ino);
  fuse_reply_none(req);
}

void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  Context& c = Ctx(req);
  for (size_t i = 0; i < count; ++i)
    if (c.table().Forget(forgets[i].ino, forgets[i].nlookup)) c.reaper().Add(forgets[i].ino);
  fuse_reply_none(req);
}

Status GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Context& c = Ctx(req);
  Inode n;
  Status st = c.store().GetInode(ino, &n);
  if (!st.ok()) return st;
  struct stat s;
  const double timeout = c.FillStat(n, &s);
  fuse_reply_attr(req, &s, timeout);
  return Status::Ok();
}

// Applies a size change to the object (creating it when the file grows).
Status Truncate(Context& c, const Inode& n, fuse_file_info* fi, off_t size) {
  Status st;
  FileHandle* fh = fi ? Handle(fi) : nullptr;
  ObjectRef object = fh ? c.handles().ObjectOf(*fh, size > 0, &st) : nullptr;
  int fd = object ? object->fd : -1;
  TierId tier = object ? object->tier : n.tier;  // where fd's object is
  int own_fd = -1;
  // Without a handle, under the placement lock with a fresh placement: a
  // move switching meanwhile would otherwise take the truncate with the old
  // object it removes.
  std::unique_lock<std::mutex> placement;
  if (!fh) {
    placement = std::unique_lock<std::mutex>(c.placement().Lock(n.ino));
    Inode now;
    tier = c.store().GetInode(n.ino, &now).ok() ? now.tier : n.tier;
    fd = own_fd = c.tier(tier).OpenObject(n.ino, O_WRONLY | (size > 0 ? O_CREAT : 0), &st);
  }
  if (fd < 0) return st.err() == ENOENT && size == 0 ? Status::Ok() : st;
  const int rc = c.tier(tier).io().Ftruncate(fd, size);
  st = rc == 0 ? Status::Ok() : Status::Errno(-rc, "truncate " + c.tier(tier).ObjectPath(n.ino));
  if (own_fd >= 0) close(own_fd);
  return st;
}

// Keeps the object's times equal to ours: FillStat reports the object's.
// A file without an object yet has no times to keep.
Status SetObjectTimes(Context& c, const Inode& n, fuse_file_info* fi) {
  struct timespec ts[2] = {{0, UTIME_OMIT}, NsTimespec(n.mtime_ns)};
  Status st;
  if (ObjectRef object = fi ? c.handles().ObjectOf(*Handle(fi), false, &st) : nullptr) {
    if (futimens(object->fd, ts) == 0) return Status::Ok();
    return Status::Errno(errno, "set times of " + c.tier(object->tier).ObjectPath(n.ino));
  }
  std::lock_guard<std::mutex> placement(c.placement().Lock(n.ino));
  Inode now;
  const TierId tier = c.store().GetInode(n.ino, &now).ok() ? now.tier : n.tier;
  const std::string path = c.tier(tier).ObjectPath(n.ino);
  if (utimensat(AT_FDCWD, path.c_str(), ts, 0) == 0 || errno == ENOENT) return Status::Ok();
  return Status::Errno(errno, "set times of " + path);
}

// The access ACL `*acl` of inode `ino` after a chmod to `mode`.
Status ChmodAcl(fuse_ino_t ino, uint32_t mode, std::string* acl) {
  posix_acl::Acl entries;
  Status st = posix_acl::Parse(*acl, &entries);
  if (!st.ok())
    return Status::Error(EIO, "access ACL of inode " + std::to_string(ino) + ": " + st.message());
  posix_acl::Chmod(&entries, mode);
  *acl = posix_acl::Serialize(entries);
  return Status::Ok();
}

constexpr int kObjectAttrs = FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW;

// Immutable holds were checked by the table (ChangesInode).
Status SetAttrLocked(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                     fuse_file_info* fi, Inode& n, std::shared_ptr<LiveState>& live);

Status SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  Context& c = Ctx(req);
  Inode n;
  Status st = c.store().GetInode(ino, &n);
  // Size and mtime live in the object too: nothing changes, in LMDB or on
  // the tier, while its tier cannot be written. Mode and owners are LMDB's
  // alone and stay changeable.
  if (st.ok() && n.is_reg() && (to_set & kObjectAttrs))
    st = c.CheckTierWritable(n.tier, ino, "setattr");
  if (!st.ok()) return st;
  const bool resize = to_set & FUSE_SET_ATTR_SIZE;
  if (resize && !n.is_reg())
    return Status::Error(n.is_dir() ? EISDIR : EINVAL,
                         "truncate of inode " + std::to_string(ino) + ": not a regular file");
  // A resize holds the inode's I/O lock exclusively until both the object
  // and LMDB have the new size: a release recording the object's size
  // (fs/ops_file.cc RecordSize) must see both or neither.
  // So does a change of times: a release reading the object's mtime
  // between LMDB's change and the object's recorded the old one as the
  // file's, with its attributes (stat then showed it; BasicOpsTest under
  // ASan).
  std::shared_ptr<LiveState> live;
  std::unique_lock<std::shared_mutex> resizing;
  if (n.is_reg() && (to_set & kObjectAttrs)) {
    live = c.table().Live(ino);
    resizing = std::unique_lock<std::shared_mutex>(live->io);
  }
  // A cut of a kept file's bytes is journaled first (fs/delete_audit.h);
  // free while no retaining hold exists.
  PendingDelete audit;
  if (resize) {
    st = AuditTruncateBefore(c, req, n, uint64_t(attr->st_size), "truncate", &audit);
    if (!st.ok()) return st;
  }
  return AuditTruncateAfter(c, audit, SetAttrLocked(req, ino, attr, to_set, fi, n, live));
}

// SetAttr once the I/O lock is held (`live`, for regular files whose size
// or times change) and a truncate of a kept file is journaled.
Status SetAttrLocked(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                     fuse_file_info* fi, Inode& n, std::shared_ptr<LiveState>& live) {
  Context& c = Ctx(req);
  Status st;
  const bool resize = to_set & FUSE_SET_ATTR_SIZE;
  // A crash between the object and LMDB must leave the object at least as
  // long as recorded (shorter reads as lost bytes: CheckObjectIntact):
  // growing changes the object first, shrinking LMDB first.
  const bool shrink = resize && uint64_t(attr->st_size) < n.size;
  if (resize) {
    // A truncate drops file capabilities whoever truncates (do_truncate).
    st = c.DropCapabilities(ino, *live);
    if (!st.ok()) return st;
    c.table().NoteWrite(*live);  // aborts a move of the old bytes
    // The stream's sums cover bytes a resize cuts or follows with zeros.
    if (attr->st_size == 0)
      live->stream_sums.Restart();
    else
      live->stream_sums.Spoil();
  }
  if (resize && !shrink) {
    st = Truncate(c, n, fi, attr->st_size);
    if (!st.ok()) return st;
  }
  const int64_t now = NowNs();
  const auto apply = [&](Inode& i) {
    // The object's size or times change: its record goes (and comes
    // back below, once the object has them).
    if (S_ISREG(i.mode) && (to_set & kObjectAttrs)) i.ForgetObjectAttrs();
    if (to_set & FUSE_SET_ATTR_MODE) i.mode = (i.mode & S_IFMT) | (attr->st_mode & 07777);
    // With FUSE_HANDLE_KILLPRIV_V2 the kernel leaves it to us: a chown
    // of anything but a directory drops set-user-ID, and set-group-ID
    // when group-executable, whoever the caller (as Linux's
    // notify_change does for ext4). A mode given with it wins.
    if ((to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) && !(to_set & FUSE_SET_ATTR_MODE) &&
        !S_ISDIR(i.mode)) {
      i.mode &= ~S_ISUID;
      if (i.mode & S_IXGRP) i.mode &= ~S_ISGID;
    }
    if (to_set & FUSE_SET_ATTR_UID) i.uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID) i.gid = attr->st_gid;
    if (to_set & FUSE_SET_ATTR_SIZE) {
      i.size = attr->st_size;
      i.mtime_ns = now;
      i.checksum = 0;        // the bytes a move verified are gone
      i.set_corrupt(false);  // and the damage a verified read found
    }
    if (to_set & FUSE_SET_ATTR_ATIME) i.atime_ns = TimespecNs(attr->st_atim);
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) i.atime_ns = now;
    if (to_set & FUSE_SET_ATTR_MTIME) i.mtime_ns = TimespecNs(attr->st_mtim);
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) i.mtime_ns = now;
    if (to_set & FUSE_SET_ATTR_CTIME)
      i.ctime_ns = TimespecNs(attr->st_ctim);
    else
      i.ctime_ns = now;
    return Status::Ok();
  };
  // A chmod rewrites the access ACL in the same transaction (posix_acl_chmod).
  if ((to_set & FUSE_SET_ATTR_MODE) && c.acls())
    st = c.store().UpdateWithXattr(
        ino, posix_acl::kAccessXattr,
        [&](Inode& i, std::optional<std::string>* acl) {
          Status s = apply(i);
          if (s.ok() && acl->has_value()) s = ChmodAcl(ino, i.mode, &**acl);
          return s;
        },
        &n);
  else
    st = c.store().Update(ino, apply, &n);
  if (!st.ok()) return st;
  if (shrink) {
    st = Truncate(c, n, fi, attr->st_size);
    if (!st.ok()) return st;
  }
  if (n.is_reg() && (to_set & kObjectAttrs)) st = SetObjectTimes(c, n, fi);
  if (!st.ok()) return st;
  if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
    RefreshAccessOnHdd(c, n);
  // A truncate is a change with no writer's close to follow when nobody
  // has the file open for writing: its checksums are recorded now (the
  // hasher gives up while a writer is open; that writer's close re-queues).
  if (resize) c.hasher().Enqueue(ino, c.table().epoch());
  if (n.is_reg() && (to_set & kObjectAttrs) && !c.table().OpenForWriting(ino))
    c.RecordObjectAttrs(ino, &n);
  struct stat s;
  const double timeout = c.FillStat(n, &s);
  fuse_reply_attr(req, &s, timeout);
  return Status::Ok();
}

bool InGroup(fuse_req_t req, gid_t gid) {
  if (fuse_req_ctx(req)->gid == gid) return true;
  const std::vector<gid_t> groups = CallerGroups(req);
  return std::find(groups.begin(), groups.end(), gid) != groups.end();
}

// Only reached without default_permissions; the same check the kernel does.
Status Access(fuse_req_t req, fuse_ino_t ino, int mask) {
  Context& c = Ctx(req);
  Inode n;
  Status st = c.store().GetInode(ino, &n);
  if (!st.ok()) return st;
  const fuse_ctx* ctx = fuse_req_ctx(req);
  unsigned perm;
  if (ctx->uid == 0) {
    perm = (mask & X_OK) && !n.is_dir() && !(n.mode & 0111) ? 0 : 7;
  } else if (ctx->uid == n.uid) {
    perm = (n.mode >> 6) & 7;
  } else if (InGroup(req, n.gid)) {
    perm = (n.mode >> 3) & 7;
  } else {
    perm = n.mode & 7;
  }
  if ((unsigned(mask) & perm) != unsigned(mask))
    return Status::Error(EACCES, "access to inode " + std::to_string(ino) + " denied");
  fuse_reply_err(req, 0);
  return Status::Ok();
}

// df shows both tiers summed: the space a writer can really use (a write
// that finds the SSD tier full spills to the HDD tier, and eviction frees
// the SSD tier), so programs that check free space before saving are not
// refused while the HDD tier has room. The SSD tier's own fill is in
// `tierctl status` and the metrics (tierfs(8), STATFS). Tiers on one
// filesystem (same device, or same nonzero fsid) are counted once.
bool SameFilesystem(const Tier& a, const struct statvfs& va, const Tier& b,
                    const struct statvfs& vb) {
  return a.device() == b.device() || (va.f_fsid != 0 && va.f_fsid == vb.f_fsid);
}

Status StatFs(fuse_req_t req, fuse_ino_t) {
  Context& c = Ctx(req);
  struct statvfs ssd, hdd, out = {};
  Status st = c.tier(TierId::kSsd).StatFs(&ssd);
  if (st.ok()) st = c.tier(TierId::kHdd).StatFs(&hdd);
  if (!st.ok()) return st;
  out.f_bsize = 1 << 20;
  out.f_frsize = ssd.f_frsize;
  out.f_blocks = ssd.f_blocks;
  out.f_bfree = ssd.f_bfree;
  out.f_bavail = ssd.f_bavail;
  out.f_files = ssd.f_files;
  out.f_ffree = ssd.f_ffree;
  out.f_favail = ssd.f_favail;
  if (!SameFilesystem(c.tier(TierId::kSsd), ssd, c.tier(TierId::kHdd), hdd)) {
    // The HDD tier in units of the SSD tier's fragment size.
    const double scale = double(hdd.f_frsize) / double(ssd.f_frsize);
    out.f_blocks += fsblkcnt_t(hdd.f_blocks * scale);
    out.f_bfree += fsblkcnt_t(hdd.f_bfree * scale);
    out.f_bavail += fsblkcnt_t(hdd.f_bavail * scale);
    out.f_files += hdd.f_files;
    out.f_ffree += hdd.f_ffree;
    out.f_favail += hdd.f_favail;
  }
  out.f_namemax = 255;
  fuse_reply_statfs(req, &out);
  return Status::Ok();
}

}  // namespace

void AddAttrOps(fuse_lowlevel_ops* ops) {
  ops->lookup = Op<Lookup, "lookup", ReadsOnly>;
  ops->forget = Forget;  // never replies with an error
  ops->forget_multi = ForgetMulti;
  ops->getattr = Op<GetAttr, "getattr", ReadsOnly>;
  ops->setattr = Op<SetAttr, "setattr", ChangesInode>;
  ops->access = Op<Access, "access", ReadsOnly>;
  ops->statfs = Op<StatFs, "statfs", ReadsOnly>;
}

bool CallerInGroup(fuse_req_t req, gid_t gid) {
  return InGroup(req, gid);
}

void RefreshAccessOnHdd(Context& c, const Inode& n) {
  if (!n.is_reg() || n.tier != TierId::kHdd) return;
  Status st = RefreshArchivedAccess(c.store(), c.tier(TierId::kHdd), n.ino);
  if (!st.ok())
    spdlog::error(
        "inode {}: its new owners, mode, ACL or xattrs are not in its archived identity: {}", n.ino,
        st.message());
}

}  // namespace tierfs

// mknod, mkdir, symlink, readlink, unlink, rmdir, rename, link: each one
// LMDB transaction in Store; none touches the tiers (objects appear on the
// first write and go when the last reference does).
#include <linux/fs.h>
#include <sys/stat.h>

#include "fs/delete_audit.h"
#include "fs/op_table.h"
#include "fs/posix_acl.h"

namespace tierfs {

namespace {

// What the kernel's posix_acl_create does for ext4: the umask when the
// directory has no default ACL (FUSE_DONT_MASK left it to us), else the
// default ACL masked by the mode asked for; a directory also keeps it as
// its own default.
Status InheritAcls(fuse_req_t req, uint64_t parent, NewNode* node) {
  std::string dir_default;
  Status st = Ctx(req).store().GetXattr(parent, posix_acl::kDefaultXattr, &dir_default);
  if (st.err() == ENODATA) {
    node->mode &= ~(fuse_req_ctx(req)->umask & 0777);
    return Status::Ok();
  }
  posix_acl::Acl acl, access;
  if (st.ok()) st = posix_acl::Parse(dir_default, &acl);
  if (!st.ok())
    return Status::Error(
        EIO, "default ACL of directory inode " + std::to_string(parent) + ": " + st.message());
  if (posix_acl::Inherit(acl, &access, &node->mode))
    node->xattrs.emplace_back(posix_acl::kAccessXattr, posix_acl::Serialize(access));
  if (S_ISDIR(node->mode)) node->xattrs.emplace_back(posix_acl::kDefaultXattr, dir_default);
  return Status::Ok();
}

}  // namespace

NewNode NewNodeFor(fuse_req_t req, uint64_t parent, mode_t mode, Status* st) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  NewNode node;
  node.mode = mode;
  node.uid = ctx->uid;
  node.gid = ctx->gid;
  Inode dir;
  *st = Ctx(req).store().GetInode(parent, &dir);
  if (st->ok() && (dir.mode & S_ISGID)) {
    node.gid = dir.gid;
    if (S_ISDIR(mode)) node.mode |= S_ISGID;
  }
  // As the kernel's inode_init_owner: a file that lands in a group its
  // creator is not in must not keep the setgid bit.
  if (!S_ISDIR(mode) && (node.mode & S_ISGID) && ctx->uid != 0 && !CallerInGroup(req, node.gid))
    node.mode &= ~S_ISGID;
  if (st->ok() && Ctx(req).acls() && !S_ISLNK(mode)) *st = InheritAcls(req, parent, &node);
  return node;
}

namespace {

Status MakeNode(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev,
                const char* link_target, const char* op) {
  Context& c = Ctx(req);
  Status st;
  NewNode node = NewNodeFor(req, parent, mode, &st);
  if (!st.ok()) return st;
  node.rdev = rdev;
  if (link_target) node.symlink_target = link_target;
  if (S_ISREG(mode)) node.tier = c.space().TierForNewFile();
  st = c.space().CheckMetaSpace(op);
  if (!st.ok()) return st;
  Inode n;
  st = c.store().Create(parent, name, node, &n);
  if (!st.ok()) return st;
  c.ReplyEntry(req, n, parent, name);
  return Status::Ok();
}

Status MkNod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  return MakeNode(req, parent, name, mode, rdev, nullptr, "mknod");
}

Status MkDir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  return MakeNode(req, parent, name, S_IFDIR | (mode & 07777), 0, nullptr, "mkdir");
}

Status Symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  return MakeNode(req, parent, name, S_IFLNK | 0777, 0, target, "symlink");
}

Status ReadLink(fuse_req_t req, fuse_ino_t ino) {
  Context& c = Ctx(req);
  std::string target;
  Status st = c.store().ReadSymlink(ino, &target);
  if (!st.ok()) return st;
  fuse_reply_readlink(req, target.c_str());
  return Status::Ok();
}

// Unlink, RmDir, Rename: immutable holds were checked by the table
// (ChangesEntry, ChangesBothEntries); a kept file's deletion is audited
// before it happens (fs/delete_audit.h).
Status Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Context& c = Ctx(req);
  PendingDelete audit;
  Status st = AuditDeleteBefore(c, req, parent, name, "unlink", &audit);
  if (!st.ok()) return st;
  Removed removed;
  st = c.store().Unlink(parent, name, &removed);
  AuditDeleteAfter(c, audit, st);
  if (!st.ok()) return st;
  c.OnRemoved(removed);
  fuse_reply_err(req, 0);
  return Status::Ok();
}

Status RmDir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Context& c = Ctx(req);
  PendingDelete audit;
  Status st = AuditDeleteBefore(c, req, parent, name, "rmdir", &audit);
  if (!st.ok()) return st;
  Removed removed;
  st = c.store().Rmdir(parent, name, &removed);
  AuditDeleteAfter(c, audit, st);
  if (!st.ok()) return st;
  c.OnRemoved(removed);
  fuse_reply_err(req, 0);
  return Status::Ok();
}

Status Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
              const char* new_name, unsigned flags) {
  Context& c = Ctx(req);
  // The entry a plain rename replaces goes (an exchange keeps both; a
  // rename onto another name of the same inode removes nothing).
  PendingDelete audit;
  Status st;
  Inode from, to;
  if (!(flags & (RENAME_EXCHANGE | RENAME_NOREPLACE)) &&
      c.store().Lookup(parent, name, &from).ok() &&
      c.store().Lookup(new_parent, new_name, &to).ok() && from.ino != to.ino)
    st = AuditDeleteBefore(c, req, new_parent, new_name, "rename over", &audit);
  if (!st.ok()) return st;
  Removed replaced;
  st = c.store().Rename(parent, name, new_parent, new_name, flags, &replaced);
  AuditDeleteAfter(c, audit, st);
  if (!st.ok()) return st;
  // The names moves and audit records give files (InodeTable::KnownPath).
  Inode moved;
  if (c.store().Lookup(new_parent, new_name, &moved).ok())
    c.table().Rename(moved.ino, new_parent, new_name);
  if ((flags & RENAME_EXCHANGE) && c.store().Lookup(parent, name, &moved).ok())
    c.table().Rename(moved.ino, parent, name);
  c.OnRemoved(replaced);
  // Frameworks publish a checkpoint by renaming it into its final name.
  c.policy_runner().Poke();
  fuse_reply_err(req, 0);
  return Status::Ok();
}

Status Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) {
  Context& c = Ctx(req);
  Inode n;
  Status st = c.space().CheckMetaSpace("link");
  if (st.ok()) st = c.store().Link(ino, new_parent, new_name, &n);
  if (!st.ok()) return st;
  c.ReplyEntry(req, n, new_parent, new_name);
  return Status::Ok();
}

}  // namespace

void AddNamespaceOps(fuse_lowlevel_ops* ops) {
  ops->mknod = Op<MkNod, "mknod", AddsNames>;
  ops->mkdir = Op<MkDir, "mkdir", AddsNames>;
  ops->symlink = Op<Symlink, "symlink", AddsNames>;
  ops->readlink = Op<ReadLink, "readlink", ReadsOnly>;
  ops->unlink = Op<Unlink, "unlink", ChangesEntry>;
  ops->rmdir = Op<RmDir, "rmdir", ChangesEntry>;
  ops->rename = Op<Rename, "rename", ChangesBothEntries>;
  ops->link = Op<Link, "link", ChangesInode>;  // the inode gains a name
}

}  // namespace tierfs

// setxattr, getxattr, listxattr, removexattr: stored in LMDB with the inode,
// so they work on every tier and move with nothing. The kernel's VFS has
// already checked the namespace rules (trusted.* needs CAP_SYS_ADMIN, user.*
// only on files and directories).
#include <sys/xattr.h>

#include <string>
#include <vector>

#include "fs/context.h"

namespace tierfs {

namespace {

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
              int flags) {
  Context& c = Ctx(req);
  Status st = c.store().SetXattr(ino, name, std::string(value, size), flags);
  if (!st.ok()) return c.ReplyError(req, st, "setxattr");
  fuse_reply_err(req, 0);
}

// Replies per the xattr protocol: size 0 asks for the needed size.
void ReplySized(fuse_req_t req, const std::string& data, size_t size) {
  if (size == 0) return (void)fuse_reply_xattr(req, data.size());
  if (data.size() > size) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, data.data(), data.size());
}

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Context& c = Ctx(req);
  std::string value;
  Status st = c.store().GetXattr(ino, name, &value);
  if (!st.ok()) return c.ReplyError(req, st, "getxattr");
  ReplySized(req, value, size);
}

void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Context& c = Ctx(req);
  std::vector<std::string> names;
  Status st = c.store().ListXattr(ino, &names);
  if (!st.ok()) return c.ReplyError(req, st, "listxattr");
  // As the kernel does for local filesystems: trusted.* names are listed
  // only to the privileged (root stands in for CAP_SYS_ADMIN here).
  const bool privileged = fuse_req_ctx(req)->uid == 0;
  std::string all;
  for (const auto& n : names)
    if (privileged || n.rfind("trusted.", 0) != 0) all.append(n).push_back('\0');
  ReplySized(req, all, size);
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Context& c = Ctx(req);
  Status st = c.store().RemoveXattr(ino, name);
  if (!st.ok()) return c.ReplyError(req, st, "removexattr");
  fuse_reply_err(req, 0);
}

}  // namespace

void AddXattrOps(fuse_lowlevel_ops* ops) {
  ops->setxattr = SetXattr;
  ops->getxattr = GetXattr;
  ops->listxattr = ListXattr;
  ops->removexattr = RemoveXattr;
}

}  // namespace tierfs

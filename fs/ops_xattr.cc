// setxattr, getxattr, listxattr, removexattr: stored in LMDB with the inode,
// so they work on every tier and move with nothing. The kernel's VFS has
// already checked the namespace rules (trusted.* needs CAP_SYS_ADMIN, user.*
// only on files and directories).
#include <spdlog/spdlog.h>
#include <sys/xattr.h>

#include <cstring>
#include <string>
#include <vector>

#include "fs/context.h"

namespace tierfs {

namespace {

// user.tierfs.* are not stored: they read and steer placement, and are left
// out of listxattr so that cp -a and rsync -X do not copy them.
constexpr char kTierfsPrefix[] = "user.tierfs.";
constexpr char kTierXattr[] = "user.tierfs.tier";

bool IsTierfsName(const char* name) {
  return std::strncmp(name, kTierfsPrefix, 12) == 0;
}

// setfattr -n user.tierfs.tier -v hdd FILE|DIR: moves now, and returns when
// the move is done (or failed: EBUSY open for writing, ECANCELED written
// during the copy, ENOSPC target full).
void SetTier(fuse_req_t req, fuse_ino_t ino, const std::string& raw) {
  Context& c = Ctx(req);
  std::string value = raw;
  while (!value.empty() && (value.back() == '\n' || value.back() == '\0')) value.pop_back();
  TierId to;
  if (value == "ssd")
    to = TierId::kSsd;
  else if (value == "hdd")
    to = TierId::kHdd;
  else
    return c.ReplyError(req, Status::Error(EINVAL, "tier must be ssd or hdd, not '" + value + "'"),
                        "setxattr");
  // The kernel holds the inode's lock until we reply: the policy engine
  // must not wait for it meanwhile (TreeOps::RemovePath).
  LockedRequest locked(c, ino, "move to " + value);
  Inode n;
  Status st = locked.status();
  if (st.ok()) st = c.store().GetInode(ino, &n);
  if (st.ok() && n.is_dir())
    st = c.placement().MoveTree(ino, to, "manual");
  else if (st.ok() && n.is_reg())
    st = c.placement().Move(ino, to, "manual");
  else if (st.ok())
    st = Status::Error(EINVAL, "only files and directories have a tier");
  if (!st.ok()) {
    spdlog::warn("move to {} requested on inode {}: {}", value, ino, st.message());
    return c.ReplyError(req, st, "setxattr user.tierfs.tier");
  }
  fuse_reply_err(req, 0);
}

constexpr char kPlanXattr[] = "user.tierfs.plan";      // get, on the root: a dry run
constexpr char kReloadXattr[] = "user.tierfs.reload";  // set, on the root: reload the policy
constexpr char kPinXattr[] = "user.tierfs.pin";        // get: the hold on a file or directory

// get, on the root: the control socket's path (fs/control.h), for tierctl.
constexpr char kControlXattr[] = "user.tierfs.control";

// Only root (the admin) may reload the policy or read the whole tree's plan.
bool Privileged(fuse_req_t req) {
  return fuse_req_ctx(req)->uid == 0;
}

void Reload(fuse_req_t req, fuse_ino_t ino) {
  Context& c = Ctx(req);
  if (ino != kRootIno) return (void)fuse_reply_err(req, EINVAL);
  if (!Privileged(req)) return (void)fuse_reply_err(req, EPERM);
  // Waits for a running scan, which may be thinning an entry of the root.
  LockedRequest locked(c, ino, "policy reload");
  if (!locked.status().ok()) return c.ReplyError(req, locked.status(), "setxattr");
  Status st = c.policy_runner().Reload();
  if (!st.ok()) {
    spdlog::error("policy reload refused, the running policy stays: {}", st.message());
    return (void)fuse_reply_err(req, EINVAL);
  }
  fuse_reply_err(req, 0);
}

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
              int flags) {
  Context& c = Ctx(req);
  if (std::strcmp(name, kTierXattr) == 0) return SetTier(req, ino, std::string(value, size));
  if (std::strcmp(name, kReloadXattr) == 0) return Reload(req, ino);
  if (IsTierfsName(name)) return (void)fuse_reply_err(req, EOPNOTSUPP);
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

void GetTier(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Context& c = Ctx(req);
  Inode n;
  Status st = c.store().GetInode(ino, &n);
  if (!st.ok()) return c.ReplyError(req, st, "getxattr user.tierfs.tier");
  if (!n.is_reg()) return (void)fuse_reply_err(req, ENODATA);
  ReplySized(req, c.placement().IsMoving(ino) ? "moving" : TierName(n.tier), size);
}

void GetPlan(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Context& c = Ctx(req);
  if (ino != kRootIno) return (void)fuse_reply_err(req, ENODATA);
  if (!Privileged(req)) return (void)fuse_reply_err(req, EPERM);
  std::string plan = c.policy_runner().DryRun();
  constexpr size_t kMax = 65536 - 64;  // XATTR_SIZE_MAX, with room for the note
  if (plan.size() > kMax) plan = plan.substr(0, kMax) + "\n... (truncated)\n";
  ReplySized(req, plan, size);
}

void GetPin(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Context& c = Ctx(req);
  Store::Hold h;
  Status st = c.store().GetHold(ino, &h);
  if (st.err() == ENOENT) return (void)fuse_reply_err(req, ENODATA);
  if (!st.ok()) return c.ReplyError(req, st, "getxattr user.tierfs.pin");
  std::string v = "rule=" + h.rule + " until=" +
                  (h.until_ns ? std::to_string(h.until_ns / 1000000000) : std::string("never")) +
                  " immutable=" + (h.immutable ? "yes" : "no");
  ReplySized(req, v, size);
}

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Context& c = Ctx(req);
  if (std::strcmp(name, kTierXattr) == 0) return GetTier(req, ino, size);
  if (std::strcmp(name, kPlanXattr) == 0) return GetPlan(req, ino, size);
  if (std::strcmp(name, kPinXattr) == 0) return GetPin(req, ino, size);
  if (std::strcmp(name, kControlXattr) == 0 && ino == kRootIno && !c.control_path().empty())
    return ReplySized(req, c.control_path(), size);
  if (IsTierfsName(name)) return (void)fuse_reply_err(req, ENODATA);
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
    if ((privileged || n.rfind("trusted.", 0) != 0) && !IsTierfsName(n.c_str()))
      all.append(n).push_back('\0');
  ReplySized(req, all, size);
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Context& c = Ctx(req);
  if (IsTierfsName(name)) return (void)fuse_reply_err(req, EOPNOTSUPP);
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

// setxattr, getxattr, listxattr, removexattr: stored in LMDB with the inode,
// so they work on every tier and move with nothing. The kernel's VFS has
// already checked the namespace rules (trusted.* needs CAP_SYS_ADMIN, user.*
// only on files and directories).
//
// POSIX ACLs (system.posix_acl_access and _default) are stored the same way
// when INIT negotiated them (Context::acls): the kernel enforces them and
// has checked who may set them and that they are well formed; the mode
// follows an access ACL in the same transaction (fs/posix_acl.h). Without
// them (--no-acl, or a kernel that does not offer FUSE_POSIX_ACL) they are
// refused, as on a filesystem mounted noacl: the kernel would check the mode
// bits alone, and a stored ACL would report a restriction (user:bob:---)
// that nobody enforces. Other system.* names are refused always.
#include <spdlog/spdlog.h>
#include <sys/xattr.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "fs/op_table.h"
#include "fs/peer_access.h"
#include "fs/posix_acl.h"
#include "tiering/identity.h"

namespace tierfs {

namespace {

// user.tierfs.* (IsTierfsXattr) are not stored: they read and steer
// placement. They are read by name and not listed, as CephFS does with its
// virtual attributes: listed, cp -a, rsync -X, tar --xattrs and backup
// tools copied them onto other filesystems, where user.tierfs.object named
// a stale path on this mount's tier. Copies made while an older tierfs
// listed them must still restore without failing: setting a read-only one
// to the value it has succeeds, to another value is EOPNOTSUPP (which cp
// and rsync pass over in silence), and user.tierfs.tier places the file.
// Setting one is no change of the file's data, so immutable holds do not
// refuse it (ChangesXattr in fs/op_table.h).
constexpr char kTierXattr[] = "user.tierfs.tier";
constexpr char kObjectXattr[] = "user.tierfs.object";          // get: the object's path on its tier
constexpr char kGenerationXattr[] = "user.tierfs.generation";  // get: checkpoint generation
constexpr char kSeriesXattr[] = "user.tierfs.series";          // get: its series

// "ssd:12,hdd:3": the regular files below directory `ino` (each inode once)
// by tier, the tiers with none left out. Only what the caller could list:
// below a directory they may not read and search, nothing is counted (as
// `tierctl du` leaves it out), or the counts would tell them of files
// added there.
Status TierSummary(Context& c, fuse_req_t req, fuse_ino_t ino, std::string* out) {
  const ControlPeer peer = PeerOfRequest(req);
  auto may_list = [&](const Inode& d) {
    return peer.uid == 0 || (MayRead(c, d, peer) && MaySearch(c, d, peer));
  };
  std::set<uint64_t> seen, hidden;  // hidden: directories not counted into
  uint64_t counts[2] = {0, 0};
  Status st = c.store().WalkBelow(ino, "", [&](const Store::TreeEntry& e) {
    if (e.parent != 0 && hidden.count(e.parent)) {
      if (e.inode->is_dir()) hidden.insert(e.inode->ino);
      return Status::Ok();
    }
    if (e.inode->is_dir() && !may_list(*e.inode)) hidden.insert(e.inode->ino);
    if (e.inode->is_reg() && seen.insert(e.inode->ino).second)
      ++counts[e.inode->tier == TierId::kSsd ? 0 : 1];
    return Status::Ok();
  });
  if (!st.ok()) return st;
  out->clear();
  for (TierId t : {TierId::kSsd, TierId::kHdd}) {
    const uint64_t n = counts[t == TierId::kSsd ? 0 : 1];
    if (n) *out += std::string(out->empty() ? "" : ",") + TierName(t) + ":" + std::to_string(n);
  }
  if (out->empty()) *out = "empty";
  return Status::Ok();
}

// system.posix_acl_access and the rest of system.* (see the top).
bool IsSystemXattr(const char* name) {
  return std::strncmp(name, "system.", 7) == 0;
}

// A system.* name this mount stores: the ACLs, when negotiated.
bool IsStoredSystemXattr(Context& c, const char* name) {
  return c.acls() && posix_acl::IsAclXattr(name);
}

Status SystemXattrUnsupported(Context& c, const char* name) {
  if (posix_acl::IsAclXattr(name))
    return Status::Error(EOPNOTSUPP,
                         std::string(name) + ": POSIX ACLs are off on this mount (" +
                             (c.options().acl ? "the kernel does not offer them" : "--no-acl") +
                             "; the kernel checks mode bits only)");
  return Status::Error(EOPNOTSUPP, std::string(name) +
                                       ": system.* attributes other than POSIX ACLs are not "
                                       "supported on tierfs");
}

// setfacl: the ACL and the mode bits it implies in one transaction; an
// access ACL the mode says entirely is not kept (as ext4 does), and a
// caller outside the file's group and without CAP_FSETID loses set-group-ID
// (`kernel_kills_sgid`: FUSE_SETXATTR_ACL_KILL_SGID, fs/session_io.h). The
// kernel sets ACLs with neither XATTR_CREATE nor XATTR_REPLACE (set_posix_acl).
Status SetAcl(fuse_req_t req, fuse_ino_t ino, const char* name, std::string_view value,
              bool kernel_kills_sgid) {
  Context& c = Ctx(req);
  posix_acl::Acl acl;
  Status st = posix_acl::Parse(value, &acl);
  Inode n;
  if (st.ok()) st = c.store().GetInode(ino, &n);
  if (!st.ok())
    return Status::Error(
        st.err(), std::string(name) + " of inode " + std::to_string(ino) + ": " + st.message());
  const bool access = std::strcmp(name, posix_acl::kAccessXattr) == 0;
  if (!access && !n.is_dir())
    return Status::Error(EACCES,
                         "inode " + std::to_string(ino) + ": only directories have default ACLs");
  // Set-group-ID goes when the caller is outside the file's group and lacks
  // CAP_FSETID. The kernel says so where it can (FUSE_SETXATTR_EXT); else
  // the daemon asks the caller's groups, root standing in for CAP_FSETID.
  const bool kernel_decides = c.session_io().setxattr_ext();
  const bool privileged = fuse_req_ctx(req)->uid == 0;
  const gid_t group_seen = n.gid;
  const bool in_group = !access || kernel_decides || privileged || CallerInGroup(req, group_seen);
  auto keeps_sgid = [&](gid_t gid) {
    if (kernel_decides) return !kernel_kills_sgid;
    return privileged || (in_group && gid == group_seen);
  };
  st = c.store().UpdateWithXattr(
      ino, name,
      [&](Inode& i, std::optional<std::string>* stored) {
        stored->emplace(posix_acl::Serialize(acl));
        if (access) {
          if (posix_acl::EquivalentMode(acl, &i.mode)) stored->reset();
          if (!keeps_sgid(i.gid)) i.mode &= ~S_ISGID;
        }
        i.ctime_ns = NowNs();
        return Status::Ok();
      },
      &n);
  if (!st.ok()) return st;
  if (access) RefreshAccessOnHdd(c, n);
  fuse_reply_err(req, 0);
  return Status::Ok();
}

// setfacl -b, -k: removing an ACL the file does not have is no error
// (ext4). A removal, so it works on a full state too (Store::RemoveXattr).
Status RemoveAcl(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Context& c = Ctx(req);
  Status st = c.store().RemoveXattr(ino, name);
  if (!st.ok() && st.err() != ENODATA) return st;
  Inode n;
  if (st.ok() && std::strcmp(name, posix_acl::kAccessXattr) == 0 &&
      c.store().GetInode(ino, &n).ok())
    RefreshAccessOnHdd(c, n);
  fuse_reply_err(req, 0);
  return Status::Ok();
}

// The value of a readable user.tierfs.* attribute of inode `ino` (not the
// root-only ones); ENODATA when it has none.
Status TierfsValue(Context& c, fuse_req_t req, fuse_ino_t ino, const std::string& name,
                   std::string* out) {
  Inode n;
  Status st = c.store().GetInode(ino, &n);
  if (!st.ok()) return st;
  if (name == kTierXattr) {
    if (n.is_dir()) return TierSummary(c, req, ino, out);
    if (!n.is_reg()) return Status::Error(ENODATA, "only files and directories have a tier");
    *out = c.placement().IsMoving(ino) ? "moving" : TierName(n.tier);
    return Status::Ok();
  }
  if (name == kObjectXattr && n.is_reg()) {
    *out = c.tier(n.tier).ObjectPath(ino);
    return Status::Ok();
  }
  std::string series;
  uint64_t number = 0;
  if ((name == kGenerationXattr || name == kSeriesXattr) &&
      c.policy_runner().GenerationOf(ino, &series, &number)) {
    *out = name == kSeriesXattr ? series : std::to_string(number);
    return Status::Ok();
  }
  return Status::Error(ENODATA, name + " does not exist on inode " + std::to_string(ino));
}

// A read-only attribute set to the value it has (a copy of a file of this
// mount) succeeds; any other value is EOPNOTSUPP.
Status SetReadOnly(fuse_req_t req, fuse_ino_t ino, const std::string& name,
                   const std::string& value) {
  std::string now;
  Status st = TierfsValue(Ctx(req), req, ino, name, &now);
  if (!st.ok() || now != value) return Status::Error(EOPNOTSUPP, name + " cannot be set");
  fuse_reply_err(req, 0);
  return Status::Ok();
}

// The kernel checked only that the caller may write `ino` itself; a move
// (and the pin that keeps it) changes every entry below, so a caller other
// than root must own each of them, as `tierctl move` and `pin` demand
// (fs/control_pins.cc). EPERM names the first entry that is not theirs.
Status MayMoveAll(Context& c, uint64_t ino, uid_t uid) {
  if (uid == 0) return Status::Ok();
  const std::string top = c.table().KnownPath(ino);
  return c.store().WalkBelow(ino, top, [&](const Store::TreeEntry& e) {
    if (e.inode->uid == uid) return Status::Ok();
    return Status::Error(EPERM,
                         (e.path.empty() ? "inode " + std::to_string(e.inode->ino) : e.path) +
                             " is owned by uid " + std::to_string(e.inode->uid) + ", not by uid " +
                             std::to_string(uid) + ": only root or the owner may move it");
  });
}

// setfattr -n user.tierfs.tier -v hdd FILE|DIR: moves now, and returns when
// the move is done (or failed: EBUSY open for writing, ECANCELED written
// during the copy, ENOSPC target full).
Status SetTier(fuse_req_t req, fuse_ino_t ino, const std::string& raw) {
  Context& c = Ctx(req);
  std::string value = raw;
  while (!value.empty() && (value.back() == '\n' || value.back() == '\0')) value.pop_back();
  TierId to;
  if (value == "ssd") {
    to = TierId::kSsd;
  } else if (value == "hdd") {
    to = TierId::kHdd;
  } else if (value.find(':') != std::string::npos) {
    // A directory's summary, as cp -a / rsync -X copy it.
    return SetReadOnly(req, ino, kTierXattr, value);
  } else {
    return Status::Error(EINVAL, "tier must be ssd or hdd, not '" + value + "'");
  }
  // A move writes an audit record: users other than root get so many a
  // second (fs/request_rate.h), as over the control socket. EBUSY, not
  // EAGAIN: the kernel answers a setxattr that failed with EAGAIN as
  // EOPNOTSUPP (seen on 6.18), which says the attribute is not supported.
  Status rate = c.request_rate().Take(fuse_req_ctx(req)->uid, NowNs(), "setfattr user.tierfs.tier");
  if (!rate.ok()) return Status::Error(EBUSY, rate.message());
  // The kernel holds the inode's lock until we reply: the policy engine
  // must not wait for it meanwhile (TreeOps::RemovePath).
  LockedRequest locked(c, ino, "move to " + value);
  Inode n;
  Status st = locked.status();
  if (st.ok()) st = c.store().GetInode(ino, &n);
  if (st.ok()) st = MayMoveAll(c, ino, fuse_req_ctx(req)->uid);
  // cp -a sets the attribute while it holds its copy open for writing:
  // refused, so the copy is left for the policy to place (tierfs(8)).
  if (st.ok() && n.is_reg() && c.table().OpenForWriting(ino))
    st = Status::Error(EBUSY, "inode " + std::to_string(ino) + " is open for writing");
  // A manual placement is sticky: the policy must not move it back. A file
  // whose move fails gets its old hold back (none, most often), or it would
  // stay where it is, held there for good.
  Store::Hold before;
  const bool had_hold = st.ok() && n.is_reg() && c.store().GetHold(ino, &before).ok();
  int pinned = 0;
  if (st.ok() && (n.is_dir() || n.is_reg()))
    st = c.holds().HoldForMove(ino, to, fuse_req_ctx(req)->uid, &pinned);
  if (st.ok() && n.is_dir()) {
    st = c.placement().MoveTree(ino, to, "manual");
  } else if (st.ok() && n.is_reg()) {
    st = c.placement().Move(ino, to, "manual");
    if (!st.ok() && pinned > 0) {
      const Status undo = had_hold ? c.store().SetHold(ino, before) : c.store().RemoveHold(ino);
      c.holds().Count();
      if (!undo.ok()) spdlog::warn("inode {}: restoring its hold: {}", ino, undo.message());
    }
  } else if (st.ok()) {
    st = Status::Error(EINVAL, "only files and directories have a tier");
  }
  if (!st.ok()) {
    spdlog::warn("move to {} requested on inode {}: {}", value, ino, st.message());
    return st;
  }
  fuse_reply_err(req, 0);
  return Status::Ok();
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

Status Reload(fuse_req_t req, fuse_ino_t ino) {
  Context& c = Ctx(req);
  if (ino != kRootIno) return Status::Error(EINVAL, "user.tierfs.reload is set on the root only");
  if (!Privileged(req)) return Status::Error(EPERM, "only root may reload the policy");
  // Waits for a running scan, which may be thinning an entry of the root.
  LockedRequest locked(c, ino, "policy reload");
  if (!locked.status().ok()) return locked.status();
  Status st = c.policy_runner().Reload();
  if (!st.ok()) return Status::Error(EINVAL, "policy reload refused");  // Reload logged why
  fuse_reply_err(req, 0);
  return Status::Ok();
}

// After a setxattr or removexattr of `name`: an archived file's identity
// records it (fs/archived_access.h), so that recover and view do not fall
// back to the snapshot's older attributes.
void RefreshXattrsOnHdd(Context& c, fuse_ino_t ino, const char* name) {
  Inode n;
  if (IsArchivedXattr(name) && c.store().GetInode(ino, &n).ok()) RefreshAccessOnHdd(c, n);
}

// Immutable holds were checked by the table, except for user.tierfs.*
// (ChangesXattr).
Status SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                int flags) {
  Context& c = Ctx(req);
  const bool kernel_kills_sgid = flags & kSetxattrAclKillSgid;
  flags &= ~kSetxattrAclKillSgid;
  if (IsStoredSystemXattr(c, name)) return SetAcl(req, ino, name, {value, size}, kernel_kills_sgid);
  if (IsSystemXattr(name)) return SystemXattrUnsupported(c, name);
  if (std::strcmp(name, kTierXattr) == 0) return SetTier(req, ino, std::string(value, size));
  if (std::strcmp(name, kReloadXattr) == 0) return Reload(req, ino);
  if (IsTierfsXattr(name)) {
    std::string v(value, size);
    while (!v.empty() && (v.back() == '\n' || v.back() == '\0')) v.pop_back();
    return SetReadOnly(req, ino, name, v);
  }
  Status st = c.store().SetXattr(ino, name, std::string(value, size), flags);
  if (!st.ok()) return st;
  if (std::strcmp(name, "security.capability") == 0) c.NoteCapabilitiesSet(ino);
  RefreshXattrsOnHdd(c, ino, name);
  fuse_reply_err(req, 0);
  return Status::Ok();
}

// Replies per the xattr protocol: size 0 asks for the needed size.
Status ReplySized(fuse_req_t req, const std::string& data, size_t size) {
  if (size == 0) {
    fuse_reply_xattr(req, data.size());
  } else if (data.size() > size) {
    return Status::Error(ERANGE, "attribute of " + std::to_string(data.size()) +
                                     " bytes, buffer of " + std::to_string(size));
  } else {
    fuse_reply_buf(req, data.data(), data.size());
  }
  return Status::Ok();
}

Status GetPlan(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Context& c = Ctx(req);
  if (ino != kRootIno) return Status::Error(ENODATA, "user.tierfs.plan is on the root only");
  if (!Privileged(req)) return Status::Error(EPERM, "only root may read the plan");
  std::string plan = c.policy_runner().DryRun();
  constexpr size_t kMax = 65536 - 64;  // XATTR_SIZE_MAX, with room for the note
  if (plan.size() > kMax) plan = plan.substr(0, kMax) + "\n... (truncated)\n";
  return ReplySized(req, plan, size);
}

Status GetPin(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Context& c = Ctx(req);
  Store::Hold h;
  Status st = c.store().GetHold(ino, &h);
  if (st.err() == ENOENT) return Status::Error(ENODATA, "no hold on inode " + std::to_string(ino));
  if (!st.ok()) return st;
  std::string v = "rule=" + h.rule + " until=" +
                  (h.until_ns ? std::to_string(h.until_ns / 1000000000) : std::string("never")) +
                  " immutable=" + (h.immutable ? "yes" : "no");
  return ReplySized(req, v, size);
}

Status GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Context& c = Ctx(req);
  // Also one an older tierfs stored while ACLs are off: it is not enforced.
  if (IsSystemXattr(name) && !IsStoredSystemXattr(c, name)) return SystemXattrUnsupported(c, name);
  if (std::strcmp(name, kPlanXattr) == 0) return GetPlan(req, ino, size);
  if (std::strcmp(name, kPinXattr) == 0) return GetPin(req, ino, size);
  if (std::strcmp(name, kControlXattr) == 0 && ino == kRootIno && !c.control_path().empty())
    return ReplySized(req, c.control_path(), size);
  std::string value;
  if (IsTierfsXattr(name)) {
    Status st = TierfsValue(c, req, ino, name, &value);
    return st.ok() ? ReplySized(req, value, size) : st;
  }
  Status st = c.store().GetXattr(ino, name, &value);
  if (!st.ok()) return st;
  return ReplySized(req, value, size);
}

Status ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Context& c = Ctx(req);
  std::vector<std::string> names;
  Status st = c.store().ListXattr(ino, &names);
  if (!st.ok()) return st;
  // As the kernel does for local filesystems: trusted.* names are listed
  // only to the privileged (root stands in for CAP_SYS_ADMIN here). No
  // user.tierfs.* name is listed (see the top of this file).
  const bool privileged = fuse_req_ctx(req)->uid == 0;
  std::string all;
  for (const auto& n : names)
    if ((privileged || n.rfind("trusted.", 0) != 0) && !IsTierfsXattr(n.c_str()) &&
        (!IsSystemXattr(n.c_str()) || IsStoredSystemXattr(c, n.c_str())))
      all.append(n).push_back('\0');
  return ReplySized(req, all, size);
}

// Immutable holds were checked by the table (ChangesXattr).
Status RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Context& c = Ctx(req);
  if (IsTierfsXattr(name))
    return Status::Error(EOPNOTSUPP, std::string(name) + " cannot be removed");
  if (IsStoredSystemXattr(c, name)) return RemoveAcl(req, ino, name);
  // One an older tierfs stored may go (setfacl -b); nothing else is there.
  Status st = c.store().RemoveXattr(ino, name);
  if (IsSystemXattr(name) && st.err() == ENODATA) return SystemXattrUnsupported(c, name);
  if (!st.ok()) return st;
  RefreshXattrsOnHdd(c, ino, name);
  fuse_reply_err(req, 0);
  return Status::Ok();
}

}  // namespace

void AddXattrOps(fuse_lowlevel_ops* ops) {
  ops->setxattr = Op<SetXattr, "setxattr", ChangesXattr>;
  ops->getxattr = Op<GetXattr, "getxattr", ReadsOnly>;
  ops->listxattr = Op<ListXattr, "listxattr", ReadsOnly>;
  ops->removexattr = Op<RemoveXattr, "removexattr", ChangesXattr>;
}

}  // namespace tierfs

// POSIX ACLs: the rules a local filesystem applies to them (the kernel's
// fs/posix_acl.c does this for ext4; FUSE leaves it to the daemon).
//
// With FUSE_POSIX_ACL the kernel enforces the ACLs it reads through
// GETXATTR, parses and checks every ACL a caller sets (owner or
// CAP_FOWNER, well-formed entries, default ACLs on directories only) and
// hands it to the daemon as SETXATTR of system.posix_acl_access or
// system.posix_acl_default, in the xattr format of
// <linux/posix_acl_xattr.h>: a header (version 2), then entries of tag,
// permissions and id, sorted by tag and id. What the daemon must do is here,
// as pure functions of the ACL and the mode; fs/ops_xattr.cc,
// fs/ops_namespace.cc and fs/ops_attr.cc apply them, each in the one LMDB
// transaction that changes the mode.
//
//   - set an access ACL: the mode's permission bits follow it (the group
//     bits are the mask's when it has one); an ACL the mode says entirely
//     is not stored (EquivalentMode);
//   - chmod: the ACL follows the mode (Chmod);
//   - create: a new inode in a directory with a default ACL gets the
//     default ACL masked by the mode asked for, and no umask (Inherit);
//     without one, the umask applies.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "meta/status.h"
#include "meta/store.h"

namespace tierfs::posix_acl {

constexpr const char* kAccessXattr = kAccessAclXattr;  // meta/store.h
constexpr char kDefaultXattr[] = "system.posix_acl_default";

// Tags of <linux/posix_acl.h>.
enum Tag : uint16_t {
  kUserObj = 0x01,
  kUser = 0x02,
  kGroupObj = 0x04,
  kGroup = 0x08,
  kMask = 0x10,
  kOther = 0x20,
};

struct Entry {
  uint16_t tag = 0;
  uint16_t perm = 0;  // rwx as 4, 2, 1
  uint32_t id = 0;    // a uid or gid for kUser and kGroup
};

using Acl = std::vector<Entry>;

// Whether a caller with `uid` gets all of `want` (rwx as 4, 2, 1) from
// access ACL `acl` of an inode owned by `owner_uid` and `owner_gid`, as
// the kernel decides (posix_acl_permission): the owner entry for the
// owner; else a named user entry, masked; else every group entry the
// caller is in (`in_group`), one granting all of `want` being enough,
// masked; else other.
bool Permits(const Acl& acl, uint32_t owner_uid, uint32_t owner_gid, uint32_t uid,
             const std::function<bool(uint32_t gid)>& in_group, unsigned want);

// True for the two names above.
bool IsAclXattr(std::string_view name);

// EINVAL for a value that is not a version-2 ACL of whole entries with
// known tags, with owner, group and other entries (and a mask when there
// are named users or groups), as the kernel checks (posix_acl_valid).
Status Parse(std::string_view xattr, Acl* out);
std::string Serialize(const Acl& acl);

// Replaces the permission bits of `*mode` with what `acl` grants (group:
// the mask's when there is one). True when `acl` says no more than those
// bits (owner, group and other entries only): it need not be stored.
bool EquivalentMode(const Acl& acl, uint32_t* mode);

// chmod of a file with access ACL `acl`: owner, other, and the mask (or
// the owning group when there is no mask) take the new mode's bits.
void Chmod(Acl* acl, uint32_t mode);

// A new inode's ACLs from its directory's default ACL `dir_default`:
// `*access` becomes the default masked by the permission bits of `*mode`,
// and `*mode` is masked by it in turn. Returns whether `*access` must be
// stored (false when it is equivalent to the mode). Directories also take
// `dir_default` as their own default ACL (the caller's part).
bool Inherit(const Acl& dir_default, Acl* access, uint32_t* mode);

}  // namespace tierfs::posix_acl

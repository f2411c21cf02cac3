#include "fs/posix_acl.h"

#include <cstring>

namespace tierfs::posix_acl {

namespace {

constexpr uint32_t kVersion = 2;  // POSIX_ACL_XATTR_VERSION
constexpr size_t kHeaderBytes = 4;
constexpr size_t kEntryBytes = 8;
constexpr uint32_t kNoId = 0xffffffff;  // ACL_UNDEFINED_ID

// The format is little-endian whatever the machine (posix_acl_xattr.h).
uint32_t Load32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
}

uint16_t Load16(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return uint16_t(b[0] | b[1] << 8);
}

void Store32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(char((v >> (8 * i)) & 0xff));
}

void Store16(std::string* out, uint16_t v) {
  out->push_back(char(v & 0xff));
  out->push_back(char(v >> 8));
}

// The order posix_acl_valid requires: owner, named users, owning group,
// named groups, mask, other; a mask whenever there are named entries.
bool WellFormed(const Acl& acl) {
  enum { kWantOwner, kInUsers, kInGroups, kWantOther, kDone } state = kWantOwner;
  bool needs_mask = false;
  for (const Entry& e : acl) {
    if (e.perm & ~7u) return false;
    switch (e.tag) {
      case kUserObj:
        if (state != kWantOwner) return false;
        state = kInUsers;
        break;
      case kUser:
        if (state != kInUsers) return false;
        needs_mask = true;
        break;
      case kGroupObj:
        if (state != kInUsers) return false;
        state = kInGroups;
        break;
      case kGroup:
        if (state != kInGroups) return false;
        needs_mask = true;
        break;
      case kMask:
        if (state != kInGroups) return false;
        state = kWantOther;
        break;
      case kOther:
        if (state != kWantOther && !(state == kInGroups && !needs_mask)) return false;
        state = kDone;
        break;
      default:
        return false;
    }
  }
  return state == kDone;
}

}  // namespace

bool IsAclXattr(std::string_view name) {
  return name == kAccessXattr || name == kDefaultXattr;
}

Status Parse(std::string_view xattr, Acl* out) {
  out->clear();
  if (xattr.size() < kHeaderBytes + kEntryBytes || (xattr.size() - kHeaderBytes) % kEntryBytes)
    return Status::Error(EINVAL, "a POSIX ACL of " + std::to_string(xattr.size()) +
                                     " bytes: not a header and whole entries");
  if (Load32(xattr.data()) != kVersion)
    return Status::Error(
        EINVAL, "a POSIX ACL of version " + std::to_string(Load32(xattr.data())) + ", not 2");
  for (size_t off = kHeaderBytes; off < xattr.size(); off += kEntryBytes) {
    const char* p = xattr.data() + off;
    out->push_back(Entry{Load16(p), Load16(p + 2), Load32(p + 4)});
  }
  if (!WellFormed(*out))
    return Status::Error(EINVAL,
                         "a POSIX ACL whose entries are out of order, repeated, "
                         "unknown or incomplete");
  return Status::Ok();
}

std::string Serialize(const Acl& acl) {
  std::string out;
  out.reserve(kHeaderBytes + acl.size() * kEntryBytes);
  Store32(&out, kVersion);
  for (const Entry& e : acl) {
    Store16(&out, e.tag);
    Store16(&out, e.perm);
    Store32(&out, e.tag == kUser || e.tag == kGroup ? e.id : kNoId);
  }
  return out;
}

bool Permits(const Acl& acl, uint32_t owner_uid, uint32_t owner_gid, uint32_t uid,
             const std::function<bool(uint32_t gid)>& in_group, unsigned want) {
  uint16_t mask = 7;
  for (const Entry& e : acl)
    if (e.tag == kMask) mask = e.perm;
  const auto grants = [&](uint16_t perm) { return (perm & want) == want; };
  bool in_a_group = false;
  for (const Entry& e : acl) {
    switch (e.tag) {
      case kUserObj:
        if (uid == owner_uid) return grants(e.perm);
        break;
      case kUser:
        if (uid == e.id) return grants(e.perm & mask);
        break;
      case kGroupObj:
      case kGroup:
        if (in_group(e.tag == kGroupObj ? owner_gid : e.id)) {
          in_a_group = true;
          if (grants(e.perm)) return grants(e.perm & mask);
        }
        break;
      case kOther:
        return !in_a_group && grants(e.perm);
      default:
        break;
    }
  }
  return false;
}

bool EquivalentMode(const Acl& acl, uint32_t* mode) {
  uint32_t bits = 0;
  bool equivalent = true;
  for (const Entry& e : acl) {
    switch (e.tag) {
      case kUserObj:
        bits |= uint32_t(e.perm & 7) << 6;
        break;
      case kGroupObj:
        bits |= uint32_t(e.perm & 7) << 3;
        break;
      case kOther:
        bits |= e.perm & 7;
        break;
      case kMask:  // in Parse's order, after the owning group
        bits = (bits & ~070u) | uint32_t(e.perm & 7) << 3;
        equivalent = false;
        break;
      default:
        equivalent = false;
    }
  }
  *mode = (*mode & ~0777u) | bits;
  return equivalent;
}

void Chmod(Acl* acl, uint32_t mode) {
  Entry* group_obj = nullptr;
  Entry* mask = nullptr;
  for (Entry& e : *acl) {
    if (e.tag == kUserObj) e.perm = (mode >> 6) & 7;
    if (e.tag == kOther) e.perm = mode & 7;
    if (e.tag == kGroupObj) group_obj = &e;
    if (e.tag == kMask) mask = &e;
  }
  Entry* group_class = mask ? mask : group_obj;
  if (group_class) group_class->perm = (mode >> 3) & 7;
}

bool Inherit(const Acl& dir_default, Acl* access, uint32_t* mode) {
  *access = dir_default;
  uint32_t m = *mode;
  Entry* group_obj = nullptr;
  Entry* mask = nullptr;
  bool equivalent = true;
  for (Entry& e : *access) {
    switch (e.tag) {
      case kUserObj:
        e.perm &= (m >> 6) & 7;
        m = (m & ~0700u) | uint32_t(e.perm) << 6;
        break;
      case kOther:
        e.perm &= m & 7;
        m = (m & ~07u) | e.perm;
        break;
      case kGroupObj:
        group_obj = &e;
        break;
      case kMask:
        mask = &e;
        equivalent = false;
        break;
      default:
        equivalent = false;
    }
  }
  if (Entry* group_class = mask ? mask : group_obj) {
    group_class->perm &= (m >> 3) & 7;
    m = (m & ~070u) | uint32_t(group_class->perm) << 3;
  }
  *mode = (*mode & ~0777u) | (m & 0777u);
  return !equivalent;
}

}  // namespace tierfs::posix_acl

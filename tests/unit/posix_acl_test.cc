// fs/posix_acl.h: the xattr format and the rules ext4 applies. The cases
// with expected values were run on ext4 (setfacl, getfacl, stat) first.
#include "fs/posix_acl.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <vector>

namespace tierfs::posix_acl {
namespace {

constexpr uint32_t kAnyone = 0xffffffff;

Acl Entries(std::initializer_list<Entry> e) {
  return Acl(e);
}

bool Same(const Acl& a, const Acl& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const bool named = a[i].tag == kUser || a[i].tag == kGroup;
    if (a[i].tag != b[i].tag || a[i].perm != b[i].perm || (named && a[i].id != b[i].id))
      return false;
  }
  return true;
}

// What ext4 stored for "user::rw-, group::r--, mask::r--, other::r--"
// (getfattr -e hex).
const std::string kExt4Bytes(
    "\x02\x00\x00\x00"
    "\x01\x00\x06\x00\xff\xff\xff\xff"
    "\x04\x00\x04\x00\xff\xff\xff\xff"
    "\x10\x00\x04\x00\xff\xff\xff\xff"
    "\x20\x00\x04\x00\xff\xff\xff\xff",
    36);

TEST(PosixAclTest, ParsesAndWritesTheKernelsFormat) {
  Acl acl;
  ASSERT_TRUE(Parse(kExt4Bytes, &acl).ok());
  EXPECT_TRUE(Same(acl, Entries({{kUserObj, 6, kAnyone},
                                 {kGroupObj, 4, kAnyone},
                                 {kMask, 4, kAnyone},
                                 {kOther, 4, kAnyone}})));
  EXPECT_EQ(Serialize(acl), kExt4Bytes);
  const Acl named = {{kUserObj, 7, 0}, {kUser, 5, 1234}, {kGroupObj, 5, 0},
                     {kGroup, 1, 99},  {kMask, 7, 0},    {kOther, 0, 0}};
  Acl back;
  ASSERT_TRUE(Parse(Serialize(named), &back).ok());
  EXPECT_TRUE(Same(back, named));
  EXPECT_EQ(back[1].id, 1234u);
  EXPECT_EQ(back[3].id, 99u);
}

TEST(PosixAclTest, RefusesWhatTheKernelWouldNot) {
  Acl acl;
  const Acl minimal = {{kUserObj, 6, 0}, {kGroupObj, 4, 0}, {kOther, 4, 0}};
  std::string bytes = Serialize(minimal);
  EXPECT_TRUE(Parse(bytes, &acl).ok());
  EXPECT_EQ(Parse(bytes.substr(0, bytes.size() - 1), &acl).err(), EINVAL);  // a partial entry
  EXPECT_EQ(Parse(bytes.substr(0, 4), &acl).err(), EINVAL);                 // no entries
  std::string v3 = bytes;
  v3[0] = 3;
  EXPECT_EQ(Parse(v3, &acl).err(), EINVAL);
  const Acl bad[] = {
      {{kGroupObj, 4, 0}, {kUserObj, 6, 0}, {kOther, 4, 0}},                    // out of order
      {{kUserObj, 6, 0}, {kUserObj, 6, 0}, {kGroupObj, 4, 0}, {kOther, 4, 0}},  // repeated
      {{kUserObj, 6, 0}, {kUser, 4, 5}, {kGroupObj, 4, 0}, {kOther, 4, 0}},     // no mask
      {{kUserObj, 6, 0}, {kGroupObj, 4, 0}},                                    // no other
      {{kUserObj, 8, 0}, {kGroupObj, 4, 0}, {kOther, 4, 0}},                    // perm 8
      {{kUserObj, 6, 0}, {0x40, 4, 0}, {kGroupObj, 4, 0}, {kOther, 4, 0}},      // unknown tag
  };
  for (const Acl& a : bad) EXPECT_EQ(Parse(Serialize(a), &acl).err(), EINVAL);
}

TEST(PosixAclTest, TheModeFollowsTheAclAndTheMaskIsTheGroupClass) {
  uint32_t mode = S_IFREG | S_ISGID | 0600;
  EXPECT_TRUE(EquivalentMode({{kUserObj, 6, 0}, {kGroupObj, 4, 0}, {kOther, 4, 0}}, &mode));
  EXPECT_EQ(mode, uint32_t(S_IFREG | S_ISGID | 0644));
  // setfacl -m u:12345:r on a 0600 file: group::---, mask::r-- gives 0640.
  mode = S_IFREG | 0600;
  EXPECT_FALSE(EquivalentMode(
      {{kUserObj, 6, 0}, {kUser, 4, 12345}, {kGroupObj, 0, 0}, {kMask, 4, 0}, {kOther, 0, 0}},
      &mode));
  EXPECT_EQ(mode, uint32_t(S_IFREG | 0640));
  // A mask alone still makes the ACL worth keeping (setfacl -x leaves one).
  mode = S_IFREG | 0644;
  EXPECT_FALSE(
      EquivalentMode({{kUserObj, 6, 0}, {kGroupObj, 4, 0}, {kMask, 4, 0}, {kOther, 4, 0}}, &mode));
  EXPECT_EQ(mode, uint32_t(S_IFREG | 0644));
}

TEST(PosixAclTest, ChmodRewritesOwnerMaskAndOther) {
  Acl acl = {{kUserObj, 6, 0}, {kUser, 6, 1234}, {kGroupObj, 4, 0}, {kMask, 6, 0}, {kOther, 4, 0}};
  Chmod(&acl, 0640);  // as ext4: the named entry stays, the mask becomes r--
  EXPECT_TRUE(Same(
      acl,
      Entries(
          {{kUserObj, 6, 0}, {kUser, 6, 1234}, {kGroupObj, 4, 0}, {kMask, 4, 0}, {kOther, 0, 0}})));
  Acl minimal = {{kUserObj, 6, 0}, {kGroupObj, 4, 0}, {kOther, 4, 0}};
  Chmod(&minimal, 0751);  // no mask: the owning group takes the group bits
  EXPECT_TRUE(Same(minimal, Entries({{kUserObj, 7, 0}, {kGroupObj, 5, 0}, {kOther, 1, 0}})));
}

// setfacl -d -m u:1234:rwx d (under umask 022), then under umask 077:
// creat("d/x", 0666) is 0664, mkdir("d/sub", 0777) is 0775 (ext4).
TEST(PosixAclTest, ANewNodeTakesTheDefaultMaskedByItsMode) {
  const Acl dir_default = {
      {kUserObj, 7, 0}, {kUser, 7, 1234}, {kGroupObj, 5, 0}, {kMask, 7, 0}, {kOther, 5, 0}};
  Acl access;
  uint32_t mode = S_IFREG | 0666;
  EXPECT_TRUE(Inherit(dir_default, &access, &mode));
  EXPECT_EQ(mode, uint32_t(S_IFREG | 0664));
  EXPECT_TRUE(Same(
      access,
      Entries(
          {{kUserObj, 6, 0}, {kUser, 7, 1234}, {kGroupObj, 5, 0}, {kMask, 6, 0}, {kOther, 4, 0}})));
  mode = S_IFDIR | S_ISGID | 0777;
  EXPECT_TRUE(Inherit(dir_default, &access, &mode));
  EXPECT_EQ(mode, uint32_t(S_IFDIR | S_ISGID | 0775));
  EXPECT_TRUE(Same(access, dir_default));
  // A default with no named entries gives an access ACL the mode says.
  const Acl plain = {{kUserObj, 7, 0}, {kGroupObj, 0, 0}, {kOther, 0, 0}};
  mode = S_IFREG | 0644;
  EXPECT_FALSE(Inherit(plain, &access, &mode));
  EXPECT_EQ(mode, uint32_t(S_IFREG | 0600));
}

// posix_acl_permission's order: owner, named user (masked), groups (any
// one granting, masked), other; other only when no group entry matched.
TEST(PosixAclTest, PermitsDecidesAsTheKernel) {
  const Acl acl = {{kUserObj, 7, 0}, {kUser, 4, 20}, {kUser, 0, 21}, {kGroupObj, 5, 0},
                   {kGroup, 2, 30},  {kMask, 6, 0},  {kOther, 1, 0}};
  const auto groups = [](std::vector<uint32_t> g) {
    return [g](uint32_t gid) { return std::find(g.begin(), g.end(), gid) != g.end(); };
  };
  const uint32_t owner = 10, owning_group = 11;
  EXPECT_TRUE(Permits(acl, owner, owning_group, owner, groups({}), 7));
  EXPECT_TRUE(Permits(acl, owner, owning_group, 20, groups({}), 4));
  EXPECT_FALSE(Permits(acl, owner, owning_group, 20, groups({11}), 1));  // named user wins
  EXPECT_FALSE(Permits(acl, owner, owning_group, 21, groups({}), 1));    // other's x not reached
  // The owning group's r-x is masked by rw-: read yes, search no.
  EXPECT_TRUE(Permits(acl, owner, owning_group, 40, groups({11}), 4));
  EXPECT_FALSE(Permits(acl, owner, owning_group, 40, groups({11}), 1));
  // Either matching group may grant.
  EXPECT_TRUE(Permits(acl, owner, owning_group, 40, groups({11, 30}), 2));
  // A matching group that does not grant denies; other is not consulted.
  EXPECT_FALSE(Permits(acl, owner, owning_group, 40, groups({30}), 1));
  EXPECT_TRUE(Permits(acl, owner, owning_group, 40, groups({}), 1));
  EXPECT_FALSE(Permits(acl, owner, owning_group, 40, groups({}), 4));
}

TEST(PosixAclTest, OnlyTheTwoAclNamesAreAcls) {
  EXPECT_TRUE(IsAclXattr("system.posix_acl_access"));
  EXPECT_TRUE(IsAclXattr("system.posix_acl_default"));
  EXPECT_FALSE(IsAclXattr("system.nfs4_acl"));
  EXPECT_FALSE(IsAclXattr("user.posix_acl_access"));
}

}  // namespace
}  // namespace tierfs::posix_acl

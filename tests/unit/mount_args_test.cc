// fs/mount_args.h: how the mount-helper convention's -o lists are sorted.
#include "fs/mount_args.h"

#include <gtest/gtest.h>

#include <set>

namespace tierfs {
namespace {

// A few of tierfs's long options: switches and ones with a value.
bool Lookup(const std::string& name, bool* takes_value) {
  static const std::set<std::string> valued = {"ssd", "hdd", "state", "namespace", "threads"};
  static const std::set<std::string> switches = {"writeback-cache", "foreground", "help", "no-acl"};
  *takes_value = valued.count(name) > 0;
  return valued.count(name) || switches.count(name);
}

SplitArgs Split(const std::vector<std::string>& argv, Status* st) {
  SplitArgs out;
  *st = SplitMountOptions(argv, Lookup, &out);
  return out;
}

TEST(MountArgsTest, SortsLongFuseAndMountOnlyOptions) {
  Status st;
  const SplitArgs a = Split({"/s:/h", "/m", "-o",
                             "rw,state=/var/lib/t,allow_other,noauto,_netdev,x-systemd.after=x,"
                             "comment=c,writeback-cache,nodev,,max_read=4096",
                             "-onoatime", "--options=threads=4"},
                            &st);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ((std::vector<std::string>{"/s:/h", "/m", "--state=/var/lib/t", "--writeback-cache",
                                      "--threads=4"}),
            a.args);
  EXPECT_EQ((std::vector<std::string>{"rw", "allow_other", "nodev", "max_read=4096", "noatime"}),
            a.fuse_options);
}

// As ext4 spells them in fstab: acl is the default, noacl turns ACLs off.
TEST(MountArgsTest, AclAndNoaclAsExt4SpellsThem) {
  Status st;
  SplitArgs a = Split({"/s:/h", "/m", "-o", "acl,noatime"}, &st);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ((std::vector<std::string>{"/s:/h", "/m"}), a.args);
  a = Split({"/s:/h", "/m", "-o", "noacl"}, &st);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ((std::vector<std::string>{"/s:/h", "/m", "--no-acl"}), a.args);
}

TEST(MountArgsTest, RefusesNamingTheOption) {
  for (const auto& [list, named] :
       std::vector<std::pair<std::string, std::string>>{{"allow_other,bogus", "'bogus'"},
                                                        {"state", "state"},
                                                        {"writeback-cache=yes", "writeback-cache"},
                                                        {"help", "'help'"},  // not a mount option
                                                        {"allow_other=1", "allow_other=1"}}) {
    Status st;
    Split({"-o", list}, &st);
    EXPECT_EQ(EINVAL, st.err()) << list;
    EXPECT_NE(std::string::npos, st.message().find(named)) << st.message();
  }
  Status st;
  Split({"/m", "-o"}, &st);
  EXPECT_EQ(EINVAL, st.err());
}

TEST(MountArgsTest, AnOptionsValueIsNotAnOptionList) {
  Status st;
  const SplitArgs a = Split({"--namespace", "-o", "/m"}, &st);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ((std::vector<std::string>{"--namespace", "-o", "/m"}), a.args);
}

TEST(MountArgsTest, SourceNamesBothTiersOrIsALabel) {
  std::string ssd, hdd;
  ASSERT_TRUE(ParseMountSource("/srv/ssd:/srv/hdd", &ssd, &hdd).ok());
  EXPECT_EQ("/srv/ssd", ssd);
  EXPECT_EQ("/srv/hdd", hdd);
  // Given twice.
  EXPECT_EQ(EINVAL, ParseMountSource("/a:/b", &ssd, &hdd).err());
  // A label, with the tiers from -o ssd=,hdd=.
  EXPECT_TRUE(ParseMountSource("ckpt", &ssd, &hdd).ok());
  std::string none1, none2;
  EXPECT_EQ(EINVAL, ParseMountSource("ckpt", &none1, &none2).err());
  EXPECT_EQ(EINVAL, ParseMountSource(":/b", &none1, &none2).err());
}

}  // namespace
}  // namespace tierfs

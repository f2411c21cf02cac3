// Namespaces on shared tiers (fs/namespace_setup.h): several tierfs trees,
// each with its own state, may share a tier (the capacity tier of a
// multi-node job) and never touch each other's objects; a fresh state never
// reuses the names of objects it does not know.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

// Mounts over this node's own SSD tier and the HDD tier of `shared`.
MountOptions SharingHddOf(const TierfsMount& shared) {
  MountOptions o;
  o.hdd_dir = shared.hdd();
  return o;
}

std::string Read(const std::string& path) {
  std::string got;
  EXPECT_EQ(0, ReadFile(path, &got)) << path;
  return got;
}

// A mount attempt in the background (the parent reports the outcome).
CommandResult TryMount(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {TierfsBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, 60);
}

TEST(NamespaceTest, TwoTreesSharingAnHddTierKeepTheirOwnArchivedFiles) {
  TierfsMount a;
  ASSERT_TRUE(a.Mount());
  TierfsMount b(SharingHddOf(a));
  ASSERT_TRUE(b.Mount());
  // Both trees number their inodes alike: the same names get the same
  // inode numbers, which once named the same object on the shared tier.
  const std::string data_a = Pattern(300000, 1), data_b = Pattern(200000, 2);
  ASSERT_EQ(0, WriteFile(a.path("ckpt"), data_a));
  ASSERT_EQ(0, WriteFile(b.path("ckpt"), data_b));
  ASSERT_EQ(Ino(a.path("ckpt")), Ino(b.path("ckpt")));
  ASSERT_EQ(0, SetTierOfClosed(a.path("ckpt"), "hdd"));
  ASSERT_EQ(0, SetTierOfClosed(b.path("ckpt"), "hdd"));
  EXPECT_TRUE(Read(a.path("ckpt")) == data_a) << "b's move replaced a's archived file";
  EXPECT_TRUE(Read(b.path("ckpt")) == data_b);
  // Removing b's file leaves a's archived copy alone.
  ASSERT_EQ(0, unlink(b.path("ckpt").c_str()));
  EXPECT_TRUE(b.Unmount());
  EXPECT_TRUE(a.Unmount());
  ASSERT_TRUE(a.Mount());
  EXPECT_TRUE(Read(a.path("ckpt")) == data_a);
  EXPECT_EQ(2u, ListDir(a.hdd() + "/ns").size());
}

TEST(NamespaceTest, AFreshStateRefusesANamespaceWithObjectsItDoesNotKnow) {
  MountOptions named;
  named.extra_args = {"--namespace", "job1"};
  TierfsMount a(named);
  ASSERT_TRUE(a.Mount());
  ASSERT_EQ(0, WriteFile(a.path("ckpt"), "archived"));
  ASSERT_EQ(0, SetTierOfClosed(a.path("ckpt"), "hdd"));
  ASSERT_TRUE(a.Unmount());

  // A second node (its own SSD tier and state) asking for the same name on
  // the shared HDD tier, and the same tiers with a fresh --state.
  TierfsMount other;  // provides fresh directories
  const std::string fresh_state = other.root() + "/fresh-state";
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--ssd", other.ssd(), "--hdd", a.hdd(), "--namespace", "job1", other.mnt()},
           {"--ssd", a.ssd(), "--hdd", a.hdd(), "--state", fresh_state, "--namespace", "job1",
            other.mnt()}}) {
    CommandResult r = TryMount(args);
    EXPECT_EQ(1, r.exit_code) << r.err;
    EXPECT_NE(std::string::npos, r.err.find("job1")) << r.err;
    EXPECT_FALSE(IsMountPoint(other.mnt()));
    if (IsMountPoint(other.mnt())) ForceUnmount(other.mnt());
  }
  // Nothing of job1 was touched.
  ASSERT_TRUE(a.Mount());
  EXPECT_EQ("archived", Read(a.path("ckpt")));
  EXPECT_EQ("hdd", GetTier(a.path("ckpt")));
}

TEST(NamespaceTest, AStateKeepsTheNamespaceItWasCreatedWith) {
  MountOptions named;
  named.extra_args = {"--namespace", "job1"};
  TierfsMount a(named);
  ASSERT_TRUE(a.Mount());
  ASSERT_TRUE(a.Unmount());
  CommandResult r = TryMount({"--ssd", a.ssd(), "--hdd", a.hdd(), "--namespace", "job2", a.mnt()});
  EXPECT_EQ(1, r.exit_code) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("job1")) << r.err;
  if (IsMountPoint(a.mnt())) ForceUnmount(a.mnt());
  for (const std::string& bad :
       std::vector<std::string>{"../x", ".hidden", "a/b", std::string(65, 'x'), "-o"}) {
    r = TryMount({"--ssd", a.ssd(), "--hdd", a.hdd(), "--state", a.root() + "/s2", "--namespace",
                  bad, a.mnt()});
    EXPECT_NE(0, r.exit_code) << bad << ": " << r.err;  // 2 for "-o", taken as an option
    EXPECT_NE(std::string::npos, r.err.find("namespace")) << r.err;
    if (IsMountPoint(a.mnt())) ForceUnmount(a.mnt());
  }
}

// A tier whose filesystem is not mounted shows its bare mountpoint, an
// empty directory. A state that knows the tier refuses it, saying so,
// before writing anything there; before, the mount made a new tierfs.id
// and ns/NAME/{lock,objects/00..ff} in the bare directory, then failed
// with "state ... belongs to another hdd tier" (the identity it had just
// made). The HDD tier with the state on the SSD tier, then the SSD tier
// with the state elsewhere (--state).
TEST(NamespaceTest, AKnownTierWithoutItsIdentityIsRefusedAndLeftUntouched) {
  for (const bool ssd : {false, true}) {
    SCOPED_TRACE(ssd ? "ssd tier" : "hdd tier");
    MountOptions o;
    o.ssd_tmpfs_mb = 16;
    o.hdd_tmpfs_mb = 16;
    TierfsMount fs(o);
    const std::string state = fs.root() + "/state";
    if (ssd) fs.options().state_dir = state;
    ASSERT_TRUE(fs.Mount());
    ASSERT_EQ(0, WriteFile(fs.path("f"), "data"));
    ASSERT_TRUE(fs.Unmount());
    const std::string tier = ssd ? fs.ssd() : fs.hdd();
    ASSERT_EQ(0, umount2(tier.c_str(), 0)) << tier << ": " << strerror(errno);
    ASSERT_TRUE(ListDir(tier).empty());
    std::vector<std::string> args = {"--ssd", fs.ssd(), "--hdd", fs.hdd(), fs.mnt()};
    if (ssd) args.insert(args.begin(), {"--state", state});
    CommandResult r = TryMount(args);
    if (IsMountPoint(fs.mnt())) ForceUnmount(fs.mnt());
    EXPECT_EQ(1, r.exit_code) << r.err;
    const std::string name = ssd ? "ssd" : "hdd";
    EXPECT_NE(std::string::npos, r.err.find("the " + name + " tier " + tier +
                                            " has no tierfs.id, but the state knows it as "))
        << r.err;
    EXPECT_NE(std::string::npos, r.err.find("is its filesystem mounted?")) << r.err;
    EXPECT_EQ(std::string::npos, r.err.find("belongs to another")) << r.err;
    EXPECT_TRUE(ListDir(tier).empty()) << "written into the bare mountpoint " << tier;
  }
  // A first mount (the state knows no tier) still makes the identities.
  TierfsMount fresh;
  ASSERT_TRUE(fresh.Mount());
  struct stat sb;
  EXPECT_EQ(0, Err(stat((fresh.ssd() + "/tierfs.id").c_str(), &sb)));
  EXPECT_EQ(0, Err(stat((fresh.hdd() + "/tierfs.id").c_str(), &sb)));
}

}  // namespace
}  // namespace tierfs_test

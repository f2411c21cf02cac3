// Files whose data object sits on the HDD tier: moved there offline with
// tierfs::RelocateObject, then read, written and remounted through FUSE.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "meta/store.h"
#include "tests/integration/mount_fixture.h"
#include "tiering/relocate.h"
#include "tiering/tier.h"

namespace tierfs_test {
namespace {

using tierfs::Inode;
using tierfs::Status;
using tierfs::Store;
using tierfs::Tier;
using tierfs::TierId;

std::string Slurp(const std::string& path, bool* exists) {
  std::string s;
  *exists = ReadFile(path, &s) == 0;
  return s;
}

class HddTierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    umask(022);
    state_ = fs_.root() + "/state";
    ASSERT_EQ(0, mkdir(state_.c_str(), 0700));
    fs_.options().state_dir = state_;
    ASSERT_TRUE(fs_.Mount());
  }

  // Opens the state and both tiers while unmounted.
  void OpenOffline() {
    Status s = Store::Open(state_, &store_);
    ASSERT_TRUE(s.ok()) << s.message();
    std::string ns;
    s = store_->GetMeta("namespace", &ns);
    ASSERT_TRUE(s.ok()) << s.message();
    s = Tier::Open(TierId::kSsd, fs_.ssd(), ns, &ssd_);
    ASSERT_TRUE(s.ok()) << s.message();
    s = Tier::Open(TierId::kHdd, fs_.hdd(), ns, &hdd_);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  void CloseOffline() {
    store_.reset();
    ssd_.reset();
    hdd_.reset();
  }

  void MoveToHdd(uint64_t ino, const std::string& want) {
    bool on_ssd = false, on_hdd = false;
    std::string before = Slurp(ssd_->ObjectPath(ino), &on_ssd);
    ASSERT_TRUE(on_ssd) << "new file's object is not on the SSD tier: " << ssd_->ObjectPath(ino);
    EXPECT_TRUE(before == want) << "SSD object does not hold the file's bytes";
    Slurp(hdd_->ObjectPath(ino), &on_hdd);
    EXPECT_FALSE(on_hdd);
    Inode inode;
    ASSERT_TRUE(store_->GetInode(ino, &inode).ok());
    EXPECT_EQ(TierId::kSsd, inode.tier);

    Status s = tierfs::RelocateObject(*store_, *ssd_, *hdd_, ino);
    ASSERT_TRUE(s.ok()) << s.message();
    std::string after = Slurp(hdd_->ObjectPath(ino), &on_hdd);
    ASSERT_TRUE(on_hdd) << "object did not arrive at " << hdd_->ObjectPath(ino);
    EXPECT_TRUE(after == want);
    Slurp(ssd_->ObjectPath(ino), &on_ssd);
    EXPECT_FALSE(on_ssd) << "SSD copy was not removed";
    ASSERT_TRUE(store_->GetInode(ino, &inode).ok());
    EXPECT_EQ(TierId::kHdd, inode.tier);
  }

  // After a clean unmount: the object sits on exactly the tier the store names.
  void CheckPlacement(uint64_t ino, const std::string& want) {
    Inode inode;
    ASSERT_TRUE(store_->GetInode(ino, &inode).ok());
    EXPECT_EQ(want.size(), inode.size);
    const Tier& home = inode.tier == TierId::kSsd ? *ssd_ : *hdd_;
    const Tier& other = inode.tier == TierId::kSsd ? *hdd_ : *ssd_;
    bool exists = false;
    std::string obj = Slurp(home.ObjectPath(ino), &exists);
    EXPECT_TRUE(exists) << "no object on the " << home.name() << " tier named by the store";
    EXPECT_TRUE(obj == want) << "object on " << home.name() << " differs";
    Slurp(other.ObjectPath(ino), &exists);
    EXPECT_FALSE(exists) << "stale object left on the " << other.name() << " tier";
  }

  TierfsMount fs_;
  std::string state_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Tier> ssd_, hdd_;
};

uint64_t InoOf(const std::string& p) {
  struct stat st {};
  EXPECT_EQ(0, stat(p.c_str(), &st)) << p;
  return st.st_ino;
}

TEST_F(HddTierTest, ReadWriteRemountAfterRelocation) {
  std::string big = Pattern(1 << 20, 31);
  std::string small = "small file on the hdd";
  ASSERT_EQ(0, mkdir(fs_.path("d").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(fs_.path("d/big"), big));
  ASSERT_EQ(0, WriteFile(fs_.path("small"), small));
  ASSERT_EQ(0, link(fs_.path("d/big").c_str(), fs_.path("biglink").c_str()));
  uint64_t big_ino = InoOf(fs_.path("d/big"));
  uint64_t small_ino = InoOf(fs_.path("small"));
  ASSERT_TRUE(fs_.Unmount());

  OpenOffline();
  MoveToHdd(big_ino, big);
  MoveToHdd(small_ino, small);
  CloseOffline();

  ASSERT_TRUE(fs_.Mount());
  struct stat st {};
  ASSERT_EQ(0, stat(fs_.path("d/big").c_str(), &st));
  EXPECT_EQ(static_cast<off_t>(big.size()), st.st_size);
  EXPECT_EQ(big_ino, st.st_ino);
  std::string got;
  ASSERT_EQ(0, ReadFile(fs_.path("d/big"), &got));
  EXPECT_TRUE(got == big) << "reading the HDD-resident file";
  ASSERT_EQ(0, ReadFile(fs_.path("biglink"), &got));
  EXPECT_TRUE(got == big);
  int fd = open(fs_.path("d/big").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[100];
  ASSERT_EQ(100, PreadAll(fd, buf, 100, 777777));
  EXPECT_EQ(big.substr(777777, 100), std::string(buf, 100));
  close(fd);

  // Write into the middle and past the end.
  fd = open(fs_.path("d/big").c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(0, PwriteAll(fd, "MODIFIED", 8, 1000));
  std::string tail = Pattern(5000, 32);
  ASSERT_EQ(0, PwriteAll(fd, tail.data(), tail.size(), big.size()));
  close(fd);
  big.replace(1000, 8, "MODIFIED");
  big += tail;
  ASSERT_EQ(0, ReadFile(fs_.path("d/big"), &got));
  EXPECT_TRUE(got == big) << "after writing to the HDD-resident file";
  ASSERT_EQ(0, ReadFile(fs_.path("biglink"), &got));
  EXPECT_TRUE(got == big);
  // O_TRUNC on an HDD-resident file starts over.
  ASSERT_EQ(0, WriteFile(fs_.path("small"), "new"));
  ASSERT_EQ(0, ReadFile(fs_.path("small"), &got));
  EXPECT_EQ("new", got);

  ASSERT_TRUE(fs_.Unmount());
  ASSERT_TRUE(fs_.Mount());
  ASSERT_EQ(0, ReadFile(fs_.path("d/big"), &got));
  EXPECT_EQ(big.size(), got.size());
  EXPECT_TRUE(got == big) << "after remount";
  ASSERT_EQ(0, ReadFile(fs_.path("small"), &got));
  EXPECT_EQ("new", got);
  EXPECT_EQ(big_ino, InoOf(fs_.path("biglink")));
  ASSERT_TRUE(fs_.Unmount());

  OpenOffline();
  CheckPlacement(big_ino, big);
  CheckPlacement(small_ino, "new");
  CloseOffline();
}

TEST_F(HddTierTest, HddResidentFileSurvivesRenameAndUnlink) {
  std::string data = Pattern(200000, 41);
  ASSERT_EQ(0, WriteFile(fs_.path("f"), data));
  ASSERT_EQ(0, WriteFile(fs_.path("g"), "gone soon"));
  uint64_t f_ino = InoOf(fs_.path("f"));
  uint64_t g_ino = InoOf(fs_.path("g"));
  ASSERT_TRUE(fs_.Unmount());
  OpenOffline();
  MoveToHdd(f_ino, data);
  MoveToHdd(g_ino, "gone soon");
  CloseOffline();

  ASSERT_TRUE(fs_.Mount());
  ASSERT_EQ(0, mkdir(fs_.path("dir").c_str(), 0755));
  ASSERT_EQ(0, rename(fs_.path("f").c_str(), fs_.path("dir/f2").c_str()));
  std::string got;
  ASSERT_EQ(0, ReadFile(fs_.path("dir/f2"), &got));
  EXPECT_TRUE(got == data);
  ASSERT_EQ(0, unlink(fs_.path("g").c_str()));
  ASSERT_EQ(0, truncate(fs_.path("dir/f2").c_str(), 1000));
  ASSERT_TRUE(fs_.Unmount());
  ASSERT_TRUE(fs_.Mount());
  ASSERT_EQ(0, ReadFile(fs_.path("dir/f2"), &got));
  EXPECT_TRUE(got == data.substr(0, 1000));
  ASSERT_TRUE(fs_.Unmount());

  OpenOffline();
  bool exists = true;
  Slurp(hdd_->ObjectPath(g_ino), &exists);
  EXPECT_FALSE(exists) << "unlinked file's HDD object leaked";
  CheckPlacement(f_ino, data.substr(0, 1000));
  CloseOffline();
}

}  // namespace
}  // namespace tierfs_test

// A tier that goes away or turns read-only under a mounted tierfs: nothing
// may change a file whose tier cannot be written, and nothing may be lost
// when the tier comes back.
//
// Both tiers are tmpfs mounts of the fixture. "Read-only" remounts the HDD
// tmpfs read-only; "gone" mounts another tmpfs over the HDD tier directory
// (the daemon's own directory fd still reaches the old one, as it would a
// disk that was lazily unmounted and comes back later).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "meta/store.h"
#include "tests/integration/tier_fault_util.h"

namespace tierfs_test {
namespace {

TEST_F(TierFaultTest, OTruncOpenRefusedWhileHddTierGone) {
  const std::string data = Pattern(100000, 7);
  MakeHddResident("f", data);
  const ino_t ino = Ino(P("f"));
  {
    HddGone gone(fs_.hdd());
    ASSERT_TRUE(gone.ok());
    // cp new f: the open must fail before anything is emptied.
    EXPECT_EQ(EIO, OpenErr(P("f"), O_WRONLY | O_TRUNC));
  }
  EXPECT_EQ(int64_t(data.size()), ObjectSize(fs_.hdd(), ino)) << "the object was truncated";
  std::string got;
  ASSERT_EQ(0, ReadFile(P("f"), &got));
  EXPECT_TRUE(got == data) << "f lost its bytes (size " << got.size() << ")";
  Remount();
  ASSERT_EQ(0, ReadFile(P("f"), &got));
  EXPECT_TRUE(got == data) << "after remount, size " << got.size();
}

TEST_F(TierFaultTest, OTruncOpenRefusedWhileHddTierReadOnly) {
  const std::string data = Pattern(5000, 8);
  MakeHddResident("f", data);
  {
    HddReadOnly ro(fs_.hdd());
    ASSERT_TRUE(ro.ok());
    EXPECT_NE(0, OpenErr(P("f"), O_WRONLY | O_TRUNC));
    EXPECT_NE(0, truncate(P("f").c_str(), 10));
  }
  std::string got;
  ASSERT_EQ(0, ReadFile(P("f"), &got));
  EXPECT_TRUE(got == data) << "size " << got.size();
}

// utimensat and truncate of a file whose tier is read-only fail, and change
// neither LMDB nor the object (they used to report success: the object's
// times were set with the result ignored).
TEST_F(TierFaultTest, SetTimesRefusedWhileHddTierReadOnly) {
  MakeHddResident("f", "abc");
  struct stat before {};
  ASSERT_EQ(0, stat(P("f").c_str(), &before));
  const struct timespec ts[2] = {{1000000, 0}, {2000000, 0}};
  {
    HddReadOnly ro(fs_.hdd());
    ASSERT_TRUE(ro.ok());
    EXPECT_EQ(EIO, Err(utimensat(AT_FDCWD, P("f").c_str(), ts, 0)));
    EXPECT_EQ(EIO, Err(truncate(P("f").c_str(), 1)));
    // Mode and owner are the namespace's alone.
    EXPECT_EQ(0, Err(chmod(P("f").c_str(), 0600)));
  }
  Remount();
  struct stat after {};
  ASSERT_EQ(0, stat(P("f").c_str(), &after));
  EXPECT_EQ(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
  EXPECT_EQ(3, after.st_size);
  EXPECT_EQ(0600u, after.st_mode & 07777);
  // Writable again: both work.
  EXPECT_EQ(0, Err(utimensat(AT_FDCWD, P("f").c_str(), ts, 0)));
  ASSERT_EQ(0, stat(P("f").c_str(), &after));
  EXPECT_EQ(2000000, after.st_mtim.tv_sec);
}

// rm of an HDD-resident file while the tier is read-only: the object stays
// (and its inode stays an orphan) until the tier is writable again, then
// goes, at runtime or at the next mount; it is never leaked.
TEST_F(TierFaultTest, RmWhileHddReadOnlyFreesObjectWhenWritable) {
  const std::string data = Pattern(30000, 9);
  MakeHddResident("f", data);
  MakeHddResident("g", data);
  const ino_t f = Ino(P("f")), g = Ino(P("g"));
  {
    HddReadOnly ro(fs_.hdd());
    ASSERT_TRUE(ro.ok());
    ASSERT_EQ(0, unlink(P("f").c_str()));
    // The kernel forgets the inode when it likes: wait for the attempt.
    EXPECT_TRUE(WaitFor(
        [&] { return fs_.Log().find("freeing inode " + std::to_string(f)) != std::string::npos; },
        20));
    EXPECT_EQ(int64_t(data.size()), ObjectSize(fs_.hdd(), f));
    ro.End();
    EXPECT_TRUE(WaitFor([&] { return ObjectSize(fs_.hdd(), f) < 0; }, 20))
        << "the object of the removed file leaked";
  }
  // Across a remount: still read-only when the daemon stops and starts.
  {
    HddReadOnly ro(fs_.hdd());
    ASSERT_TRUE(ro.ok());
    ASSERT_EQ(0, unlink(P("g").c_str()));
    ASSERT_TRUE(fs_.Unmount());
    std::unique_ptr<tierfs::Store> store;
    tierfs::Status st = tierfs::Store::Open(fs_.ssd() + "/state", &store);
    ASSERT_TRUE(st.ok()) << st.message();
    std::vector<uint64_t> orphans;
    ASSERT_TRUE(store->ListOrphans(&orphans).ok());
    EXPECT_NE(orphans.end(), std::find(orphans.begin(), orphans.end(), g))
        << "the removed file's inode is not kept as an orphan";
    store.reset();
    ASSERT_TRUE(fs_.Mount());
    EXPECT_EQ(int64_t(data.size()), ObjectSize(fs_.hdd(), g));
    ro.End();
    EXPECT_TRUE(WaitFor([&] { return ObjectSize(fs_.hdd(), g) < 0; }, 20))
        << "the object of the removed file leaked";
  }
}

// A file spilled to the HDD tier while being written keeps its descriptor
// on the HDD object; once the tier is gone, further writes through it fail
// with EIO instead of landing in whatever the old descriptor still reaches.
class SpilledWriteTest : public MountTest {
 protected:
  SpilledWriteTest() : MountTest(SmallSsd()) {}
  static MountOptions SmallSsd() {
    MountOptions o;
    o.ssd_tmpfs_mb = 32;
    o.hdd_tmpfs_mb = 128;
    return o;
  }
};

TEST_F(SpilledWriteTest, WriteThroughOpenHandleRefusedWhileHddTierGone) {
  const std::string data = Pattern(48 << 20, 21);
  int fd = open(P("big").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  for (size_t off = 0; off < data.size(); off += 1 << 20)
    ASSERT_EQ(0, PwriteAll(fd, data.data() + off, 1 << 20, off)) << off;
  ASSERT_EQ("hdd", GetTier(P("big"))) << "the file did not spill";
  {
    HddGone gone(fs_.hdd());
    ASSERT_TRUE(gone.ok());
    EXPECT_EQ(EIO, PwriteAll(fd, "late", 4, off_t(data.size())));
  }
  close(fd);
  std::string got;
  ASSERT_EQ(0, ReadFile(P("big"), &got));
  EXPECT_EQ(data.size(), got.size());
  EXPECT_TRUE(got == data);
}

// fallocate and copy_file_range into a handle whose object is on a tier
// that went away change nothing either (they once skipped the check that
// write makes).
TEST_F(SpilledWriteTest, FallocateAndCopyIntoOpenHandleRefusedWhileHddTierGone) {
  const std::string data = Pattern(48 << 20, 22);
  ASSERT_EQ(0, WriteFile(P("src"), "copied bytes"));
  int fd = open(P("big").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  for (size_t off = 0; off < data.size(); off += 1 << 20)
    ASSERT_EQ(0, PwriteAll(fd, data.data() + off, 1 << 20, off)) << off;
  ASSERT_EQ("hdd", GetTier(P("big"))) << "the file did not spill";
  int src = open(P("src").c_str(), O_RDONLY);
  ASSERT_GE(src, 0);
  {
    HddGone gone(fs_.hdd());
    ASSERT_TRUE(gone.ok());
    EXPECT_EQ(EIO, Err(fallocate(fd, 0, off_t(data.size()), 1 << 20)));
    loff_t in_off = 0, out_off = 0;
    EXPECT_EQ(EIO, Err(copy_file_range(src, &in_off, fd, &out_off, 12, 0)));
  }
  close(src);
  close(fd);
  std::string got;
  ASSERT_EQ(0, ReadFile(P("big"), &got));
  EXPECT_TRUE(got == data) << "size " << got.size();
}

}  // namespace
}  // namespace tierfs_test

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

#include <cstring>
#include <string>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tierfs_test

// Times tierfs cannot keep: it stores them as signed 64-bit nanoseconds
// since the epoch (meta/inode.h), 1677-09-21T00:12:44Z to
// 2262-04-11T23:47:16Z in whole seconds. One outside is clamped to the
// nearest end, with no nanoseconds, as the kernel clamps a time to a
// filesystem's range (timestamp_truncate), never wrapped (xfstests
// generic/634). The tiers are tmpfs, whose range is the kernel's whole
// one, so a regular file's mtime (kept on its object too) is tierfs's to
// clamp, not the tier filesystem's.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

constexpr int64_t kMinSec = INT64_MIN / 1000000000;  // -9223372036: 1677-09-21T00:12:44Z
constexpr int64_t kMaxSec = INT64_MAX / 1000000000;  // 9223372036: 2262-04-11T23:47:16Z

class TimestampsTest : public MountTest {
 protected:
  TimestampsTest() : MountTest(Options()) {}
  static MountOptions Options() {
    MountOptions o;
    o.ssd_tmpfs_mb = 64;
    o.hdd_tmpfs_mb = 64;
    return o;
  }
  // Sets both times of `path` to `sec`.`nsec`, then returns its mtime and
  // atime as "SEC.NSEC SEC.NSEC" (or "errno N").
  static std::string SetAndStat(const std::string& path, int64_t sec, long nsec) {
    const struct timespec ts[2] = {{time_t(sec), nsec}, {time_t(sec), nsec}};
    if (utimensat(AT_FDCWD, path.c_str(), ts, 0) != 0) return "errno " + std::to_string(errno);
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return "errno " + std::to_string(errno);
    auto str = [](const struct timespec& t) {
      return std::to_string(int64_t(t.tv_sec)) + "." + std::to_string(t.tv_nsec);
    };
    return str(st.st_mtim) + " " + str(st.st_atim);
  }
  static std::string Both(int64_t sec, long nsec) {
    const std::string one = std::to_string(sec) + "." + std::to_string(nsec);
    return one + " " + one;
  }
};

TEST_F(TimestampsTest, OutsideTheRangeIsClampedNotWrapped) {
  ASSERT_EQ(0, WriteFile(P("f"), "data"));
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0755));
  const std::string min = Both(kMinSec, 0), max = Both(kMaxSec, 0);
  // A regular file's mtime lives on its object too; a directory's in LMDB only.
  for (const std::string& path : {P("f"), P("d")}) {
    // `touch -d 1500-01-01` read back as 2084 before, 2500 as 1915.
    EXPECT_EQ(min, SetAndStat(path, -14831769600, 0)) << path << ": 1500-01-01";
    EXPECT_EQ(max, SetAndStat(path, 16725225600, 0)) << path << ": 2500-01-01";
    EXPECT_EQ(min, SetAndStat(path, INT64_MIN, 999999999)) << path;
    EXPECT_EQ(max, SetAndStat(path, INT64_MAX, 999999999)) << path;
    // The ends themselves, and just inside them, are kept as given.
    EXPECT_EQ(max, SetAndStat(path, kMaxSec, 0)) << path;
    EXPECT_EQ(Both(kMaxSec - 1, 999999999), SetAndStat(path, kMaxSec - 1, 999999999)) << path;
    EXPECT_EQ(Both(kMinSec + 1, 5), SetAndStat(path, kMinSec + 1, 5)) << path;
    EXPECT_EQ(min, SetAndStat(path, kMinSec, 0)) << path;
  }
}

// A time before 1970 with nanoseconds: the nanoseconds count forward from
// the second before (tv_nsec is never negative). Before, stat showed the
// atime as 1970-01-01T00:00:00.999999999 and setting the mtime failed
// (EINVAL from the object's utimensat).
TEST_F(TimestampsTest, BeforeTheEpochWithNanoseconds) {
  ASSERT_EQ(0, WriteFile(P("f"), "data"));
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0755));
  for (const std::string& path : {P("f"), P("d")}) {
    EXPECT_EQ(Both(-1, 500000000), SetAndStat(path, -1, 500000000)) << path;
    EXPECT_EQ(Both(-86401, 1), SetAndStat(path, -86401, 1)) << path;
  }
  // And after a remount, from LMDB.
  ASSERT_TRUE(fs_.Unmount());
  ASSERT_TRUE(fs_.Mount());
  struct stat st;
  ASSERT_EQ(0, stat(P("d").c_str(), &st));
  EXPECT_EQ(-86401, st.st_mtim.tv_sec);
  EXPECT_EQ(1, st.st_mtim.tv_nsec);
}

}  // namespace
}  // namespace tierfs_test

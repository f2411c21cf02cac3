// A small SSD tier that really fills up: eviction above the high watermark,
// spill of new and growing files to the HDD tier, ENOSPC only when both
// tiers are full, and an HDD tier that goes away while mounted.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

double UsedFraction(const std::string& dir) {
  struct statvfs v;
  if (statvfs(dir.c_str(), &v) != 0) return -1;
  return 1.0 - double(v.f_bavail) / double(v.f_blocks);
}

// Writes `data` in 1 MiB pieces; 0 or the errno of the first failing write.
int WriteInPieces(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) return errno;
  int err = 0;
  for (size_t off = 0; off < data.size() && err == 0; off += 1 << 20)
    err = PwriteAll(fd, data.data() + off, std::min<size_t>(1 << 20, data.size() - off), off);
  if (err == 0 && fsync(fd) != 0) err = errno;
  if (close(fd) != 0 && err == 0) err = errno;
  return err;
}

MountOptions SmallTiers(int ssd_mb, int hdd_mb, std::vector<std::string> args = {}) {
  MountOptions o;
  o.ssd_tmpfs_mb = ssd_mb;
  o.hdd_tmpfs_mb = hdd_mb;
  o.extra_args = std::move(args);
  return o;
}

class EvictionTest : public MountTest {
 protected:
  EvictionTest()
      : MountTest(
            SmallTiers(64, 256, {"--ssd-high-watermark", "50%", "--ssd-low-watermark", "30%"})) {}
};

TEST_F(EvictionTest, LeastRecentlyUsedFilesMoveToHddAboveTheHighWatermark) {
  std::vector<std::string> data;
  for (int i = 0; i < 10; ++i) {
    data.push_back(Pattern(4 << 20, 100 + i));
    ASSERT_EQ(0, WriteFile(P("f" + std::to_string(i)), data.back()));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // distinct mtimes
  }
  // Each pass above 50% moves files until below 30%; later writes may take
  // it up again, but never past the high watermark for long.
  ASSERT_TRUE(WaitFor([&] { return UsedFraction(fs_.ssd()) < 0.50; }, 20))
      << "ssd tier still " << UsedFraction(fs_.ssd()) * 100 << "% used\n"
      << fs_.Log();
  // Oldest first: f0 went, and the newest file stayed.
  EXPECT_EQ("hdd", GetTier(P("f0")));
  EXPECT_EQ("ssd", GetTier(P("f9")));
  for (int i = 0; i < 10; ++i) {
    std::string got;
    ASSERT_EQ(0, ReadFile(P("f" + std::to_string(i)), &got));
    EXPECT_TRUE(got == data[i]) << "f" << i;
  }
}

TEST_F(EvictionTest, FilesOpenForWritingAreNotEvicted) {
  int fd = open(P("open").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  const std::string big = Pattern(24 << 20, 5);
  ASSERT_EQ(0, PwriteAll(fd, big.data(), big.size(), 0));
  ASSERT_EQ(0, WriteFile(P("closed"), Pattern(16 << 20, 6)));
  ASSERT_TRUE(WaitFor([&] { return GetTier(P("closed")) == "hdd"; }, 20)) << fs_.Log();
  EXPECT_EQ("ssd", GetTier(P("open")));
  close(fd);
}

// The SSD tier as tmpfs (which refuses uncached writes, so tierfs writes
// it plainly) and as ext4 on a loop device (which takes them: every 1 MiB
// write of these tests is RWF_DONTCACHE there, and the tier fills as a disk
// does, with delayed allocation and a journal).
enum class SsdFs { kTmpfs, kExt4 };

MountOptions SmallSsd(SsdFs fs) {
  MountOptions o = SmallTiers(32, 256);
  if (fs == SsdFs::kExt4) o.ssd_ext4_mb = 40;  // about 33 MiB free once made
  return o;
}

class SpillTest : public MountTest, public ::testing::WithParamInterface<SsdFs> {
 protected:
  SpillTest() : MountTest(SmallSsd(GetParam())) {}
};

INSTANTIATE_TEST_SUITE_P(Tiers, SpillTest, ::testing::Values(SsdFs::kTmpfs, SsdFs::kExt4),
                         [](const ::testing::TestParamInfo<SsdFs>& p) {
                           return p.param == SsdFs::kExt4 ? "ext4" : "tmpfs";
                         });

TEST_P(SpillTest, AFileLargerThanTheSsdTierIsWrittenWhole) {
  const std::string data = Pattern(80 << 20, 9);
  ASSERT_EQ(0, WriteInPieces(P("big"), data));
  EXPECT_EQ("hdd", GetTier(P("big")));
  std::string got;
  ASSERT_EQ(0, ReadFile(P("big"), &got));
  EXPECT_TRUE(got == data);
  Remount();
  ASSERT_EQ(0, ReadFile(P("big"), &got));
  EXPECT_TRUE(got == data);
}

TEST_P(SpillTest, ManyWritersFillingTheSsdTierAllSucceed) {
  std::vector<std::thread> writers;
  std::vector<int> errs(6, -1);
  for (int i = 0; i < 6; ++i)
    writers.emplace_back(
        [&, i] { errs[i] = WriteInPieces(P("w" + std::to_string(i)), Pattern(12 << 20, 20 + i)); });
  for (auto& t : writers) t.join();
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(0, errs[i]) << "writer " << i << ": " << strerror(errs[i]);
    std::string got;
    ASSERT_EQ(0, ReadFile(P("w" + std::to_string(i)), &got));
    EXPECT_TRUE(got == Pattern(12 << 20, 20 + i)) << "writer " << i;
  }
}

// A spilled writer goes on writing on the HDD tier; the SSD tier gets its
// blocks back at once, not when the writer closes. Before, the handle kept
// the old object open until release, so the SSD tier stayed full and every
// other new file spilled too.
TEST_P(SpillTest, ASpilledWriterFreesTheSsdTierBeforeItCloses) {
  const double used_before = UsedFraction(fs_.ssd());
  int fd = open(P("big").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  const std::string data = Pattern(48 << 20, 11);
  for (size_t off = 0; off < data.size(); off += 1 << 20)
    ASSERT_EQ(0, PwriteAll(fd, data.data() + off, 1 << 20, off)) << "at " << off;
  EXPECT_EQ("hdd", GetTier(P("big")));
  EXPECT_LT(UsedFraction(fs_.ssd()), used_before + 0.1)
      << "the spilled object's blocks are still held on the ssd tier";
  ASSERT_EQ(0, fsync(fd));
  ASSERT_EQ(0, close(fd));
  std::string got;
  ASSERT_EQ(0, ReadFile(P("big"), &got));
  EXPECT_TRUE(got == data);
}

TEST_P(SpillTest, NewFilesGoToHddWhileTheSsdTierIsFull) {
  // Another user of the SSD's filesystem leaves 2 MiB free, less than the
  // 4 MiB tierfs keeps free there.
  struct statvfs v;
  ASSERT_EQ(0, statvfs(fs_.ssd().c_str(), &v));
  const off_t room = off_t(v.f_bavail) * off_t(v.f_frsize);
  const int filler = open((fs_.ssd() + "/filler").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(filler, 0);
  ASSERT_EQ(0, posix_fallocate(filler, 0, room - (2 << 20)));
  close(filler);
  ASSERT_EQ(0, WriteFile(P("new"), "fresh bytes"));
  EXPECT_EQ("hdd", GetTier(P("new")));
  std::string got;
  ASSERT_EQ(0, ReadFile(P("new"), &got));
  EXPECT_EQ("fresh bytes", got);
}

class BothFullTest : public MountTest {
 protected:
  BothFullTest() : MountTest(SmallTiers(16, 24)) {}
};

TEST_F(BothFullTest, EnospcOnlyWhenBothTiersAreFullAndNothingElseIsLost) {
  const std::string keep = Pattern(2 << 20, 1);
  ASSERT_EQ(0, WriteFile(P("keep"), keep));
  EXPECT_EQ(ENOSPC, WriteInPieces(P("huge"), Pattern(64 << 20, 2)));
  std::string got;
  ASSERT_EQ(0, ReadFile(P("keep"), &got));
  EXPECT_TRUE(got == keep);
  ASSERT_EQ(0, Err(unlink(P("huge").c_str())));
  EXPECT_EQ(0, WriteFile(P("after"), Pattern(4 << 20, 3)));
  Remount();
  ASSERT_EQ(0, ReadFile(P("keep"), &got));
  EXPECT_TRUE(got == keep);
}

// Plain directories, so the HDD tier can be renamed away and back.
class HddGoneTest : public MountTest {};

TEST_F(HddGoneTest, SsdFilesKeepWorkingHddReadsFailWithEioAndRecover) {
  const std::string cold = Pattern(3 << 20, 4), hot = Pattern(1 << 20, 5);
  ASSERT_EQ(0, WriteFile(P("cold"), cold));
  ASSERT_EQ(0, WriteFile(P("hot"), hot));
  ASSERT_EQ(0, SetTierOfClosed(P("cold"), "hdd"));
  const std::string away = fs_.hdd() + ".away";
  ASSERT_EQ(0, Err(rename(fs_.hdd().c_str(), away.c_str())));

  std::string got;
  EXPECT_EQ(EIO, ReadFile(P("cold"), &got));
  ASSERT_EQ(0, ReadFile(P("hot"), &got));
  EXPECT_TRUE(got == hot);
  EXPECT_EQ(0, WriteFile(P("hot2"), "still writable"));
  EXPECT_EQ(EIO, SetTier(P("hot"), "hdd"));
  EXPECT_EQ("ssd", GetTier(P("hot")));

  ASSERT_EQ(0, Err(rename(away.c_str(), fs_.hdd().c_str())));
  ASSERT_EQ(0, ReadFile(P("cold"), &got));
  EXPECT_TRUE(got == cold);
  EXPECT_EQ(0, SetTierOfClosed(P("hot"), "hdd"));
  ASSERT_EQ(0, ReadFile(P("hot"), &got));
  EXPECT_TRUE(got == hot);
}

// The state (LMDB) on a small filesystem of its own that fills up with
// metadata: creates fail with ENOSPC, and unlink and rmdir keep working so
// that space can be freed through the mount.
class StateFsFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    umask(022);
    state_ = fs_.root() + "/state";
    ASSERT_EQ(0, mkdir(state_.c_str(), 0700));
    ASSERT_EQ(0, mount("tierfs-test-state", state_.c_str(), "tmpfs", 0, "size=2m,mode=0700"))
        << strerror(errno);
    mounted_ = true;
    fs_.options().state_dir = state_;
    ASSERT_TRUE(fs_.Mount());
  }
  void TearDown() override {
    fs_.Unmount();
    if (mounted_) umount2(state_.c_str(), MNT_DETACH);
  }
  TierfsMount fs_;
  std::string state_;
  bool mounted_ = false;
};

// Fills the filesystem of `dir` with a file of its own; its size.
size_t FillUp(const std::string& dir) {
  int fd = open((dir + "/filler").c_str(), O_CREAT | O_WRONLY, 0600);
  if (fd < 0) return 0;
  const std::string chunk(64 << 10, 'f');
  size_t total = 0;
  for (ssize_t n; (n = write(fd, chunk.data(), chunk.size())) > 0;) total += size_t(n);
  for (ssize_t n; (n = write(fd, chunk.data(), 512)) > 0;) total += size_t(n);
  close(fd);
  return total;
}

// As when the data of something else (on the same filesystem) fills it.
TEST_F(StateFsFullTest, CreatesGetEnospcAndRemovalsStillWork) {
  const std::string pad(200, 'n');
  auto name = [&](int i) { return fs_.path("d/" + std::to_string(i) + pad); };
  ASSERT_EQ(0, mkdir(fs_.path("d").c_str(), 0755));
  constexpr int kBefore = 300;
  for (int i = 0; i < kBefore; ++i) ASSERT_EQ(0, WriteFile(name(i), "x")) << i;
  ASSERT_GT(FillUp(state_), 0u);
  int err = 0, made = kBefore;
  for (; made < 100000 && err == 0; ++made)
    err = made % 10 == 9 ? Err(mkdir(name(made).c_str(), 0755)) : OpenErr(name(made), O_CREAT);
  --made;
  EXPECT_EQ(ENOSPC, err) << strerror(err) << " after " << made - kBefore << " creates";
  EXPECT_EQ(ENOSPC, Err(mkdir(fs_.path("another").c_str(), 0755)));
  // Everything can be removed again, through the mount.
  for (int i = made - 1; i >= 0; --i) {
    const bool dir = i >= kBefore && i % 10 == 9;
    ASSERT_EQ(0, dir ? Err(rmdir(name(i).c_str())) : Err(unlink(name(i).c_str())))
        << "removing entry " << i << " of " << made;
  }
  ASSERT_EQ(0, rmdir(fs_.path("d").c_str()));
  ASSERT_EQ(0, unlink((state_ + "/filler").c_str()));
  // And with room again, creates work.
  EXPECT_EQ(0, WriteFile(fs_.path("after"), "y"));
}

// The SSD tier's filesystem shut down under the mount, as a dead device
// leaves it (EXT4_IOC_SHUTDOWN), the state being elsewhere: new files start
// on the HDD tier. Before, each one was first created on the SSD tier,
// failed its first write there and spilled, with an error logged per file.
TEST(SsdDeadTest, NewFilesStartOnTheHddTierWithoutAFailedWriteEach) {
  MountOptions opts;
  opts.ssd_ext4_mb = 40;
  TierfsMount m(opts);
  m.options().state_dir = m.root() + "/state";
  ASSERT_TRUE(m.Mount());
  auto P = [&](const std::string& rel) { return m.path(rel); };
  const std::string archived = Pattern(200000, 1);
  ASSERT_EQ(0, WriteFile(P("archived"), archived));
  ASSERT_EQ(0, SetTierOfClosed(P("archived"), "hdd"));
  const int fd = open(m.ssd().c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  uint32_t flags = 2;  // EXT4_GOING_FLAGS_NOLOGFLUSH
  ASSERT_EQ(0, ioctl(fd, _IOR('X', 125, uint32_t), &flags)) << strerror(errno);  // SHUTDOWN
  close(fd);
  for (int i = 0; i < 6; ++i) {
    const std::string name = "new" + std::to_string(i), data = Pattern(300000, 10 + i);
    ASSERT_EQ(0, WriteFile(P(name), data)) << name;
    std::string got;
    ASSERT_EQ(0, ReadFile(P(name), &got)) << name;
    EXPECT_TRUE(got == data) << name;
    EXPECT_EQ("hdd", GetTier(P(name))) << name;
  }
  std::string got;
  ASSERT_EQ(0, ReadFile(P("archived"), &got));
  EXPECT_TRUE(got == archived);
  const std::string log = m.Log();
  size_t failed_writes = 0;
  for (size_t at = 0; (at = log.find("ssd tier failed a write", at)) != std::string::npos; ++at)
    ++failed_writes;
  // The first create may come within a second of the last healthy look.
  EXPECT_LE(failed_writes, 1u) << log;
  EXPECT_NE(std::string::npos, log.find("new files start on the hdd tier")) << log;
}

}  // namespace
}  // namespace tierfs_test

// Requests travel through FUSE over io_uring (fs/fuse_uring.h) by default,
// and through /dev/fuse with --no-io-uring.
// Files of every kind are made, written, read (SSD and verified HDD reads,
// whole 1 MiB payloads), renamed, listed and removed through the ring, and
// the daemon says how many requests the ring served and how many replies
// it made in the ring's own buffers.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

constexpr char kParam[] = "/sys/module/fuse/parameters/enable_uring";

class FuseUringTest : public MountTest {
 protected:
  void SetUp() override {
    if (access(kParam, F_OK) != 0) GTEST_SKIP() << "no " << kParam << " (CONFIG_FUSE_IO_URING)";
    MountTest::SetUp();
  }
  // The count the daemon logged at unmount, -1 when it did not.
  long Served() const {
    const std::string log = fs_.Log();
    const std::string key = "FUSE over io_uring: ";
    const size_t at = log.rfind(key);
    if (at == std::string::npos || log.find("requests served", at) == std::string::npos) return -1;
    return std::strtol(log.c_str() + at + key.size(), nullptr, 10);
  }
  // The replies made in the ring entry's own buffer, as logged at unmount.
  long InPlace() const {
    const std::string log = fs_.Log();
    const std::string key = "requests served through the ring, ";
    const size_t at = log.rfind(key);
    return at == std::string::npos ? -1 : std::strtol(log.c_str() + at + key.size(), nullptr, 10);
  }
};

TEST_F(FuseUringTest, EveryKindOfRequestWorksThroughTheRing) {
  // Logged once the INIT reply is written and the rings run.
  ASSERT_TRUE(WaitFor([&] { return fs_.Log().find(" threads each") != std::string::npos; }, 10))
      << fs_.Log();
  const std::string big = Pattern(8 * 1024 * 1024 + 123, 7);
  ASSERT_EQ(0, Err(mkdir(P("d").c_str(), 0755)));
  ASSERT_EQ(0, WriteFile(P("d/big"), big));
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i)
        EXPECT_EQ(0, WriteFile(P("d/f" + std::to_string(t) + "_" + std::to_string(i)),
                               Pattern(size_t(100 + i * 37), uint64_t(t * 100 + i))));
    });
  for (std::thread& w : writers) w.join();
  EXPECT_EQ(201u, ListDir(P("d")).size());
  std::string got;
  ASSERT_EQ(0, ReadFile(P("d/f3_49"), &got));
  EXPECT_TRUE(got == Pattern(100 + 49 * 37, 349));
  ASSERT_EQ(0, ReadFile(P("d/big"), &got));
  EXPECT_TRUE(got == big);
  ASSERT_EQ(0, Err(rename(P("d/f0_0").c_str(), P("d/renamed").c_str())));
  ASSERT_EQ(0, Err(symlink("big", P("d/link").c_str())));
  char target[16] = {};
  EXPECT_EQ(3, readlink(P("d/link").c_str(), target, sizeof target));
  ASSERT_EQ(0, Err(setxattr(P("d/renamed").c_str(), "user.k", "v", 1, 0)));
  char v[4] = {};
  EXPECT_EQ(1, getxattr(P("d/renamed").c_str(), "user.k", v, sizeof v));
  struct stat st;
  ASSERT_EQ(0, Err(stat(P("d/big").c_str(), &st)));
  EXPECT_EQ(off_t(big.size()), st.st_size);
  // A verified read of the HDD tier: 1 MiB READs, through the ring.
  ASSERT_EQ(0, SetTierOfClosed(P("d/big"), "hdd"));
  Remount();  // the kernel's cache of the file goes
  // Read 1 MiB at a time, as fio and dd bs=1M do: the kernel's readahead
  // then asks for whole blocks, each read into its reply's ring buffer
  // (smaller reads make READs that straddle two blocks).
  const int fd = open(P("d/big").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  got.clear();
  std::string chunk(1024 * 1024, '\0');
  for (ssize_t n; (n = read(fd, chunk.data(), chunk.size())) > 0;) got.append(chunk.data(), n);
  close(fd);
  EXPECT_TRUE(got == big);
  for (const std::string& name : ListDir(P("d")))
    ASSERT_EQ(0, Err(unlink(P("d/" + name).c_str()))) << name;
  ASSERT_EQ(0, Err(rmdir(P("d").c_str())));
  ASSERT_TRUE(fs_.Unmount());
  EXPECT_GT(Served(), 200) << fs_.Log();
  // The verified read's whole blocks (the kernel's 1 MiB readahead READs)
  // were read straight into their replies' ring buffers.
  EXPECT_GE(InPlace(), 4) << fs_.Log();
}

TEST_F(FuseUringTest, NoIoUringServesThroughDevFuse) {
  ASSERT_TRUE(fs_.Unmount());
  fs_.options().extra_args = {"--no-io-uring"};
  ASSERT_TRUE(fs_.Mount());
  ASSERT_EQ(0, WriteFile(P("f"), "through /dev/fuse"));
  std::string got;
  ASSERT_EQ(0, ReadFile(P("f"), &got));
  EXPECT_EQ("through /dev/fuse", got);
  ASSERT_TRUE(fs_.Unmount());
  const std::string log = fs_.Log();
  const std::string last = log.substr(log.rfind("=== mount:"));
  EXPECT_EQ(std::string::npos, last.find("FUSE over io_uring")) << last;
}

// Where io_uring is turned off (Docker's default seccomp profile,
// kernel.io_uring_disabled), the mount works through /dev/fuse, moves
// included (their copy falls back too). Before, the INIT reply accepted the
// rings that could then not be made, and the kernel held every request of
// the mount for them: the first stat hung.
TEST(FuseUringDeniedTest, WithoutIoUringTheMountWorksThroughDevFuse) {
  if (access(kParam, F_OK) != 0) GTEST_SKIP() << "no " << kParam << " (CONFIG_FUSE_IO_URING)";
  MountOptions o;
  o.deny_io_uring = true;
  TierfsMount fs(o);
  ASSERT_TRUE(fs.Mount());
  // In a child with a time limit: a hung request must fail the test, not
  // hang it.
  CommandResult r = RunCommand({"stat", fs.mnt()}, 10);
  ASSERT_FALSE(r.timed_out) << "the mount does not answer\n" << fs.Log();
  ASSERT_EQ(0, r.exit_code) << r.err;
  const std::string data = Pattern(3 * 1024 * 1024 + 5, 8);
  ASSERT_EQ(0, WriteFile(fs.path("f"), data));
  ASSERT_EQ(0, SetTierOfClosed(fs.path("f"), "hdd"));
  std::string got;
  ASSERT_EQ(0, ReadFile(fs.path("f"), &got));
  EXPECT_TRUE(got == data);
  ASSERT_TRUE(fs.Unmount());
  const std::string log = fs.Log();
  EXPECT_NE(std::string::npos, log.find("requests come through /dev/fuse")) << log;
  EXPECT_EQ(std::string::npos, log.find("requests served through the ring")) << log;
}

}  // namespace
}  // namespace tierfs_test

// Unit tests of tiering/fault_io: which calls a rule fails, and the
// --inject-fault syntax.
#include "tiering/fault_io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace tierfs {
namespace {

class FaultIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tierfs-faultio-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    dir_fd_ = open(tmpl, O_RDONLY | O_DIRECTORY);
    ASSERT_GE(dir_fd_, 0);
    fd_ = io_.OpenAt(dir_fd_, "f", O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
    if (dir_fd_ >= 0) close(dir_fd_);
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
  int dir_fd_ = -1, fd_ = -1;
  FaultIo io_{std::make_shared<PosixIo>()};
};

TEST_F(FaultIoTest, ForwardsUntilARuleFires) {
  EXPECT_FALSE(io_.IsPlainPosix());
  EXPECT_TRUE(PosixIo().IsPlainPosix());
  EXPECT_EQ(3, io_.Pwrite(fd_, "abc", 3, 0));
  char buf[4] = {};
  EXPECT_EQ(3, io_.Pread(fd_, buf, 3, 0));
  EXPECT_EQ("abc", std::string(buf));
  EXPECT_EQ(0, io_.Fsync(fd_));
  EXPECT_EQ(1u, io_.Calls(IoOp::kPwrite));
  EXPECT_EQ(0u, io_.Injected());
  // Errors of the real calls come back as -errno.
  EXPECT_EQ(-ENOENT, io_.OpenAt(dir_fd_, "missing", O_RDONLY, 0));
  EXPECT_EQ(-ENOENT, io_.UnlinkAt(dir_fd_, "missing", 0));
}

TEST_F(FaultIoTest, FailsOnlyTheNthCallCountedFromTheRule) {
  EXPECT_EQ(1, io_.Pwrite(fd_, "x", 1, 0));  // before the rule: not counted for it
  io_.AddRule({IoOp::kPwrite, 2, false, ENOSPC, false});
  EXPECT_EQ(1, io_.Pwrite(fd_, "a", 1, 0));
  EXPECT_EQ(-ENOSPC, io_.Pwrite(fd_, "b", 1, 0));
  EXPECT_EQ(1, io_.Pwrite(fd_, "c", 1, 0));
  char c = 0;
  EXPECT_EQ(1, pread(fd_, &c, 1, 0));
  EXPECT_EQ('c', c) << "the failed write must not have written";
  EXPECT_EQ(0, io_.Fsync(fd_)) << "other kinds are not touched";
  EXPECT_EQ(1u, io_.Injected());
}

// A write with flags (pwritev2) is a write: a pwrite rule counts and fails
// both kinds, so --inject-fault ssd:pwrite:N reaches uncached writes too.
TEST_F(FaultIoTest, PwriteRulesCountAndFailWritesWithFlags) {
  io_.AddRule({IoOp::kPwrite, 2, false, ENOSPC, false});
  EXPECT_EQ(1, io_.Pwritev2(fd_, "a", 1, 0, 0));
  EXPECT_EQ(-ENOSPC, io_.Pwritev2(fd_, "b", 1, 0, 0));
  EXPECT_EQ(1, io_.Pwrite(fd_, "c", 1, 1));
  EXPECT_EQ(3u, io_.Calls(IoOp::kPwrite));
  EXPECT_EQ(1u, io_.Injected());
  char buf[2] = {};
  EXPECT_EQ(2, pread(fd_, buf, 2, 0));
  EXPECT_EQ("ac", std::string(buf, 2)) << "the failed write must not have written";
}

// PosixIo::Pwritev2 is the system call: it writes, and a flag the file's
// filesystem refuses comes back as -EOPNOTSUPP (how fs/ops_write.cc learns
// that a tier takes no uncached writes). tmpfs has no RWF_DONTCACHE; an
// unknown flag is refused everywhere.
TEST_F(FaultIoTest, PosixPwritev2WritesAndReportsARefusedFlag) {
  PosixIo posix;
  EXPECT_EQ(4, posix.Pwritev2(fd_, "abcd", 4, 0, 0));
  char buf[4] = {};
  EXPECT_EQ(4, pread(fd_, buf, 4, 0));
  EXPECT_EQ("abcd", std::string(buf, 4));
  EXPECT_EQ(-EOPNOTSUPP, posix.Pwritev2(fd_, "x", 1, 0, 0x40000000));
  constexpr int kDontCache = 0x80;  // RWF_DONTCACHE
  char shm[] = "/dev/shm/tierfs-faultio-test.XXXXXX";
  const int tmpfs_fd = mkstemp(shm);
  if (tmpfs_fd < 0) GTEST_SKIP() << "no /dev/shm";
  unlink(shm);
  EXPECT_EQ(-EOPNOTSUPP, posix.Pwritev2(tmpfs_fd, "x", 1, 0, kDontCache));
  EXPECT_EQ(1, posix.Pwritev2(tmpfs_fd, "x", 1, 0, 0));
  close(tmpfs_fd);
}

TEST_F(FaultIoTest, FailsEveryCallFromTheNthOn) {
  io_.AddRule({IoOp::kFsync, 2, true, EIO, false});
  EXPECT_EQ(0, io_.Fsync(fd_));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(-EIO, io_.Fsync(fd_));
  EXPECT_EQ(0, io_.Fdatasync(fd_)) << "fdatasync is its own kind";
  io_.ClearRules();
  EXPECT_EQ(0, io_.Fsync(fd_));
}

TEST_F(FaultIoTest, CorruptReadInvertsTheFirstByte) {
  ASSERT_EQ(4, io_.Pwrite(fd_, "data", 4, 0));
  io_.AddRule({IoOp::kPread, 1, false, 0, true});
  char buf[5] = {};
  EXPECT_EQ(4, io_.Pread(fd_, buf, 4, 0));
  EXPECT_EQ(char('d' ^ 0xff), buf[0]);
  EXPECT_EQ("ata", std::string(buf + 1));
  EXPECT_EQ(4, io_.Pread(fd_, buf, 4, 0));
  EXPECT_EQ("data", std::string(buf));
}

TEST(FaultSpecTest, ParsesTierOpCountAndErrno) {
  TierId tier;
  FaultRule r;
  Status st = ParseFaultSpec("hdd:fsync:1+:EIO", &tier, &r);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(TierId::kHdd, tier);
  EXPECT_EQ(IoOp::kFsync, r.op);
  EXPECT_EQ(1u, r.nth);
  EXPECT_TRUE(r.and_after);
  EXPECT_EQ(EIO, r.err);
  ASSERT_TRUE(ParseFaultSpec("ssd:pwrite:3:ENOSPC", &tier, &r).ok());
  EXPECT_EQ(TierId::kSsd, tier);
  EXPECT_EQ(IoOp::kPwrite, r.op);
  EXPECT_EQ(3u, r.nth);
  EXPECT_FALSE(r.and_after);
  EXPECT_EQ(ENOSPC, r.err);
  ASSERT_TRUE(ParseFaultSpec("ssd:unlink:1:5", &tier, &r).ok());
  EXPECT_EQ(5, r.err);
  ASSERT_TRUE(ParseFaultSpec("hdd:pread:2:corrupt", &tier, &r).ok());
  EXPECT_TRUE(r.corrupt);
}

TEST(FaultSpecTest, RejectsMalformedSpecsNamingThePart) {
  TierId tier;
  FaultRule r;
  struct Case {
    const char* spec;
    const char* why;
  } cases[] = {{"hdd:fsync:1", "four fields"},
               {"nvme:fsync:1:EIO", "tier \"nvme\""},
               {"hdd:flush:1:EIO", "unknown operation \"flush\""},
               {"hdd:fsync:0:EIO", "call number"},
               {"hdd:fsync:x+:EIO", "call number"},
               {"hdd:fsync:1:EWHAT", "unknown errno"},
               {"hdd:fsync:1:corrupt", "only pread"},
               {"hdd:fsync:1:EIO:extra", "four fields"}};
  for (const Case& c : cases) {
    Status st = ParseFaultSpec(c.spec, &tier, &r);
    EXPECT_EQ(EINVAL, st.err()) << c.spec;
    EXPECT_NE(std::string::npos, st.message().find(c.why)) << st.message();
  }
}

}  // namespace
}  // namespace tierfs

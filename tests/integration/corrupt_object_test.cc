// Objects damaged behind tierfs's back (flipped, cut short, deleted): reads
// fail with EIO instead of returning wrong, short or empty files, and a move
// refuses to launder a corrupt source into a fresh checksum.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/tier_fault_util.h"

namespace tierfs_test {
namespace {

class CorruptObjectTest : public TierFaultTest {
 protected:
  // The object of `rel` on the tier the file lives on now.
  std::string ObjectOf(const std::string& rel) {
    const std::string tier = GetTier(P(rel));
    EXPECT_TRUE(tier == "ssd" || tier == "hdd") << tier;
    return ObjectPath(tier == "hdd" ? fs_.hdd() : fs_.ssd(), Ino(P(rel)));
  }
  // Flips the bits of one byte of `path` at `off`.
  static void FlipByte(const std::string& path, off_t off) {
    int fd = open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0) << path << ": " << strerror(errno);
    char b = 0;
    ASSERT_EQ(1, pread(fd, &b, 1, off));
    b = char(~b);
    ASSERT_EQ(1, pwrite(fd, &b, 1, off));
    close(fd);
  }
  std::string Audit() {
    std::string s;
    ReadFile(fs_.ssd() + "/state/audit.jsonl", &s);
    return s;
  }
};

// A remount between damage and read: the kernel's page cache of the mount
// would otherwise still serve the old bytes.
TEST_F(CorruptObjectTest, MissingObjectReadsEio) {
  const std::string data = Pattern(20000, 11);
  ASSERT_EQ(0, WriteFile(P("s"), data));
  MakeHddResident("h", data);
  const std::string s_obj = ObjectOf("s"), h_obj = ObjectOf("h");
  ASSERT_TRUE(fs_.Unmount());
  ASSERT_EQ(0, unlink(s_obj.c_str()));
  ASSERT_EQ(0, unlink(h_obj.c_str()));
  ASSERT_TRUE(fs_.Mount());
  for (const char* rel : {"s", "h"}) {
    SCOPED_TRACE(rel);
    std::string got;
    EXPECT_EQ(EIO, ReadFile(P(rel), &got)) << "read " << got.size() << " bytes";
    // stat still reports the recorded size: the file is not silently empty.
    struct stat st {};
    ASSERT_EQ(0, stat(P(rel).c_str(), &st));
    EXPECT_EQ(off_t(data.size()), st.st_size);
  }
  // An empty file never written has no object, and reads as empty.
  ASSERT_EQ(0, WriteFile(P("empty"), ""));
  std::string got = "x";
  EXPECT_EQ(0, ReadFile(P("empty"), &got));
  EXPECT_EQ("", got);
}

TEST_F(CorruptObjectTest, TruncatedObjectReadsEio) {
  const std::string data = Pattern(20000, 12);
  ASSERT_EQ(0, WriteFile(P("s"), data));
  MakeHddResident("h", data);
  ASSERT_EQ(0, WriteFile(P("longer"), data));
  const std::string s_obj = ObjectOf("s"), h_obj = ObjectOf("h"), l_obj = ObjectOf("longer");
  ASSERT_TRUE(fs_.Unmount());
  ASSERT_EQ(0, truncate(s_obj.c_str(), 5000));
  ASSERT_EQ(0, truncate(h_obj.c_str(), 5000));
  // Longer than recorded is what a kill -9 before release leaves: fine.
  ASSERT_EQ(0, truncate(l_obj.c_str(), 30000));
  ASSERT_TRUE(fs_.Mount());
  for (const char* rel : {"s", "h"}) {
    SCOPED_TRACE(rel);
    std::string got;
    EXPECT_EQ(EIO, ReadFile(P(rel), &got)) << "read " << got.size() << " bytes";
  }
  std::string got;
  ASSERT_EQ(0, ReadFile(P("longer"), &got));
  EXPECT_EQ(30000u, got.size());
  // Files written and cut through the mount are not damaged.
  ASSERT_EQ(0, truncate(P("longer").c_str(), 100));
  Remount();
  ASSERT_EQ(0, ReadFile(P("longer"), &got));
  EXPECT_TRUE(got == data.substr(0, 100));
}

// A move verifies the source against the checksum the last move recorded:
// a flipped byte is refused (EIO), the file stays put, the refusal is
// audited; the bytes on the tier are not re-hashed into a new checksum.
TEST_F(CorruptObjectTest, MoveOfFlippedObjectRefused) {
  const std::string data = Pattern(300000, 13);
  MakeHddResident("f", data);
  FlipByte(ObjectOf("f"), 123456);
  EXPECT_EQ(EIO, SetTier(P("f"), "ssd"));
  EXPECT_EQ("hdd", GetTier(P("f")));
  EXPECT_EQ(-1, ObjectSize(fs_.ssd(), Ino(P("f")))) << "a copy was left on the ssd tier";
  EXPECT_NE(std::string::npos, Audit().find("corrupt")) << Audit();
  // Opening it for writing would clear the checksum: refused as well.
  EXPECT_EQ(EIO, OpenErr(P("f"), O_RDWR));
  // Still refused: no new checksum was recorded.
  EXPECT_EQ(EIO, SetTier(P("f"), "ssd"));
  EXPECT_EQ("hdd", GetTier(P("f")));
}

// A reader's fsync changes no bytes, so it keeps the checksum a later move
// checks the object against (it once cleared it, and the move then
// recorded the flipped bytes as good).
TEST_F(CorruptObjectTest, FsyncOfAReaderKeepsTheChecksum) {
  const std::string data = Pattern(300000, 15);
  MakeHddResident("r", data);
  int fd = open(P("r").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(0, Err(fsync(fd)));
  close(fd);
  FlipByte(ObjectOf("r"), 4242);
  int err = 0;
  WaitFor([&] { return (err = SetTier(P("r"), "ssd")) != EBUSY; }, 10);
  EXPECT_EQ(EIO, err);
  EXPECT_EQ("hdd", GetTier(P("r")));
}

// Every way of changing a file's bytes through the mount clears the
// recorded checksum, so later moves are not refused.
TEST_F(CorruptObjectTest, WrittenFilesStillMove) {
  const std::string data = Pattern(100000, 14);
  MakeHddResident("w", data);  // opened for writing: promoted, then written
  MakeHddResident("t", data);  // truncated where it is
  MakeHddResident("o", data);  // O_TRUNC
  int fd = open(P("w").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, PwriteAll(fd, "changed", 7, 10));
  close(fd);
  ASSERT_EQ(0, truncate(P("t").c_str(), 777));
  ASSERT_EQ(0, WriteFile(P("o"), "new bytes"));
  for (const char* rel : {"w", "t", "o"}) {
    SCOPED_TRACE(rel);
    const std::string to = GetTier(P(rel)) == "hdd" ? "ssd" : "hdd";
    int err = 0;
    WaitFor([&] { return (err = SetTier(P(rel), to)) != EBUSY; }, 10);
    EXPECT_EQ(0, err);
    EXPECT_EQ(to, GetTier(P(rel)));
  }
}

}  // namespace
}  // namespace tierfs_test

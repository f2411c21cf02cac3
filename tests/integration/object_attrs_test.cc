// stat answered from the LMDB record of a file's object (fs/object_attrs.h,
// Inode::object_attrs_recorded): the record is made at a writer's close, a
// setattr and a move, and is never trusted while a writer has the file
// open, nor after a crash that caught a writer.
//
// That stat makes no call on the tier is shown by changing the object
// behind tierfs's back (the test's doing; nothing else writes objects): a
// stat that read the object would report the change.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/tierctl_util.h"

namespace tierfs_test {
namespace {

class ObjectAttrsTest : public MountTest {};

struct stat StatOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(0, stat(path.c_str(), &st)) << path << ": " << strerror(errno);
  return st;
}

// The attributes stat reports of a file's data, as "size blocks mtime".
std::string DataAttrs(const struct stat& st) {
  return std::to_string(st.st_size) + " " + std::to_string(st.st_blocks) + " " +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

// Writes a file outside the mount.
int WriteFileDirect(const std::string& path, const std::string& data) {
  const int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  if (fd < 0) return errno;
  const int rc = PwriteAll(fd, data.data(), data.size(), 0);
  close(fd);
  return rc;
}

// Grows the object behind tierfs's back.
void GrowObject(const std::string& object, off_t size) {
  ASSERT_EQ(0, truncate(object.c_str(), size)) << object << ": " << strerror(errno);
}

TEST_F(ObjectAttrsTest, AClosedFileIsStatedFromItsRecordWithoutTheTier) {
  // Sparse: blocks the size cannot tell, which only a record of the
  // object's own st_blocks gives.
  int fd = open(P("sparse").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  const std::string head = Pattern(8192, 1);
  ASSERT_EQ(0, PwriteAll(fd, head.data(), head.size(), 0));
  ASSERT_EQ(0, PwriteAll(fd, "x", 1, 16 << 20));
  close(fd);
  Remount();  // the release is recorded; the kernel forgets what it cached
  const std::string object = ObjectPathOn(fs_.ssd(), Ino(P("sparse")));
  struct stat obj {};
  ASSERT_EQ(0, stat(object.c_str(), &obj));
  const struct stat st = StatOf(P("sparse"));
  EXPECT_EQ(DataAttrs(obj), DataAttrs(st));
  EXPECT_LT(st.st_blocks, (16 << 20) / 512) << "blocks of a sparse file";

  GrowObject(object, 20 << 20);
  Remount();
  EXPECT_EQ(DataAttrs(obj), DataAttrs(StatOf(P("sparse"))))
      << "stat read the object, not the record";
}

// A created file never written (touch, a checkpoint's completion marker)
// is recorded with its checksum, once the hasher has it (fs/block_hasher.h).
TEST_F(ObjectAttrsTest, AnEmptyCreatedFileIsRecordedWithItsChecksum) {
  ASSERT_EQ(0, OpenErr(P("COMPLETE"), O_CREAT | O_WRONLY));
  ASSERT_TRUE(WaitFor(
      [&] {
        const CommandResult r = Tierctl({"--json", "where", P("COMPLETE")});
        return r.exit_code == 0 && r.out.find("\"checksum\"") != std::string::npos;
      },
      10));
  Remount();
  const std::string object = ObjectPathOn(fs_.ssd(), Ino(P("COMPLETE")));
  // An object appearing behind tierfs's back is not asked about.
  ASSERT_EQ(0, mkdir(object.substr(0, object.rfind('/')).c_str(), 0700) == 0 || errno == EEXIST
                   ? 0
                   : errno);
  ASSERT_EQ(0, WriteFileDirect(object, "stray"));
  Remount();
  EXPECT_EQ(0, StatOf(P("COMPLETE")).st_size);
}

TEST_F(ObjectAttrsTest, AWriterSeesItsWritesNotTheRecord) {
  ASSERT_EQ(0, WriteFile(P("f"), Pattern(4096, 2)));
  Remount();
  ASSERT_EQ(4096, StatOf(P("f")).st_size);  // from the record
  int fd = open(P("f").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  const std::string more = Pattern(4096, 3);
  ASSERT_EQ(4096, write(fd, more.data(), more.size()));
  // The write made the kernel drop the size it cached: this stat asks
  // tierfs, and a reply from the record would cut the kernel's size.
  EXPECT_EQ(8192, StatOf(P("f")).st_size);
  struct stat st {};
  ASSERT_EQ(0, fstat(fd, &st));
  EXPECT_EQ(8192, st.st_size);
  close(fd);
  Remount();
  EXPECT_EQ(8192, StatOf(P("f")).st_size);
  std::string got;
  ASSERT_EQ(0, ReadFile(P("f"), &got));
  EXPECT_TRUE(got == Pattern(4096, 2) + more);
}

TEST_F(ObjectAttrsTest, AWriterKilledWithTheDaemonLeavesNoStaleRecord) {
  ASSERT_EQ(0, WriteFile(P("f"), Pattern(4096, 4)));
  Remount();
  int fd = open(P("f").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  const std::string more = Pattern(12288, 5);
  ASSERT_EQ(ssize_t(more.size()), write(fd, more.data(), more.size()));
  fs_.Kill9();  // no release reaches tierfs
  close(fd);
  ASSERT_TRUE(fs_.Mount());
  EXPECT_EQ(16384, StatOf(P("f")).st_size) << "a record from before the open stood";
  std::string got;
  ASSERT_EQ(0, ReadFile(P("f"), &got));
  EXPECT_TRUE(got == Pattern(4096, 4) + more);
}

TEST_F(ObjectAttrsTest, TruncateAndTimesAreRecordedToo) {
  ASSERT_EQ(0, WriteFile(P("f"), Pattern(100000, 6)));
  Remount();
  ASSERT_EQ(0, truncate(P("f").c_str(), 5000));
  const struct timespec times[2] = {{0, UTIME_OMIT}, {1700000000, 123}};
  ASSERT_EQ(0, utimensat(AT_FDCWD, P("f").c_str(), times, 0));
  Remount();
  const std::string object = ObjectPathOn(fs_.ssd(), Ino(P("f")));
  struct stat obj {};
  ASSERT_EQ(0, stat(object.c_str(), &obj));
  const struct stat st = StatOf(P("f"));
  EXPECT_EQ(5000, st.st_size);
  EXPECT_EQ(1700000000, st.st_mtim.tv_sec);
  EXPECT_EQ(123, st.st_mtim.tv_nsec);
  EXPECT_EQ(DataAttrs(obj), DataAttrs(st));
  GrowObject(object, 9000);
  Remount();
  EXPECT_EQ(5000, StatOf(P("f")).st_size) << "the setattr left no record";
}

TEST_F(ObjectAttrsTest, AMovedFileIsStatedFromTheRecordOfItsNewObject) {
  ASSERT_EQ(0, WriteFile(P("ckpt"), Pattern(3 << 20, 7)));
  const struct stat before = StatOf(P("ckpt"));
  ASSERT_EQ(0, SetTierOfClosed(P("ckpt"), "hdd"));
  Remount();
  const std::string object = ObjectPathOn(fs_.hdd(), Ino(P("ckpt")));
  struct stat obj {};
  ASSERT_EQ(0, stat(object.c_str(), &obj));
  const struct stat st = StatOf(P("ckpt"));
  EXPECT_EQ(DataAttrs(obj), DataAttrs(st));
  EXPECT_EQ(before.st_size, st.st_size);
  EXPECT_EQ(before.st_mtim.tv_nsec, st.st_mtim.tv_nsec);
  GrowObject(object, 4 << 20);
  Remount();
  EXPECT_EQ(3 << 20, StatOf(P("ckpt")).st_size) << "stat went to the HDD tier";
}

// A listing longer than one READDIRPLUS reply is filled from the snapshot
// its directory handle took at offset 0; a file closed after that snapshot
// must not have its old record sent to the kernel, which would take it.
TEST_F(ObjectAttrsTest, AListingInPiecesSendsNoRecordOlderThanAClose) {
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0755));
  for (int i = 0; i < 30; ++i) ASSERT_EQ(0, WriteFile(P("d/f" + std::to_string(10 + i)), "x"));
  ASSERT_EQ(0, WriteFile(P("d/zz"), Pattern(4096, 8)));  // listed last (names sort)
  Remount();
  const int dir = open(P("d").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dir, 0);
  char buf[4096];
  // One page per getdents: the kernel asks tierfs for a page at a time.
  ASSERT_GT(syscall(SYS_getdents64, dir, buf, sizeof buf), 0);
  // A stat of a listed entry makes the kernel ask for attributes with the
  // next piece too (READDIRPLUS_AUTO).
  StatOf(P("d/f10"));
  int fd = open(P("d/zz").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(4096, write(fd, buf, 4096));
  close(fd);
  ASSERT_TRUE(WaitFor(
      [&] {
        const CommandResult r = Tierctl({"--json", "where", P("d/zz")});
        return r.out.find("\"size\": 8192") != std::string::npos;
      },
      10))
      << "the close was not recorded";
  long got;
  while ((got = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
  }
  EXPECT_EQ(0, got);
  close(dir);
  EXPECT_EQ(8192, StatOf(P("d/zz")).st_size);
}

}  // namespace
}  // namespace tierfs_test

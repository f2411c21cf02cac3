// rename/renameat2 and hard links, including open-but-unlinked files.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"
#include "tiering/tier.h"

namespace tierfs_test {
namespace {

int Rename2(const std::string& from, const std::string& to, unsigned flags) {
  return Err(syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags));
}
ino_t Ino(const std::string& p) {
  struct stat st {};
  if (lstat(p.c_str(), &st) != 0) return 0;
  return st.st_ino;
}
nlink_t Nlink(const std::string& p) {
  struct stat st {};
  if (lstat(p.c_str(), &st) != 0) return 0;
  return st.st_nlink;
}
std::string Content(const std::string& p) {
  std::string s;
  if (ReadFile(p, &s) != 0) return "<error>";
  return s;
}
int64_t CtimeNs(const std::string& p) {
  struct stat st {};
  if (lstat(p.c_str(), &st) != 0) return -1;
  return st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
}
int64_t MtimeNs(const std::string& p) {
  struct stat st {};
  if (lstat(p.c_str(), &st) != 0) return -1;
  return st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

class RenameTest : public MountTest {};

TEST_F(RenameTest, Plain) {
  ASSERT_EQ(0, mkdir(P("a").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("b").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("a/f"), "payload"));
  ino_t ino = Ino(P("a/f"));
  ASSERT_EQ(0, Rename2(P("a/f"), P("a/g"), 0));
  EXPECT_EQ(0u, Ino(P("a/f")));
  EXPECT_EQ(ino, Ino(P("a/g")));
  ASSERT_EQ(0, Rename2(P("a/g"), P("b/h"), 0));
  EXPECT_EQ(ino, Ino(P("b/h")));
  EXPECT_EQ("payload", Content(P("b/h")));
  EXPECT_TRUE(ListDir(P("a")).empty());
  EXPECT_EQ(std::vector<std::string>{"h"}, ListDir(P("b")));
  EXPECT_EQ(ENOENT, Rename2(P("a/none"), P("b/x"), 0));
  EXPECT_EQ(ENOENT, Rename2(P("b/h"), P("nodir/x"), 0));
  // Renaming onto itself and onto another link of the same inode: no-ops.
  EXPECT_EQ(0, Rename2(P("b/h"), P("b/h"), 0));
  ASSERT_EQ(0, link(P("b/h").c_str(), P("b/h2").c_str()));
  EXPECT_EQ(0, Rename2(P("b/h"), P("b/h2"), 0));
  EXPECT_EQ(ino, Ino(P("b/h")));
  EXPECT_EQ(ino, Ino(P("b/h2")));
  // A directory cannot move below itself.
  ASSERT_EQ(0, mkdir(P("a/sub").c_str(), 0755));
  EXPECT_EQ(EINVAL, Rename2(P("a"), P("a/sub/a"), 0));
}

TEST_F(RenameTest, OverExistingFileIsAtomicReplace) {
  ASSERT_EQ(0, WriteFile(P("new"), "new contents"));
  ASSERT_EQ(0, WriteFile(P("old"), "old contents"));
  ino_t new_ino = Ino(P("new"));
  ino_t old_ino = Ino(P("old"));
  ASSERT_NE(new_ino, old_ino);
  int fd = open(P("old").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, Rename2(P("new"), P("old"), 0));
  EXPECT_EQ(new_ino, Ino(P("old")));
  EXPECT_EQ("new contents", Content(P("old")));
  EXPECT_EQ(std::vector<std::string>{"old"}, ListDir(fs_.mnt()));
  // The replaced inode lives on for its open descriptor only.
  struct stat st {};
  ASSERT_EQ(0, fstat(fd, &st));
  EXPECT_EQ(old_ino, st.st_ino);
  EXPECT_EQ(0u, st.st_nlink);
  char buf[64];
  ASSERT_EQ(12, pread(fd, buf, sizeof buf, 0));
  EXPECT_EQ("old contents", std::string(buf, 12));
  close(fd);
}

TEST_F(RenameTest, OpenFileFollowsRename) {
  ASSERT_EQ(0, mkdir(P("a").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("a/f"), "start"));
  int fd = open(P("a/f").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, Rename2(P("a"), P("b"), 0));
  ASSERT_EQ(0, PwriteAll(fd, "-more", 5, 5));
  ASSERT_EQ(0, fsync(fd));
  close(fd);
  EXPECT_EQ("start-more", Content(P("b/f")));
  Remount();
  EXPECT_EQ("start-more", Content(P("b/f")));
  EXPECT_EQ(0u, Ino(P("a")));
}

TEST_F(RenameTest, NoReplace) {
  ASSERT_EQ(0, WriteFile(P("a"), "A"));
  ASSERT_EQ(0, WriteFile(P("b"), "B"));
  EXPECT_EQ(EEXIST, Rename2(P("a"), P("b"), RENAME_NOREPLACE));
  EXPECT_EQ("A", Content(P("a")));
  EXPECT_EQ("B", Content(P("b")));
  EXPECT_EQ(0, Rename2(P("a"), P("c"), RENAME_NOREPLACE));
  EXPECT_EQ("A", Content(P("c")));
  EXPECT_EQ(0u, Ino(P("a")));
}

TEST_F(RenameTest, ExchangeFilesAcrossDirectories) {
  ASSERT_EQ(0, mkdir(P("d1").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("d2").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("d1/x"), "xxx"));
  ASSERT_EQ(0, WriteFile(P("d2/y"), "yy"));
  ino_t x = Ino(P("d1/x")), y = Ino(P("d2/y"));
  ASSERT_EQ(0, Rename2(P("d1/x"), P("d2/y"), RENAME_EXCHANGE));
  EXPECT_EQ(y, Ino(P("d1/x")));
  EXPECT_EQ(x, Ino(P("d2/y")));
  EXPECT_EQ("yy", Content(P("d1/x")));
  EXPECT_EQ("xxx", Content(P("d2/y")));
  EXPECT_EQ(ENOENT, Rename2(P("d1/x"), P("d2/none"), RENAME_EXCHANGE));
  EXPECT_EQ(EINVAL, Rename2(P("d1/x"), P("d2/y"), RENAME_EXCHANGE | RENAME_NOREPLACE));
}

TEST_F(RenameTest, ExchangeDirectoriesAndDirWithFile) {
  ASSERT_EQ(0, mkdir(P("p1").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("p2").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("p1/da").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("p2/db").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("p1/da/in_a"), "a"));
  ASSERT_EQ(0, WriteFile(P("p2/db/in_b"), "b"));
  ino_t da = Ino(P("p1/da")), db = Ino(P("p2/db"));
  ASSERT_EQ(0, Rename2(P("p1/da"), P("p2/db"), RENAME_EXCHANGE));
  EXPECT_EQ(db, Ino(P("p1/da")));
  EXPECT_EQ(da, Ino(P("p2/db")));
  EXPECT_EQ("b", Content(P("p1/da/in_b")));
  EXPECT_EQ("a", Content(P("p2/db/in_a")));
  EXPECT_EQ(Ino(P("p1")), Ino(P("p1/da/..")));
  EXPECT_EQ(Ino(P("p2")), Ino(P("p2/db/..")));
  EXPECT_EQ(3u, Nlink(P("p1")));
  EXPECT_EQ(3u, Nlink(P("p2")));

  // Exchanging a directory with a file moves a subdirectory count.
  ASSERT_EQ(0, WriteFile(P("p2/file"), "f"));
  ASSERT_EQ(0, Rename2(P("p1/da"), P("p2/file"), RENAME_EXCHANGE));
  EXPECT_EQ(2u, Nlink(P("p1"))) << "p1 lost its only subdirectory";
  EXPECT_EQ(4u, Nlink(P("p2"))) << "p2 holds db and the directory now named file";
  struct stat st {};
  ASSERT_EQ(0, lstat(P("p1/da").c_str(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  ASSERT_EQ(0, lstat(P("p2/file").c_str(), &st));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ("b", Content(P("p2/file/in_b")));
  EXPECT_EQ(Ino(P("p2")), Ino(P("p2/file/..")));
}

TEST_F(RenameTest, DirectoryOverDirectory) {
  ASSERT_EQ(0, mkdir(P("src").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("src/f"), "f"));
  ASSERT_EQ(0, mkdir(P("empty").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("full").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("full/g"), "g"));
  nlink_t root_links = Nlink(fs_.mnt());
  ino_t src = Ino(P("src"));
  EXPECT_EQ(ENOTEMPTY, Rename2(P("src"), P("full"), 0));
  EXPECT_EQ("g", Content(P("full/g")));
  ASSERT_EQ(0, Rename2(P("src"), P("empty"), 0));
  EXPECT_EQ(src, Ino(P("empty")));
  EXPECT_EQ("f", Content(P("empty/f")));
  EXPECT_EQ(0u, Ino(P("src")));
  EXPECT_EQ(root_links - 1, Nlink(fs_.mnt())) << "one directory fewer in the root";
  // Non-empty directory cannot be replaced even by an empty one.
  ASSERT_EQ(0, mkdir(P("e2").c_str(), 0755));
  EXPECT_EQ(ENOTEMPTY, Rename2(P("e2"), P("full"), 0));
}

TEST_F(RenameTest, TypeMismatches) {
  ASSERT_EQ(0, WriteFile(P("file"), "x"));
  ASSERT_EQ(0, mkdir(P("dir").c_str(), 0755));
  EXPECT_EQ(EISDIR, Rename2(P("file"), P("dir"), 0));
  EXPECT_EQ(ENOTDIR, Rename2(P("dir"), P("file"), 0));
  EXPECT_EQ(ENOTDIR, Rename2(P("file/x"), P("y"), 0));
  struct stat st {};
  ASSERT_EQ(0, stat(P("file").c_str(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  ASSERT_EQ(0, stat(P("dir").c_str(), &st));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST_F(RenameTest, UpdatesCtimeAndParentMtime) {
  ASSERT_EQ(0, mkdir(P("a").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("b").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("a/f"), "x"));
  int64_t c0 = CtimeNs(P("a/f"));
  int64_t ma = MtimeNs(P("a")), mb = MtimeNs(P("b"));
  usleep(50000);
  ASSERT_EQ(0, Rename2(P("a/f"), P("b/f"), 0));
  EXPECT_GT(CtimeNs(P("b/f")), c0) << "rename changes the inode's ctime";
  EXPECT_GT(MtimeNs(P("a")), ma);
  EXPECT_GT(MtimeNs(P("b")), mb);
  EXPECT_GT(CtimeNs(P("a")), ma);
}

class LinkTest : public MountTest {};

TEST_F(LinkTest, HardLinksShareDataAndInode) {
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("one"), "shared"));
  int64_t c0 = CtimeNs(P("one"));
  usleep(20000);
  ASSERT_EQ(0, link(P("one").c_str(), P("d/two").c_str()));
  ASSERT_EQ(0, link(P("one").c_str(), P("three").c_str()));
  ino_t ino = Ino(P("one"));
  EXPECT_EQ(ino, Ino(P("d/two")));
  EXPECT_EQ(ino, Ino(P("three")));
  EXPECT_EQ(3u, Nlink(P("one")));
  EXPECT_EQ(3u, Nlink(P("d/two")));
  EXPECT_GT(CtimeNs(P("one")), c0) << "link changes ctime";
  EXPECT_EQ(2u, Nlink(P("d"))) << "file links do not count for a directory";

  // Data written through one name is seen through the others.
  int fd = open(P("d/two").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(5, write(fd, " data", 5));
  close(fd);
  EXPECT_EQ("shared data", Content(P("one")));
  EXPECT_EQ("shared data", Content(P("three")));
  ASSERT_EQ(0, chmod(P("three").c_str(), 0600));
  struct stat st {};
  ASSERT_EQ(0, stat(P("one").c_str(), &st));
  EXPECT_EQ(0600u, st.st_mode & 07777);
  EXPECT_EQ(11, st.st_size);

  ASSERT_EQ(0, unlink(P("one").c_str()));
  EXPECT_EQ(2u, Nlink(P("three")));
  EXPECT_EQ("shared data", Content(P("d/two")));
  ASSERT_EQ(0, unlink(P("d/two").c_str()));
  EXPECT_EQ(1u, Nlink(P("three")));
  EXPECT_EQ("shared data", Content(P("three")));
  EXPECT_EQ(ino, Ino(P("three")));

  EXPECT_EQ(EEXIST, Err(link(P("three").c_str(), P("d").c_str())));
  EXPECT_EQ(EPERM, Err(link(P("d").c_str(), P("dlink").c_str())));
  EXPECT_EQ(ENOENT, Err(link(P("none").c_str(), P("x").c_str())));
  // Links survive a remount with the same inode number.
  ASSERT_EQ(0, link(P("three").c_str(), P("four").c_str()));
  Remount();
  EXPECT_EQ(ino, Ino(P("three")));
  EXPECT_EQ(ino, Ino(P("four")));
  EXPECT_EQ(2u, Nlink(P("four")));
  EXPECT_EQ("shared data", Content(P("four")));
}

TEST_F(LinkTest, SymlinkHardLink) {
  ASSERT_EQ(0, symlink("somewhere", P("s").c_str()));
  ASSERT_EQ(0, linkat(AT_FDCWD, P("s").c_str(), AT_FDCWD, P("s2").c_str(), 0));
  EXPECT_EQ(Ino(P("s")), Ino(P("s2")));
  char buf[64];
  ssize_t n = readlink(P("s2").c_str(), buf, sizeof buf);
  ASSERT_EQ(9, n);
  EXPECT_EQ("somewhere", std::string(buf, n));
}

TEST_F(LinkTest, OpenUnlinkedFileStaysUsable) {
  ASSERT_EQ(0, WriteFile(P("tmp"), "before"));
  int fd = open(P("tmp").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  struct stat st {};
  ASSERT_EQ(0, fstat(fd, &st));
  ino_t ino = st.st_ino;
  ASSERT_EQ(0, unlink(P("tmp").c_str()));
  EXPECT_EQ(0u, Ino(P("tmp")));
  EXPECT_TRUE(ListDir(fs_.mnt()).empty());
  ASSERT_EQ(0, fstat(fd, &st));
  EXPECT_EQ(0u, st.st_nlink);
  std::string big = Pattern(200000, 7);
  ASSERT_EQ(0, PwriteAll(fd, big.data(), big.size(), 6));
  ASSERT_EQ(0, fsync(fd));
  ASSERT_EQ(0, fstat(fd, &st));
  EXPECT_EQ(200006, st.st_size);
  std::string back(200006, '\0');
  ASSERT_EQ(200006, PreadAll(fd, back.data(), back.size(), 0));
  EXPECT_EQ("before" + big, back);
  // A new file under the same name is independent.
  ASSERT_EQ(0, WriteFile(P("tmp"), "other"));
  EXPECT_NE(ino, Ino(P("tmp")));
  ASSERT_EQ(6, PreadAll(fd, back.data(), 6, 0));
  EXPECT_EQ("before", back.substr(0, 6));
  ASSERT_EQ(0, ftruncate(fd, 3));
  ASSERT_EQ(0, fstat(fd, &st));
  EXPECT_EQ(3, st.st_size);
  close(fd);
  EXPECT_EQ("other", Content(P("tmp")));

  // Once closed and the mount is cycled, the orphan's data object is gone.
  Remount();
  struct stat ost {};
  const std::string on_ssd = ObjectPathOn(fs_.ssd(), ino), on_hdd = ObjectPathOn(fs_.hdd(), ino);
  EXPECT_NE(0, lstat(on_ssd.c_str(), &ost)) << "orphan object leaked: " << on_ssd;
  EXPECT_NE(0, lstat(on_hdd.c_str(), &ost)) << "orphan object leaked: " << on_hdd;
  EXPECT_EQ("other", Content(P("tmp")));
}

}  // namespace
}  // namespace tierfs_test

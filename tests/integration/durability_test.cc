// Durability: fsync + kill -9, directory fsync after rename, clean remounts
// with stable inode numbers, and SIGTERM.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <map>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"
#include "tiering/tier.h"

namespace tierfs_test {
namespace {

class DurabilityTest : public MountTest {};

// A printable summary of everything observable about a tree, keyed by path.
std::map<std::string, std::string> Snapshot(const std::string& root, const std::string& rel = "") {
  std::map<std::string, std::string> out;
  std::string dir = rel.empty() ? root : root + "/" + rel;
  for (const auto& name : ListDir(dir)) {
    std::string r = rel.empty() ? name : rel + "/" + name;
    std::string p = root + "/" + r;
    struct stat st {};
    if (lstat(p.c_str(), &st) != 0) {
      out[r] = "lstat failed";
      continue;
    }
    std::ostringstream s;
    s << "ino=" << st.st_ino << " mode=" << std::oct << st.st_mode << std::dec
      << " nlink=" << st.st_nlink << " uid=" << st.st_uid << " gid=" << st.st_gid
      << " rdev=" << st.st_rdev << " mtime=" << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec;
    if (S_ISREG(st.st_mode)) {
      std::string data;
      ReadFile(p, &data);
      s << " size=" << st.st_size << " data=" << std::hash<std::string>()(data);
    } else if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t n = readlink(p.c_str(), buf, sizeof buf);
      s << " target=" << std::string(buf, n > 0 ? n : 0);
    }
    char xv[256];
    ssize_t xn = lgetxattr(p.c_str(), "user.k", xv, sizeof xv);
    if (xn >= 0) s << " xattr=" << std::string(xv, xn);
    out[r] = s.str();
    if (S_ISDIR(st.st_mode)) {
      auto sub = Snapshot(root, r);
      out.insert(sub.begin(), sub.end());
    }
  }
  return out;
}

// A tree with every kind of node, hard links and attributes.
void BuildTree(const TierfsMount& fs) {
  ASSERT_EQ(0, mkdir(fs.path("a").c_str(), 0755));
  ASSERT_EQ(0, mkdir(fs.path("a/b").c_str(), 0700));
  ASSERT_EQ(0, mkdir(fs.path("a/b/c").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(fs.path("top"), "top file"));
  ASSERT_EQ(0, WriteFile(fs.path("a/b/c/deep"), Pattern(300000, 1)));
  ASSERT_EQ(0, WriteFile(fs.path("a/empty"), ""));
  ASSERT_EQ(0, link(fs.path("top").c_str(), fs.path("a/b/toplink").c_str()));
  ASSERT_EQ(0, symlink("../top", fs.path("a/sym").c_str()));
  ASSERT_EQ(0, mkfifo(fs.path("a/fifo").c_str(), 0600));
  ASSERT_EQ(0, mknod(fs.path("a/dev").c_str(), S_IFCHR | 0600, makedev(1, 5)));
  ASSERT_EQ(0, chown(fs.path("a/b").c_str(), 1000, 2000));
  ASSERT_EQ(0, chmod(fs.path("a/empty").c_str(), 04711));
  ASSERT_EQ(0, lsetxattr(fs.path("a/b/c").c_str(), "user.k", "v", 1, 0));
  struct timespec ts[2] = {{12345, 678}, {23456, 789}};
  ASSERT_EQ(0, utimensat(AT_FDCWD, fs.path("a/b/c/deep").c_str(), ts, 0));
}

TEST_F(DurabilityTest, FsyncSurvivesKill9) {
  ASSERT_EQ(0, mkdir(P("dir").c_str(), 0755));
  std::string data = Pattern(3 << 20, 4);
  int fd = open(P("dir/file").c_str(), O_CREAT | O_WRONLY, 0640);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, PwriteAll(fd, data.data(), data.size(), 0));
  ASSERT_EQ(0, fchown(fd, 1234, 5678));
  ASSERT_EQ(0, fsetxattr(fd, "user.k", "kept", 4, 0));
  struct timespec ts[2] = {{1000, 1}, {2000, 2}};
  ASSERT_EQ(0, futimens(fd, ts));
  ASSERT_EQ(0, fsync(fd));
  struct stat before {};
  ASSERT_EQ(0, fstat(fd, &before));
  close(fd);
  fs_.Kill9();
  ASSERT_TRUE(fs_.Mount());
  struct stat after {};
  ASSERT_EQ(0, stat(P("dir/file").c_str(), &after));
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(before.st_mode, after.st_mode);
  EXPECT_EQ(static_cast<off_t>(data.size()), after.st_size);
  EXPECT_EQ(1234u, after.st_uid);
  EXPECT_EQ(5678u, after.st_gid);
  EXPECT_EQ(2000, after.st_mtim.tv_sec);
  EXPECT_EQ(2, after.st_mtim.tv_nsec);
  std::string got;
  ASSERT_EQ(0, ReadFile(P("dir/file"), &got));
  EXPECT_TRUE(got == data) << "fsynced data lost after kill -9";
  char xv[16];
  EXPECT_EQ(4, lgetxattr(P("dir/file").c_str(), "user.k", xv, sizeof xv));
}

TEST_F(DurabilityTest, RenameAndDirFsyncSurviveKill9) {
  ASSERT_EQ(0, mkdir(P("ckpt").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("ckpt/model.pt"), "old generation"));
  // The usual atomic-save dance: write tmp, fsync, rename, fsync dir.
  std::string data = Pattern(1 << 20, 8);
  int fd = open(P("ckpt/model.pt.tmp").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, PwriteAll(fd, data.data(), data.size(), 0));
  ASSERT_EQ(0, fsync(fd));
  close(fd);
  ASSERT_EQ(0, rename(P("ckpt/model.pt.tmp").c_str(), P("ckpt/model.pt").c_str()));
  ASSERT_EQ(0, mkdir(P("ckpt/step-2").c_str(), 0755));
  ASSERT_EQ(0, rename(P("ckpt/step-2").c_str(), P("step-2-final").c_str()));
  int dfd = open(P("ckpt").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dfd, 0);
  ASSERT_EQ(0, fsync(dfd));
  close(dfd);
  dfd = open(fs_.mnt().c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dfd, 0);
  ASSERT_EQ(0, fsync(dfd));
  close(dfd);
  fs_.Kill9();
  ASSERT_TRUE(fs_.Mount());
  std::string got;
  ASSERT_EQ(0, ReadFile(P("ckpt/model.pt"), &got));
  EXPECT_TRUE(got == data);
  EXPECT_EQ(std::vector<std::string>{"model.pt"}, ListDir(P("ckpt")));
  struct stat st {};
  EXPECT_EQ(0, stat(P("step-2-final").c_str(), &st));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST_F(DurabilityTest, CleanRemountKeepsTreeAndInodes) {
  BuildTree(fs_);
  auto before = Snapshot(fs_.mnt());
  ASSERT_EQ(10u, before.size());
  struct stat root0 {};
  ASSERT_EQ(0, stat(fs_.mnt().c_str(), &root0));
  EXPECT_TRUE(fs_.Unmount()) << "daemon exit code " << fs_.last_exit_code();
  EXPECT_EQ(0, fs_.last_exit_code());
  EXPECT_FALSE(IsMountPoint(fs_.mnt()));
  ASSERT_TRUE(fs_.Mount());
  EXPECT_EQ(before, Snapshot(fs_.mnt()));
  struct stat root1 {};
  ASSERT_EQ(0, stat(fs_.mnt().c_str(), &root1));
  EXPECT_EQ(root0.st_ino, root1.st_ino);
  EXPECT_EQ(root0.st_nlink, root1.st_nlink);
  // New inodes never reuse numbers of existing ones.
  std::set<ino_t> inos;
  for (const auto& [path, desc] : before) {
    struct stat st {};
    ASSERT_EQ(0, lstat(P(path).c_str(), &st));
    inos.insert(st.st_ino);
  }
  for (int i = 0; i < 20; i++) {
    std::string p = P("new" + std::to_string(i));
    ASSERT_EQ(0, WriteFile(p, "n"));
    struct stat st {};
    ASSERT_EQ(0, stat(p.c_str(), &st));
    EXPECT_TRUE(inos.insert(st.st_ino).second) << "inode " << st.st_ino << " reused";
  }
  Remount();
  EXPECT_EQ(30u, Snapshot(fs_.mnt()).size());
}

TEST_F(DurabilityTest, SyncThenKill9KeepsTreeAndInodeCounter) {
  BuildTree(fs_);
  ASSERT_EQ(0, WriteFile(P("last"), "created just before the crash"));
  auto before = Snapshot(fs_.mnt());
  sync();
  fs_.Kill9();
  EXPECT_FALSE(IsMountPoint(fs_.mnt()));
  ASSERT_TRUE(fs_.Mount());
  EXPECT_EQ(before, Snapshot(fs_.mnt()));
  struct stat last {};
  ASSERT_EQ(0, stat(P("last").c_str(), &last));
  ASSERT_EQ(0, WriteFile(P("after"), "x"));
  struct stat after {};
  ASSERT_EQ(0, stat(P("after").c_str(), &after));
  EXPECT_NE(last.st_ino, after.st_ino);
  std::string got;
  ASSERT_EQ(0, ReadFile(P("last"), &got));
  EXPECT_EQ("created just before the crash", got);
}

TEST_F(DurabilityTest, OrphanOpenAtCrashIsReclaimed) {
  // A file unlinked while open is an orphan; if the daemon dies before the
  // last close, the next start must free its inode and data object.
  ASSERT_EQ(0, WriteFile(P("keep"), "keep"));
  std::string data = Pattern(100000, 12);
  int fd = open(P("orphan").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, PwriteAll(fd, data.data(), data.size(), 0));
  ASSERT_EQ(0, fsync(fd));
  struct stat st {};
  ASSERT_EQ(0, fstat(fd, &st));
  ASSERT_EQ(0, unlink(P("orphan").c_str()));
  sync();
  const std::string object = ObjectPathOn(fs_.ssd(), st.st_ino);
  fs_.SignalAndWait(SIGKILL, 30);
  close(fd);
  fs_.Kill9();  // detaches the dead mount
  ASSERT_TRUE(fs_.Mount());
  EXPECT_EQ(std::vector<std::string>{"keep"}, ListDir(fs_.mnt()));
  EXPECT_TRUE(fs_.Unmount());
  struct stat ost {};
  EXPECT_NE(0, lstat(object.c_str(), &ost)) << "orphan's object survived a restart: " << object;
  ASSERT_TRUE(fs_.Mount());
  std::string got;
  ASSERT_EQ(0, ReadFile(P("keep"), &got));
  EXPECT_EQ("keep", got);
}

TEST_F(DurabilityTest, SigtermUnmountsCleanly) {
  BuildTree(fs_);
  // Written and closed, but never fsynced.
  std::string data = Pattern(2 << 20, 21);
  ASSERT_EQ(0, WriteFile(P("unsynced"), data));
  ASSERT_EQ(0, rename(P("top").c_str(), P("renamed").c_str()));
  auto before = Snapshot(fs_.mnt());
  EXPECT_EQ(0, fs_.SignalAndWait(SIGTERM, 30)) << "daemon must exit 0 on SIGTERM";
  EXPECT_FALSE(IsMountPoint(fs_.mnt())) << "SIGTERM must unmount";
  ForceUnmount(fs_.mnt());
  ASSERT_TRUE(fs_.Mount());
  EXPECT_EQ(before, Snapshot(fs_.mnt()));
  std::string got;
  ASSERT_EQ(0, ReadFile(P("unsynced"), &got));
  EXPECT_TRUE(got == data);
}

TEST_F(DurabilityTest, UnmountWithFusermountExitsZero) {
  ASSERT_EQ(0, WriteFile(P("f"), "x"));
  EXPECT_TRUE(fs_.Unmount());
  EXPECT_EQ(0, fs_.last_exit_code());
  EXPECT_FALSE(IsMountPoint(fs_.mnt()));
  ASSERT_TRUE(fs_.Mount());
  // umount(8) works as well as fusermount3.
  ASSERT_EQ(0, RunCommand({"umount", fs_.mnt()}, 30).exit_code);
  EXPECT_EQ(0, fs_.SignalAndWait(0, 30)) << "daemon must exit 0 after umount";
  ASSERT_TRUE(fs_.Mount());
  std::string got;
  ASSERT_EQ(0, ReadFile(P("f"), &got));
  EXPECT_EQ("x", got);
}

}  // namespace
}  // namespace tierfs_test

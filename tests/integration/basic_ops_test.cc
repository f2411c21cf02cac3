// Basic namespace and attribute operations through plain syscalls.
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

int64_t Ns(const struct timespec& ts) {
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return Ns(ts);
}
constexpr int64_t kSec = 1000000000LL;

class BasicOpsTest : public MountTest {};

TEST_F(BasicOpsTest, CreateWriteReadStat) {
  int64_t before = NowNs();
  int fd = open(P("f").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0666);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(5, write(fd, "hello", 5));
  ASSERT_EQ(0, close(fd));
  int64_t after = NowNs();

  std::string data;
  ASSERT_EQ(0, ReadFile(P("f"), &data));
  EXPECT_EQ("hello", data);

  struct stat st {};
  ASSERT_EQ(0, stat(P("f").c_str(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(0644u, st.st_mode & 07777) << "0666 & ~umask 022";
  EXPECT_EQ(5, st.st_size);
  EXPECT_EQ(1u, st.st_nlink);
  EXPECT_EQ(0u, st.st_uid);
  EXPECT_EQ(0u, st.st_gid);
  EXPECT_GT(st.st_blocks, 0) << "a 5-byte file occupies some blocks";
  for (const auto* ts : {&st.st_mtim, &st.st_ctim, &st.st_atim}) {
    EXPECT_GE(Ns(*ts), before - kSec);
    EXPECT_LE(Ns(*ts), after + kSec);
  }
  EXPECT_EQ(EEXIST, OpenErr(P("f"), O_CREAT | O_EXCL | O_WRONLY));
  EXPECT_EQ(ENOENT, OpenErr(P("missing"), O_RDONLY));
  EXPECT_EQ(ENOTDIR, OpenErr(P("f/x"), O_RDONLY));
  EXPECT_EQ(ENOTDIR, OpenErr(P("f/x"), O_CREAT | O_WRONLY));

  // Read at and beyond EOF.
  fd = open(P("f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[16];
  EXPECT_EQ(0, pread(fd, buf, sizeof buf, 5));
  EXPECT_EQ(0, pread(fd, buf, sizeof buf, 1000));
  EXPECT_EQ(3, pread(fd, buf, sizeof buf, 2));
  EXPECT_EQ("llo", std::string(buf, 3));
  close(fd);
}

TEST_F(BasicOpsTest, WriteUpdatesMtimeAndCtime) {
  ASSERT_EQ(0, WriteFile(P("f"), "abc"));
  struct timespec old[2] = {{1000000, 0}, {1000000, 0}};
  ASSERT_EQ(0, utimensat(AT_FDCWD, P("f").c_str(), old, 0));
  struct stat st0 {};
  ASSERT_EQ(0, stat(P("f").c_str(), &st0));
  EXPECT_EQ(1000000, st0.st_mtim.tv_sec);
  int fd = open(P("f").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(3, pwrite(fd, "xyz", 3, 3));
  struct stat st1 {};
  ASSERT_EQ(0, fstat(fd, &st1));
  close(fd);
  EXPECT_GT(st1.st_mtim.tv_sec, 1000000);
  EXPECT_GE(Ns(st1.st_ctim), Ns(st0.st_ctim));
  ASSERT_EQ(0, stat(P("f").c_str(), &st1));
  EXPECT_GT(st1.st_mtim.tv_sec, 1000000) << "mtime after close";
  EXPECT_EQ(6, st1.st_size);
}

TEST_F(BasicOpsTest, NameLengthLimit) {
  std::string ok(255, 'n');
  std::string too_long(256, 'n');
  EXPECT_EQ(0, WriteFile(P(ok), "x"));
  EXPECT_EQ(ENAMETOOLONG, OpenErr(P(too_long), O_CREAT | O_WRONLY));
  EXPECT_EQ(ENAMETOOLONG, Err(mkdir(P(too_long).c_str(), 0755)));
}

TEST_F(BasicOpsTest, MkdirRmdirAndNlink) {
  struct stat root0 {};
  ASSERT_EQ(0, stat(fs_.mnt().c_str(), &root0));
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0777));
  struct stat st {};
  ASSERT_EQ(0, stat(P("d").c_str(), &st));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(0755u, st.st_mode & 07777);
  EXPECT_EQ(2u, st.st_nlink);
  struct stat root1 {};
  ASSERT_EQ(0, stat(fs_.mnt().c_str(), &root1));
  EXPECT_EQ(root0.st_nlink + 1, root1.st_nlink);

  ASSERT_EQ(0, mkdir(P("d/s1").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("d/s2").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("d/file"), "x"));
  ASSERT_EQ(0, stat(P("d").c_str(), &st));
  EXPECT_EQ(4u, st.st_nlink) << "2 + two subdirectories; files do not count";

  EXPECT_EQ(EEXIST, Err(mkdir(P("d").c_str(), 0755)));
  EXPECT_EQ(EEXIST, Err(mkdir(P("d/file").c_str(), 0755)));
  EXPECT_EQ(ENOENT, Err(mkdir(P("nope/x").c_str(), 0755)));
  EXPECT_EQ(ENOTEMPTY, Err(rmdir(P("d").c_str())));
  EXPECT_EQ(ENOTDIR, Err(rmdir(P("d/file").c_str())));
  EXPECT_EQ(ENOENT, Err(rmdir(P("d/none").c_str())));
  EXPECT_EQ(EISDIR, Err(unlink(P("d/s1").c_str())));

  ASSERT_EQ(0, rmdir(P("d/s1").c_str()));
  ASSERT_EQ(0, stat(P("d").c_str(), &st));
  EXPECT_EQ(3u, st.st_nlink);
  EXPECT_EQ(ENOENT, Err(stat(P("d/s1").c_str(), &st)));
  ASSERT_EQ(0, unlink(P("d/file").c_str()));
  ASSERT_EQ(0, rmdir(P("d/s2").c_str()));
  ASSERT_EQ(0, rmdir(P("d").c_str()));
  ASSERT_EQ(0, stat(fs_.mnt().c_str(), &root1));
  EXPECT_EQ(root0.st_nlink, root1.st_nlink);
  EXPECT_EQ(ENOENT, Err(stat(P("d").c_str(), &st)));
}

TEST_F(BasicOpsTest, Unlink) {
  ASSERT_EQ(0, WriteFile(P("f"), "data"));
  ASSERT_EQ(0, unlink(P("f").c_str()));
  struct stat st {};
  EXPECT_EQ(ENOENT, Err(stat(P("f").c_str(), &st)));
  EXPECT_EQ(ENOENT, Err(unlink(P("f").c_str())));
  EXPECT_TRUE(ListDir(fs_.mnt()).empty());
  // A new file under the same name is a new, empty file.
  ASSERT_EQ(0, WriteFile(P("f"), ""));
  std::string data;
  ASSERT_EQ(0, ReadFile(P("f"), &data));
  EXPECT_EQ("", data);
}

TEST_F(BasicOpsTest, ReaddirNamesTypesDotDot) {
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("d/sub").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("d/reg"), "x"));
  ASSERT_EQ(0, symlink("reg", P("d/lnk").c_str()));
  ASSERT_EQ(0, mkfifo(P("d/fifo").c_str(), 0644));
  std::map<std::string, unsigned char> want = {{".", DT_DIR},   {"..", DT_DIR},  {"sub", DT_DIR},
                                               {"reg", DT_REG}, {"lnk", DT_LNK}, {"fifo", DT_FIFO}};
  struct stat d {
  }, root{};
  ASSERT_EQ(0, stat(P("d").c_str(), &d));
  ASSERT_EQ(0, stat(fs_.mnt().c_str(), &root));
  DIR* dir = opendir(P("d").c_str());
  ASSERT_NE(nullptr, dir);
  std::map<std::string, unsigned char> got;
  while (struct dirent* e = readdir(dir)) {
    EXPECT_EQ(0u, got.count(e->d_name)) << "duplicate " << e->d_name;
    got[e->d_name] = e->d_type;
    std::string name = e->d_name;
    if (name == ".") {
      EXPECT_EQ(d.st_ino, e->d_ino);
    } else if (name != "..") {
      struct stat st {};
      ASSERT_EQ(0, lstat(P("d/" + name).c_str(), &st));
      EXPECT_EQ(st.st_ino, e->d_ino) << name;
    }
  }
  closedir(dir);
  EXPECT_EQ(want, got);
  struct stat dotdot {};
  ASSERT_EQ(0, stat(P("d/sub/..").c_str(), &dotdot));
  EXPECT_EQ(d.st_ino, dotdot.st_ino);
  ASSERT_EQ(0, stat(P("d/..").c_str(), &dotdot));
  EXPECT_EQ(root.st_ino, dotdot.st_ino);
}

TEST_F(BasicOpsTest, ReaddirTwoThousandEntries) {
  ASSERT_EQ(0, mkdir(P("big").c_str(), 0755));
  std::set<std::string> want;
  for (int i = 0; i < 2000; i++) {
    char name[64];
    snprintf(name, sizeof name, "entry-%04d-with-a-longer-name", i);
    ASSERT_EQ(0, OpenErr(P("big/") + name, O_CREAT | O_WRONLY)) << name;
    want.insert(name);
  }
  std::vector<std::string> names = ListDir(P("big"));
  std::set<std::string> got(names.begin(), names.end());
  EXPECT_EQ(names.size(), got.size()) << "duplicates in readdir";
  EXPECT_EQ(want, got);
  // Delete every other entry while listing with a fresh handle each time.
  for (int i = 0; i < 2000; i += 2) {
    char name[64];
    snprintf(name, sizeof name, "entry-%04d-with-a-longer-name", i);
    ASSERT_EQ(0, unlink((P("big/") + name).c_str()));
    want.erase(name);
  }
  names = ListDir(P("big"));
  EXPECT_EQ(want, std::set<std::string>(names.begin(), names.end()));
  EXPECT_EQ(1000u, names.size());
}

TEST_F(BasicOpsTest, ReaddirWhileDeletingLikeRmRf) {
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0755));
  for (int i = 0; i < 600; i++) {
    ASSERT_EQ(0, OpenErr(P("d/e" + std::to_string(i)), O_CREAT | O_WRONLY));
  }
  // Delete each entry right after reading it: entries not yet read must
  // still be returned exactly once, so nothing is left behind.
  DIR* dir = opendir(P("d").c_str());
  ASSERT_NE(nullptr, dir);
  std::map<std::string, int> seen;
  while (struct dirent* e = readdir(dir)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    seen[name]++;
    EXPECT_EQ(0, Err(unlink(P("d/" + name).c_str()))) << name;
  }
  closedir(dir);
  EXPECT_EQ(600u, seen.size());
  for (const auto& [name, n] : seen) EXPECT_EQ(1, n) << name << " returned twice";
  EXPECT_EQ(std::vector<std::string>{}, ListDir(P("d")));
  EXPECT_EQ(0, Err(rmdir(P("d").c_str())));
}

TEST_F(BasicOpsTest, SymlinkReadlink) {
  ASSERT_EQ(0, WriteFile(P("target"), "content"));
  ASSERT_EQ(0, symlink("target", P("l").c_str()));
  ASSERT_EQ(0, symlink("/no/such/place/x", P("dangling").c_str()));
  char buf[256];
  ssize_t n = readlink(P("l").c_str(), buf, sizeof buf);
  ASSERT_EQ(6, n);
  EXPECT_EQ("target", std::string(buf, n));
  n = readlink(P("dangling").c_str(), buf, sizeof buf);
  ASSERT_EQ(16, n);
  EXPECT_EQ("/no/such/place/x", std::string(buf, n));
  struct stat st {};
  ASSERT_EQ(0, lstat(P("l").c_str(), &st));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(6, st.st_size);
  ASSERT_EQ(0, stat(P("l").c_str(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(7, st.st_size);
  std::string data;
  ASSERT_EQ(0, ReadFile(P("l"), &data));
  EXPECT_EQ("content", data);
  EXPECT_EQ(ENOENT, Err(stat(P("dangling").c_str(), &st)));
  EXPECT_EQ(EINVAL, Err(readlink(P("target").c_str(), buf, sizeof buf)));
  EXPECT_EQ(EEXIST, Err(symlink("x", P("l").c_str())));
  std::string long_target(4000, 'z');
  ASSERT_EQ(0, symlink(long_target.c_str(), P("long").c_str()));
  char big[4096];
  n = readlink(P("long").c_str(), big, sizeof big);
  ASSERT_EQ(4000, n);
  EXPECT_EQ(long_target, std::string(big, n));
}

TEST_F(BasicOpsTest, SpecialFiles) {
  ASSERT_EQ(0, mkfifo(P("fifo").c_str(), 0640));
  struct stat st {};
  ASSERT_EQ(0, stat(P("fifo").c_str(), &st));
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(0640u, st.st_mode & 07777);
  int fd = open(P("fifo").c_str(), O_RDWR | O_NONBLOCK);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(4, write(fd, "ping", 4));
  char buf[8];
  ASSERT_EQ(4, read(fd, buf, sizeof buf));
  EXPECT_EQ("ping", std::string(buf, 4));
  close(fd);

  ASSERT_EQ(0, mknod(P("sock").c_str(), S_IFSOCK | 0600, 0));
  ASSERT_EQ(0, stat(P("sock").c_str(), &st));
  EXPECT_TRUE(S_ISSOCK(st.st_mode));

  ASSERT_EQ(0, mknod(P("null").c_str(), S_IFCHR | 0666, makedev(1, 3)));
  ASSERT_EQ(0, stat(P("null").c_str(), &st));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(makedev(1, 3), st.st_rdev);
  ASSERT_EQ(0, mknod(P("blk").c_str(), S_IFBLK | 0600, makedev(7, 200)));
  ASSERT_EQ(0, stat(P("blk").c_str(), &st));
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ(makedev(7, 200), st.st_rdev);

  // A unix socket bound to a path on the mount.
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::string sp = P("bound.sock");
  ASSERT_LT(sp.size(), sizeof addr.sun_path);
  strcpy(addr.sun_path, sp.c_str());
  ASSERT_EQ(0, bind(s, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr)) << strerror(errno);
  close(s);
  ASSERT_EQ(0, lstat(sp.c_str(), &st));
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
}

TEST_F(BasicOpsTest, TruncateGrowShrink) {
  ASSERT_EQ(0, WriteFile(P("f"), "abcdefghij"));
  ASSERT_EQ(0, truncate(P("f").c_str(), 3));
  std::string data;
  ASSERT_EQ(0, ReadFile(P("f"), &data));
  EXPECT_EQ("abc", data);
  ASSERT_EQ(0, truncate(P("f").c_str(), 8));
  ASSERT_EQ(0, ReadFile(P("f"), &data));
  EXPECT_EQ(std::string("abc\0\0\0\0\0", 8), data) << "shrink then grow must not resurrect data";
  int fd = open(P("f").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, ftruncate(fd, 1 << 20));
  struct stat st {};
  ASSERT_EQ(0, fstat(fd, &st));
  EXPECT_EQ(1 << 20, st.st_size);
  char buf[16];
  ASSERT_EQ(16, pread(fd, buf, 16, (1 << 20) - 16));
  EXPECT_EQ(std::string(16, '\0'), std::string(buf, 16));
  ASSERT_EQ(0, ftruncate(fd, 0));
  ASSERT_EQ(0, fstat(fd, &st));
  EXPECT_EQ(0, st.st_size);
  EXPECT_EQ(0, pread(fd, buf, 16, 0));
  close(fd);
  EXPECT_EQ(EISDIR, Err(truncate(fs_.mnt().c_str(), 0)));
  EXPECT_EQ(EINVAL, Err(truncate(P("f").c_str(), -1)));
}

TEST_F(BasicOpsTest, UtimensatNowAndOmit) {
  ASSERT_EQ(0, WriteFile(P("f"), "x"));
  struct timespec ts[2] = {{1111, 123456789}, {2222, 987654321}};
  ASSERT_EQ(0, utimensat(AT_FDCWD, P("f").c_str(), ts, 0));
  struct stat st {};
  ASSERT_EQ(0, stat(P("f").c_str(), &st));
  EXPECT_EQ(1111, st.st_atim.tv_sec);
  EXPECT_EQ(123456789, st.st_atim.tv_nsec);
  EXPECT_EQ(2222, st.st_mtim.tv_sec);
  EXPECT_EQ(987654321, st.st_mtim.tv_nsec);
  int64_t ctime0 = Ns(st.st_ctim);

  usleep(20000);
  int64_t before = NowNs();
  struct timespec now_omit[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
  ASSERT_EQ(0, utimensat(AT_FDCWD, P("f").c_str(), now_omit, 0));
  ASSERT_EQ(0, stat(P("f").c_str(), &st));
  EXPECT_GE(Ns(st.st_atim), before - kSec);
  EXPECT_LE(Ns(st.st_atim), NowNs() + kSec);
  EXPECT_EQ(2222, st.st_mtim.tv_sec) << "UTIME_OMIT must keep mtime";
  EXPECT_EQ(987654321, st.st_mtim.tv_nsec);
  EXPECT_GT(Ns(st.st_ctim), ctime0) << "utimensat changes ctime";

  struct timespec omit_now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  ASSERT_EQ(0, utimensat(AT_FDCWD, P("f").c_str(), omit_now, 0));
  struct stat st2 {};
  ASSERT_EQ(0, stat(P("f").c_str(), &st2));
  EXPECT_EQ(Ns(st.st_atim), Ns(st2.st_atim)) << "UTIME_OMIT must keep atime";
  EXPECT_GE(Ns(st2.st_mtim), before - kSec);

  // Symlinks themselves, with AT_SYMLINK_NOFOLLOW.
  ASSERT_EQ(0, symlink("f", P("l").c_str()));
  ASSERT_EQ(0, utimensat(AT_FDCWD, P("l").c_str(), ts, AT_SYMLINK_NOFOLLOW));
  ASSERT_EQ(0, lstat(P("l").c_str(), &st));
  EXPECT_EQ(2222, st.st_mtim.tv_sec);
  ASSERT_EQ(0, stat(P("f").c_str(), &st));
  EXPECT_NE(2222, st.st_mtim.tv_sec) << "the target must not change";
}

TEST_F(BasicOpsTest, ChmodChownAccess) {
  ASSERT_EQ(0, WriteFile(P("f"), "x"));
  struct stat st0 {};
  ASSERT_EQ(0, stat(P("f").c_str(), &st0));
  usleep(20000);
  ASSERT_EQ(0, chmod(P("f").c_str(), 0751));
  struct stat st {};
  ASSERT_EQ(0, stat(P("f").c_str(), &st));
  EXPECT_EQ(S_IFREG | 0751u, st.st_mode);
  EXPECT_GT(Ns(st.st_ctim), Ns(st0.st_ctim));
  ASSERT_EQ(0, chmod(P("f").c_str(), 07755));
  ASSERT_EQ(0, stat(P("f").c_str(), &st));
  EXPECT_EQ(S_IFREG | 07755u, st.st_mode);

  ASSERT_EQ(0, chown(P("f").c_str(), 12345, 23456));
  ASSERT_EQ(0, stat(P("f").c_str(), &st));
  EXPECT_EQ(12345u, st.st_uid);
  EXPECT_EQ(23456u, st.st_gid);
  EXPECT_EQ(0u, st.st_mode & S_ISUID) << "chown clears set-user-ID";
  EXPECT_EQ(0u, st.st_mode & S_ISGID) << "chown clears set-group-ID on group-executable file";
  ASSERT_EQ(0, chown(P("f").c_str(), -1, 777));
  ASSERT_EQ(0, stat(P("f").c_str(), &st));
  EXPECT_EQ(12345u, st.st_uid);
  EXPECT_EQ(777u, st.st_gid);

  ASSERT_EQ(0, mkdir(P("d").c_str(), 0700));
  ASSERT_EQ(0, chown(P("d").c_str(), 4000, 4001));
  ASSERT_EQ(0, stat(P("d").c_str(), &st));
  EXPECT_EQ(4000u, st.st_uid);
  EXPECT_EQ(4001u, st.st_gid);
  ASSERT_EQ(0, symlink("f", P("l").c_str()));
  ASSERT_EQ(0, lchown(P("l").c_str(), 5000, 5001));
  ASSERT_EQ(0, lstat(P("l").c_str(), &st));
  EXPECT_EQ(5000u, st.st_uid);
  ASSERT_EQ(0, stat(P("f").c_str(), &st));
  EXPECT_EQ(12345u, st.st_uid) << "lchown must not follow";

  // Root: read/write regardless of mode bits, execute only if some x bit.
  ASSERT_EQ(0, WriteFile(P("none"), "x", 0000));
  ASSERT_EQ(0, chmod(P("none").c_str(), 0000));
  EXPECT_EQ(0, Err(access(P("none").c_str(), R_OK | W_OK)));
  EXPECT_EQ(EACCES, Err(access(P("none").c_str(), X_OK)));
  EXPECT_EQ(0, Err(access(P("f").c_str(), X_OK)));
  EXPECT_EQ(ENOENT, Err(access(P("missing").c_str(), F_OK)));
  EXPECT_EQ(0, Err(access(P("f").c_str(), F_OK)));
}

MountOptions TmpfsTiers() {
  MountOptions o;
  o.ssd_tmpfs_mb = 64;
  o.hdd_tmpfs_mb = 128;
  return o;
}

class StatfsTest : public MountTest {
 protected:
  StatfsTest() : MountTest(TmpfsTiers()) {}
};

TEST_F(StatfsTest, CountsBothTiers) {
  struct statvfs sv {};
  ASSERT_EQ(0, statvfs(fs_.mnt().c_str(), &sv));
  double total_mib = static_cast<double>(sv.f_blocks) * sv.f_frsize / (1 << 20);
  double free_mib = static_cast<double>(sv.f_bfree) * sv.f_frsize / (1 << 20);
  double avail_mib = static_cast<double>(sv.f_bavail) * sv.f_frsize / (1 << 20);
  EXPECT_NEAR(192.0, total_mib, 192.0 * 0.05) << "64 MiB SSD tier + 128 MiB HDD tier";
  EXPECT_GT(free_mib, 150.0);
  EXPECT_LE(free_mib, total_mib);
  EXPECT_GT(avail_mib, 150.0);
  EXPECT_GE(sv.f_namemax, 255u);

  // Writing 8 MiB lowers the free space by about as much.
  int fd = open(P("f").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  std::string chunk = Pattern(1 << 20, 1);
  for (int i = 0; i < 8; i++) ASSERT_EQ(0, PwriteAll(fd, chunk.data(), chunk.size(), i << 20));
  ASSERT_EQ(0, fsync(fd));
  close(fd);
  struct statvfs sv2 {};
  ASSERT_EQ(0, statvfs(fs_.mnt().c_str(), &sv2));
  double free2_mib = static_cast<double>(sv2.f_bfree) * sv2.f_frsize / (1 << 20);
  EXPECT_NEAR(free_mib - 8.0, free2_mib, 2.0);
}

}  // namespace
}  // namespace tierfs_test

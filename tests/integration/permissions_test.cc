// Permission checks as root and as unprivileged users (allow_other mount).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

const Creds kAlice{12345, 12345, {}};
const Creds kBob{23456, 23456, {}};
const Creds kCarol{34567, 34567, {5555}};  // member of group 5555

class PermissionsTest : public MountTest {
 protected:
  // A world-writable scratch directory users can work in.
  void SetUp() override {
    MountTest::SetUp();
    ASSERT_EQ(0, mkdir(P("pub").c_str(), 0777));
    ASSERT_EQ(0, chmod(P("pub").c_str(), 0777));
  }
  // A file owned by `c` with `mode`, created by root.
  void MakeOwned(const std::string& rel, const Creds& c, mode_t mode) {
    ASSERT_EQ(0, WriteFile(P(rel), "secret"));
    ASSERT_EQ(0, chown(P(rel).c_str(), c.uid, c.gid));
    ASSERT_EQ(0, chmod(P(rel).c_str(), mode));
  }
};

TEST_F(PermissionsTest, OtherUsersFileWithMode0600) {
  MakeOwned("pub/alice", kAlice, 0600);
  std::string p = P("pub/alice");
  EXPECT_EQ(EACCES, RunAs(kBob, [&] { return OpenErr(p, O_RDONLY); }));
  EXPECT_EQ(EACCES, RunAs(kBob, [&] { return OpenErr(p, O_WRONLY); }));
  EXPECT_EQ(EACCES, RunAs(kBob, [&] { return Err(access(p.c_str(), R_OK)); }));
  EXPECT_EQ(EACCES, RunAs(kBob, [&] { return Err(truncate(p.c_str(), 0)); }));
  EXPECT_EQ(0, RunAs(kAlice, [&] { return OpenErr(p, O_RDWR); }));
  std::string data;
  EXPECT_EQ(0, RunAs(
                   kAlice, [&](std::string* out) { return ReadFile(p, out); }, &data));
  EXPECT_EQ("secret", data);
  // Root is not subject to the mode bits.
  EXPECT_EQ(0, OpenErr(p, O_RDWR));
  // Group and other bits are honoured too.
  ASSERT_EQ(0, chmod(p.c_str(), 0640));
  Creds alice_group{23456, kAlice.gid, {}};
  EXPECT_EQ(0, RunAs(alice_group, [&] { return OpenErr(p, O_RDONLY); }));
  EXPECT_EQ(EACCES, RunAs(alice_group, [&] { return OpenErr(p, O_WRONLY); }));
  EXPECT_EQ(EACCES, RunAs(kBob, [&] { return OpenErr(p, O_RDONLY); }));
  ASSERT_EQ(0, chmod(p.c_str(), 0604));
  EXPECT_EQ(0, RunAs(kBob, [&] { return OpenErr(p, O_RDONLY); }));
}

TEST_F(PermissionsTest, DirectoryWithoutSearchOrWrite) {
  ASSERT_EQ(0, mkdir(P("pub/d").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("pub/d/f"), "x"));
  ASSERT_EQ(0, chown(P("pub/d").c_str(), kAlice.uid, kAlice.gid));
  ASSERT_EQ(0, chmod(P("pub/d").c_str(), 0644));  // r, no x
  std::string d = P("pub/d");
  EXPECT_EQ(EACCES, RunAs(kAlice, [&] {
              struct stat st;
              return Err(stat((d + "/f").c_str(), &st));
            }));
  EXPECT_EQ(EACCES, RunAs(kAlice, [&] { return OpenErr(d + "/f", O_RDONLY); }));
  EXPECT_EQ(EACCES, RunAs(kAlice, [&] { return OpenErr(d + "/new", O_CREAT | O_WRONLY); }));
  // Listing needs only r.
  EXPECT_EQ(0, RunAs(kAlice, [&] {
              DIR* dir = opendir(d.c_str());
              if (dir == nullptr) return errno;
              closedir(dir);
              return 0;
            }));
  // x without w: lookups work, creation and removal do not.
  ASSERT_EQ(0, chmod(d.c_str(), 0555));
  EXPECT_EQ(0, RunAs(kAlice, [&] { return OpenErr(d + "/f", O_RDONLY); }));
  EXPECT_EQ(EACCES, RunAs(kAlice, [&] { return OpenErr(d + "/new", O_CREAT | O_WRONLY); }));
  EXPECT_EQ(EACCES, RunAs(kAlice, [&] { return Err(unlink((d + "/f").c_str())); }));
  EXPECT_EQ(EACCES, RunAs(kAlice, [&] { return Err(mkdir((d + "/sub").c_str(), 0755)); }));
  EXPECT_EQ(EACCES,
            RunAs(kAlice, [&] { return Err(rename((d + "/f").c_str(), (d + "/g").c_str())); }));
  // Root bypasses both.
  EXPECT_EQ(0, OpenErr(d + "/rootfile", O_CREAT | O_WRONLY));
}

TEST_F(PermissionsTest, StickyDirectory) {
  ASSERT_EQ(0, mkdir(P("tmp").c_str(), 0777));
  ASSERT_EQ(0, chmod(P("tmp").c_str(), 01777));
  struct stat st {};
  ASSERT_EQ(0, stat(P("tmp").c_str(), &st));
  EXPECT_EQ(01777u, st.st_mode & 07777);
  std::string a = P("tmp/alice");
  ASSERT_EQ(0, RunAs(kAlice, [&] { return WriteFile(a, "mine", 0666); }));
  ASSERT_EQ(0, chmod(a.c_str(), 0666));
  EXPECT_EQ(EPERM, RunAs(kBob, [&] { return Err(unlink(a.c_str())); }));
  EXPECT_EQ(EPERM, RunAs(kBob, [&] { return Err(rename(a.c_str(), (a + "2").c_str())); }));
  std::string b = P("tmp/bob");
  ASSERT_EQ(0, RunAs(kBob, [&] { return WriteFile(b, "bob", 0666); }));
  EXPECT_EQ(EPERM, RunAs(kBob, [&] { return Err(rename(b.c_str(), a.c_str())); }))
      << "replacing another user's file in a sticky dir";
  // Bob may still write the file (mode 0666), just not remove it.
  EXPECT_EQ(0, RunAs(kBob, [&] { return OpenErr(a, O_WRONLY); }));
  EXPECT_EQ(0, RunAs(kAlice, [&] { return Err(unlink(a.c_str())); }));
  EXPECT_EQ(0, RunAs(kBob, [&] { return Err(unlink(b.c_str())); }));
  EXPECT_TRUE(ListDir(P("tmp")).empty());
}

TEST_F(PermissionsTest, SetgidDirectoryInheritsGroup) {
  ASSERT_EQ(0, mkdir(P("shared").c_str(), 0777));
  ASSERT_EQ(0, chown(P("shared").c_str(), 0, 4242));
  ASSERT_EQ(0, chmod(P("shared").c_str(), 02777));
  ASSERT_EQ(0, WriteFile(P("shared/rootfile"), "x"));
  ASSERT_EQ(0, mkdir(P("shared/rootdir").c_str(), 0755));
  std::string uf = P("shared/alicefile");
  std::string ud = P("shared/alicedir");
  ASSERT_EQ(0, RunAs(kAlice, [&] { return WriteFile(uf, "y"); }));
  ASSERT_EQ(0, RunAs(kAlice, [&] { return Err(mkdir(ud.c_str(), 0755)); }));
  struct stat st {};
  ASSERT_EQ(0, stat(P("shared/rootfile").c_str(), &st));
  EXPECT_EQ(4242u, st.st_gid);
  EXPECT_EQ(0u, st.st_mode & S_ISGID) << "files do not get S_ISGID";
  ASSERT_EQ(0, stat(P("shared/rootdir").c_str(), &st));
  EXPECT_EQ(4242u, st.st_gid);
  EXPECT_NE(0u, st.st_mode & S_ISGID) << "subdirectories inherit S_ISGID";
  ASSERT_EQ(0, stat(uf.c_str(), &st));
  EXPECT_EQ(kAlice.uid, st.st_uid);
  EXPECT_EQ(4242u, st.st_gid);
  ASSERT_EQ(0, stat(ud.c_str(), &st));
  EXPECT_EQ(kAlice.uid, st.st_uid);
  EXPECT_EQ(4242u, st.st_gid);
  EXPECT_NE(0u, st.st_mode & S_ISGID);
  // And one level further down.
  std::string deep = ud + "/deep";
  ASSERT_EQ(0, RunAs(kAlice, [&] { return WriteFile(deep, "z"); }));
  ASSERT_EQ(0, stat(deep.c_str(), &st));
  EXPECT_EQ(4242u, st.st_gid);
}

TEST_F(PermissionsTest, ChmodChownByNonOwner) {
  MakeOwned("pub/alice", kAlice, 0644);
  std::string p = P("pub/alice");
  EXPECT_EQ(EPERM, RunAs(kBob, [&] { return Err(chmod(p.c_str(), 0777)); }));
  EXPECT_EQ(EPERM, RunAs(kBob, [&] { return Err(chown(p.c_str(), kBob.uid, -1)); }));
  EXPECT_EQ(EPERM, RunAs(kAlice, [&] { return Err(chown(p.c_str(), kBob.uid, -1)); }))
      << "giving a file away needs CAP_CHOWN";
  EXPECT_EQ(EPERM, RunAs(kAlice, [&] { return Err(chown(p.c_str(), -1, 5555)); }))
      << "alice is not in group 5555";
  EXPECT_EQ(0, RunAs(kAlice, [&] { return Err(chmod(p.c_str(), 0600)); }));
  struct stat st {};
  ASSERT_EQ(0, stat(p.c_str(), &st));
  EXPECT_EQ(0600u, st.st_mode & 07777);
  EXPECT_EQ(kAlice.uid, st.st_uid);
  // Owner may change the group to one of its supplementary groups.
  MakeOwned("pub/carol", kCarol, 0644);
  std::string c = P("pub/carol");
  EXPECT_EQ(0, RunAs(kCarol, [&] { return Err(chown(c.c_str(), -1, 5555)); }));
  ASSERT_EQ(0, stat(c.c_str(), &st));
  EXPECT_EQ(5555u, st.st_gid);
  // Timestamps: explicit values only by the owner, "now" by anyone who can write.
  ASSERT_EQ(0, chmod(p.c_str(), 0666));
  EXPECT_EQ(0, RunAs(kBob, [&] { return Err(utimensat(AT_FDCWD, p.c_str(), nullptr, 0)); }));
  EXPECT_EQ(EPERM, RunAs(kBob, [&] {
              struct timespec ts[2] = {{5, 0}, {5, 0}};
              return Err(utimensat(AT_FDCWD, p.c_str(), ts, 0));
            }));
  EXPECT_EQ(0, RunAs(kAlice, [&] {
              struct timespec ts[2] = {{5, 0}, {5, 0}};
              return Err(utimensat(AT_FDCWD, p.c_str(), ts, 0));
            }));
}

TEST_F(PermissionsTest, OtherUsersSeeRealOwners) {
  MakeOwned("pub/owned", kAlice, 0644);
  ASSERT_EQ(0, chown(P("pub/owned").c_str(), kAlice.uid, 23456));
  std::string p = P("pub/owned");
  std::string out;
  ASSERT_EQ(0, RunAs(
                   kCarol,
                   [&](std::string* o) {
                     struct stat st;
                     if (stat(p.c_str(), &st) != 0) return errno;
                     *o = std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid) + ":" +
                          std::to_string(st.st_mode & 07777);
                     return 0;
                   },
                   &out));
  EXPECT_EQ("12345:23456:420", out);
  // Files a user creates belong to that user and its primary group.
  std::string mine = P("pub/carol_new");
  ASSERT_EQ(0, RunAs(kCarol, [&] { return WriteFile(mine, "c", 0640); }));
  ASSERT_EQ(0, RunAs(kCarol, [&] { return Err(mkdir((mine + "_dir").c_str(), 0700)); }));
  ASSERT_EQ(0, RunAs(kCarol, [&] { return Err(symlink("x", (mine + "_lnk").c_str())); }));
  struct stat st {};
  ASSERT_EQ(0, stat(mine.c_str(), &st));
  EXPECT_EQ(kCarol.uid, st.st_uid);
  EXPECT_EQ(kCarol.gid, st.st_gid);
  EXPECT_EQ(0640u, st.st_mode & 07777);
  ASSERT_EQ(0, stat((mine + "_dir").c_str(), &st));
  EXPECT_EQ(kCarol.uid, st.st_uid);
  EXPECT_EQ(kCarol.gid, st.st_gid);
  ASSERT_EQ(0, lstat((mine + "_lnk").c_str(), &st));
  EXPECT_EQ(kCarol.uid, st.st_uid);
  // Root-only directory stays closed to others.
  ASSERT_EQ(0, mkdir(P("private").c_str(), 0700));
  EXPECT_EQ(EACCES, RunAs(kCarol, [&] {
              DIR* d = opendir(P("private").c_str());
              if (d == nullptr) return errno;
              closedir(d);
              return 0;
            }));
}

// A write, truncate or O_TRUNC open by a user without CAP_FSETID clears
// set-user-ID, and set-group-ID when the file is group-executable, as on
// ext4; tierfs does it on the kernel's request (FUSE_WRITE_KILL_SUIDGID and
// friends), on direct and page-cache descriptors alike. Root keeps them.
TEST_F(PermissionsTest, WritesByOthersClearSetIdBits) {
  struct Way {
    const char* name;
    std::function<int(const std::string&)> run;
  };
  auto write_with = [](int flags) {
    return [flags](const std::string& p) {
      int fd = open(p.c_str(), flags);
      if (fd < 0) return errno;
      int err = pwrite(fd, "zz", 2, 1) == 2 ? 0 : errno;
      close(fd);
      return err;
    };
  };
  const Way ways[] = {
      {"O_WRONLY write (direct I/O)", write_with(O_WRONLY)},
      {"O_RDWR write (page cache)", write_with(O_RDWR)},
      {"O_TRUNC open", [](const std::string& p) { return OpenErr(p, O_WRONLY | O_TRUNC); }},
      {"truncate", [](const std::string& p) { return Err(truncate(p.c_str(), 1)); }},
  };
  int i = 0;
  for (const Way& way : ways) {
    SCOPED_TRACE(way.name);
    const std::string p = P("pub/f" + std::to_string(i++));
    ASSERT_EQ(0, WriteFile(p, "secret"));
    ASSERT_EQ(0, chmod(p.c_str(), 06777));
    ASSERT_EQ(0, RunAs(kBob, [&] { return way.run(p); }));
    struct stat st {};
    ASSERT_EQ(0, stat(p.c_str(), &st));
    EXPECT_EQ(0777u, st.st_mode & 07777);
    // Without group-execute, set-group-ID stays (it then marks locking).
    ASSERT_EQ(0, chmod(p.c_str(), 06766));
    ASSERT_EQ(0, RunAs(kBob, [&] { return way.run(p); }));
    ASSERT_EQ(0, stat(p.c_str(), &st));
    EXPECT_EQ(02766u, st.st_mode & 07777);
    // Root has CAP_FSETID.
    ASSERT_EQ(0, chmod(p.c_str(), 06777));
    ASSERT_EQ(0, way.run(p));
    ASSERT_EQ(0, stat(p.c_str(), &st));
    EXPECT_EQ(06777u, st.st_mode & 07777);
  }
}

// pjdfstest chown/00.t: a chown of anything but a directory drops
// set-user-ID, and set-group-ID when group-executable, as on ext4.
// The kernel caches a file's mode for a day: tierfs clearing set-user-ID
// on a write must make it drop the cached one (before, a statx asking for
// the mode alone, as stat -c %A does, showed the old bits until the inode
// left the cache; xfstests generic/193 and 355).
TEST_F(PermissionsTest, AWriteThatClearsSetIdBitsIsSeenAtOnce) {
  const std::string p = P("pub/own");
  ASSERT_EQ(0, WriteFile(p, "x"));
  ASSERT_EQ(0, chown(p.c_str(), kBob.uid, kBob.gid));
  ASSERT_EQ(0, chmod(p.c_str(), 06644));
  struct stat st {};
  ASSERT_EQ(0, stat(p.c_str(), &st));  // the kernel caches 06644
  ASSERT_EQ(06644u, st.st_mode & 07777);
  ASSERT_EQ(0, RunAs(kBob, [&] {
              const int fd = open(p.c_str(), O_WRONLY | O_APPEND);
              if (fd < 0) return errno;
              const int err = write(fd, "y", 1) == 1 ? 0 : errno;
              close(fd);
              return err;
            }));
  // As stat -c %A asks: the mode alone, which the kernel answers from its
  // cache unless told it is stale (a full stat refreshes it for the size).
  struct statx stx {};
  ASSERT_EQ(0, statx(AT_FDCWD, p.c_str(), 0, STATX_MODE, &stx));
  EXPECT_EQ(02644u, stx.stx_mode & 07777);  // set-group-ID without group-execute stays
}

TEST_F(PermissionsTest, ChownClearsSetIdBitsOfNonDirectories) {
  struct Kind {
    const char* name;
    mode_t type;
  };
  const Kind kinds[] = {{"regular", S_IFREG},
                        {"fifo", S_IFIFO},
                        {"socket", S_IFSOCK},
                        {"char device", S_IFCHR},
                        {"directory", S_IFDIR}};
  int i = 0;
  for (const Kind& k : kinds) {
    SCOPED_TRACE(k.name);
    const std::string p = P("pub/n" + std::to_string(i++));
    if (k.type == S_IFDIR)
      ASSERT_EQ(0, mkdir(p.c_str(), 0755));
    else
      ASSERT_EQ(0, mknod(p.c_str(), k.type | 0644, k.type == S_IFCHR ? makedev(1, 3) : 0));
    ASSERT_EQ(0, chown(p.c_str(), kCarol.uid, kCarol.gid));
    const mode_t cleared = k.type == S_IFDIR ? 06555 : 0555;
    // By the owner, to a group of theirs.
    ASSERT_EQ(0, chmod(p.c_str(), 06555));
    ASSERT_EQ(0, RunAs(kCarol, [&] { return Err(chown(p.c_str(), -1, 5555)); }));
    struct stat st {};
    ASSERT_EQ(0, stat(p.c_str(), &st));
    EXPECT_EQ(5555u, st.st_gid);
    EXPECT_EQ(cleared, st.st_mode & 07777);
    // By root, too (Linux treats root like other users here).
    ASSERT_EQ(0, chmod(p.c_str(), 06555));
    ASSERT_EQ(0, chown(p.c_str(), kAlice.uid, kAlice.gid));
    ASSERT_EQ(0, stat(p.c_str(), &st));
    EXPECT_EQ(cleared, st.st_mode & 07777);
    // Without group-execute, set-group-ID stays (it then marks locking).
    ASSERT_EQ(0, chmod(p.c_str(), 06444));
    ASSERT_EQ(0, chown(p.c_str(), kBob.uid, kBob.gid));
    ASSERT_EQ(0, stat(p.c_str(), &st));
    EXPECT_EQ(k.type == S_IFDIR ? 06444u : 02444u, st.st_mode & 07777);
  }
}

// File capabilities go with set-user-ID: a write by another user drops them.
TEST_F(PermissionsTest, WriteByOtherDropsFileCapabilities) {
  const std::string p = P("pub/capped");
  ASSERT_EQ(0, WriteFile(p, "binary"));
  ASSERT_EQ(0, chmod(p.c_str(), 0777));
  // struct vfs_cap_data, revision 2: cap_net_bind_service permitted.
  const uint32_t caps[5] = {0x02000000, 1u << 10, 0, 0, 0};
  ASSERT_EQ(0, Err(setxattr(p.c_str(), "security.capability", caps, sizeof caps, 0)));
  char buf[64];
  ASSERT_EQ(ssize_t(sizeof caps), getxattr(p.c_str(), "security.capability", buf, sizeof buf));
  ASSERT_EQ(0, RunAs(kBob, [&] {
              int fd = open(p.c_str(), O_WRONLY);
              if (fd < 0) return errno;
              int err = pwrite(fd, "x", 1, 0) == 1 ? 0 : errno;
              close(fd);
              return err;
            }));
  EXPECT_EQ(-1, getxattr(p.c_str(), "security.capability", buf, sizeof buf));
  EXPECT_EQ(ENODATA, errno);
}

}  // namespace
}  // namespace tierfs_test

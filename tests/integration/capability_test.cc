// File capabilities (security.capability) go with any change of a file's
// bytes, whoever makes it: a write, fallocate, copy_file_range into it, a
// truncate or an open with O_TRUNC, by root too (xfstests generic/093).
// CAP_FSETID spares a root writer's set-ID bits, never the capabilities
// (the kernel's cap_inode_need_killpriv). With FUSE_HANDLE_KILLPRIV_V2 the
// kernel leaves it to tierfs (fs/context.h DropCapabilities).
//
// Every case runs first on a directory of the test's temporary root, on
// the machine's own /tmp (ext4 here; Linux 6.18), to show that this is what
// the kernel's filesystems do: measured there, every case below drops the
// capabilities, root's write keeps the set-user-ID bit, and a store through
// a mapping keeps the capabilities. Then the same on the mount.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

constexpr const char* kCaps = "security.capability";

// A valid VFS_CAP_REVISION_2 value, as `setcap cap_net_raw+ep` writes it:
// magic_etc (revision 2, effective), then permitted and inheritable of the
// two 32-bit halves, little-endian.
std::string NetRawCaps() {
  const uint32_t words[5] = {0x02000001, 1u << 13 /* CAP_NET_RAW */, 0, 0, 0};
  return std::string(reinterpret_cast<const char*>(words), sizeof words);
}

bool HasCaps(const std::string& path) {
  return getxattr(path.c_str(), kCaps, nullptr, 0) > 0;
}

int SetCaps(const std::string& path) {
  const std::string v = NetRawCaps();
  return setxattr(path.c_str(), kCaps, v.data(), v.size(), 0) == 0 ? 0 : errno;
}

// Writes `data` at `off` through a fresh descriptor opened with `flags`:
// 0 or errno.
int WriteWith(const std::string& path, int flags, const std::string& data, off_t off = 0) {
  const int fd = open(path.c_str(), flags);
  if (fd < 0) return errno;
  int err = PwriteAll(fd, data.data(), data.size(), off);
  if (close(fd) != 0 && err == 0) err = errno;
  return err;
}

struct Change {
  const char* what;
  std::function<int(const std::string& path, const std::string& dir)> run;  // 0 or errno
};

// The changes of a file's bytes, each made by root.
std::vector<Change> Changes() {
  return {
      {"write-only append",
       [](const std::string& p, const std::string&) {
         return WriteWith(p, O_WRONLY | O_APPEND, "b");
       }},
      {"read-write write",
       [](const std::string& p, const std::string&) { return WriteWith(p, O_RDWR, "c", 1); }},
      {"truncate", [](const std::string& p,
                      const std::string&) { return truncate(p.c_str(), 3) == 0 ? 0 : errno; }},
      {"truncate to the same size",
       [](const std::string& p, const std::string&) {
         struct stat st;
         if (stat(p.c_str(), &st) != 0) return errno;
         return truncate(p.c_str(), st.st_size) == 0 ? 0 : errno;
       }},
      {"ftruncate",
       [](const std::string& p, const std::string&) {
         const int fd = open(p.c_str(), O_WRONLY);
         if (fd < 0) return errno;
         int err = ftruncate(fd, 1) == 0 ? 0 : errno;
         close(fd);
         return err;
       }},
      {"open with O_TRUNC",
       [](const std::string& p, const std::string&) {
         return WriteWith(p, O_WRONLY | O_TRUNC, "");
       }},
      {"fallocate",
       [](const std::string& p, const std::string&) {
         const int fd = open(p.c_str(), O_RDWR);
         if (fd < 0) return errno;
         int err = fallocate(fd, 0, 0, 8192) == 0 ? 0 : errno;
         close(fd);
         return err;
       }},
      {"copy_file_range into it",
       [](const std::string& p, const std::string& dir) {
         const std::string src = dir + "/src";
         if (int err = WriteFile(src, "xyz")) return err;
         const int in = open(src.c_str(), O_RDONLY), out = open(p.c_str(), O_WRONLY);
         int err = in < 0 || out < 0 ? errno : 0;
         if (err == 0 && copy_file_range(in, nullptr, out, nullptr, 3, 0) != 3)
           err = errno ? errno : EIO;
         if (in >= 0) close(in);
         if (out >= 0) close(out);
         return err;
       }},
  };
}

class CapabilityTest : public MountTest {
 protected:
  CapabilityTest() : MountTest(Options(FreePort())) {}
  static MountOptions Options(uint16_t port) {
    MountOptions o;
    o.extra_args = {"--metrics", "127.0.0.1:" + std::to_string(port)};
    return o;
  }
  // Opens for writing through passthrough so far (fs/metrics.h).
  std::string PassthroughWrites() {
    const std::string text =
        RunCommand({"curl", "-s", "http://" + fs_.options().extra_args[1] + "/metrics"}, 10).out;
    const std::string series = "\ntierfs_opens_total{access=\"write\",mode=\"passthrough\"} ";
    const size_t at = text.find(series);
    if (at == std::string::npos) return "0";
    const size_t from = at + series.size();
    return text.substr(from, text.find('\n', from) - from);
  }
  // A directory of the test's root, beside the tiers: the machine's own
  // filesystem, to compare with.
  std::string Reference() {
    const std::string dir = fs_.root() + "/reference";
    mkdir(dir.c_str(), 0755);
    return dir;
  }
  // Runs every change on a file with capabilities in `dir`; returns the
  // ones after which the file still had them.
  static std::vector<std::string> KeptBy(const std::string& dir) {
    std::vector<std::string> kept;
    const std::string f = dir + "/bin";
    for (const Change& change : Changes()) {
      EXPECT_EQ(0, WriteFile(f, "abcdef")) << change.what;
      EXPECT_EQ(0, SetCaps(f)) << change.what;
      EXPECT_TRUE(HasCaps(f)) << change.what;
      EXPECT_EQ(0, change.run(f, dir)) << change.what;
      if (HasCaps(f)) kept.push_back(change.what);
    }
    return kept;
  }
};

TEST_F(CapabilityTest, EveryChangeByRootDropsThem) {
  if (geteuid() != 0) GTEST_SKIP() << "security.capability is set by root";
  const std::string ref = Reference();
  const std::vector<std::string> none;
  // On Linux's own filesystem first: the semantics the mount must have.
  EXPECT_EQ(none, KeptBy(ref)) << "on the filesystem of " << ref;
  // The write-only append, served with direct I/O, kept them before.
  EXPECT_EQ(none, KeptBy(fs_.mnt()));
}

TEST_F(CapabilityTest, RootWriteKeepsSetUidAndOtherXattrs) {
  if (geteuid() != 0) GTEST_SKIP() << "security.capability is set by root";
  for (const std::string& dir : {Reference(), fs_.mnt()}) {
    const std::string f = dir + "/suid";
    ASSERT_EQ(0, WriteFile(f, "abc", 04755));
    ASSERT_EQ(0, chmod(f.c_str(), 04755));
    ASSERT_EQ(0, setxattr(f.c_str(), "user.keep", "v", 1, 0));
    ASSERT_EQ(0, SetCaps(f));
    ASSERT_EQ(0, WriteWith(f, O_WRONLY | O_APPEND, "d"));
    EXPECT_FALSE(HasCaps(f)) << dir;
    struct stat st;
    ASSERT_EQ(0, stat(f.c_str(), &st));
    EXPECT_EQ(04755u, st.st_mode & 07777) << dir << ": root has CAP_FSETID";
    char v[8] = {};
    EXPECT_EQ(1, getxattr(f.c_str(), "user.keep", v, sizeof v)) << dir;
  }
}

// The daemon remembers per inode that a file has no capabilities (so a
// write costs no lookup); capabilities set while a writer is open must go
// with that writer's next write all the same.
TEST_F(CapabilityTest, SetAgainWhileOpenGoesWithTheNextWrite) {
  if (geteuid() != 0) GTEST_SKIP() << "security.capability is set by root";
  for (const std::string& dir : {Reference(), fs_.mnt()}) {
    const std::string f = dir + "/open";
    ASSERT_EQ(0, WriteFile(f, "abc"));
    const int fd = open(f.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    for (int round = 0; round < 3; ++round) {
      ASSERT_EQ(0, PwriteAll(fd, "x", 1, round));
      ASSERT_EQ(0, SetCaps(f));
      ASSERT_EQ(0, PwriteAll(fd, "y", 1, round));
      EXPECT_FALSE(HasCaps(f)) << dir << ", round " << round;
    }
    close(fd);
  }
}

// A store through a shared mapping keeps them on Linux's own filesystems
// (only write paths call file_remove_privs); the daemon, which sees the
// kernel's writeback of those pages (FUSE_WRITE_CACHE), must keep them too.
TEST_F(CapabilityTest, AStoreThroughAMappingKeepsThem) {
  if (geteuid() != 0) GTEST_SKIP() << "security.capability is set by root";
  for (const std::string& dir : {Reference(), fs_.mnt()}) {
    const std::string f = dir + "/mapped";
    ASSERT_EQ(0, WriteFile(f, std::string(4096, 'a')));
    ASSERT_EQ(0, SetCaps(f));
    const int fd = open(f.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    void* m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_NE(MAP_FAILED, m);
    static_cast<char*>(m)[0] = 'b';
    EXPECT_EQ(0, msync(m, 4096, MS_SYNC));
    munmap(m, 4096);
    EXPECT_EQ(0, fsync(fd));
    close(fd);
    EXPECT_TRUE(HasCaps(f)) << dir;
    std::string data;
    ASSERT_EQ(0, ReadFile(f, &data));
    EXPECT_EQ('b', data[0]) << dir;
  }
}

// A read-write open of a file with capabilities is not served through
// passthrough (the kernel would write its object where the daemon cannot
// drop them); one without is, once the daemon has looked.
TEST_F(CapabilityTest, AReadWriteOpenOfAFileWithThemIsNotPassthrough) {
  if (geteuid() != 0) GTEST_SKIP() << "security.capability is set by root";
  const std::string plain = P("plain"), caps = P("caps");
  ASSERT_EQ(0, WriteFile(plain, "abc"));
  ASSERT_EQ(0, WriteFile(caps, "abc"));
  ASSERT_EQ(0, SetCaps(caps));
  const std::string before = PassthroughWrites();
  ASSERT_EQ(0, WriteWith(plain, O_RDWR, "d"));
  const std::string after_plain = PassthroughWrites();
  if (after_plain == before) GTEST_SKIP() << "no passthrough on this kernel";
  ASSERT_EQ(0, WriteWith(caps, O_RDWR, "d"));
  EXPECT_EQ(after_plain, PassthroughWrites());
  EXPECT_FALSE(HasCaps(caps));
  // Gone with that write: the next read-write open may use passthrough.
  ASSERT_EQ(0, WriteWith(caps, O_RDWR, "e"));
  EXPECT_NE(after_plain, PassthroughWrites());
}

}  // namespace
}  // namespace tierfs_test

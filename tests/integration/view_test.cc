// `tierfs view` (fs/view.h): another node's archive, read-only, beside its
// live owner, verified, and without a byte written to the shared tier.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/tierctl_util.h"

namespace tierfs_test {
namespace {

namespace fs = std::filesystem;

const Creds kOther{23457, 23457, {}};

// A view mounted for one test; unmounted however the test ends.
class ViewMount {
 public:
  explicit ViewMount(std::string mnt) : mnt_(std::move(mnt)) { fs::create_directories(mnt_); }
  ~ViewMount() { UnmountAndWait(mnt_); }
  ViewMount(const ViewMount&) = delete;
  ViewMount& operator=(const ViewMount&) = delete;
  // `tierfs view ARGS... -o allow_other --log LOG MNT` (it returns once mounted).
  CommandResult Mount(std::vector<std::string> args) {
    args.insert(args.begin(), "view");
    for (const char* a : {"-o", "allow_other", "--log"}) args.push_back(a);
    args.push_back(log());
    args.push_back(mnt_);
    return RunTierfs(args, 60);
  }
  void Unmount() { UnmountAndWait(mnt_); }
  std::string path(const std::string& rel) const { return mnt_ + "/" + rel; }
  std::string log() const { return mnt_ + ".log"; }

 private:
  std::string mnt_;
};

// Every file below `dir`: path, size, mtime and ctime (what a write changes).
std::string Listing(const std::string& dir) {
  return RunCommand({"sh", "-c", "cd " + dir + " && find . -printf '%p %s %T@ %C@\\n' | sort"}, 30)
      .out;
}

std::string NsDir(const TierfsMount& m, const std::string& ns) {
  return m.hdd() + "/ns/" + ns;
}

// How many whole snapshots the namespace has (fs/snapshot.h).
size_t SnapshotCount(const std::string& ns_dir) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(ns_dir + "/meta", ec)) {
    const std::string name = e.path().filename();
    if (name.rfind("snap-", 0) == 0 && e.path().extension() == ".mdb") ++n;
  }
  return n;
}

TEST(ViewTest, AnotherNodeReadsTheArchiveBesideItsLiveOwner) {
  MountOptions opts;
  opts.extra_args = {"--namespace", "job1"};
  TierfsMount m(opts);
  ASSERT_TRUE(m.Mount());
  ASSERT_TRUE(WaitFor([&] { return SnapshotCount(NsDir(m, "job1")) == 1; }, 20)) << m.Log();
  const std::string a = Pattern(3 << 20, 1), b = Pattern(1 << 20, 2), c = Pattern(2500000, 3),
                    s = Pattern(4000, 4);
  ASSERT_EQ(0, mkdir(m.path("d").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(m.path("d/a"), a));
  ASSERT_EQ(0, WriteFile(m.path("d/private"), b, 0600));
  ASSERT_EQ(0, WriteFile(m.path("ssd-only"), s));
  ASSERT_EQ(0, WriteFile(m.path("empty"), ""));
  ASSERT_EQ(0, symlink("d/a", m.path("link").c_str()));
  ASSERT_EQ(0, SetTierOfClosed(m.path("d/a"), "hdd"));
  ASSERT_EQ(0, SetTierOfClosed(m.path("d/private"), "hdd"));
  // A policy reload takes a snapshot; c is archived after it.
  ASSERT_EQ(0, kill(m.pid(), SIGHUP));
  ASSERT_TRUE(WaitFor([&] { return SnapshotCount(NsDir(m, "job1")) == 2; }, 20)) << m.Log();
  ASSERT_EQ(0, mkdir(m.path("later").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(m.path("later/c"), c));
  ASSERT_EQ(0, SetTierOfClosed(m.path("later/c"), "hdd"));

  ViewMount v(m.root() + "/view");
  CommandResult r = v.Mount({"--hdd", m.hdd(), "--namespace", "job1"});
  ASSERT_EQ(0, r.exit_code) << r.out << r.err << SlurpFile(v.log());
  std::string got;
  EXPECT_EQ(0, ReadFile(v.path("d/a"), &got));
  EXPECT_TRUE(got == a) << "d/a differs";
  EXPECT_EQ(0, ReadFile(v.path("later/c"), &got));
  EXPECT_TRUE(got == c) << "later/c, archived after the snapshot, differs";
  EXPECT_EQ(0, ReadFile(v.path("link"), &got));
  EXPECT_TRUE(got == a) << "the symlink does not lead to d/a";
  EXPECT_EQ(0, ReadFile(v.path("empty"), &got));
  EXPECT_EQ("", got);
  struct stat sb;
  EXPECT_EQ(ENOENT, Err(stat(v.path("ssd-only").c_str(), &sb)))
      << "a file only on the owner's SSD tier is left out";
  // The owner's modes hold for other users; nothing may change.
  std::string other_got;
  EXPECT_EQ(
      0, RunAs(
             kOther, [&](std::string* out) { return ReadFile(v.path("d/a"), out); }, &other_got));
  EXPECT_TRUE(other_got == a);
  EXPECT_EQ(EACCES, RunAs(kOther, [&] { return OpenErr(v.path("d/private"), O_RDONLY); }));
  EXPECT_EQ(EROFS, OpenErr(v.path("d/new"), O_WRONLY | O_CREAT));
  EXPECT_EQ(EROFS, OpenErr(v.path("d/a"), O_WRONLY));
  EXPECT_EQ(EROFS, Err(unlink(v.path("d/a").c_str())));
  char tier[16] = {};
  EXPECT_EQ(3, getxattr(v.path("d/a").c_str(), "user.tierfs.tier", tier, sizeof tier));
  EXPECT_STREQ("hdd", tier);
  EXPECT_EQ(0, listxattr(v.path("d/a").c_str(), nullptr, 0)) << "read by name, not listed";
  char summary[1024] = {};
  ASSERT_GT(getxattr(v.path("").c_str(), "user.tierfs.view", summary, sizeof summary), 0);
  EXPECT_NE(nullptr, strstr(summary, "\"namespace\":\"job1\"")) << summary;
  EXPECT_NE(nullptr, strstr(summary, "\"ssd_only\":1")) << summary;
  EXPECT_NE(nullptr, strstr(summary, "\"files\":4")) << summary;  // a, private, empty, c
  // The owner goes on as before: it writes, and its files still read.
  EXPECT_EQ(0, WriteFile(m.path("d/after-view"), "x"));
  EXPECT_EQ(0, ReadFile(m.path("d/a"), &got));
  EXPECT_TRUE(got == a);
  // A file its owner removed since the view was mounted reads EIO there.
  ASSERT_EQ(0, unlink(m.path("later/c").c_str()));
  ASSERT_TRUE(WaitFor([&] { return OpenErr(v.path("later/c"), O_RDONLY) == EIO; }, 10))
      << OpenErr(v.path("later/c"), O_RDONLY);
  v.Unmount();
  EXPECT_TRUE(m.Unmount());
}

// The owner's POSIX ACLs hold in the view: those of the snapshot, and the
// access ACL an object archived after it carries in its identity. Before,
// the view knew modes only, and a user an ACL shut out read the bytes.
TEST(ViewTest, TheOwnersAclsHoldInTheView) {
  MountOptions opts;
  opts.extra_args = {"--namespace", "acl"};
  TierfsMount m(opts);
  ASSERT_TRUE(m.Mount());
  ASSERT_TRUE(WaitFor([&] { return SnapshotCount(NsDir(m, "acl")) == 1; }, 20)) << m.Log();
  ASSERT_EQ(0, chmod(m.path("").c_str(), 0755));
  const Creds shut_out{23458, 23458, {}}, shut_out_of_root{23459, 23459, {}};
  ASSERT_EQ(0, RunCommand({"setfacl", "-m", "u:23459:---", m.path("")}, 10).exit_code);
  for (const std::string name : {"snap", "later"}) {
    ASSERT_EQ(0, WriteFile(m.path(name), "for most eyes", 0644));
    ASSERT_EQ(0, RunCommand({"setfacl", "-m", "u:23458:---", m.path(name)}, 10).exit_code);
    ASSERT_EQ(0, SetTierOfClosed(m.path(name), "hdd"));
    if (name == "snap") {  // a policy reload takes a snapshot that knows it
      ASSERT_EQ(0, kill(m.pid(), SIGHUP));
      ASSERT_TRUE(WaitFor([&] { return SnapshotCount(NsDir(m, "acl")) == 2; }, 20)) << m.Log();
    }
    ASSERT_EQ(EACCES, RunAs(shut_out, [&] { return OpenErr(m.path(name), O_RDONLY); }));
  }
  ViewMount v(m.root() + "/view");
  CommandResult r = v.Mount({"--hdd", m.hdd(), "--namespace", "acl"});
  ASSERT_EQ(0, r.exit_code) << r.out << r.err << SlurpFile(v.log());
  for (const std::string name : {"snap", "later"}) {
    EXPECT_EQ(EACCES, RunAs(shut_out, [&] { return OpenErr(v.path(name), O_RDONLY); })) << name;
    EXPECT_EQ(0, RunAs(kOther, [&] { return OpenErr(v.path(name), O_RDONLY); })) << name;
    const CommandResult acl = RunCommand({"getfacl", "-cn", v.path(name)}, 10);
    EXPECT_NE(std::string::npos, acl.out.find("user:23458:---")) << name << ": " << acl.out;
  }
  // The root's ACL too: this user may not search it.
  EXPECT_EQ(EACCES, RunAs(shut_out_of_root, [&] { return OpenErr(v.path("snap"), O_RDONLY); }));
  v.Unmount();
  EXPECT_TRUE(m.Unmount());
}

// Who may read follows the owner's latest word: a chmod or setfacl of an
// archived file after the snapshot (the identity is rewritten), and a
// private directory the snapshot does not know (made 0700, its files'
// owner's). Before, the view kept the modes of the move and made every
// unknown directory root's 0755, so another user read both files.
TEST(ViewTest, LaterChmodsAndUnknownPrivateDirectoriesHoldInTheView) {
  MountOptions opts;
  opts.extra_args = {"--namespace", "later"};
  TierfsMount m(opts);
  ASSERT_TRUE(m.Mount());
  ASSERT_TRUE(WaitFor([&] { return SnapshotCount(NsDir(m, "later")) == 1; }, 20)) << m.Log();
  ASSERT_EQ(0, chmod(m.path("").c_str(), 0755));
  const uid_t owner = 23460;
  ASSERT_EQ(0, WriteFile(m.path("known"), "was public", 0644));
  ASSERT_EQ(0, WriteFile(m.path("acl"), "was public", 0644));
  ASSERT_EQ(0, chown(m.path("known").c_str(), owner, owner));
  ASSERT_EQ(0, chown(m.path("acl").c_str(), owner, owner));
  ASSERT_EQ(0, SetTierOfClosed(m.path("known"), "hdd"));
  ASSERT_EQ(0, SetTierOfClosed(m.path("acl"), "hdd"));
  ASSERT_EQ(0, kill(m.pid(), SIGHUP));  // a snapshot that knows them, 0644
  ASSERT_TRUE(WaitFor([&] { return SnapshotCount(NsDir(m, "later")) == 2; }, 20)) << m.Log();
  ASSERT_EQ(0, chmod(m.path("known").c_str(), 0600));
  ASSERT_EQ(0, RunCommand({"setfacl", "-m", "u:23457:---", m.path("acl")}, 10).exit_code);
  ASSERT_EQ(0, mkdir(m.path("private").c_str(), 0700));
  ASSERT_EQ(0, WriteFile(m.path("private/f"), "inside", 0644));
  ASSERT_EQ(0, chown(m.path("private/f").c_str(), owner, owner));
  ASSERT_EQ(0, chown(m.path("private").c_str(), owner, owner));
  ASSERT_EQ(0, SetTierOfClosed(m.path("private/f"), "hdd"));
  for (const char* name : {"known", "acl", "private/f"})
    ASSERT_EQ(EACCES, RunAs(kOther, [&] { return OpenErr(m.path(name), O_RDONLY); })) << name;

  ViewMount v(m.root() + "/view");
  CommandResult r = v.Mount({"--hdd", m.hdd(), "--namespace", "later"});
  ASSERT_EQ(0, r.exit_code) << r.out << r.err << SlurpFile(v.log());
  for (const char* name : {"known", "acl", "private/f"})
    EXPECT_EQ(EACCES, RunAs(kOther, [&] { return OpenErr(v.path(name), O_RDONLY); })) << name;
  EXPECT_EQ(0, RunAs(Creds{owner, owner, {}}, [&] {
              std::string got;
              return ReadFile(v.path("private/f"), &got) == 0 && got == "inside" ? 0 : EIO;
            }));
  struct stat sb {};
  ASSERT_EQ(0, stat(v.path("private").c_str(), &sb));
  EXPECT_EQ(0700u, sb.st_mode & 07777);
  EXPECT_EQ(owner, sb.st_uid);
  v.Unmount();
  EXPECT_TRUE(m.Unmount());
}

// The view shows a file's extended attributes: the snapshot's, or those
// its identity recorded when it is newer (a setxattr or removexattr of a
// file on the HDD tier rewrites it), or for a file archived after the
// snapshot; trusted.* to root alone, as on the owner's mount.
TEST(ViewTest, XattrsChangedAfterTheSnapshotAreShown) {
  MountOptions opts;
  opts.extra_args = {"--namespace", "xattrs"};
  TierfsMount m(opts);
  ASSERT_TRUE(m.Mount());
  ASSERT_TRUE(WaitFor([&] { return SnapshotCount(NsDir(m, "xattrs")) == 1; }, 20)) << m.Log();
  ASSERT_EQ(0, WriteFile(m.path("x"), "archived", 0644));
  ASSERT_EQ(0, setxattr(m.path("x").c_str(), "user.keep", "1", 1, 0));
  ASSERT_EQ(0, setxattr(m.path("x").c_str(), "user.old", "gone", 4, 0));
  ASSERT_EQ(0, setxattr(m.path("x").c_str(), "trusted.root", "only", 4, 0));
  ASSERT_EQ(0, SetTierOfClosed(m.path("x"), "hdd"));
  ASSERT_EQ(0, kill(m.pid(), SIGHUP));  // a snapshot that knows user.keep and user.old
  ASSERT_TRUE(WaitFor([&] { return SnapshotCount(NsDir(m, "xattrs")) == 2; }, 20)) << m.Log();
  ASSERT_EQ(0, setxattr(m.path("x").c_str(), "user.note", "late", 4, 0));
  ASSERT_EQ(0, removexattr(m.path("x").c_str(), "user.old"));
  ASSERT_EQ(0, WriteFile(m.path("y"), "later", 0644));
  ASSERT_EQ(0, setxattr(m.path("y").c_str(), "user.run_id", "r-42", 4, 0));
  ASSERT_EQ(0, SetTierOfClosed(m.path("y"), "hdd"));

  ViewMount v(m.root() + "/view");
  CommandResult r = v.Mount({"--hdd", m.hdd(), "--namespace", "xattrs"});
  ASSERT_EQ(0, r.exit_code) << r.out << r.err << SlurpFile(v.log());
  auto get = [](const std::string& path, const char* name) {
    char buf[256];
    const ssize_t n = getxattr(path.c_str(), name, buf, sizeof buf);
    return n < 0 ? "errno " + std::to_string(errno) : std::string(buf, size_t(n));
  };
  EXPECT_EQ("late", get(v.path("x"), "user.note"));
  EXPECT_EQ("1", get(v.path("x"), "user.keep"));
  EXPECT_EQ("errno " + std::to_string(ENODATA), get(v.path("x"), "user.old"));
  EXPECT_EQ("only", get(v.path("x"), "trusted.root"));
  EXPECT_EQ("r-42", get(v.path("y"), "user.run_id"));
  EXPECT_EQ(ENODATA, RunAs(kOther, [&] {
              char buf[64];
              return Err(getxattr(v.path("x").c_str(), "trusted.root", buf, sizeof buf));
            }));
  const std::string listed = RunCommand({"getfattr", "-d", v.path("x")}, 10).out;
  EXPECT_NE(std::string::npos, listed.find("user.note=\"late\"")) << listed;
  EXPECT_EQ(std::string::npos, listed.find("user.old")) << listed;
  v.Unmount();
  EXPECT_TRUE(m.Unmount());
}

// A write in place on the HDD tier (the file is pinned there) that drops
// security.capability, or a user's set-user-ID bit, rewrites the file's
// identity, so a view (and a recover) does not bring back what the write
// took away. Before, the identity kept both.
TEST(ViewTest, AWriteOnHddThatDropsPrivilegesIsSeenInTheView) {
  MountOptions opts;
  opts.extra_args = {"--namespace", "inplace"};
  TierfsMount m(opts);
  ASSERT_TRUE(m.Mount());
  ASSERT_TRUE(WaitFor([&] { return SnapshotCount(NsDir(m, "inplace")) == 1; }, 20)) << m.Log();
  // VFS_CAP_REVISION_2, cap_net_raw+ep (as setcap writes it).
  const uint32_t caps[5] = {0x02000001, 1u << 13, 0, 0, 0};
  ASSERT_EQ(0, WriteFile(m.path("tool"), "v1", 0755));
  ASSERT_EQ(0, Err(setxattr(m.path("tool").c_str(), "security.capability", caps, sizeof caps, 0)));
  ASSERT_EQ(0, WriteFile(m.path("suid"), "v1", 0755));
  ASSERT_EQ(0, Err(chown(m.path("suid").c_str(), kOther.uid, kOther.gid)));
  ASSERT_EQ(0, Err(chmod(m.path("suid").c_str(), 04755)));
  for (const char* name : {"tool", "suid"}) {
    ASSERT_EQ(0, Tierctl({"pin", "--tier", "hdd", m.path(name)}).exit_code) << name;
    ASSERT_TRUE(WaitFor([&] { return GetTier(m.path(name)) == "hdd"; }, 20)) << name;
  }
  ASSERT_EQ(0, kill(m.pid(), SIGHUP));  // a snapshot that knows both privileges
  ASSERT_TRUE(WaitFor([&] { return SnapshotCount(NsDir(m, "inplace")) == 2; }, 20)) << m.Log();
  auto append = [](const std::string& path) {
    const int fd = open(path.c_str(), O_WRONLY | O_APPEND);
    if (fd < 0) return errno;
    const int err = write(fd, "v2", 2) == 2 ? 0 : errno;
    close(fd);
    return err;
  };
  ASSERT_EQ(0, append(m.path("tool")));  // by root: the capability goes
  ASSERT_EQ(0, RunAs(kOther, [&] { return append(m.path("suid")); }));  // the set-user-ID bit goes
  EXPECT_EQ("hdd", GetTier(m.path("tool")));
  EXPECT_EQ("hdd", GetTier(m.path("suid")));
  EXPECT_GT(0, getxattr(m.path("tool").c_str(), "security.capability", nullptr, 0));
  struct stat sb;
  ASSERT_EQ(0, stat(m.path("suid").c_str(), &sb));
  EXPECT_EQ(0755u, sb.st_mode & 07777);

  ViewMount v(m.root() + "/view");
  CommandResult r = v.Mount({"--hdd", m.hdd(), "--namespace", "inplace"});
  ASSERT_EQ(0, r.exit_code) << r.out << r.err << SlurpFile(v.log());
  EXPECT_GT(0, getxattr(v.path("tool").c_str(), "security.capability", nullptr, 0));
  ASSERT_EQ(0, stat(v.path("suid").c_str(), &sb));
  EXPECT_EQ(0755u, sb.st_mode & 07777);
  v.Unmount();
  EXPECT_TRUE(m.Unmount());
}

TEST(ViewTest, AViewWritesNothingOnTheTier) {
  MountOptions opts;
  opts.extra_args = {"--namespace", "quiet"};
  TierfsMount m(opts);
  ASSERT_TRUE(m.Mount());
  const std::string a = Pattern(2 << 20, 5);
  ASSERT_EQ(0, WriteFile(m.path("a"), a));
  ASSERT_EQ(0, SetTierOfClosed(m.path("a"), "hdd"));
  ASSERT_TRUE(m.Unmount());
  const std::string before = Listing(m.hdd());
  ASSERT_NE(std::string::npos, before.find("objects")) << before;
  sleep(1);  // a write would show in the times
  {
    ViewMount v(m.root() + "/view");
    CommandResult r = v.Mount({"--hdd", m.hdd()});  // the tier's only namespace
    ASSERT_EQ(0, r.exit_code) << r.out << r.err << SlurpFile(v.log());
    std::string got;
    EXPECT_EQ(0, ReadFile(v.path("a"), &got));
    EXPECT_TRUE(got == a);
    EXPECT_EQ(0, RunCommand({"ls", "-lR", v.path("")}, 10).exit_code);
  }
  EXPECT_EQ(before, Listing(m.hdd()));
}

TEST(ViewTest, ACorruptObjectReadsEioNeverItsBytes) {
  MountOptions opts;
  opts.extra_args = {"--namespace", "rot"};
  TierfsMount m(opts);
  ASSERT_TRUE(m.Mount());
  ASSERT_TRUE(WaitFor([&] { return SnapshotCount(NsDir(m, "rot")) == 1; }, 20)) << m.Log();
  // One file the snapshot knows (block sums recorded), one archived after it
  // (only its identity's checksum: hashed whole at open).
  ASSERT_EQ(0, WriteFile(m.path("known"), Pattern(3 << 20, 6)));
  ASSERT_EQ(0, SetTierOfClosed(m.path("known"), "hdd"));
  ASSERT_TRUE(m.Unmount());  // the unmount's snapshot knows it
  ASSERT_TRUE(m.Mount());
  // The snapshot taken as the policy loads comes first: one taken after
  // "later" was written and hashed would know its block sums (under TSan
  // it came 1.5 s after the mount, and the view then opened "later").
  ASSERT_TRUE(WaitFor([&] { return SnapshotCount(NsDir(m, "rot")) == 3; }, 20)) << m.Log();
  ASSERT_EQ(0, WriteFile(m.path("later"), Pattern(3 << 20, 7)));
  ASSERT_EQ(0, SetTierOfClosed(m.path("later"), "hdd"));
  const std::string known_obj = ObjectPathOn(m.hdd(), Ino(m.path("known")));
  const std::string later_obj = ObjectPathOn(m.hdd(), Ino(m.path("later")));
  for (const std::string& obj : {known_obj, later_obj}) {
    const int fd = open(obj.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0) << obj;
    // Same size and mtime: rot the identity's size and time cannot see.
    struct stat sb;
    ASSERT_EQ(0, fstat(fd, &sb));
    ASSERT_EQ(1, pwrite(fd, "!", 1, (2 << 20) + 5));
    const timespec times[2] = {sb.st_atim, sb.st_mtim};
    ASSERT_EQ(0, futimens(fd, times));
    close(fd);
  }
  ViewMount v(m.root() + "/view");
  CommandResult r = v.Mount({"--hdd", m.hdd(), "--namespace", "rot"});
  ASSERT_EQ(0, r.exit_code) << r.out << r.err << SlurpFile(v.log());
  // The known file: its first two blocks are good, the third is not.
  const int fd = open(v.path("known").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::vector<char> buf(1 << 20);
  EXPECT_EQ(ssize_t(buf.size()), PreadAll(fd, buf.data(), buf.size(), 0));
  EXPECT_EQ(-1, pread(fd, buf.data(), buf.size(), 2 << 20));
  EXPECT_EQ(EIO, errno);
  close(fd);
  // Reads of less than a block (O_DIRECT: the kernel asks for just them).
  const int direct = open(v.path("known").c_str(), O_RDONLY | O_DIRECT);
  ASSERT_GE(direct, 0) << strerror(errno);
  void* page = nullptr;
  ASSERT_EQ(0, posix_memalign(&page, 4096, 4096));
  EXPECT_EQ(4096, pread(direct, page, 4096, 8192));
  EXPECT_EQ(0, memcmp(page, Pattern(3 << 20, 6).data() + 8192, 4096));
  EXPECT_EQ(-1, pread(direct, page, 4096, (2 << 20) + 4096));
  EXPECT_EQ(EIO, errno);
  free(page);
  close(direct);
  // The later one fails at open: no block of it is vouched for alone.
  EXPECT_EQ(EIO, OpenErr(v.path("later"), O_RDONLY));
  const std::string log = SlurpFile(v.log());
  EXPECT_NE(std::string::npos, log.find("/known (object " + known_obj + "): block 2")) << log;
  EXPECT_NE(std::string::npos, log.find("/later (object " + later_obj + ") does not match")) << log;
  v.Unmount();
  EXPECT_TRUE(m.Unmount());
}

// --refresh: what the owner archives or removes later shows in a view that
// stays mounted; a file open across a refresh reads on.
TEST(ViewTest, ARefreshingViewFollowsItsOwner) {
  MountOptions opts;
  opts.extra_args = {"--namespace", "live"};
  TierfsMount m(opts);
  ASSERT_TRUE(m.Mount());
  const std::string first = Pattern(3 << 20, 8), second = Pattern(1 << 20, 9);
  ASSERT_EQ(0, WriteFile(m.path("first"), first));
  ASSERT_EQ(0, SetTierOfClosed(m.path("first"), "hdd"));
  ViewMount v(m.root() + "/view");
  CommandResult r = v.Mount({"--hdd", m.hdd(), "--refresh", "1"});
  ASSERT_EQ(0, r.exit_code) << r.out << r.err << SlurpFile(v.log());
  const int fd = open(v.path("first").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  struct stat sb;
  EXPECT_EQ(ENOENT, Err(stat(v.path("later").c_str(), &sb)));
  ASSERT_EQ(0, mkdir(m.path("later").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(m.path("later/second"), second));
  ASSERT_EQ(0, SetTierOfClosed(m.path("later/second"), "hdd"));
  std::string got;
  EXPECT_TRUE(WaitFor([&] { return ReadFile(v.path("later/second"), &got) == 0; }, 20))
      << SlurpFile(v.log());
  EXPECT_TRUE(got == second);
  ASSERT_EQ(0, unlink(m.path("first").c_str()));
  EXPECT_TRUE(WaitFor([&] { return Err(stat(v.path("first").c_str(), &sb)) == ENOENT; }, 20))
      << SlurpFile(v.log());
  // The handle opened before both refreshes reads what it opened.
  std::vector<char> buf(first.size());
  EXPECT_EQ(ssize_t(first.size()), PreadAll(fd, buf.data(), buf.size(), 0));
  EXPECT_TRUE(std::string(buf.data(), buf.size()) == first);
  close(fd);
  v.Unmount();
  EXPECT_TRUE(m.Unmount());
}

TEST(ViewTest, BadArgumentsAreRefusedClearly) {
  TierfsMount m;
  ASSERT_TRUE(m.Mount());
  ASSERT_TRUE(m.Unmount());
  const std::string mnt = m.root() + "/view";
  fs::create_directories(mnt);
  CommandResult r = RunTierfs({"view", mnt}, 10);
  EXPECT_EQ(2, r.exit_code);
  EXPECT_NE(std::string::npos, r.err.find("--hdd DIR is required")) << r.err;
  r = RunTierfs({"view", "--hdd", m.hdd(), "-o", "rw", mnt}, 10);
  EXPECT_EQ(2, r.exit_code);
  EXPECT_NE(std::string::npos, r.err.find("read-only")) << r.err;
  r = RunTierfs({"view", "--hdd", m.hdd(), "-o", "no_such_option", "-f", mnt}, 10);
  EXPECT_EQ(1, r.exit_code);
  EXPECT_NE(std::string::npos, r.err.find("bad mount options")) << r.err;
  r = RunTierfs({"view", "--hdd", m.hdd(), "--refresh=-1", mnt}, 10);
  EXPECT_EQ(2, r.exit_code);
  EXPECT_NE(std::string::npos, r.err.find("--refresh must be")) << r.err;
  r = RunTierfs({"view", "--hdd", m.hdd(), "--namespace", "nope", mnt}, 10);
  EXPECT_EQ(1, r.exit_code);
  EXPECT_NE(std::string::npos, r.err.find("namespace 'nope' on the HDD tier")) << r.err;
  fs::create_directories(m.hdd() + "/ns/second");
  r = RunTierfs({"view", "--hdd", m.hdd(), mnt}, 10);
  EXPECT_EQ(1, r.exit_code);
  EXPECT_NE(std::string::npos, r.err.find("holds 2 namespaces")) << r.err;
  r = RunTierfs({"view", "--hdd", m.root() + "/no-such-tier", mnt}, 10);
  EXPECT_EQ(1, r.exit_code);
  EXPECT_NE(std::string::npos, r.err.find("no-such-tier")) << r.err;
  EXPECT_FALSE(IsMountPoint(mnt));
  UnmountAndWait(mnt);
}

}  // namespace
}  // namespace tierfs_test

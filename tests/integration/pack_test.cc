// Mounting and packaging (issue 13): the mount-helper calling convention
// (tierfs SSD:HDD MOUNTPOINT -o ...), an /etc/fstab line through mount(8),
// the pid file, systemd's readiness protocol and unit, and make install.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

namespace fs = std::filesystem;

// The repository: TIERFS_BIN is BUILD/tierfs in it.
std::string RepoRoot() {
  return fs::path(TierfsBin()).parent_path().parent_path().string();
}

std::string MountOptionsOf(const std::string& mnt) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, found;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point, opts;
    f >> id >> parent >> dev >> root >> point >> opts;
    if (point == mnt) found = opts;
  }
  return found;
}

// The pid in STATE/tierfs.pid, or 0.
pid_t PidInFile(const std::string& state) {
  std::ifstream in(state + "/tierfs.pid");
  long pid = 0;
  in >> pid;
  return pid_t(pid);
}

TEST(PackTest, MountHelperConventionTakesLongAndMountOptions) {
  TierfsMount m;
  const std::string state = m.root() + "/state";
  // What mount.fuse3 runs for an fstab line: SOURCE MOUNTPOINT -o OPTS,
  // with mount(8)'s own options mixed in.
  CommandResult r = RunTierfs({m.ssd() + ":" + m.hdd(), m.mnt(), "-o",
                               "rw,nodev,nosuid,noatime,allow_other,_netdev,noauto,users,"
                               "x-systemd.automount,comment=ckpt,state=" +
                                   state + ",scan-interval=5,writeback-cache"});
  ASSERT_EQ(0, r.exit_code) << r.err;
  EXPECT_TRUE(IsMountPoint(m.mnt()));
  const std::string opts = MountOptionsOf(m.mnt());
  EXPECT_NE(std::string::npos, opts.find("nodev")) << opts;
  EXPECT_NE(std::string::npos, opts.find("nosuid")) << opts;
  EXPECT_NE(std::string::npos, opts.find("noatime")) << opts;
  ASSERT_EQ(0, WriteFile(m.path("f"), "data"));
  EXPECT_EQ("ssd", GetTier(m.path("f")));
  // state= was taken: the daemon locked that directory, not SSD/state.
  EXPECT_TRUE(fs::exists(state + "/daemon.lock"));
  EXPECT_FALSE(fs::exists(m.ssd() + "/state"));
  UnmountAndWait(m.mnt());

  // The tiers as -o ssd=,hdd= with a label as the source (fstab's field 1).
  r = RunTierfs({"ckpt", m.mnt(), "-o", "ssd=" + m.ssd() + ",hdd=" + m.hdd() + ",state=" + state});
  ASSERT_EQ(0, r.exit_code) << r.err;
  std::string back;
  EXPECT_EQ(0, ReadFile(m.path("f"), &back));
  EXPECT_EQ("data", back);
  UnmountAndWait(m.mnt());
}

TEST(PackTest, BadMountOptionsAreNamed) {
  TierfsMount m;
  const std::string src = m.ssd() + ":" + m.hdd();
  struct Case {
    std::vector<std::string> args;
    std::string named;
  } cases[] = {
      {{src, m.mnt(), "-o", "allow_other,frobnicate"}, "'frobnicate'"},
      {{src, m.mnt(), "-o", "state"}, "state"},
      {{src, m.mnt(), "-o", "writeback-cache=1"}, "writeback-cache"},
      {{src, m.mnt(), "-o", "threads=0"}, "threads"},
      {{src, m.mnt(), "-o", "max_read=lots"}, "max_read=lots"},
      {{src, m.mnt(), "-o", "max_read=2097152"}, "max_read=2097152"},
      {{"ckpt", m.mnt()}, "ckpt"},
      {{src, m.mnt(), "-o", "ssd=" + m.ssd()}, "--ssd"},
  };
  for (const Case& c : cases) {
    const CommandResult r = RunTierfs(c.args);
    EXPECT_EQ(2, r.exit_code) << c.named << ": " << r.err;
    EXPECT_NE(std::string::npos, r.err.find(c.named)) << r.err;
    EXPECT_FALSE(IsMountPoint(m.mnt()));
  }
}

TEST(PackTest, FstabLineMountsThroughMount8) {
  TierfsMount m;
  const std::string state = m.root() + "/state";
  const std::string fstab = m.root() + "/fstab";
  // mount(8) runs its helpers without PATH (util-linux drops it), and
  // mount.fuse3 runs the filesystem's command through /bin/sh: with type
  // fuse.tierfs that is `tierfs` from the shell's default PATH (where make
  // install puts it). The tierfs under test is not there, so this line
  // names it the way mount.fuse3 also takes, BINARY#SOURCE with type fuse;
  // the rest is the same: mount.fuse3 runs
  // `BINARY SSD:HDD MNT -o rw,state=...,allow_other,dev,suid`.
  {
    std::ofstream out(fstab);
    out << "# scratch fstab\n"
        << TierfsBin() << "#" << m.ssd() << ":" << m.hdd() << " " << m.mnt()
        << " fuse state=" << state << ",allow_other,nofail,x-systemd.requires=/srv 0 0\n";
  }
  CommandResult r = RunCommand({"mount", "-a", "-T", fstab}, 30);
  ASSERT_EQ(0, r.exit_code) << r.out << r.err;
  ASSERT_TRUE(IsMountPoint(m.mnt()));
  ASSERT_EQ(0, WriteFile(m.path("f"), "booted"));
  EXPECT_TRUE(fs::exists(state + "/daemon.lock"));
  pid_t pid = PidInFile(state);
  EXPECT_GT(pid, 0);
  r = RunCommand({"umount", m.mnt()}, 30);
  EXPECT_EQ(0, r.exit_code) << r.err;
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(pid); }, 30));
  EXPECT_FALSE(IsMountPoint(m.mnt()));

  // What mount(8) runs for type fuse.tierfs once make install put the
  // helper in /sbin: mount.fuse.tierfs SOURCE MNT -o OPTS -t fuse.tierfs,
  // with no PATH. The helper finds tierfs in its @SBINDIR@.
  const std::string helper = m.root() + "/mount.fuse.tierfs";
  r = RunCommand(
      {"sh", "-c",
       "sed 's|@SBINDIR@|" + fs::path(TierfsBin()).parent_path().string() + "|g' " + RepoRoot() +
           "/packaging/mount.fuse.tierfs.in > " + helper + " && chmod 0755 " + helper},
      10);
  ASSERT_EQ(0, r.exit_code) << r.err;
  r = RunCommand({"env", "-i", helper, m.ssd() + ":" + m.hdd(), m.mnt(), "-o",
                  "rw,state=" + state + ",allow_other", "-t", "fuse.tierfs"},
                 30);
  ASSERT_EQ(0, r.exit_code) << r.out << r.err;
  ASSERT_TRUE(IsMountPoint(m.mnt()));
  std::string back;
  EXPECT_EQ(0, ReadFile(m.path("f"), &back));
  EXPECT_EQ("booted", back);
  pid = PidInFile(state);
  r = RunCommand({"umount", m.mnt()}, 30);
  EXPECT_EQ(0, r.exit_code) << r.err;
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(pid); }, 30));
}

TEST(PackTest, PidFileRefusesALiveDaemonAndReplacesAStaleOne) {
  TierfsMount m;
  const std::string state = m.root() + "/state";
  ASSERT_EQ(0, mkdir(state.c_str(), 0700));
  // A live process whose command is tierfs (sleep under that name).
  const std::string fake = m.root() + "/tierfs";
  fs::create_symlink("/bin/sleep", fake);
  const pid_t live = fork();
  if (live == 0) {
    execl(fake.c_str(), "tierfs", "60", nullptr);
    _exit(127);
  }
  ASSERT_GT(live, 0);
  ASSERT_TRUE(WaitFor(
      [&] { return SlurpFile("/proc/" + std::to_string(live) + "/comm") == "tierfs\n"; }, 10));
  ASSERT_EQ(0, WriteFile(state + "/tierfs.pid", std::to_string(live) + "\n", 0644));
  const std::vector<std::string> args = {"--ssd",   m.ssd(), "--hdd", m.hdd(),
                                         "--state", state,   m.mnt()};
  CommandResult r = RunTierfs(args);
  EXPECT_EQ(1, r.exit_code) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("pid " + std::to_string(live))) << r.err;
  EXPECT_FALSE(IsMountPoint(m.mnt()));
  // Killed: the file is stale now and is replaced.
  kill(live, SIGKILL);
  waitpid(live, nullptr, 0);
  r = RunTierfs(args);
  ASSERT_EQ(0, r.exit_code) << r.err;
  const std::vector<pid_t> daemons = TierfsPidsWithArg(m.mnt());
  ASSERT_EQ(1u, daemons.size());
  EXPECT_EQ(daemons[0], PidInFile(state));
  struct stat st {};
  ASSERT_EQ(0, stat((state + "/tierfs.pid").c_str(), &st));
  EXPECT_EQ(0644u, st.st_mode & 07777);
  // SIGHUP (what ExecReload sends) reloads and does not unmount.
  ASSERT_EQ(0, kill(daemons[0], SIGHUP));
  EXPECT_TRUE(WaitFor(
      [&] { return SlurpFile(state + "/tierfs.log").find("policy reloaded") != std::string::npos; },
      15))
      << SlurpFile(state + "/tierfs.log");
  EXPECT_TRUE(IsMountPoint(m.mnt()));
  UnmountAndWait(m.mnt());
  EXPECT_FALSE(fs::exists(state + "/tierfs.pid")) << "left behind by a clean exit";
}

// A datagram socket in place of systemd's, as NOTIFY_SOCKET names it.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~NotifySocket() {
    close(fd_);
    unlink(path_.c_str());
  }
  bool bound() const { return bound_; }
  // The next datagram, or "" after `timeout_s`.
  std::string Next(int timeout_s) {
    pollfd p = {fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_s * 1000) != 1) return "";
    char buf[4096];
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, size_t(n)) : "";
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

TEST(PackTest, ReadyIsNotifiedOnceMountedAndStoppingAtUnmount) {
  TierfsMount m;
  NotifySocket sock(m.root() + "/notify");
  ASSERT_TRUE(sock.bound());
  CommandResult r;
  std::thread daemon([&] {
    r = RunCommand({"env", "NOTIFY_SOCKET=" + m.root() + "/notify", TierfsBin(), "-f",
                    m.ssd() + ":" + m.hdd(), m.mnt()},
                   60);
  });
  const std::string ready = sock.Next(20);
  EXPECT_EQ("READY=1", ready);
  // READY=1 means usable: the mount is there when it arrives.
  EXPECT_TRUE(IsMountPoint(m.mnt()));
  if (!ready.empty()) {
    EXPECT_EQ(0, WriteFile(m.path("f"), "x"));
  }
  ForceUnmount(m.mnt());
  EXPECT_EQ("STOPPING=1", sock.Next(20));
  daemon.join();
  EXPECT_EQ(0, r.exit_code) << r.err;
}

TEST(PackTest, SystemdUnitVerifies) {
  if (access("/usr/bin/systemd-analyze", X_OK) != 0 && access("/bin/systemd-analyze", X_OK) != 0)
    GTEST_SKIP() << "systemd-analyze is not installed (package systemd)";
  TierfsMount m;
  // As make install writes it, with the tierfs under test as @SBINDIR@.
  const std::string unit = m.root() + "/tierfs@ckpt.service";
  CommandResult r =
      RunCommand({"sh", "-c",
                  "sed 's|@SBINDIR@|" + fs::path(TierfsBin()).parent_path().string() + "|g' " +
                      RepoRoot() + "/packaging/tierfs@.service.in > " + unit},
                 10);
  ASSERT_EQ(0, r.exit_code) << r.err;
  r = RunCommand({"systemd-analyze", "verify", "--man=no", unit}, 60);
  EXPECT_EQ(0, r.exit_code) << r.out << r.err;
  EXPECT_EQ("", r.err) << "warnings";
  const std::string text = SlurpFile(unit);
  for (const char* line :
       {"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "EnvironmentFile=/etc/tierfs/%i.conf"})
    EXPECT_NE(std::string::npos, text.find(line)) << line;
}

TEST(PackTest, MakeInstallPutsEverythingUnderDestdir) {
  TierfsMount m;
  const std::string dest = m.root() + "/dest";
  const std::string build = fs::path(TierfsBin()).parent_path().string();
  CommandResult r = RunCommand({"make", "-s", "-C", RepoRoot(), "install", "DESTDIR=" + dest,
                                "PREFIX=/usr", "BUILD=" + build},
                               120);
  ASSERT_EQ(0, r.exit_code) << r.out << r.err;
  std::vector<std::string> landed;
  for (const auto& e : fs::recursive_directory_iterator(dest))
    if (!e.is_directory()) landed.push_back(e.path().string().substr(dest.size()));
  std::sort(landed.begin(), landed.end());
  const std::vector<std::string> want = {
      "/sbin/mount.fuse.tierfs",
      "/usr/bin/tierctl",
      "/usr/lib/systemd/system/tierfs@.service",
      "/usr/sbin/tierfs",
      "/usr/share/bash-completion/completions/tierctl",
      "/usr/share/doc/tierfs/example.conf",
      "/usr/share/man/man1/tierctl.1",
      "/usr/share/man/man5/tierfs.policy.5",
      "/usr/share/man/man8/tierfs.8",
  };
  EXPECT_EQ(want, landed);
  EXPECT_NE(std::string::npos, SlurpFile(dest + "/usr/lib/systemd/system/tierfs@.service")
                                   .find("ExecStart=/usr/sbin/tierfs -f"));
  EXPECT_NE(std::string::npos, SlurpFile(dest + "/sbin/mount.fuse.tierfs").find("PATH=/usr/sbin:"));
  // The completion offers the subcommands.
  r = RunCommand({"bash", "-c",
                  "source " + dest +
                      "/usr/share/bash-completion/completions/tierctl; "
                      "COMP_WORDS=(tierctl p); COMP_CWORD=1; _tierctl; echo ${COMPREPLY[@]}"},
                 10);
  EXPECT_EQ("pin policy\n", r.out) << r.err;
}

// Size of the mount's filesystem in MiB as df sees it.
double TotalMiB(const std::string& mnt) {
  struct statvfs v {};
  if (statvfs(mnt.c_str(), &v) != 0) return -1;
  return double(v.f_blocks) * double(v.f_frsize) / (1 << 20);
}

TEST(PackTest, DfCountsAFilesystemSharedByBothTiersOnce) {
  MountOptions o;
  o.ssd_tmpfs_mb = 64;  // m.ssd(): a 64 MiB tmpfs, m.hdd(): a 128 MiB one
  o.hdd_tmpfs_mb = 128;
  TierfsMount m(o);
  const std::string a = m.ssd() + "/a", b = m.ssd() + "/b";
  ASSERT_EQ(0, mkdir(a.c_str(), 0755));
  ASSERT_EQ(0, mkdir(b.c_str(), 0755));
  // Both tiers on the 64 MiB tmpfs: 64, not 128.
  CommandResult r = RunTierfs({"--ssd", a, "--hdd", b, m.mnt()});
  ASSERT_EQ(0, r.exit_code) << r.err;
  EXPECT_NEAR(64.0, TotalMiB(m.mnt()), 64 * 0.05);
  UnmountAndWait(m.mnt());
  // One tier on each tmpfs: both count.
  r = RunTierfs({"--ssd", m.ssd(), "--hdd", m.hdd(), "--state", a + "/state2", m.mnt()});
  ASSERT_EQ(0, r.exit_code) << r.err;
  EXPECT_NEAR(192.0, TotalMiB(m.mnt()), 192 * 0.05);
  UnmountAndWait(m.mnt());
}

std::string GetX(const std::string& path, const std::string& name) {
  char buf[4096];
  const ssize_t n = getxattr(path.c_str(), name.c_str(), buf, sizeof buf);
  return n < 0 ? "<errno " + std::to_string(errno) + ">" : std::string(buf, size_t(n));
}

class PackXattrTest : public MountTest {};

// They are read by name and never listed: listed, cp -a, rsync -X and tar
// --xattrs copied user.tierfs.object (a path on this mount's SSD tier)
// onto other filesystems, where it meant nothing.
TEST_F(PackXattrTest, TierfsAttributesReadByNameAreNotListedAndCopiesDoNotFail) {
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("d/sub").c_str(), 0755));
  for (const char* f : {"d/f1", "d/f2", "d/sub/f3"}) ASSERT_EQ(0, WriteFile(P(f), f));
  ASSERT_EQ(0, link(P("d/f1").c_str(), P("d/sub/f1-link").c_str()));  // counted once
  ASSERT_EQ(0, SetTierOfClosed(P("d/f2"), "hdd"));

  ASSERT_EQ(0, setxattr(P("d/f2").c_str(), "user.note", "n", 1, 0));
  CommandResult r = RunCommand({"getfattr", "-n", "user.tierfs.tier", P("d/f2")}, 10);
  ASSERT_EQ(0, r.exit_code) << r.err;
  EXPECT_NE(std::string::npos, r.out.find("user.tierfs.tier=\"hdd\"")) << r.out;
  const std::string object = ObjectPathOn(fs_.hdd(), Ino(P("d/f2")));
  EXPECT_EQ(object, GetX(P("d/f2"), "user.tierfs.object"));
  r = RunCommand({"getfattr", "-d", "-m", "-", P("d/f2")}, 10);
  EXPECT_NE(std::string::npos, r.out.find("user.note=\"n\"")) << r.out;
  EXPECT_EQ(std::string::npos, r.out.find("user.tierfs")) << r.out;
  EXPECT_EQ("d/f2", SlurpFile(object));  // the object holds the file's bytes

  // A directory tells the tiers of the regular files below it.
  EXPECT_EQ("ssd:2,hdd:1", GetX(P("d"), "user.tierfs.tier"));
  EXPECT_EQ(0, listxattr(P("d").c_str(), nullptr, 0));

  // Read-only ones: their own value is accepted (a copy an older tierfs
  // listed them for), another is EOPNOTSUPP, which cp and rsync pass over.
  const std::string obj1 = GetX(P("d/f1"), "user.tierfs.object");
  EXPECT_EQ(0, Err(setxattr(P("d/f1").c_str(), "user.tierfs.object", obj1.data(), obj1.size(), 0)));
  EXPECT_EQ(EOPNOTSUPP, Err(setxattr(P("d/f1").c_str(), "user.tierfs.object", "x", 1, 0)));
  EXPECT_EQ(0, Err(setxattr(P("d").c_str(), "user.tierfs.tier", "ssd:2,hdd:1", 11, 0)));
  EXPECT_EQ(EOPNOTSUPP, Err(setxattr(P("d").c_str(), "user.tierfs.tier", "ssd:9", 5, 0)));

  // A checkpoint generation the policy engine recognized (a Hugging Face
  // checkpoint-N published by a rename) tells its series and number.
  ASSERT_EQ(0, mkdir(P("run").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("run/tmp").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("run/tmp/model.safetensors"), "weights"));
  ASSERT_EQ(0, Err(rename(P("run/tmp").c_str(), P("run/checkpoint-100").c_str())));
  EXPECT_TRUE(WaitFor(
      [&] {
        return GetX(P("run/checkpoint-100/model.safetensors"), "user.tierfs.generation") == "100";
      },
      20));
  EXPECT_NE("", GetX(P("run/checkpoint-100"), "user.tierfs.series"));
  EXPECT_EQ("<errno " + std::to_string(ENODATA) + ">", GetX(P("d/f1"), "user.tierfs.series"));

  // cp -a within the mount and out of it: the user attribute goes along,
  // no tierfs one does.
  for (const std::string& to : {P("copy"), fs_.root() + "/copy-out"}) {
    r = RunCommand({"cp", "-a", P("d"), to}, 30);
    EXPECT_EQ(0, r.exit_code) << r.err;
    EXPECT_EQ("", r.err);
    std::string back;
    EXPECT_EQ(0, ReadFile(to + "/sub/f3", &back));
    EXPECT_EQ("d/sub/f3", back);
    EXPECT_EQ("n", GetX(to + "/f2", "user.note"));
    r = RunCommand({"getfattr", "-d", "-m", "-", to + "/f2"}, 10);
    EXPECT_EQ(std::string::npos, r.out.find("user.tierfs")) << to << ": " << r.out;
  }
  EXPECT_EQ("ssd", GetX(P("copy/f2"), "user.tierfs.tier")) << "the policy places the copy";
}

// Every --option in `help` (a program's --help output): "--" then a
// lowercase letter, then letters and dashes, ending in a letter. (No
// std::regex: g++ 12 at -O1, the ASan build, warns inside <regex>.)
std::set<std::string> HelpOptions(const std::string& help) {
  std::set<std::string> names;
  auto lower = [](char ch) { return ch >= 'a' && ch <= 'z'; };
  for (size_t at = help.find("--"); at != std::string::npos; at = help.find("--", at + 2)) {
    size_t end = at + 2;
    while (end < help.size() && (lower(help[end]) || help[end] == '-')) ++end;
    while (end > at + 2 && help[end - 1] == '-') --end;
    if (end > at + 2 && lower(help[at + 2])) names.insert(help.substr(at, end - at));
  }
  return names;
}

TEST(PackTest, ManPagesLintCleanAndNameEveryHelpOption) {
  for (const char* page : {"tierctl.1", "tierfs.policy.5", "tierfs.8"}) {
    const std::string path = RepoRoot() + "/man/" + page;
    ASSERT_TRUE(fs::exists(path)) << path;
    const CommandResult r = RunCommand({"groff", "-man", "-ww", "-z", path}, 30);
    EXPECT_EQ(0, r.exit_code) << page << ": " << r.err;
    EXPECT_EQ("", r.err) << page << " has warnings";
  }
  struct {
    std::string bin, page;
  } progs[] = {{TierfsBin(), "tierfs.8"},
               {fs::path(TierfsBin()).parent_path().string() + "/tierctl", "tierctl.1"}};
  for (const auto& p : progs) {
    const CommandResult help = RunCommand({p.bin, "--help"}, 10);
    ASSERT_EQ(0, help.exit_code) << p.bin << ": " << help.err;
    // The page as text: "\-" is how a page writes the '-' of an option.
    std::string man = SlurpFile(RepoRoot() + "/man/" + p.page);
    for (size_t pos; (pos = man.find("\\-")) != std::string::npos;) man.replace(pos, 2, "-");
    const std::set<std::string> names = HelpOptions(help.out);
    EXPECT_GT(names.size(), 2u) << help.out;
    for (const std::string& name : names)
      EXPECT_NE(std::string::npos, man.find(name))
          << name << " of " << p.bin << " --help is not in " << p.page;
  }
}

}  // namespace
}  // namespace tierfs_test

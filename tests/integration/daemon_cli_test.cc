// The daemon's hardening (issue 10): where it logs, which mountpoints,
// option values and state directories it refuses, remounting at once after
// an unmount, and a request that fails instead of an exception ending it.
#include <dirent.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

// Exit `code` (not a crash, not a hang) with one line on stderr that holds
// every string of `names`.
void ExpectRefused(const CommandResult& r, int code, const std::vector<std::string>& names) {
  EXPECT_FALSE(r.timed_out) << "tierfs did not exit (it probably mounted)";
  EXPECT_EQ(code, r.exit_code) << r.err;
  std::string e = r.err;
  while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
  EXPECT_FALSE(e.empty()) << "no reason on stderr";
  EXPECT_EQ(std::string::npos, e.find('\n')) << "stderr is not one line:\n" << r.err;
  for (const auto& n : names) EXPECT_NE(std::string::npos, e.find(n)) << n << " not in: " << e;
}

TEST(DaemonCliTest, BackgroundDaemonLogsToStateLog) {
  TierfsMount fs;
  const std::string state = fs.root() + "/state";
  ASSERT_EQ(0, mkdir(state.c_str(), 0700));
  CommandResult r = RunTierfs(
      {"--ssd", fs.ssd(), "--hdd", fs.hdd(), "--state", state, "-o", "allow_other", fs.mnt()});
  ASSERT_EQ(0, r.exit_code) << r.err;
  ASSERT_EQ(0, WriteFile(fs.path("f"), "moved to hdd"));
  EXPECT_EQ(0, SetTierOfClosed(fs.path("f"), "hdd"));
  EXPECT_EQ("hdd", GetTier(fs.path("f")));
  UnmountAndWait(fs.mnt());
  const std::string log = SlurpFile(state + "/tierfs.log");
  EXPECT_NE(std::string::npos, log.find("moved inode")) << "log:\n" << log;
  EXPECT_NE(std::string::npos, log.find("unmounted " + fs.mnt())) << "log:\n" << log;
  struct stat st {};
  ASSERT_EQ(0, stat((state + "/tierfs.log").c_str(), &st));
  EXPECT_EQ(0600u, st.st_mode & 07777);
}

TEST(DaemonCliTest, RelativePathsKeepWorkingInTheBackground) {
  // The daemon changes to / once in the background: relative tier paths
  // once named other directories then, and every move failed with EIO.
  TierfsMount fs;
  CommandResult r = RunCommand(
      {"sh", "-c", "cd " + fs.root() + " && exec " + TierfsBin() + " --ssd ssd --hdd hdd mnt"}, 10);
  ASSERT_EQ(0, r.exit_code) << r.err;
  ASSERT_EQ(0, WriteFile(fs.path("f"), "archived"));
  EXPECT_EQ(0, SetTierOfClosed(fs.path("f"), "hdd"));
  EXPECT_EQ("hdd", GetTier(fs.path("f")));
  std::string back;
  EXPECT_EQ(0, ReadFile(fs.path("f"), &back));
  EXPECT_EQ("archived", back);
  UnmountAndWait(fs.mnt());
}

TEST(DaemonCliTest, ForegroundDaemonLogsToStderr) {
  TierfsMount fs;
  CommandResult r;
  std::thread daemon([&] {
    r = RunCommand({TierfsBin(), "--ssd", fs.ssd(), "--hdd", fs.hdd(), "-f", fs.mnt()}, 60);
  });
  const bool mounted = WaitFor([&] { return IsMountPoint(fs.mnt()); }, 15);
  if (mounted) {
    EXPECT_EQ(0, WriteFile(fs.path("f"), "moved to hdd"));
    EXPECT_EQ(0, SetTierOfClosed(fs.path("f"), "hdd"));
  }
  ForceUnmount(fs.mnt());
  daemon.join();
  ASSERT_TRUE(mounted) << r.err;
  EXPECT_EQ(0, r.exit_code);
  EXPECT_NE(std::string::npos, r.err.find("moved inode")) << "stderr:\n" << r.err;
  EXPECT_EQ(std::string::npos, r.out.find("moved inode")) << "stdout:\n" << r.out;
}

// --- Option values ---

TEST(DaemonCliTest, NonsenseNumericOptionsAreRefused) {
  TierfsMount fs;
  const std::vector<std::vector<std::string>> bad = {
      {"--threads", "-1"},
      {"--threads", "0"},
      {"--move-bandwidth", "-5"},
      {"--max-moves", "-1"},
      {"--max-moves", "0"},
      {"--scan-interval", "-1"},
      {"--scan-interval", "0"},
      {"--ssd-high-watermark", "1.5"},
      {"--ssd-low-watermark", "-0.1"},
      {"--ssd-low-watermark", "0.9", "--ssd-high-watermark", "0.5"},
  };
  for (const auto& args : bad) {
    std::vector<std::string> a = {"--ssd", fs.ssd(), "--hdd", fs.hdd(), "-f"};
    a.insert(a.end(), args.begin(), args.end());
    a.push_back(fs.mnt());
    SCOPED_TRACE(args[0] + " " + args[1]);
    ExpectRefused(RunTierfs(a), 2, {args[0]});
    EXPECT_FALSE(IsMountPoint(fs.mnt()));
    ForceUnmount(fs.mnt());
  }
}

// Size-valued options take the policy file's units (tierfs.policy(5) UNITS)
// as well as plain bytes; before, --map-size and --audit-max-bytes took only
// bytes ("the argument ('4M') for option '--map-size' is invalid"). A bad
// value is exit 2 naming the option, as for every option value.
TEST(DaemonCliTest, SizeOptionsTakeThePolicyFilesUnits) {
  TierfsMount fs;
  const std::vector<std::vector<std::string>> bad = {
      {"--map-size", "4X"},         {"--map-size", "512K"},        {"--map-size", "-1"},
      {"--map-size", ""},           {"--audit-max-bytes", "1000"}, {"--audit-max-bytes", "1Q"},
      {"--write-estimate", "lots"}, {"--log-file-size", "1000"},   {"--log-file-size", "2T"},
  };
  for (const auto& args : bad) {
    std::vector<std::string> a = {"--ssd", fs.ssd(), "--hdd", fs.hdd(), "-f"};
    a.insert(a.end(), args.begin(), args.end());
    a.push_back(fs.mnt());
    SCOPED_TRACE(args[0] + " " + args[1]);
    ExpectRefused(RunTierfs(a), 2, {args[0]});
    EXPECT_FALSE(IsMountPoint(fs.mnt()));
    ForceUnmount(fs.mnt());
  }
  // With units, as options and as -o name=value, and in plain bytes.
  const std::vector<std::pair<std::vector<std::string>, off_t>> good = {
      {{"--map-size", "4M", "--audit-max-bytes", "64KiB", "--log-file-size", "1MB"}, 4 << 20},
      {{"-o", "map-size=1.5MiB,audit-max-bytes=1k"}, 3 << 19},
      {{"--map-size", "2097152", "--audit-max-bytes", "0", "--write-estimate", "64M"}, 2 << 20},
  };
  for (const auto& [args, map_bytes] : good) {
    SCOPED_TRACE(args[1]);
    const std::string state = fs.root() + "/state-" + std::to_string(map_bytes);
    std::vector<std::string> a = {"--ssd", fs.ssd(), "--hdd", fs.hdd(), "--state", state};
    a.insert(a.end(), args.begin(), args.end());
    a.push_back(fs.mnt());
    CommandResult r = RunTierfs(a);
    EXPECT_EQ(0, r.exit_code) << r.err;
    if (r.exit_code != 0) continue;
    EXPECT_EQ(0, WriteFile(fs.path("f"), "x"));
    UnmountAndWait(fs.mnt());
    struct stat st {};
    ASSERT_EQ(0, stat((state + "/data.mdb").c_str(), &st));
    EXPECT_EQ(map_bytes, st.st_size);  // ls shows the map's size
  }
}

// Two directories where one MOUNTPOINT goes: refused, naming the first
// (before, the last was mounted and the first silently ignored).
TEST(DaemonCliTest, ASecondMountpointIsRefused) {
  TierfsMount fs;
  const std::string other = fs.root() + "/other";
  ASSERT_EQ(0, mkdir(other.c_str(), 0755));
  ExpectRefused(RunTierfs({"--ssd", fs.ssd(), "--hdd", fs.hdd(), "-f", other, fs.mnt()}), 2,
                {"unexpected argument " + other});
  EXPECT_FALSE(IsMountPoint(fs.mnt()));
  ForceUnmount(fs.mnt());
}

// --- Mountpoint nesting ---

// Mounts refused because `mnt` and a tier or the state contain each other;
// unmounts whatever a wrong acceptance mounted.
void ExpectNestingRefused(const std::vector<std::string>& args, const std::string& mnt,
                          const std::vector<std::string>& names) {
  CommandResult r = RunTierfs(args);
  ExpectRefused(r, 1, names);
  EXPECT_FALSE(IsMountPoint(mnt));
  ForceUnmount(mnt);
}

TEST(DaemonCliTest, MountpointInsideATierOrStateIsRefused) {
  TierfsMount fs;
  const std::string state = fs.root() + "/state";
  const std::string in_ssd = fs.ssd() + "/sub", in_hdd = fs.hdd() + "/sub";
  const std::string in_state = state + "/sub";
  ASSERT_EQ(0, mkdir(state.c_str(), 0700));
  for (const auto& d : {in_ssd, in_hdd, in_state}) ASSERT_EQ(0, mkdir(d.c_str(), 0755));
  {
    SCOPED_TRACE("mountpoint is the ssd tier");
    ExpectNestingRefused({"--ssd", fs.ssd(), "--hdd", fs.hdd(), "--state", state, "-f", fs.ssd()},
                         fs.ssd(), {fs.ssd()});
  }
  {
    SCOPED_TRACE("mountpoint inside the ssd tier");
    ExpectNestingRefused({"--ssd", fs.ssd(), "--hdd", fs.hdd(), "--state", state, "-f", in_ssd},
                         in_ssd, {in_ssd, fs.ssd()});
  }
  {
    SCOPED_TRACE("mountpoint inside the hdd tier");
    ExpectNestingRefused({"--ssd", fs.ssd(), "--hdd", fs.hdd(), "--state", state, "-f", in_hdd},
                         in_hdd, {in_hdd, fs.hdd()});
  }
  {
    SCOPED_TRACE("mountpoint inside the state directory");
    ExpectNestingRefused({"--ssd", fs.ssd(), "--hdd", fs.hdd(), "--state", state, "-f", in_state},
                         in_state, {in_state, state});
  }
  {
    SCOPED_TRACE("mountpoint inside the default state directory");
    const std::string def = fs.ssd() + "/state/sub";
    ASSERT_EQ(0, mkdir((fs.ssd() + "/state").c_str(), 0700));
    ASSERT_EQ(0, mkdir(def.c_str(), 0755));
    ExpectNestingRefused({"--ssd", fs.ssd(), "--hdd", fs.hdd(), "-f", def}, def, {def});
  }
}

TEST(DaemonCliTest, TierOrStateInsideMountpointIsRefused) {
  TierfsMount fs;
  const std::string ssd = fs.mnt() + "/ssd", hdd = fs.mnt() + "/hdd";
  const std::string state = fs.mnt() + "/state";
  for (const auto& d : {ssd, hdd}) ASSERT_EQ(0, mkdir(d.c_str(), 0755));
  ASSERT_EQ(0, mkdir(state.c_str(), 0700));
  {
    SCOPED_TRACE("ssd tier inside the mountpoint");
    ExpectNestingRefused({"--ssd", ssd, "--hdd", fs.hdd(), "-f", fs.mnt()}, fs.mnt(),
                         {ssd, fs.mnt()});
  }
  {
    SCOPED_TRACE("hdd tier inside the mountpoint");
    ExpectNestingRefused({"--ssd", fs.ssd(), "--hdd", hdd, "-f", fs.mnt()}, fs.mnt(),
                         {hdd, fs.mnt()});
  }
  {
    SCOPED_TRACE("state directory inside the mountpoint");
    ExpectNestingRefused({"--ssd", fs.ssd(), "--hdd", fs.hdd(), "--state", state, "-f", fs.mnt()},
                         fs.mnt(), {state, fs.mnt()});
  }
}

// The same tier directory reached through a bind mount: the names differ,
// the directory is the same.
TEST(DaemonCliTest, MountpointInsideATierByAnotherPathIsRefused) {
  TierfsMount fs;
  const std::string alias = fs.root() + "/alias";
  ASSERT_EQ(0, mkdir(alias.c_str(), 0755));
  ASSERT_EQ(0, mkdir((fs.hdd() + "/sub").c_str(), 0755));
  ASSERT_EQ(0, mount(fs.hdd().c_str(), alias.c_str(), nullptr, MS_BIND, nullptr))
      << strerror(errno);
  const std::string mnt = alias + "/sub";
  ExpectNestingRefused({"--ssd", fs.ssd(), "--hdd", fs.hdd(), "-f", mnt}, mnt, {mnt, fs.hdd()});
  umount2(alias.c_str(), MNT_DETACH);
}

// One directory as both tiers, however it is spelt, or one tier inside the
// other: refused (exit 1, as tierfs(8) lists it among refused setups) with a
// message that says so, before anything is created in it. Before, the
// daemon created the state and the namespace directories there and then
// failed on something else, e.g. "state ... is in use by tierfs pid N" when
// a mount already used that directory as its SSD tier.
TEST(DaemonCliTest, OneDirectoryAsBothTiersIsRefused) {
  TierfsMount fs;
  const std::string one = fs.root() + "/one", link = fs.root() + "/link";
  const std::string sub = one + "/sub";
  ASSERT_EQ(0, mkdir(one.c_str(), 0755));
  ASSERT_EQ(0, mkdir(sub.c_str(), 0755));
  ASSERT_EQ(0, symlink(one.c_str(), link.c_str()));
  const std::string same = "the same directory was given as both tiers";
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {one, one}, {one, one + "/"}, {one, sub + "/../."}, {one, link}, {link + "/", one}};
  for (const auto& [ssd, hdd] : pairs) {
    SCOPED_TRACE("--ssd " + ssd + " --hdd " + hdd);
    ExpectNestingRefused({"--ssd", ssd, "--hdd", hdd, "-f", fs.mnt()}, fs.mnt(), {same});
    EXPECT_EQ(std::vector<std::string>{"sub"}, ListDir(one)) << "something was created";
    EXPECT_TRUE(ListDir(sub).empty()) << "something was created";
  }
  {
    SCOPED_TRACE("hdd tier inside the ssd tier");
    ExpectNestingRefused({"--ssd", link, "--hdd", sub, "-f", fs.mnt()}, fs.mnt(),
                         {"the HDD tier " + sub + " is inside the SSD tier " + link});
    EXPECT_EQ(std::vector<std::string>{"sub"}, ListDir(one));
    EXPECT_TRUE(ListDir(sub).empty());
  }
  {
    SCOPED_TRACE("ssd tier inside the hdd tier");
    ExpectNestingRefused({"--ssd", sub, "--hdd", one, "-f", fs.mnt()}, fs.mnt(),
                         {"the SSD tier " + sub + " is inside the HDD tier " + one});
    EXPECT_EQ(std::vector<std::string>{"sub"}, ListDir(one));
    EXPECT_TRUE(ListDir(sub).empty());
  }
  {
    SCOPED_TRACE("a directory another mount uses as its ssd tier");
    ASSERT_TRUE(fs.Mount());
    const std::string other = fs.root() + "/other";
    ASSERT_EQ(0, mkdir(other.c_str(), 0755));
    ExpectNestingRefused({"--ssd", fs.ssd(), "--hdd", fs.ssd(), "-f", other}, other, {same});
    EXPECT_TRUE(fs.Unmount());
  }
}

}  // namespace
}  // namespace tierfs_test

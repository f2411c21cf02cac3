// The command line: argument errors, busy mount points, state ownership,
// background mode and -o passthrough.
#include <dirent.h>
#include <signal.h>
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
#include "tests/integration/tierctl_util.h"

namespace tierfs_test {
namespace {

// Non-zero exit (not a crash, not a hang) with a single non-empty line on stderr.
void ExpectOneLineError(const CommandResult& r) {
  EXPECT_FALSE(r.timed_out) << "tierfs did not exit (it probably mounted)";
  EXPECT_NE(0, r.exit_code);
  EXPECT_LT(r.exit_code, 128) << "killed by signal " << r.exit_code - 128;
  std::string e = r.err;
  while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
  EXPECT_FALSE(e.empty()) << "no reason on stderr";
  EXPECT_EQ(std::string::npos, e.find('\n')) << "stderr is not one line:\n" << r.err;
}

TEST(CliTest, MissingSsdDirectory) {
  TierfsMount fs;
  CommandResult r =
      RunTierfs({"--ssd", fs.root() + "/no-such-dir", "--hdd", fs.hdd(), "-f", fs.mnt()});
  ExpectOneLineError(r);
  EXPECT_FALSE(IsMountPoint(fs.mnt()));
}

TEST(CliTest, MissingHddDirectory) {
  TierfsMount fs;
  CommandResult r =
      RunTierfs({"--ssd", fs.ssd(), "--hdd", fs.root() + "/no-such-dir", "-f", fs.mnt()});
  ExpectOneLineError(r);
  EXPECT_FALSE(IsMountPoint(fs.mnt()));
}

TEST(CliTest, MissingSsdOption) {
  TierfsMount fs;
  CommandResult r = RunTierfs({"--hdd", fs.hdd(), "-f", fs.mnt()});
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(0, r.exit_code);
  EXPECT_LT(r.exit_code, 128);
  EXPECT_FALSE(r.err.empty());
  EXPECT_FALSE(IsMountPoint(fs.mnt()));
}

TEST(CliTest, TierPathIsAFile) {
  TierfsMount fs;
  std::string file = fs.root() + "/plainfile";
  ASSERT_EQ(0, WriteFile(file, "not a directory"));
  ExpectOneLineError(RunTierfs({"--ssd", fs.ssd(), "--hdd", file, "-f", fs.mnt()}));
  ExpectOneLineError(RunTierfs({"--ssd", file, "--hdd", fs.hdd(), "-f", fs.mnt()}));
  EXPECT_FALSE(IsMountPoint(fs.mnt()));
  std::string data;
  ASSERT_EQ(0, ReadFile(file, &data));
  EXPECT_EQ("not a directory", data);
}

TEST(CliTest, MissingMountpoint) {
  TierfsMount fs;
  ExpectOneLineError(
      RunTierfs({"--ssd", fs.ssd(), "--hdd", fs.hdd(), "-f", fs.root() + "/no-such-mnt"}));
}

TEST(CliTest, MountpointAlreadyMounted) {
  TierfsMount fs;
  ASSERT_TRUE(fs.Mount());
  ASSERT_EQ(0, WriteFile(fs.path("f"), "first"));
  TierfsMount other;  // fresh tiers, same mount point
  CommandResult r = RunTierfs({"--ssd", other.ssd(), "--hdd", other.hdd(), "-f", fs.mnt()});
  ExpectOneLineError(r);
  EXPECT_EQ(1, MountCount(fs.mnt())) << "a second mount was stacked on the busy mount point";
  while (MountCount(fs.mnt()) > 1) {
    RunCommand({"umount", fs.mnt()}, 20);
  }
  std::string data;
  EXPECT_EQ(0, ReadFile(fs.path("f"), &data));
  EXPECT_EQ("first", data);
  EXPECT_TRUE(fs.Unmount());
}

// A daemon killed without unmounting leaves a mount that answers ENOTCONN.
// tierctl and a new mount say so and how to clear it (they said "no control
// socket" and "something is mounted there").
TEST(CliTest, ADeadMountIsNamedWithItsCure) {
  TierfsMount fs;
  ASSERT_TRUE(fs.Mount());
  fs.SignalAndWait(SIGKILL, 30);
  const CommandResult status = Tierctl({"status", fs.mnt()});
  EXPECT_EQ(1, status.exit_code);
  EXPECT_NE(std::string::npos, status.err.find("its daemon is gone")) << status.err;
  EXPECT_NE(std::string::npos, status.err.find("fusermount3 -u " + fs.mnt())) << status.err;
  const CommandResult again = RunTierfs({"--ssd", fs.ssd(), "--hdd", fs.hdd(), "-f", fs.mnt()});
  ExpectOneLineError(again);
  EXPECT_NE(std::string::npos, again.err.find("whose daemon is gone; unmount it first: "
                                              "fusermount3 -u " +
                                              fs.mnt()))
      << again.err;
  fs.Kill9();  // detaches the dead mount
  ASSERT_TRUE(fs.Mount());
}

TEST(CliTest, StateDirOfAnotherTierPair) {
  TierfsMount fs;
  std::string state = fs.root() + "/state";
  ASSERT_EQ(0, mkdir(state.c_str(), 0700));
  fs.options().state_dir = state;
  ASSERT_TRUE(fs.Mount());
  ASSERT_EQ(0, WriteFile(fs.path("f"), "kept"));
  ASSERT_TRUE(fs.Unmount());
  std::string hdd2 = fs.root() + "/hdd2";
  ASSERT_EQ(0, mkdir(hdd2.c_str(), 0755));
  ExpectOneLineError(
      RunTierfs({"--ssd", fs.ssd(), "--hdd", hdd2, "--state", state, "-f", fs.mnt()}));
  EXPECT_FALSE(IsMountPoint(fs.mnt()));
  {
    SCOPED_TRACE("tiers swapped");
    ExpectOneLineError(
        RunTierfs({"--ssd", fs.hdd(), "--hdd", fs.ssd(), "--state", state, "-f", fs.mnt()}));
  }
  EXPECT_FALSE(IsMountPoint(fs.mnt()));
  ForceUnmount(fs.mnt());
  // The rightful pair still mounts and shows the data.
  ASSERT_TRUE(fs.Mount());
  std::string data;
  EXPECT_EQ(0, ReadFile(fs.path("f"), &data));
  EXPECT_EQ("kept", data);
}

TEST(CliTest, DefaultStateRefusesAnotherHddTier) {
  TierfsMount fs;
  ASSERT_TRUE(fs.Mount());
  ASSERT_EQ(0, WriteFile(fs.path("f"), "kept"));
  ASSERT_TRUE(fs.Unmount());
  std::string hdd2 = fs.root() + "/hdd2";
  ASSERT_EQ(0, mkdir(hdd2.c_str(), 0755));
  ExpectOneLineError(RunTierfs({"--ssd", fs.ssd(), "--hdd", hdd2, "-f", fs.mnt()}));
  ForceUnmount(fs.mnt());
  ASSERT_TRUE(fs.Mount());
  std::string data;
  EXPECT_EQ(0, ReadFile(fs.path("f"), &data));
  EXPECT_EQ("kept", data);
}

TEST(CliTest, CustomStateDirIsUsed) {
  TierfsMount fs;
  std::string state = fs.root() + "/state";
  ASSERT_EQ(0, mkdir(state.c_str(), 0700));
  fs.options().state_dir = state;
  ASSERT_TRUE(fs.Mount());
  ASSERT_EQ(0, WriteFile(fs.path("f"), "x"));
  ASSERT_TRUE(fs.Unmount());
  EXPECT_FALSE(ListDir(state).empty()) << "nothing was written to --state";
  ASSERT_TRUE(fs.Mount());
  std::string data;
  EXPECT_EQ(0, ReadFile(fs.path("f"), &data));
  EXPECT_EQ("x", data);
}

TEST(CliTest, BackgroundModeReturnsWhenMounted) {
  TierfsMount fs;
  struct stat parent {};
  ASSERT_EQ(0, stat(fs.root().c_str(), &parent));
  CommandResult r = RunCommand({TierfsBin(), "--ssd", fs.ssd(), "--hdd", fs.hdd(), fs.mnt()}, 20);
  EXPECT_FALSE(r.timed_out);
  ASSERT_EQ(0, r.exit_code) << r.err;
  struct stat st {};
  ASSERT_EQ(0, stat(fs.mnt().c_str(), &st));
  EXPECT_NE(parent.st_dev, st.st_dev) << "command returned before the mount was ready";
  EXPECT_TRUE(IsMountPoint(fs.mnt()));
  EXPECT_EQ(0, WriteFile(fs.path("bg"), "background"));
  std::vector<pid_t> pids = TierfsPidsWithArg(fs.mnt());
  EXPECT_EQ(1u, pids.size()) << "expected one daemon process for " << fs.mnt();
  ASSERT_EQ(0, RunCommand({"fusermount3", "-u", fs.mnt()}, 30).exit_code);
  for (pid_t p : pids)
    EXPECT_TRUE(WaitFor([&] { return ProcessGone(p); }, 30)) << "daemon " << p << " did not exit";
  EXPECT_FALSE(IsMountPoint(fs.mnt()));
  // The data written in background mode is there on the next mount.
  ASSERT_TRUE(fs.Mount());
  std::string data;
  EXPECT_EQ(0, ReadFile(fs.path("bg"), &data));
  EXPECT_EQ("background", data);
}

TEST(CliTest, AllowOtherIsPassedThrough) {
  const Creds user{12345, 12345, {}};
  std::string mnt;
  {
    MountOptions o;
    o.allow_other = false;
    TierfsMount fs(o);
    ASSERT_TRUE(fs.Mount());
    mnt = fs.mnt();
    EXPECT_EQ(EACCES, RunAs(user,
                            [&] {
                              struct stat st;
                              return Err(stat(mnt.c_str(), &st));
                            }))
        << "without allow_other other users are shut out";
    struct stat st {};
    EXPECT_EQ(0, stat(mnt.c_str(), &st)) << "the mounting user still gets in";
  }
  TierfsMount fs;  // allow_other
  ASSERT_TRUE(fs.Mount());
  mnt = fs.mnt();
  EXPECT_EQ(0, RunAs(user, [&] {
              struct stat st;
              return Err(stat(mnt.c_str(), &st));
            }));
  std::ifstream in("/proc/self/mountinfo");
  std::string line, opts;
  while (std::getline(in, line)) {
    if (line.find(" " + mnt + " ") != std::string::npos) opts = line;
  }
  EXPECT_NE(std::string::npos, opts.find("allow_other")) << opts;
}

// ---- The policy path (helper "policy"): only a regular file, size-checked
// before reading. A FIFO used to block forever, /dev/zero to be read until
// memory ran out, and a directory to pass as a policy of 0 rules.

// Paths that are not policy files, in `root`, with the reason tierfs names.
std::vector<std::pair<std::string, std::string>> NonPolicyPaths(const std::string& root) {
  const std::string fifo = root + "/policy.fifo";
  EXPECT_EQ(0, Err(mkfifo(fifo.c_str(), 0600)));
  const std::string dir = root + "/policy.d";
  EXPECT_EQ(0, Err(mkdir(dir.c_str(), 0700)));
  const std::string big = root + "/big.toml";
  EXPECT_EQ(0, WriteFile(big, "# " + std::string((1 << 20), 'x') + "\n"));
  return {{fifo, "is a FIFO, not a regular file"},
          {"/dev/zero", "is a character device, not a regular file"},
          {dir, "is a directory, not a regular file"},
          {big, "larger than 1 MiB"}};
}

TEST(CliPolicyFileTest, CheckPolicyRefusesWhatIsNotARegularFile) {
  TierfsMount fs;  // for its temporary root only
  for (const auto& [path, why] : NonPolicyPaths(fs.root())) {
    CommandResult r = RunTierfs({"--check-policy", path});
    ExpectOneLineError(r);
    EXPECT_NE(std::string::npos, r.err.find(path)) << r.err;
    EXPECT_NE(std::string::npos, r.err.find(why)) << path << ": " << r.err;
  }
}

TEST(CliPolicyFileTest, MountRefusesAPolicyThatIsNotARegularFile) {
  TierfsMount fs;
  for (const auto& [path, why] : NonPolicyPaths(fs.root())) {
    CommandResult r =
        RunTierfs({"--ssd", fs.ssd(), "--hdd", fs.hdd(), "--policy", path, "-f", fs.mnt()});
    ExpectOneLineError(r);
    EXPECT_NE(std::string::npos, r.err.find(why)) << path << ": " << r.err;
    EXPECT_FALSE(IsMountPoint(fs.mnt())) << path;
  }
}

}  // namespace
}  // namespace tierfs_test

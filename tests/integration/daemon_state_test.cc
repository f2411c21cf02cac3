// The state directory against another user (planted links, foreign files,
// a directory others may write), remounting at once after an unmount, the
// pid of a live daemon holding the state, and a request that fails instead
// of an exception ending the daemon (issue 10).
#include <dirent.h>
#include <fcntl.h>
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

namespace tierfs_test {
namespace {

// A background mount on `fs`'s dirs with `state`; the command's result.
CommandResult MountBackground(const TierfsMount& fs, const std::string& state) {
  return RunTierfs({"--ssd", fs.ssd(), "--hdd", fs.hdd(), "--state", state, fs.mnt()}, 20);
}

// --- State directory safety ---

// Each state file planted as a symbolic link (by root here, standing for
// another user who could write the directory once): the mount is refused
// naming the file, and nothing is created or appended through the link.
TEST(DaemonStateTest, PlantedSymlinksAreNotFollowed) {
  for (const char* name : {"daemon.lock", "audit.jsonl", "tierfs.log", "data.mdb", "lock.mdb"}) {
    SCOPED_TRACE(name);
    TierfsMount fs;
    const std::string state = fs.root() + "/state";
    ASSERT_EQ(0, mkdir(state.c_str(), 0700));
    const std::string victim = fs.root() + "/victim";
    ASSERT_EQ(0, WriteFile(victim, "root's file\n", 0600));
    const std::string missing = fs.root() + "/created-through-link";
    ASSERT_EQ(0, symlink(victim.c_str(), (state + "/" + name).c_str()));
    CommandResult r = MountBackground(fs, state);
    EXPECT_EQ(1, r.exit_code) << r.err;
    EXPECT_NE(std::string::npos, r.err.find(state + "/" + name)) << r.err;
    if (r.exit_code == 0) UnmountAndWait(fs.mnt());
    EXPECT_EQ("root's file\n", SlurpFile(victim));
    // A dangling link must not create its target either.
    ASSERT_EQ(0, unlink((state + "/" + name).c_str()));
    ASSERT_EQ(0, symlink(missing.c_str(), (state + "/" + name).c_str()));
    r = MountBackground(fs, state);
    EXPECT_EQ(1, r.exit_code) << r.err;
    if (r.exit_code == 0) UnmountAndWait(fs.mnt());
    struct stat st;
    EXPECT_NE(0, lstat(missing.c_str(), &st)) << missing << " was created through the link";
    EXPECT_FALSE(IsMountPoint(fs.mnt()));
  }
}

TEST(DaemonStateTest, StateDirWritableByOthersIsRefused) {
  TierfsMount fs;
  const std::string state = fs.root() + "/state";
  ASSERT_EQ(0, mkdir(state.c_str(), 0700));
  ASSERT_EQ(0, chmod(state.c_str(), 0777));
  CommandResult r = MountBackground(fs, state);
  EXPECT_EQ(1, r.exit_code) << r.err;
  EXPECT_NE(std::string::npos, r.err.find(state)) << r.err;
  if (r.exit_code == 0) UnmountAndWait(fs.mnt());
  EXPECT_FALSE(IsMountPoint(fs.mnt()));
}

// A lock file another user planted (and could flock to block the mount)
// and a journal hard-linked to a file elsewhere are refused.
TEST(DaemonStateTest, ForeignOrLinkedStateFilesAreRefused) {
  {
    TierfsMount fs;
    const std::string state = fs.root() + "/state";
    ASSERT_EQ(0, mkdir(state.c_str(), 0700));
    const std::string lock = state + "/daemon.lock";
    ASSERT_EQ(0, WriteFile(lock, "", 0666));
    ASSERT_EQ(0, chmod(lock.c_str(), 0666));
    ASSERT_EQ(0, chown(lock.c_str(), 12345, 12345));
    CommandResult r = MountBackground(fs, state);
    EXPECT_EQ(1, r.exit_code) << r.err;
    EXPECT_NE(std::string::npos, r.err.find(lock)) << r.err;
    if (r.exit_code == 0) UnmountAndWait(fs.mnt());
  }
  {
    TierfsMount fs;
    const std::string state = fs.root() + "/state";
    ASSERT_EQ(0, mkdir(state.c_str(), 0700));
    const std::string victim = fs.root() + "/victim";
    ASSERT_EQ(0, WriteFile(victim, "root's file\n", 0600));
    ASSERT_EQ(0, link(victim.c_str(), (state + "/audit.jsonl").c_str()));
    CommandResult r = MountBackground(fs, state);
    EXPECT_EQ(1, r.exit_code) << r.err;
    EXPECT_NE(std::string::npos, r.err.find(state + "/audit.jsonl")) << r.err;
    if (r.exit_code == 0) UnmountAndWait(fs.mnt());
    EXPECT_EQ("root's file\n", SlurpFile(victim));
  }
}

// --- Remount ---

// Mount, write, `fusermount3 -u` and mount again at once, 20 times: the
// old daemon may still hold the state while it exits; the new one waits.
TEST(DaemonStateTest, RemountRightAfterUnmount) {
  TierfsMount fs;
  const std::string state = fs.root() + "/state";
  ASSERT_EQ(0, mkdir(state.c_str(), 0700));
  for (int i = 0; i < 20; ++i) {
    SCOPED_TRACE("cycle " + std::to_string(i));
    CommandResult r = MountBackground(fs, state);
    ASSERT_EQ(0, r.exit_code) << r.err;
    if (i > 0) {
      std::string data;
      EXPECT_EQ(0, ReadFile(fs.path("f" + std::to_string(i - 1)), &data));
      EXPECT_EQ(std::string(4 << 20, char('a' + i - 1)), data);
    }
    EXPECT_EQ(0, WriteFile(fs.path("f" + std::to_string(i)), std::string(4 << 20, char('a' + i))));
    ASSERT_EQ(0, RunCommand({"fusermount3", "-u", fs.mnt()}, 30).exit_code);
  }
  UnmountAndWait(fs.mnt());
  for (pid_t p : TierfsPidsWithArg(fs.mnt()))
    EXPECT_TRUE(WaitFor([&] { return ProcessGone(p); }, 30));
}

// The old daemon still exits while the new one starts, for as long as it
// takes (here: a lazy unmount keeps it serving one open file): the new
// daemon waits for the lock instead of failing at once.
TEST(DaemonStateTest, RemountWaitsForTheExitingDaemon) {
  TierfsMount fs;
  const std::string state = fs.root() + "/state";
  ASSERT_EQ(0, mkdir(state.c_str(), 0700));
  CommandResult r = MountBackground(fs, state);
  ASSERT_EQ(0, r.exit_code) << r.err;
  ASSERT_EQ(0, WriteFile(fs.path("f"), "kept"));
  const std::vector<pid_t> old = TierfsPidsWithArg(fs.mnt());
  int fd = open(fs.path("f").c_str(), O_RDONLY | O_CLOEXEC);  // not in the new daemon
  ASSERT_LE(0, fd);
  ASSERT_EQ(0, RunCommand({"fusermount3", "-u", "-z", fs.mnt()}, 30).exit_code);
  std::thread again([&] { r = MountBackground(fs, state); });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  close(fd);  // the old daemon's mount goes away; it syncs and exits
  again.join();
  EXPECT_EQ(0, r.exit_code) << r.err;
  for (pid_t p : old)
    EXPECT_TRUE(WaitFor([&] { return ProcessGone(p); }, 30)) << "old daemon " << p;
  std::string data;
  EXPECT_EQ(0, ReadFile(fs.path("f"), &data));
  EXPECT_EQ("kept", data);
  UnmountAndWait(fs.mnt());
}

// A second daemon on a state a live one serves is refused at once, naming
// the live one's pid and mountpoint.
TEST(DaemonStateTest, StateInUseNamesTheLiveDaemon) {
  TierfsMount fs;
  const std::string state = fs.root() + "/state";
  ASSERT_EQ(0, mkdir(state.c_str(), 0700));
  fs.options().state_dir = state;
  ASSERT_TRUE(fs.Mount());
  const std::string mnt2 = fs.root() + "/mnt2";
  ASSERT_EQ(0, mkdir(mnt2.c_str(), 0755));
  CommandResult r =
      RunTierfs({"--ssd", fs.ssd(), "--hdd", fs.hdd(), "--state", state, "-f", mnt2}, 20);
  EXPECT_EQ(1, r.exit_code) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("pid " + std::to_string(fs.pid()))) << r.err;
  EXPECT_NE(std::string::npos, r.err.find(fs.mnt())) << r.err;
  ForceUnmount(mnt2);
  EXPECT_TRUE(fs.Unmount());
}

// --- Exceptions in requests ---

bool WriteTo(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return bool(out);
}

// Puts a process in a pids cgroup of its own with room for `room` new
// threads (none by default), and takes it out again when destroyed.
class NoNewThreads {
 public:
  static constexpr char kRoot[] = "/sys/fs/cgroup/pids";
  explicit NoNewThreads(pid_t pid, int room = 0) : pid_(pid) {
    dir_ = std::string(kRoot) + "/tierfs-test-" + std::to_string(getpid());
    if (mkdir(dir_.c_str(), 0755) != 0) return;
    if (!WriteTo(dir_ + "/cgroup.procs", std::to_string(pid))) return;
    std::string current = SlurpFile(dir_ + "/pids.current");
    while (!current.empty() && current.back() == '\n') current.pop_back();
    ok_ =
        !current.empty() && WriteTo(dir_ + "/pids.max", std::to_string(std::stoll(current) + room));
  }
  ~NoNewThreads() {
    WriteTo(std::string(kRoot) + "/cgroup.procs", std::to_string(pid_));
    WaitFor([&] { return rmdir(dir_.c_str()) == 0 || errno == ENOENT; }, 10);
  }
  bool ok() const { return ok_; }

 private:
  pid_t pid_;
  std::string dir_;
  bool ok_ = false;
};

// Moving a tree starts helper threads; when the daemon may start fewer (a
// pids limit, no memory: std::thread throws), the threads that did start
// and the request's own thread do the work. Before, an exception from the
// second thread destroyed a vector holding a joinable thread, which calls
// std::terminate and ends the daemon (the request's exception guard cannot
// catch that); with no thread at all the move failed with EIO. (Root
// ignores RLIMIT_NPROC; a pids cgroup binds it.)
void MoveTreeWithRoomFor(int room) {
  if (access((std::string(NoNewThreads::kRoot) + "/cgroup.procs").c_str(), W_OK) != 0)
    GTEST_SKIP() << "no writable pids cgroup (v1) here";
  MountOptions o;
  o.extra_args = {"--max-moves", "4"};
  TierfsMount fs(o);
  ASSERT_TRUE(fs.Mount());
  ASSERT_EQ(0, mkdir(fs.path("d").c_str(), 0755));
  for (int i = 0; i < 8; ++i)
    ASSERT_EQ(0, WriteFile(fs.path("d/f" + std::to_string(i)), std::string(4096, 'x')));
  int err = 0;
  {
    NoNewThreads jail(fs.pid(), room);
    ASSERT_TRUE(jail.ok()) << "could not confine the daemon to a pids cgroup";
    // SetTierOfClosed: the writers' releases are asynchronous, and a file
    // whose release has not arrived yet is skipped with EBUSY (a full run
    // failed this test on it once).
    err = SetTierOfClosed(fs.path("d"), "hdd");
  }
  EXPECT_EQ(0, err) << "the tree move should succeed with the threads it could start (ENOTCONN: "
                       "the daemon died)\n"
                    << fs.Log();
  for (int i = 0; i < 8; ++i) {
    const std::string f = fs.path("d/f" + std::to_string(i));
    EXPECT_EQ("hdd", GetTier(f)) << f;
    std::string data;
    EXPECT_EQ(0, ReadFile(f, &data)) << "the mount died with the request";
    EXPECT_TRUE(data == std::string(4096, 'x')) << data.size() << " bytes read back";
  }
  EXPECT_TRUE(fs.Unmount());
  EXPECT_NE(std::string::npos, fs.Log().find("helper threads")) << fs.Log();
}

TEST(DaemonStateTest, TreeMoveWithNoRoomForThreadsRunsInTheRequestThread) {
  MoveTreeWithRoomFor(0);
}

TEST(DaemonStateTest, TreeMoveWithRoomForOneThreadDoesNotEndTheDaemon) {
  MoveTreeWithRoomFor(1);
}

}  // namespace
}  // namespace tierfs_test

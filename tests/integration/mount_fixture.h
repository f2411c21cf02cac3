// Test harness for the tierfs integration tests: mounts a real tierfs
// (the binary named by $TIERFS_BIN) over two temporary tier directories and
// tears everything down again, whatever the test did.
//
// TierfsMount owns a temporary root /tmp/tierfs-test.XXXXXX holding ssd/,
// hdd/, mnt/ and daemon.log (the daemon's stdout and stderr, printed when a
// test fails). Its destructor unmounts (fusermount3 -u, then umount -l),
// reaps or kills the daemon and removes the root, so no test leaves a mount
// behind. A watchdog SIGKILLs the daemons of a test that runs longer than
// $TIERFS_TEST_TIMEOUT seconds (default 240), which turns a hung FUSE request
// into ENOTCONN instead of a hung suite.
//
// Not thread-safe: one TierfsMount is driven by one test thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace tierfs_test {

struct MountOptions {
  bool allow_other = true;              // pass -o allow_other
  std::vector<std::string> extra_opts;  // more -o options
  std::vector<std::string> extra_args;  // more daemon arguments, e.g. {"--max-moves", "1"}
  std::string state_dir;                // --state; empty means the default
  std::string hdd_dir;                  // --hdd; empty means this mount's own hdd/
  // When non-zero, ssd/ and hdd/ are fresh tmpfs mounts of these sizes.
  int ssd_tmpfs_mb = 0;
  int hdd_tmpfs_mb = 0;
  // When non-zero (it wins over ssd_tmpfs_mb), ssd/ is a fresh ext4
  // filesystem of this size on a loop device, its image beside ssd/: it
  // fills up as a disk does (delayed allocation, journal, block
  // reservations) and takes the uncached writes tmpfs refuses.
  int ssd_ext4_mb = 0;
  // The daemon runs with io_uring_setup(2) failing with EPERM, as under
  // Docker's default seccomp profile or kernel.io_uring_disabled.
  bool deny_io_uring = false;
};

// Result of running a command to completion.
struct CommandResult {
  int exit_code = -1;  // exit status, or 128+signal; -1 if it did not finish
  bool timed_out = false;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs argv[0] (looked up in PATH) with a time limit; on timeout the process
// gets SIGTERM, then SIGKILL.
CommandResult RunCommand(const std::vector<std::string>& argv, int timeout_s);

// Absolute path of the daemon under test ($TIERFS_BIN).
std::string TierfsBin();
// Runs the daemon under test with `args`; a run that wrongly mounts (in
// the background) or hangs is stopped after `timeout_s`.
CommandResult RunTierfs(const std::vector<std::string>& args, int timeout_s = 10);
// Pids of tierfs processes with `arg` as one of their arguments.
std::vector<pid_t> TierfsPidsWithArg(const std::string& arg);
// Whether process `pid` has exited (a zombie counts).
bool ProcessGone(pid_t pid);
// Unmounts `mnt` and waits (up to 30 s) for the daemons serving it to exit.
void UnmountAndWait(const std::string& mnt);
// The whole content of a file ("" when it cannot be read).
std::string SlurpFile(const std::string& path);

// True if `path` is the mount point of some mount in this namespace.
bool IsMountPoint(const std::string& path);
// Number of mounts stacked at `path`.
int MountCount(const std::string& path);
// Unmounts everything at `path` (fusermount3 -u, falling back to umount -l).
void ForceUnmount(const std::string& path);
// Aborts the FUSE connection mounted at `path` through fusectl (mounting
// /sys/fs/fuse/connections if needed); true if the abort was written.
bool AbortFuseConnection(const std::string& path);

class TierfsMount {
 public:
  explicit TierfsMount(MountOptions opts = {});
  ~TierfsMount();
  TierfsMount(const TierfsMount&) = delete;
  TierfsMount& operator=(const TierfsMount&) = delete;

  // Starts the daemon in the foreground and waits up to 15 s for the mount.
  // Records a gtest failure (with the daemon log) and returns false if the
  // mount does not appear.
  bool Mount();
  // fusermount3 -u (umount -l as fallback), then waits for the daemon to
  // exit (SIGKILL after a timeout). Returns true if the daemon exited 0.
  bool Unmount();
  // SIGKILLs the daemon, reaps it and detaches the dead mount. Returns false
  // if the SIGKILL alone did not end the daemon within 10 s (a thread asleep
  // in the kernel on a lock that a request to this daemon holds) and the
  // FUSE connection had to be aborted first.
  bool Kill9();
  // Sends `sig` to the daemon and waits up to `timeout_s` for it to exit.
  // Returns its exit code (128+signal if killed), -1 on timeout.
  int SignalAndWait(int sig, int timeout_s);

  std::string path(const std::string& rel) const { return mnt_ + "/" + rel; }
  const std::string& root() const { return root_; }
  const std::string& mnt() const { return mnt_; }
  const std::string& ssd() const { return ssd_; }
  const std::string& hdd() const { return hdd_; }
  std::string state_dir() const { return opts_.state_dir; }
  MountOptions& options() { return opts_; }
  pid_t pid() const { return pid_; }
  bool mounted() const { return pid_ > 0; }
  int last_exit_code() const { return last_exit_code_; }
  std::string Log() const;

 private:
  // Waits for the daemon to exit; returns the exit code or -1 on timeout.
  int WaitDaemon(int timeout_s);
  void Cleanup();
  // Mounts the tiers the options ask for (tmpfs, ext4) at ssd/ and hdd/.
  void MountTiers();

  MountOptions opts_;
  std::string root_, ssd_, hdd_, mnt_, log_;
  pid_t pid_ = -1;
  int last_exit_code_ = -1;
  std::vector<std::string> tier_mounts_;  // ssd/, hdd/ when mounted here
};

// Base fixture: a mounted tierfs per test, umask 022.
class MountTest : public ::testing::Test {
 protected:
  explicit MountTest(MountOptions opts = {}) : fs_(std::move(opts)) {}
  void SetUp() override;
  std::string P(const std::string& rel) const { return fs_.path(rel); }
  // Clean unmount followed by a mount of the same tiers.
  void Remount();

  TierfsMount fs_;
};

// --- Syscall helpers. All return 0 or the errno of the failing call. ---

// errno of the last call if rc == -1, else 0.
inline int Err(long rc) {
  return rc == -1 ? errno : 0;
}
int WriteFile(const std::string& path, const std::string& data, mode_t mode = 0644);
int ReadFile(const std::string& path, std::string* data);
// open(path, flags, mode) and close; 0 or errno.
int OpenErr(const std::string& path, int flags, mode_t mode = 0644);
// Writes all of `len` bytes at `off`; 0 or errno (EIO on a short write).
int PwriteAll(int fd, const void* buf, size_t len, off_t off);
// Reads exactly `len` bytes at `off` unless EOF; returns bytes read or -errno.
ssize_t PreadAll(int fd, void* buf, size_t len, off_t off);
// Deterministic pseudo-random bytes.
std::string Pattern(size_t len, uint64_t seed);
// Names in a directory, without "." and "..", sorted.
std::vector<std::string> ListDir(const std::string& path);

// Polls `pred` every 100 ms for up to `seconds`; its last answer.
bool WaitFor(const std::function<bool()>& pred, int seconds);
// A TCP port on 127.0.0.1 nobody listens on now (the kernel's choice for
// port 0), e.g. for --metrics; 0 if none could be had.
uint16_t FreePort();

// --- Tiers as seen through the mount. ---

// /tmp/tierfs-NAME-PID.toml: a policy file of this test process. Per
// process, since a suite's tests may run in two shards at once.
std::string TmpPolicyPath(const std::string& name);
// getxattr user.tierfs.tier: "ssd", "hdd", "moving", or "errno N".
std::string GetTier(const std::string& path);
// setxattr user.tierfs.tier (moves the file or tree); 0 or errno.
int SetTier(const std::string& path, const std::string& tier);
// SetTier of a file the test has just written and closed: waits (up to 10 s)
// out the EBUSY a move gets until the kernel's asynchronous release of the
// writer reaches the daemon. 0 or errno.
int SetTierOfClosed(const std::string& path, const std::string& tier);
// Whether tier directory `tier_root` holds the object of inode `ino`.
bool ObjectOn(const std::string& tier_root, ino_t ino);
// Where inode `ino`'s object is (or would be) on the tier at `tier_root`:
// below the one namespace directory there (TIER/ns/NAME/objects/..).
std::string ObjectPathOn(const std::string& tier_root, ino_t ino);
// st_ino of `path` (a test failure if it cannot be stat'ed).
ino_t Ino(const std::string& path);

// Credentials a child process switches to in RunAs.
struct Creds {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;
};

// Forks, switches the child to `creds` (setgroups, setresgid, setresuid),
// runs `fn` there and returns its int result (meant to be 0 or an errno) and
// anything it wrote into *out. Returns -1 if the child died or could not
// switch. `fn` must not use gtest assertions.
int RunAs(const Creds& creds, const std::function<int(std::string* out)>& fn,
          std::string* out = nullptr);
inline int RunAs(const Creds& creds, const std::function<int()>& fn) {
  return RunAs(creds, [&](std::string*) { return fn(); });
}

}  // namespace tierfs_test

#include "tests/integration/mount_fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

namespace tierfs_test {
namespace {

using Clock = std::chrono::steady_clock;

// Kills the daemons of a test that overran its time, so that hung FUSE
// requests fail with ENOTCONN and the destructor can clean up.
class Watchdog {
 public:
  static Watchdog& Get() {
    static Watchdog* w = new Watchdog();  // never destroyed: the thread runs on
    return *w;
  }
  void Arm() {
    std::lock_guard<std::mutex> l(mu_);
    const char* env = getenv("TIERFS_TEST_TIMEOUT");
    int secs = env != nullptr ? atoi(env) : 240;
    deadline_ = Clock::now() + std::chrono::seconds(secs > 0 ? secs : 240);
    armed_++;
  }
  void Disarm() {
    std::lock_guard<std::mutex> l(mu_);
    if (armed_ > 0) armed_--;
  }
  void AddPid(pid_t p) {
    std::lock_guard<std::mutex> l(mu_);
    pids_.insert(p);
  }
  void RemovePid(pid_t p) {
    std::lock_guard<std::mutex> l(mu_);
    pids_.erase(p);
  }

 private:
  Watchdog() {
    std::thread([this] { Run(); }).detach();
  }
  void Run() {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      std::lock_guard<std::mutex> l(mu_);
      if (armed_ == 0 || Clock::now() < deadline_) continue;
      std::cerr << "[watchdog] test exceeded its time limit; SIGKILLing " << pids_.size()
                << " tierfs daemon(s)" << std::endl;
      for (pid_t p : pids_) kill(p, SIGKILL);
      deadline_ = Clock::now() + std::chrono::seconds(30);
    }
  }
  std::mutex mu_;
  int armed_ = 0;
  Clock::time_point deadline_;
  std::set<pid_t> pids_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits for `pid` up to `timeout_ms`; returns exit code (128+sig) or -1.
int WaitPid(pid_t pid, int timeout_ms) {
  auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (r < 0 && errno != EINTR) return -1;
    if (Clock::now() >= end) return -1;
    usleep(10000);
  }
}

std::vector<char*> CArgv(std::vector<std::string>& args) {
  std::vector<char*> v;
  for (auto& a : args) v.push_back(a.data());
  v.push_back(nullptr);
  return v;
}

}  // namespace

CommandResult RunCommand(const std::vector<std::string>& argv_in, int timeout_s) {
  CommandResult res;
  std::vector<std::string> args = argv_in;
  std::vector<char*> argv = CArgv(args);
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) return res;
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return res;
  }
  // Drain both pipes until EOF or timeout. A daemonizing child may keep the
  // pipes open after its parent exits, so stop reading once it has exited.
  auto end = Clock::now() + std::chrono::seconds(timeout_s);
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int status = 0;
  bool exited = false;
  bool killed = false;
  for (;;) {
    if (!exited && waitpid(pid, &status, WNOHANG) == pid) exited = true;
    int ms = exited ? 50 : 100;
    int n = poll(fds, 2, ms);
    bool got = false;
    for (int i = 0; n > 0 && i < 2; i++) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        (i == 0 ? res.out : res.err).append(buf, r);
        got = true;
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
      }
    }
    if (fds[0].fd < 0 && fds[1].fd < 0 && exited) break;
    if (exited && !got) break;  // pipes held open by a grandchild
    if (!exited && Clock::now() >= end) {
      if (!killed) {
        res.timed_out = true;
        kill(pid, SIGTERM);
        // Reap here, keeping the status: a child reaped without it would
        // make the waitpid below fail forever (ECHILD) and hang the loop.
        for (int i = 0; i < 500 && !exited; ++i) {
          if (waitpid(pid, &status, WNOHANG) == pid) {
            exited = true;
          } else {
            usleep(10000);
          }
        }
        if (!exited) kill(pid, SIGKILL);
        killed = true;
      }
      if (!exited && waitpid(pid, &status, 0) == pid) exited = true;
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  if (WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) res.exit_code = 128 + WTERMSIG(status);
  return res;
}

std::string TierfsBin() {
  const char* b = getenv("TIERFS_BIN");
  if (b != nullptr && *b != '\0') return b;
  return "/work/main/build/tierfs";
}

int MountCount(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, devno, root, mp;
    ls >> id >> parent >> devno >> root >> mp;
    if (mp == path) n++;
  }
  return n;
}

bool IsMountPoint(const std::string& path) {
  return MountCount(path) > 0;
}

void ForceUnmount(const std::string& path) {
  for (int i = 0; i < 10 && IsMountPoint(path); i++) {
    CommandResult r = RunCommand({"fusermount3", "-u", "-q", path}, 20);
    if (r.exit_code == 0) continue;
    r = RunCommand({"umount", path}, 20);
    if (r.exit_code == 0) continue;
    RunCommand({"umount", "-l", path}, 20);
  }
}

bool AbortFuseConnection(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, conn;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, devno, root, mp;
    ls >> id >> parent >> devno >> root >> mp;
    if (mp == path) conn = devno.substr(devno.find(':') + 1);  // the minor names the connection
  }
  if (conn.empty()) return false;
  const std::string dir = "/sys/fs/fuse/connections";
  struct stat st {};
  if (stat((dir + "/" + conn).c_str(), &st) != 0)
    mount("fusectl", dir.c_str(), "fusectl", 0, nullptr);
  std::ofstream abort_file(dir + "/" + conn + "/abort");
  abort_file << "1" << std::endl;
  return static_cast<bool>(abort_file);
}

TierfsMount::TierfsMount(MountOptions opts) : opts_(std::move(opts)) {
  Watchdog::Get().Arm();
  char tmpl[] = "/tmp/tierfs-test.XXXXXX";
  char* r = mkdtemp(tmpl);
  if (r == nullptr) {
    ADD_FAILURE() << "mkdtemp: " << strerror(errno);
    return;
  }
  root_ = r;
  chmod(root_.c_str(), 0755);  // other users must reach mnt/
  ssd_ = root_ + "/ssd";
  hdd_ = opts_.hdd_dir.empty() ? root_ + "/hdd" : opts_.hdd_dir;
  mnt_ = root_ + "/mnt";
  log_ = root_ + "/daemon.log";
  for (const auto& d : {ssd_, hdd_, mnt_}) mkdir(d.c_str(), 0755);
  MountTiers();
}

namespace {

// Makes io_uring_setup(2) fail with EPERM in this process and what it
// executes, as Docker's default seccomp profile does; other system calls
// (and other architectures' numbers) pass.
bool DenyIoUring() {
#if defined(__x86_64__)
  constexpr uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr uint32_t kArch = AUDIT_ARCH_AARCH64;
#else
  return false;
#endif
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

// A tmpfs of `mb` MiB at `dir`, or ext4 on a loop device of an image at
// `dir`.img when `ext4`.
bool MountTier(const std::string& dir, int mb, bool ext4) {
  if (!ext4) {
    const std::string size = "size=" + std::to_string(mb) + "m";
    if (mount("tierfs-test-tier", dir.c_str(), "tmpfs", 0, size.c_str()) == 0) return true;
    ADD_FAILURE() << "mount tmpfs at " << dir << ": " << strerror(errno);
    return false;
  }
  const std::string image = dir + ".img";
  // -m 0: no blocks kept for root (the daemon is root), so the tier fills
  // where statvfs says it does.
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{"truncate", "-s", std::to_string(mb) + "M", image},
        {"mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0", image},
        // -o loop sets the loop device to detach itself at the unmount.
        {"mount", "-o", "loop", image, dir}}) {
    CommandResult r = RunCommand(argv, 60);
    if (r.exit_code != 0) {
      ADD_FAILURE() << argv[0] << " for the ext4 tier at " << dir << " exited " << r.exit_code
                    << ": " << r.err;
      return false;
    }
  }
  return true;
}

}  // namespace

void TierfsMount::MountTiers() {
  const bool ext4 = opts_.ssd_ext4_mb > 0;
  if (ext4 || opts_.ssd_tmpfs_mb > 0 || opts_.hdd_tmpfs_mb > 0) {
    // A size of 0 leaves tmpfs at its default (half the memory).
    if (MountTier(ssd_, ext4 ? opts_.ssd_ext4_mb : opts_.ssd_tmpfs_mb, ext4))
      tier_mounts_.push_back(ssd_);
  }
  if (opts_.ssd_tmpfs_mb > 0 || opts_.hdd_tmpfs_mb > 0) {
    if (MountTier(hdd_, opts_.hdd_tmpfs_mb, false)) tier_mounts_.push_back(hdd_);
  }
}

TierfsMount::~TierfsMount() {
  if (!root_.empty()) {
    if (pid_ > 0 || IsMountPoint(mnt_)) Unmount();
    // A ThreadSanitizer build of the daemon reports a race to its log and
    // exits; one found while unmounting would otherwise go unnoticed.
    if (Log().find("WARNING: ThreadSanitizer") != std::string::npos)
      ADD_FAILURE() << "ThreadSanitizer reported a race in the daemon (its log follows)";
  }
  if (::testing::Test::HasFailure() && !root_.empty()) {
    std::cerr << "----- tierfs daemon log (" << log_ << ") -----\n"
              << Log() << "----- end of daemon log -----" << std::endl;
  }
  Cleanup();
  Watchdog::Get().Disarm();
}

void TierfsMount::Cleanup() {
  if (root_.empty()) return;
  if (pid_ > 0 || IsMountPoint(mnt_)) Unmount();
  ForceUnmount(mnt_);
  for (const std::string& dir : tier_mounts_) umount2(dir.c_str(), MNT_DETACH);
  tier_mounts_.clear();
  // Never recurse into anything still mounted below the root.
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" " + root_ + "/") != std::string::npos) {
      std::cerr << "tierfs test: leaving " << root_ << " behind, still mounted: " << line
                << std::endl;
      return;
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(root_, ec);
  root_.clear();
}

std::string TierfsMount::Log() const {
  return ReadAll(log_);
}

bool TierfsMount::Mount() {
  if (pid_ > 0) {
    ADD_FAILURE() << "Mount() while already mounted";
    return false;
  }
  std::vector<std::string> args = {TierfsBin(), "--ssd", ssd_, "--hdd", hdd_};
  if (!opts_.state_dir.empty()) {
    args.push_back("--state");
    args.push_back(opts_.state_dir);
  }
  args.push_back("-f");
  // $TIERFS_TEST_ARGS: daemon arguments for every mount of a run (one word
  // each), e.g. the whole suite once with --io-uring.
  args.insert(args.end(), opts_.extra_args.begin(), opts_.extra_args.end());
  if (const char* more = getenv("TIERFS_TEST_ARGS")) {
    std::istringstream words(more);
    for (std::string w; words >> w;)
      if (std::find(args.begin(), args.end(), w) == args.end()) args.push_back(w);
  }
  std::string o;
  if (opts_.allow_other) o = "allow_other";
  for (const auto& e : opts_.extra_opts) o += (o.empty() ? "" : ",") + e;
  if (!o.empty()) {
    args.push_back("-o");
    args.push_back(o);
  }
  args.push_back(mnt_);
  std::vector<char*> argv = CArgv(args);
  {
    std::ofstream lg(log_, std::ios::app);
    lg << "=== mount:";
    for (const auto& a : args) lg << " " << a;
    lg << "\n";
  }
  int logfd = open(log_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(logfd, 1);
    dup2(logfd, 2);
    // If the test binary dies, the daemon unmounts itself.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (opts_.deny_io_uring && !DenyIoUring()) {
      dprintf(2, "seccomp filter against io_uring_setup: %s\n", strerror(errno));
      _exit(127);
    }
    execv(argv[0], argv.data());
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(logfd);
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << strerror(errno);
    return false;
  }
  pid_ = pid;
  Watchdog::Get().AddPid(pid);
  struct stat parent {};
  stat(root_.c_str(), &parent);
  auto end = Clock::now() + std::chrono::seconds(15);
  while (Clock::now() < end) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      Watchdog::Get().RemovePid(pid_);
      pid_ = -1;
      ADD_FAILURE() << "tierfs exited before the mount appeared (status " << status << "); log:\n"
                    << Log();
      ForceUnmount(mnt_);
      return false;
    }
    struct stat st {};
    if (IsMountPoint(mnt_) && stat(mnt_.c_str(), &st) == 0 && st.st_dev != parent.st_dev) {
      return true;
    }
    usleep(20000);
  }
  ADD_FAILURE() << "tierfs did not mount " << mnt_ << " within 15 s; log:\n" << Log();
  Kill9();
  return false;
}

int TierfsMount::WaitDaemon(int timeout_s) {
  if (pid_ <= 0) return -1;
  int code = WaitPid(pid_, timeout_s * 1000);
  if (code >= 0) {
    Watchdog::Get().RemovePid(pid_);
    pid_ = -1;
  }
  return code;
}

bool TierfsMount::Unmount() {
  last_exit_code_ = -1;
  if (IsMountPoint(mnt_)) {
    CommandResult r = RunCommand({"fusermount3", "-u", mnt_}, 30);
    if (r.exit_code != 0) {
      ADD_FAILURE() << "fusermount3 -u " << mnt_ << " failed: " << r.err;
      ForceUnmount(mnt_);
    }
  }
  if (pid_ > 0) {
    int code = WaitDaemon(30);
    if (code < 0) {
      ADD_FAILURE() << "tierfs did not exit within 30 s of the unmount; sending SIGTERM";
      code = SignalAndWait(SIGTERM, 10);
      if (code < 0) code = SignalAndWait(SIGKILL, 10);
    }
    last_exit_code_ = code;
  }
  ForceUnmount(mnt_);
  return last_exit_code_ == 0;
}

int TierfsMount::SignalAndWait(int sig, int timeout_s) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  return WaitDaemon(timeout_s);
}

bool TierfsMount::Kill9() {
  bool alone = true;
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    last_exit_code_ = WaitDaemon(10);
    if (last_exit_code_ < 0) {
      // Its files (and so the connection) stay open until every thread has
      // left the kernel; aborting the connection fails the requests whose
      // callers hold the locks the stuck thread waits for.
      std::cerr << "tierfs test: daemon " << pid_ << " survived SIGKILL for 10 s; aborting the "
                << "FUSE connection of " << mnt_ << "; its threads:\n";
      std::error_code ec;
      const std::string tasks = "/proc/" + std::to_string(pid_) + "/task";
      for (const auto& t : std::filesystem::directory_iterator(tasks, ec))
        std::cerr << t.path().filename().string() << ":\n" << ReadAll(t.path() / "stack");
      std::cerr << std::flush;
      alone = false;
      AbortFuseConnection(mnt_);
      last_exit_code_ = WaitDaemon(30);
    }
  }
  ForceUnmount(mnt_);
  return alone;
}

void MountTest::SetUp() {
  umask(022);
  ASSERT_TRUE(fs_.Mount());
}

void MountTest::Remount() {
  EXPECT_TRUE(fs_.Unmount()) << "daemon exit code " << fs_.last_exit_code();
  ASSERT_TRUE(fs_.Mount());
}

}  // namespace tierfs_test

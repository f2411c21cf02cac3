// Syscall helpers and RunAs for the integration tests (see mount_fixture.h).
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "tests/integration/mount_fixture.h"
#include "tiering/tier.h"

namespace tierfs_test {

int WriteFile(const std::string& path, const std::string& data, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return errno;
  int e = PwriteAll(fd, data.data(), data.size(), 0);
  if (close(fd) != 0 && e == 0) e = errno;
  return e;
}

int ReadFile(const std::string& path, std::string* data) {
  data->clear();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      int e = errno;
      close(fd);
      return e;
    }
    if (n == 0) break;
    data->append(buf, n);
  }
  close(fd);
  return 0;
}

int OpenErr(const std::string& path, int flags, mode_t mode) {
  int fd = open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

int PwriteAll(int fd, const void* buf, size_t len, off_t off) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = pwrite(fd, p, len, off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    p += n;
    len -= n;
    off += n;
  }
  return 0;
}

ssize_t PreadAll(int fd, void* buf, size_t len, off_t off) {
  char* p = static_cast<char*>(buf);
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread(fd, p + done, len - done, off + done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) break;
    done += n;
  }
  return done;
}

std::string Pattern(size_t len, uint64_t seed) {
  std::string s(len, '\0');
  std::mt19937_64 rng(seed);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v = rng();
    memcpy(&s[i], &v, 8);
  }
  for (; i < len; i++) s[i] = static_cast<char>(rng());
  return s;
}

std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> names;
  DIR* d = opendir(path.c_str());
  if (d == nullptr) return names;
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

int RunAs(const Creds& creds, const std::function<int(std::string* out)>& fn, std::string* out) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    int rc = -1;
    std::string o;
    if (setgroups(creds.groups.size(), creds.groups.data()) == 0 &&
        setresgid(creds.gid, creds.gid, creds.gid) == 0 &&
        setresuid(creds.uid, creds.uid, creds.uid) == 0) {
      umask(022);
      rc = fn(&o);
    }
    std::string msg(reinterpret_cast<const char*>(&rc), sizeof rc);
    msg += o;
    size_t off = 0;
    while (off < msg.size()) {
      ssize_t n = write(p[1], msg.data() + off, msg.size() - off);
      if (n <= 0) break;
      off += n;
    }
    _exit(0);
  }
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return -1;
  }
  std::string msg;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) msg.append(buf, n);
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (msg.size() < sizeof(int)) return -1;
  int rc;
  memcpy(&rc, msg.data(), sizeof rc);
  if (out != nullptr) *out = msg.substr(sizeof rc);
  return rc;
}

std::string GetTier(const std::string& path) {
  char buf[64];
  ssize_t n = getxattr(path.c_str(), "user.tierfs.tier", buf, sizeof buf);
  return n < 0 ? std::string("errno ") + std::to_string(errno) : std::string(buf, n);
}

int SetTier(const std::string& path, const std::string& tier) {
  return Err(setxattr(path.c_str(), "user.tierfs.tier", tier.data(), tier.size(), 0));
}

std::string ObjectPathOn(const std::string& tier_root, ino_t ino) {
  std::vector<std::string> names = ListDir(tier_root + "/ns");
  EXPECT_EQ(1u, names.size()) << "namespaces on " << tier_root;
  const std::string ns = names.empty() ? "none" : names[0];
  return tier_root + "/ns/" + ns + "/" + tierfs::Tier::ObjectRelPath(ino);
}

CommandResult RunTierfs(const std::vector<std::string>& args, int timeout_s) {
  std::vector<std::string> argv = {TierfsBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout_s);
}

std::string SlurpFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<pid_t> TierfsPidsWithArg(const std::string& arg) {
  std::vector<pid_t> pids;
  DIR* d = opendir("/proc");
  if (d == nullptr) return pids;
  const std::string want = std::string("\0", 1) + arg + std::string("\0", 1);
  while (struct dirent* e = readdir(d)) {
    const pid_t pid = atoi(e->d_name);
    if (pid <= 0) continue;
    const std::string cmd = SlurpFile("/proc/" + std::string(e->d_name) + "/cmdline");
    if (cmd.find(want) != std::string::npos && cmd.find("tierfs") != std::string::npos)
      pids.push_back(pid);
  }
  closedir(d);
  return pids;
}

bool ProcessGone(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  const std::string s = SlurpFile("/proc/" + std::to_string(pid) + "/stat");
  const size_t rp = s.rfind(')');
  return rp != std::string::npos && rp + 2 < s.size() && s[rp + 2] == 'Z';
}

void UnmountAndWait(const std::string& mnt) {
  const std::vector<pid_t> pids = TierfsPidsWithArg(mnt);
  ForceUnmount(mnt);
  for (pid_t p : pids) EXPECT_TRUE(WaitFor([&] { return ProcessGone(p); }, 30)) << "daemon " << p;
}

std::string TmpPolicyPath(const std::string& name) {
  return "/tmp/tierfs-" + name + "-" + std::to_string(getpid()) + ".toml";
}

int SetTierOfClosed(const std::string& path, const std::string& tier) {
  int err = 0;
  WaitFor([&] { return (err = SetTier(path, tier)) != EBUSY; }, 10);
  return err;
}

bool ObjectOn(const std::string& tier_root, ino_t ino) {
  struct stat st;
  return stat(ObjectPathOn(tier_root, ino).c_str(), &st) == 0;
}

ino_t Ino(const std::string& path) {
  struct stat st;
  EXPECT_EQ(0, stat(path.c_str(), &st)) << path;
  return st.st_ino;
}

bool WaitFor(const std::function<bool()>& pred, int seconds) {
  for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
       std::chrono::steady_clock::now() < end;) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return pred();
}

uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0)
    port = ntohs(sa.sin_port);
  close(fd);
  return port;
}

}  // namespace tierfs_test

#include "fs/snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>

namespace tierfs {

namespace {

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// "snap-20261205T193012.123456Z.mdb": sorts as the time does.
std::string SnapshotName(int64_t ns) {
  const time_t secs = time_t(ns / 1000000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  const size_t n = strftime(buf, sizeof buf, "%Y%m%dT%H%M%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%06dZ", int((ns % 1000000000) / 1000));
  return std::string(kSnapshotPrefix) + buf + kSnapshotSuffix;
}

Status SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::Errno(errno, "open " + dir);
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  return rc == 0 ? Status::Ok() : Status::Errno(err, "fsync " + dir);
}

// Temporaries a crash left: no snapshot is being written when one starts.
void RemoveTemporaries(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind(kSnapshotPrefix, 0) == 0 && EndsWith(name, ".tmp"))
      unlink((dir + "/" + name).c_str());
  }
  closedir(d);
}

}  // namespace

Status ListSnapshots(const std::string& dir, std::vector<std::string>* names) {
  names->clear();
  DIR* d = opendir(dir.c_str());
  if (!d) return errno == ENOENT ? Status::Ok() : Status::Errno(errno, "list " + dir);
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind(kSnapshotPrefix, 0) == 0 && EndsWith(name, kSnapshotSuffix))
      names->push_back(name);
  }
  closedir(d);
  std::sort(names->begin(), names->end());
  return Status::Ok();
}

Status TakeSnapshot(Store& store, const std::string& dir, unsigned keep, std::string* path) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::Errno(errno, "create " + dir);
  const std::string final_path = dir + "/" + SnapshotName(NowNs());
  const std::string tmp = final_path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::Errno(errno, "create " + tmp);
  Status st = store.CopyCompactTo(fd, tmp);
  if (st.ok() && fsync(fd) != 0) st = Status::Errno(errno, "fsync " + tmp);
  close(fd);
  if (st.ok() && rename(tmp.c_str(), final_path.c_str()) != 0)
    st = Status::Errno(errno, "rename " + tmp + " to " + final_path);
  if (!st.ok()) {
    unlink(tmp.c_str());
    return st;
  }
  // The new name must be durable before an older snapshot goes.
  st = SyncDir(dir);
  if (!st.ok()) return st;
  if (path) *path = final_path;
  std::vector<std::string> names;
  st = ListSnapshots(dir, &names);
  for (size_t i = 0; st.ok() && i + std::max(keep, 1u) < names.size(); ++i)
    if (unlink((dir + "/" + names[i]).c_str()) != 0 && errno != ENOENT)
      st = Status::Errno(errno, "remove old snapshot " + dir + "/" + names[i]);
  return st;
}

Snapshotter::Snapshotter(Store& store, std::string dir, SnapshotOptions opt,
                         std::function<int64_t()> policy_loaded_ns)
    : store_(store), dir_(std::move(dir)), opt_(opt), loaded_ns_(std::move(policy_loaded_ns)) {}

Snapshotter::~Snapshotter() {
  Stop();
}

void Snapshotter::Start() {
  if (opt_.interval_s <= 0 || thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void Snapshotter::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  wake_.SignalAll();
  if (!thread_.joinable()) return;
  thread_.join();
  // The state at a clean unmount is the one a recovery most wants.
  std::string path;
  Status st = Take(&path);
  if (st.ok())
    spdlog::info("snapshot of the state: {} (unmount)", path);
  else
    spdlog::error("snapshot of the state to {} failed: {}", dir_, st.message());
}

Status Snapshotter::Take(std::string* path) {
  if (opt_.may_write) {
    Status st = opt_.may_write();
    if (!st.ok()) return Status::Error(st.err(), "not taken: " + st.message());
  }
  return TakeSnapshot(store_, dir_, opt_.keep, path);
}

void Snapshotter::Loop() {
  RemoveTemporaries(dir_);
  using Clock = std::chrono::steady_clock;
  const auto interval =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt_.interval_s));
  auto next = Clock::now() + interval;
  int64_t seen_load = 0;  // the start's load counts as a load
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (stop_) return;
      // Polled once a second: a reload is noticed that soon without the
      // policy runner knowing about snapshots.
      wake_.WaitFor(&mu_, std::min<Clock::duration>(std::chrono::seconds(1), interval));
      if (stop_) return;
    }
    const int64_t load = loaded_ns_ ? loaded_ns_() : 0;
    const bool reloaded = load != seen_load;
    if (!reloaded && Clock::now() < next) continue;
    seen_load = load;
    next = Clock::now() + interval;
    std::string path;
    Status st = Take(&path);
    if (st.ok())
      spdlog::info("snapshot of the state: {}{}", path, reloaded ? " (policy loaded)" : "");
    else
      spdlog::error("snapshot of the state to {} failed: {}", dir_, st.message());
  }
}

}  // namespace tierfs

#include "fs/pid_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "meta/state_file.h"

namespace tierfs {

namespace {

// Whether `pid` is a live (not zombie) process whose command is tierfs:
// a pid reused by an unrelated process does not hold the state.
bool LiveTierfs(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const size_t open = line.find('('), close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 2 >= line.size())
    return false;
  const char state = line[close + 2];
  return line.substr(open + 1, close - open - 1) == "tierfs" && state != 'Z' && state != 'X';
}

}  // namespace

std::string PidFilePath(const std::string& state) {
  return state + "/tierfs.pid";
}

Status CheckPidFile(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  if (!(in >> pid) || pid <= 0 || pid == getpid()) return Status::Ok();
  if (LiveTierfs(pid_t(pid)))
    return Status::Error(
        EBUSY, "tierfs pid " + std::to_string(pid) + " (" + path + ") still runs on this state");
  return Status::Ok();
}

Status WritePidFile(const std::string& path) {
  const std::string tmp = path + ".new";
  unlink(tmp.c_str());
  int fd = -1;
  Status st = OpenStateFile(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644, &fd);
  if (!st.ok()) return st;
  const std::string text = std::to_string(getpid()) + "\n";
  const bool wrote = write(fd, text.data(), text.size()) == ssize_t(text.size());
  const int err = errno;
  close(fd);
  if (!wrote) return Status::Errno(err, "write " + tmp);
  if (rename(tmp.c_str(), path.c_str()) != 0) return Status::Errno(errno, "rename " + tmp);
  return Status::Ok();
}

void RemovePidFile(const std::string& path) {
  unlink(path.c_str());
}

}  // namespace tierfs

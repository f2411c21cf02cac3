#include "meta/state_file.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace tierfs {

namespace {

std::string Octal(mode_t mode) {
  char m[8];
  std::snprintf(m, sizeof m, "%04o", unsigned(mode & 07777));
  return m;
}

// What is wrong with state file `path` whose stat is `st`, or Ok.
Status Judge(const std::string& path, const struct stat& st) {
  if (S_ISLNK(st.st_mode))
    return Status::Error(ELOOP,
                         "state file " + path + " is a symbolic link; refusing to follow it");
  if (!S_ISREG(st.st_mode))
    return Status::Error(EINVAL, "state file " + path + " is not a regular file");
  if (st.st_uid != geteuid())
    return Status::Error(EPERM, "state file " + path + " is owned by uid " +
                                    std::to_string(st.st_uid) + ", not by tierfs (uid " +
                                    std::to_string(geteuid()) + ")");
  if (st.st_nlink > 1)
    return Status::Error(EPERM, "state file " + path + " has " + std::to_string(st.st_nlink) +
                                    " links; another name may point at it");
  return Status::Ok();
}

}  // namespace

Status CheckStateDir(const std::string& dir) {
  char buf[PATH_MAX];
  if (!realpath(dir.c_str(), buf)) return Status::Errno(errno, "state directory " + dir);
  std::string real = buf;
  struct stat st;
  if (stat(real.c_str(), &st) != 0) return Status::Errno(errno, "state directory " + dir);
  if (!S_ISDIR(st.st_mode))
    return Status::Error(ENOTDIR, "state directory " + dir + " is not a directory");
  if (st.st_uid != geteuid())
    return Status::Error(EPERM, "state directory " + dir + " is owned by uid " +
                                    std::to_string(st.st_uid) + ", not by tierfs (uid " +
                                    std::to_string(geteuid()) + ")");
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return Status::Error(EPERM, "state directory " + dir +
                                    " is writable by group or others (mode " + Octal(st.st_mode) +
                                    "); chmod go-w it");
  while (real.size() > 1) {
    real = real.substr(0, std::max<size_t>(real.rfind('/'), 1));
    if (stat(real.c_str(), &st) != 0) return Status::Errno(errno, "state directory parent " + real);
    if (st.st_uid != 0 && st.st_uid != geteuid())
      return Status::Error(EPERM, "state directory " + dir + " is inside " + real +
                                      ", owned by uid " + std::to_string(st.st_uid));
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
      return Status::Error(EPERM, "state directory " + dir + " is inside " + real +
                                      ", which others may write (and so replace it)");
  }
  return Status::Ok();
}

Status OpenStateFile(const std::string& path, int flags, mode_t mode, int* fd) {
  // O_NONBLOCK: a FIFO planted under the name must not hang the open.
  int f = open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode);
  if (f < 0 && errno == ELOOP)
    return Status::Error(ELOOP,
                         "state file " + path + " is a symbolic link; refusing to follow it");
  if (f < 0) return Status::Errno(errno, "open state file " + path);
  struct stat st;
  Status s = fstat(f, &st) == 0 ? Judge(path, st) : Status::Errno(errno, "stat " + path);
  if (s.ok() && (st.st_mode & 07777 & ~mode) && fchmod(f, st.st_mode & mode & 07777) != 0)
    s = Status::Errno(errno, "chmod " + path);
  if (s.ok() && fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK) != 0)
    s = Status::Errno(errno, "fcntl " + path);
  if (!s.ok()) {
    close(f);
    return s;
  }
  *fd = f;
  return Status::Ok();
}

Status CheckStateFile(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0)
    return errno == ENOENT ? Status::Ok() : Status::Errno(errno, "stat state file " + path);
  return Judge(path, st);
}

}  // namespace tierfs

#include "tiering/crash_io.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace tierfs {

namespace {

std::string ProcFd(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

// The kernel's name for what `fd` refers to; empty if unknown.
std::string FdPath(int fd) {
  char buf[PATH_MAX];
  const ssize_t n = readlink(ProcFd(fd).c_str(), buf, sizeof buf);
  return n > 0 && size_t(n) < sizeof buf ? std::string(buf, size_t(n)) : std::string();
}

// The absolute path `name` names relative to `dir_fd`, with its directory
// resolved as the kernel names it (so it matches FdPath of the file).
std::string JoinAt(int dir_fd, const char* name) {
  std::string full;
  if (name[0] == '/') {
    full = name;
  } else if (dir_fd == AT_FDCWD) {
    char cwd[PATH_MAX];
    full = std::string(getcwd(cwd, sizeof cwd) ? cwd : ".") + "/" + name;
  } else {
    full = FdPath(dir_fd) + "/" + name;
  }
  const size_t slash = full.rfind('/');
  std::string parent = slash == 0 ? "/" : full.substr(0, slash);
  if (char* real = realpath(parent.c_str(), nullptr)) {
    parent = real;
    free(real);
  }
  return (parent == "/" ? "" : parent) + "/" + full.substr(slash + 1);
}

std::string DirOf(const std::string& path) {
  return path.substr(0, path.rfind('/'));
}

// All bytes of the file at `path` (a fresh open: no O_DIRECT alignment).
int ReadWhole(const std::string& path, std::string* out) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  out->clear();
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out->append(buf, size_t(n));
  const int err = n < 0 ? errno : 0;
  close(fd);
  return -err;
}

// Gives the file at `path` exactly `content` and `mode`; creates it when
// `create`, else a missing file is left missing.
Status WriteWhole(const std::string& path, const std::string& content, mode_t mode, bool create) {
  const int fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC | (create ? O_CREAT : 0), mode);
  if (fd < 0) {
    if (!create && errno == ENOENT) return Status::Ok();
    return Status::Errno(errno, "crash: restore " + path);
  }
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      const int err = errno;
      close(fd);
      return Status::Errno(err, "crash: write back " + path);
    }
    done += size_t(n);
  }
  const int rc = fchmod(fd, mode);
  close(fd);
  if (rc != 0) return Status::Errno(errno, "crash: chmod " + path);
  return Status::Ok();
}

bool IsRegular(const std::string& path, struct stat* sb) {
  return lstat(path.c_str(), sb) == 0 && S_ISREG(sb->st_mode);
}

}  // namespace

size_t CrashIo::UnsyncedFiles() const {
  MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [path, f] : files_) n += f.dirty;
  return n;
}

size_t CrashIo::PendingEntries() const {
  MutexLock lock(&mu_);
  return pending_.size();
}

CrashIo::File* CrashIo::Touch(const std::string& path) {
  auto it = files_.find(path);
  if (it != files_.end()) return &it->second;
  struct stat sb;
  File f;
  if (!IsRegular(path, &sb) || ReadWhole(path, &f.durable) != 0) return nullptr;
  f.mode = sb.st_mode & 07777;
  return &(files_[path] = std::move(f));
}

bool CrashIo::DurableOf(const std::string& path, File* out) {
  File* f = Touch(path);
  if (!f) return false;
  *out = *f;
  out->dirty = false;
  return true;
}

CrashIo::File* CrashIo::BeforeChange(int fd) {
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_nlink == 0) return nullptr;
  const std::string path = FdPath(fd);
  return path.empty() ? nullptr : Touch(path);
}

int CrashIo::OpenAt(int dir_fd, const char* name, int flags, mode_t mode) {
  MutexLock lock(&mu_);
  const std::string path = JoinAt(dir_fd, name);
  struct stat sb;
  const bool existed = lstat(path.c_str(), &sb) == 0;
  const bool truncates = (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY;
  // The content before the truncation is what a crash would bring back.
  File* before = existed && truncates ? Touch(path) : nullptr;
  const int fd = IoWrapper::OpenAt(dir_fd, name, flags, mode);
  if (fd < 0) return fd;
  if (!existed && (flags & O_CREAT)) {
    File f;
    f.mode = mode & 07777;
    f.dirty = true;  // durable as empty until synced
    files_[path] = f;
    Entry e;
    e.kind = Entry::kCreate;
    e.path = path;
    e.dir = DirOf(path);
    pending_.push_back(std::move(e));
  } else if (before) {
    before->dirty = true;
  }
  return fd;
}

ssize_t CrashIo::Pwrite(int fd, const void* buf, size_t n, off_t off) {
  MutexLock lock(&mu_);
  File* f = BeforeChange(fd);
  const ssize_t rc = IoWrapper::Pwrite(fd, buf, n, off);
  if (f && rc > 0) f->dirty = true;
  return rc;
}

ssize_t CrashIo::Pwritev2(int fd, const void* buf, size_t n, off_t off, int flags) {
  MutexLock lock(&mu_);
  File* f = BeforeChange(fd);
  const ssize_t rc = IoWrapper::Pwritev2(fd, buf, n, off, flags);
  if (f && rc > 0) f->dirty = true;
  return rc;
}

int CrashIo::Fallocate(int fd, int mode, off_t off, off_t len) {
  MutexLock lock(&mu_);
  File* f = BeforeChange(fd);
  const int rc = IoWrapper::Fallocate(fd, mode, off, len);
  if (f && rc == 0) f->dirty = true;
  return rc;
}

int CrashIo::Ftruncate(int fd, off_t len) {
  MutexLock lock(&mu_);
  File* f = BeforeChange(fd);
  const int rc = IoWrapper::Ftruncate(fd, len);
  if (f && rc == 0) f->dirty = true;
  return rc;
}

// The lock is held across the sync and the copy of what it synced: a write
// landing in between would otherwise be taken as synced.
int CrashIo::Fsync(int fd) {
  MutexLock lock(&mu_);
  return AfterSync(fd, IoWrapper::Fsync(fd));
}

int CrashIo::Fdatasync(int fd) {
  MutexLock lock(&mu_);
  return AfterSync(fd, IoWrapper::Fdatasync(fd));
}

// A synced directory makes its entry changes durable; a synced file its
// content. A failed sync makes nothing durable.
int CrashIo::AfterSync(int fd, int rc) {
  if (rc != 0) return rc;
  struct stat sb;
  if (fstat(fd, &sb) != 0) return rc;
  const std::string path = FdPath(fd);
  if (path.empty()) return rc;
  if (S_ISDIR(sb.st_mode)) {
    std::erase_if(pending_, [&](const Entry& e) { return e.dir == path; });
  } else if (S_ISREG(sb.st_mode) && sb.st_nlink > 0) {
    File f;
    f.mode = sb.st_mode & 07777;
    if (ReadWhole(ProcFd(fd), &f.durable) == 0) files_[path] = std::move(f);
  }
  return rc;
}

int CrashIo::RenameAt(int old_dir, const char* old_path, int new_dir, const char* new_path) {
  MutexLock lock(&mu_);
  Entry e;
  e.kind = Entry::kRename;
  e.path = JoinAt(old_dir, old_path);
  e.to = JoinAt(new_dir, new_path);
  e.dir = DirOf(e.to);
  struct stat sb;
  const bool modeled = IsRegular(e.path, &sb) && e.path != e.to;
  if (modeled) e.has_saved = DurableOf(e.to, &e.saved);
  const int rc = IoWrapper::RenameAt(old_dir, old_path, new_dir, new_path);
  if (rc != 0 || !modeled) return rc;
  files_.erase(e.to);
  auto it = files_.find(e.path);
  if (it != files_.end()) {
    files_[e.to] = std::move(it->second);
    files_.erase(it);
  }
  pending_.push_back(std::move(e));
  return rc;
}

int CrashIo::UnlinkAt(int dir_fd, const char* path, int flags) {
  MutexLock lock(&mu_);
  Entry e;
  e.kind = Entry::kUnlink;
  e.path = JoinAt(dir_fd, path);
  e.dir = DirOf(e.path);
  const bool modeled = !(flags & AT_REMOVEDIR) && DurableOf(e.path, &e.saved);
  const int rc = IoWrapper::UnlinkAt(dir_fd, path, flags);
  if (rc != 0 || !modeled) return rc;
  e.has_saved = true;
  files_.erase(e.path);
  pending_.push_back(std::move(e));
  return rc;
}

Status CrashIo::Undo(const Entry& e) {
  switch (e.kind) {
    case Entry::kCreate:
      files_.erase(e.path);
      if (unlink(e.path.c_str()) != 0 && errno != ENOENT)
        return Status::Errno(errno, "crash: remove created " + e.path);
      return Status::Ok();
    case Entry::kRename: {
      if (rename(e.to.c_str(), e.path.c_str()) != 0 && errno != ENOENT)
        return Status::Errno(errno, "crash: rename " + e.to + " back to " + e.path);
      auto it = files_.find(e.to);
      if (it != files_.end()) {
        files_[e.path] = std::move(it->second);
        files_.erase(it);
      }
      if (!e.has_saved) return Status::Ok();
      files_[e.to] = e.saved;
      return WriteWhole(e.to, e.saved.durable, e.saved.mode, /*create=*/true);
    }
    case Entry::kUnlink:
      files_[e.path] = e.saved;
      return WriteWhole(e.path, e.saved.durable, e.saved.mode, /*create=*/true);
  }
  return Status::Ok();
}

Status CrashIo::SimulateCrash() {
  MutexLock lock(&mu_);
  Status first;
  for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
    Status st = Undo(*it);
    if (first.ok()) first = st;
  }
  pending_.clear();
  for (auto& [path, f] : files_) {
    if (!f.dirty) continue;
    f.dirty = false;
    Status st = WriteWhole(path, f.durable, f.mode, /*create=*/false);
    if (first.ok()) first = st;
  }
  return first;
}

}  // namespace tierfs

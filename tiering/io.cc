#include "tiering/io.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace tierfs {

namespace {

// The interface's convention: the result, or -errno.
template <typename T>
T Result(T rc) {
  return rc < 0 ? T(-errno) : rc;
}

}  // namespace

int PosixIo::OpenAt(int dir_fd, const char* path, int flags, mode_t mode) {
  return Result(openat(dir_fd, path, flags, mode));
}
ssize_t PosixIo::Pread(int fd, void* buf, size_t n, off_t off) {
  return Result(pread(fd, buf, n, off));
}
ssize_t PosixIo::Pwrite(int fd, const void* buf, size_t n, off_t off) {
  return Result(pwrite(fd, buf, n, off));
}
ssize_t PosixIo::Pwritev2(int fd, const void* buf, size_t n, off_t off, int flags) {
  struct iovec v = {const_cast<void*>(buf), n};
  return Result(pwritev2(fd, &v, 1, off, flags));
}
int PosixIo::Fsync(int fd) {
  return Result(fsync(fd));
}
int PosixIo::Fdatasync(int fd) {
  return Result(fdatasync(fd));
}
int PosixIo::Fallocate(int fd, int mode, off_t off, off_t len) {
  return Result(fallocate(fd, mode, off, len));
}
int PosixIo::Ftruncate(int fd, off_t len) {
  return Result(ftruncate(fd, len));
}
int PosixIo::RenameAt(int old_dir, const char* old_path, int new_dir, const char* new_path) {
  return Result(renameat(old_dir, old_path, new_dir, new_path));
}
int PosixIo::UnlinkAt(int dir_fd, const char* path, int flags) {
  return Result(unlinkat(dir_fd, path, flags));
}
int PosixIo::Fstatvfs(int fd, struct statvfs* out) {
  return Result(fstatvfs(fd, out));
}
int PosixIo::Fsetxattr(int fd, const char* name, const void* value, size_t size, int flags) {
  return Result(fsetxattr(fd, name, value, size, flags));
}

}  // namespace tierfs

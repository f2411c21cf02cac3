// Io: the system calls tierfs makes on a tier's objects, behind one small
// interface, so that a test can make one tier's write, fsync or unlink fail
// (tiering/fault_io.h) while everything else runs for real. Modeled on
// LevelDB's Env / EnvWrapper.
//
// Contract:
//  - Each call is the system call of the same name, with its arguments and
//    its meaning; the result comes back in the return value and never as an
//    exception or through errno: a descriptor (OpenAt), a byte count
//    (Pread, Pwrite) or 0 (the rest) on success, -errno on failure. EINTR is
//    returned like any other error (the caller decides to retry).
//  - Descriptors are plain kernel descriptors: the caller closes them with
//    close(2) and may fstat(2) them. Calls an Io does not cover (fstat,
//    futimens, lseek, syncfs, the advisory sync_file_range) are made
//    directly.
//  - IsPlainPosix() is true only for PosixIo itself, never for a wrapper
//    (even one that forwards everything): only then may a caller use paths
//    that bypass this interface with the same descriptors — io_uring
//    (tiering/uring_copy.cc), copy_file_range, libfuse's splice/fd copies,
//    kernel passthrough of reads — because they would be invisible to a
//    wrapper. Such callers fall back to plain Pread/Pwrite through the Io
//    otherwise: a fault then lands exactly where the test asked, and the
//    fast paths stay untouched in production. (Injecting at io_uring
//    completion instead would need a second fault mechanism for one caller.)
//  - Implementations are safe to call from many threads at once.
#pragma once

#include <fcntl.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <memory>

namespace tierfs {

class Io {
 public:
  virtual ~Io() = default;
  virtual bool IsPlainPosix() const = 0;
  // openat(2) of `path` relative to directory `dir_fd`.
  virtual int OpenAt(int dir_fd, const char* path, int flags, mode_t mode) = 0;
  virtual ssize_t Pread(int fd, void* buf, size_t n, off_t off) = 0;
  virtual ssize_t Pwrite(int fd, const void* buf, size_t n, off_t off) = 0;
  // pwritev2(2) of one buffer with RWF_* `flags`. -EOPNOTSUPP where the
  // kernel or the filesystem lacks a flag (RWF_DONTCACHE before Linux 6.14,
  // or on tmpfs): the caller falls back to Pwrite.
  virtual ssize_t Pwritev2(int fd, const void* buf, size_t n, off_t off, int flags) = 0;
  virtual int Fsync(int fd) = 0;
  virtual int Fdatasync(int fd) = 0;
  virtual int Fallocate(int fd, int mode, off_t off, off_t len) = 0;
  virtual int Ftruncate(int fd, off_t len) = 0;
  // renameat(2); unlinkat(2) (`flags` 0 or AT_REMOVEDIR).
  virtual int RenameAt(int old_dir, const char* old_path, int new_dir, const char* new_path) = 0;
  virtual int UnlinkAt(int dir_fd, const char* path, int flags) = 0;
  virtual int Fstatvfs(int fd, struct statvfs* out) = 0;
  // fsetxattr(2): a moved object's identity (tiering/identity.h).
  virtual int Fsetxattr(int fd, const char* name, const void* value, size_t size, int flags) = 0;
};

// The real system calls. Stateless: one instance may serve every tier.
class PosixIo : public Io {
 public:
  bool IsPlainPosix() const override { return true; }
  int OpenAt(int dir_fd, const char* path, int flags, mode_t mode) override;
  ssize_t Pread(int fd, void* buf, size_t n, off_t off) override;
  ssize_t Pwrite(int fd, const void* buf, size_t n, off_t off) override;
  ssize_t Pwritev2(int fd, const void* buf, size_t n, off_t off, int flags) override;
  int Fsync(int fd) override;
  int Fdatasync(int fd) override;
  int Fallocate(int fd, int mode, off_t off, off_t len) override;
  int Ftruncate(int fd, off_t len) override;
  int RenameAt(int old_dir, const char* old_path, int new_dir, const char* new_path) override;
  int UnlinkAt(int dir_fd, const char* path, int flags) override;
  int Fstatvfs(int fd, struct statvfs* out) override;
  int Fsetxattr(int fd, const char* name, const void* value, size_t size, int flags) override;
};

// Forwards every call to `target`; subclasses override what they change.
class IoWrapper : public Io {
 public:
  explicit IoWrapper(std::shared_ptr<Io> target) : target_(std::move(target)) {}
  Io& target() const { return *target_; }
  bool IsPlainPosix() const override { return false; }
  int OpenAt(int dir_fd, const char* path, int flags, mode_t mode) override {
    return target_->OpenAt(dir_fd, path, flags, mode);
  }
  ssize_t Pread(int fd, void* buf, size_t n, off_t off) override {
    return target_->Pread(fd, buf, n, off);
  }
  ssize_t Pwrite(int fd, const void* buf, size_t n, off_t off) override {
    return target_->Pwrite(fd, buf, n, off);
  }
  ssize_t Pwritev2(int fd, const void* buf, size_t n, off_t off, int flags) override {
    return target_->Pwritev2(fd, buf, n, off, flags);
  }
  int Fsync(int fd) override { return target_->Fsync(fd); }
  int Fdatasync(int fd) override { return target_->Fdatasync(fd); }
  int Fallocate(int fd, int mode, off_t off, off_t len) override {
    return target_->Fallocate(fd, mode, off, len);
  }
  int Ftruncate(int fd, off_t len) override { return target_->Ftruncate(fd, len); }
  int RenameAt(int old_dir, const char* old_path, int new_dir, const char* new_path) override {
    return target_->RenameAt(old_dir, old_path, new_dir, new_path);
  }
  int UnlinkAt(int dir_fd, const char* path, int flags) override {
    return target_->UnlinkAt(dir_fd, path, flags);
  }
  int Fstatvfs(int fd, struct statvfs* out) override { return target_->Fstatvfs(fd, out); }
  int Fsetxattr(int fd, const char* name, const void* value, size_t size, int flags) override {
    return target_->Fsetxattr(fd, name, value, size, flags);
  }

 private:
  std::shared_ptr<Io> target_;
};

}  // namespace tierfs

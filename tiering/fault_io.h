// FaultIo: an Io (tiering/io.h) for tests that makes chosen calls of one
// tier fail, so every error path can be proven: "the 2nd pwrite fails with
// ENOSPC", "every fsync from the 1st on fails with EIO", "the 1st read
// returns a flipped byte". Everything else is forwarded to the real calls.
//
// A rule names a kind of call (IoOp), which call of that kind fires (the
// Nth counted from when the rule was added, 1-based) and whether every
// later one fires too, and what happens: the call fails with `err`, doing
// nothing, or (`corrupt`, reads only) it succeeds but the first byte read
// is inverted, as a medium returning bad data would. Several rules may
// watch one kind; the first that fires wins.
//
// The daemon builds one per tier from --inject-fault TIER:OP:N[+]:ERRNO
// (ParseFaultSpec); the unit tests build them directly.
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "meta/inode.h"
#include "meta/mutex.h"
#include "meta/status.h"
#include "tiering/io.h"

namespace tierfs {

enum class IoOp {
  kOpen,
  kPread,
  kPwrite,
  kFsync,
  kFdatasync,
  kFallocate,
  kFtruncate,
  kRename,
  kUnlink,
  kStatfs,
  kSetxattr,
  kCount
};
// "open", "pread", ...: the names --inject-fault uses.
const char* IoOpName(IoOp op);

struct FaultRule {
  IoOp op = IoOp::kPwrite;
  uint64_t nth = 1;        // which call fires, counted from when the rule was added
  bool and_after = false;  // every call from the nth on
  int err = EIO;           // the errno the call fails with (unless corrupt)
  bool corrupt = false;    // kPread only: succeed, but invert the first byte read
};

class FaultIo : public IoWrapper {
 public:
  explicit FaultIo(std::shared_ptr<Io> target, std::vector<FaultRule> rules = {});
  void AddRule(const FaultRule& rule);
  void ClearRules();
  // Calls of kind `op` so far, and how many of all kinds a rule made fail
  // (or corrupted).
  uint64_t Calls(IoOp op) const;
  uint64_t Injected() const;

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

 private:
  struct Armed {
    FaultRule rule;
    uint64_t base = 0;  // calls of its kind before it was added
  };
  // Counts a call of kind `op`; the rule that fires on it, if any.
  bool Fire(IoOp op, FaultRule* fired) EXCLUDES(mu_);
  mutable Mutex mu_;
  std::vector<Armed> rules_ GUARDED_BY(mu_);
  std::array<uint64_t, size_t(IoOp::kCount)> calls_ GUARDED_BY(mu_){};
  uint64_t injected_ GUARDED_BY(mu_) = 0;
};

// Parses "TIER:OP:N[+]:ERRNO", e.g. "hdd:fsync:1+:EIO" or "ssd:pread:2:corrupt".
// TIER is ssd or hdd; OP an IoOpName; N >= 1, with "+" for every call from
// the Nth on; ERRNO a name (EIO, ENOSPC, EROFS, EDQUOT, EFBIG, ENOMEM,
// EACCES, EPERM, EAGAIN, EINTR, ENOTCONN, ESTALE, ETIMEDOUT), a positive
// number, or "corrupt" (pread only). EINVAL naming the part that is wrong.
Status ParseFaultSpec(const std::string& spec, TierId* tier, FaultRule* rule);

// The Io of each tier for the daemon: a FaultIo with the rules of `specs`
// that name it, or null (PosixIo) for a tier no spec names.
Status MakeFaultIos(const std::vector<std::string>& specs, std::shared_ptr<Io>* ssd,
                    std::shared_ptr<Io>* hdd);

}  // namespace tierfs

#include "tiering/fault_io.h"

#include <cstdlib>
#include <cstring>

namespace tierfs {

const char* IoOpName(IoOp op) {
  switch (op) {
    case IoOp::kOpen:
      return "open";
    case IoOp::kPread:
      return "pread";
    case IoOp::kPwrite:
      return "pwrite";
    case IoOp::kFsync:
      return "fsync";
    case IoOp::kFdatasync:
      return "fdatasync";
    case IoOp::kFallocate:
      return "fallocate";
    case IoOp::kFtruncate:
      return "ftruncate";
    case IoOp::kRename:
      return "rename";
    case IoOp::kUnlink:
      return "unlink";
    case IoOp::kStatfs:
      return "statfs";
    case IoOp::kSetxattr:
      return "setxattr";
    case IoOp::kCount:
      break;
  }
  return "?";
}

FaultIo::FaultIo(std::shared_ptr<Io> target, std::vector<FaultRule> rules)
    : IoWrapper(std::move(target)) {
  for (const FaultRule& r : rules) AddRule(r);
}

void FaultIo::AddRule(const FaultRule& rule) {
  MutexLock lock(&mu_);
  rules_.push_back({rule, calls_[size_t(rule.op)]});
}

void FaultIo::ClearRules() {
  MutexLock lock(&mu_);
  rules_.clear();
}

uint64_t FaultIo::Calls(IoOp op) const {
  MutexLock lock(&mu_);
  return calls_[size_t(op)];
}

uint64_t FaultIo::Injected() const {
  MutexLock lock(&mu_);
  return injected_;
}

bool FaultIo::Fire(IoOp op, FaultRule* fired) {
  MutexLock lock(&mu_);
  const uint64_t call = ++calls_[size_t(op)];
  for (const Armed& a : rules_) {
    if (a.rule.op != op) continue;
    const uint64_t k = call - a.base;
    if (k == a.rule.nth || (a.rule.and_after && k > a.rule.nth)) {
      *fired = a.rule;
      injected_++;
      return true;
    }
  }
  return false;
}

int FaultIo::OpenAt(int dir_fd, const char* path, int flags, mode_t mode) {
  FaultRule r;
  if (Fire(IoOp::kOpen, &r)) return -r.err;
  return IoWrapper::OpenAt(dir_fd, path, flags, mode);
}

ssize_t FaultIo::Pread(int fd, void* buf, size_t n, off_t off) {
  FaultRule r;
  if (!Fire(IoOp::kPread, &r)) return IoWrapper::Pread(fd, buf, n, off);
  if (!r.corrupt) return -r.err;
  ssize_t got = IoWrapper::Pread(fd, buf, n, off);
  if (got > 0) static_cast<unsigned char*>(buf)[0] ^= 0xff;
  return got;
}

ssize_t FaultIo::Pwrite(int fd, const void* buf, size_t n, off_t off) {
  FaultRule r;
  if (Fire(IoOp::kPwrite, &r)) return -r.err;
  return IoWrapper::Pwrite(fd, buf, n, off);
}

// A write with flags is a write: "the 2nd pwrite fails" counts both kinds.
ssize_t FaultIo::Pwritev2(int fd, const void* buf, size_t n, off_t off, int flags) {
  FaultRule r;
  if (Fire(IoOp::kPwrite, &r)) return -r.err;
  return IoWrapper::Pwritev2(fd, buf, n, off, flags);
}

int FaultIo::Fsync(int fd) {
  FaultRule r;
  if (Fire(IoOp::kFsync, &r)) return -r.err;
  return IoWrapper::Fsync(fd);
}

int FaultIo::Fdatasync(int fd) {
  FaultRule r;
  if (Fire(IoOp::kFdatasync, &r)) return -r.err;
  return IoWrapper::Fdatasync(fd);
}

int FaultIo::Fallocate(int fd, int mode, off_t off, off_t len) {
  FaultRule r;
  if (Fire(IoOp::kFallocate, &r)) return -r.err;
  return IoWrapper::Fallocate(fd, mode, off, len);
}

int FaultIo::Ftruncate(int fd, off_t len) {
  FaultRule r;
  if (Fire(IoOp::kFtruncate, &r)) return -r.err;
  return IoWrapper::Ftruncate(fd, len);
}

int FaultIo::RenameAt(int old_dir, const char* old_path, int new_dir, const char* new_path) {
  FaultRule r;
  if (Fire(IoOp::kRename, &r)) return -r.err;
  return IoWrapper::RenameAt(old_dir, old_path, new_dir, new_path);
}

int FaultIo::UnlinkAt(int dir_fd, const char* path, int flags) {
  FaultRule r;
  if (Fire(IoOp::kUnlink, &r)) return -r.err;
  return IoWrapper::UnlinkAt(dir_fd, path, flags);
}

int FaultIo::Fstatvfs(int fd, struct statvfs* out) {
  FaultRule r;
  if (Fire(IoOp::kStatfs, &r)) return -r.err;
  return IoWrapper::Fstatvfs(fd, out);
}

int FaultIo::Fsetxattr(int fd, const char* name, const void* value, size_t size, int flags) {
  FaultRule r;
  if (Fire(IoOp::kSetxattr, &r)) return -r.err;
  return IoWrapper::Fsetxattr(fd, name, value, size, flags);
}

namespace {

struct ErrnoName {
  const char* name;
  int err;
};
constexpr ErrnoName kErrnos[] = {{"EIO", EIO},
                                 {"ENOSPC", ENOSPC},
                                 {"EROFS", EROFS},
                                 {"EDQUOT", EDQUOT},
                                 {"EFBIG", EFBIG},
                                 {"ENOMEM", ENOMEM},
                                 {"EACCES", EACCES},
                                 {"EPERM", EPERM},
                                 {"EAGAIN", EAGAIN},
                                 {"EINTR", EINTR},
                                 // A network filesystem's transport (a shared capacity tier).
                                 {"ENOTCONN", ENOTCONN},
                                 {"ESTALE", ESTALE},
                                 {"ETIMEDOUT", ETIMEDOUT}};

// A whole decimal number >= 1, or false.
bool ParseCount(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
    return false;
  *out = std::strtoull(s.c_str(), nullptr, 10);
  return *out >= 1;
}

}  // namespace

Status ParseFaultSpec(const std::string& spec, TierId* tier, FaultRule* rule) {
  auto bad = [&](const std::string& why) {
    return Status::Error(EINVAL, "fault \"" + spec + "\": " + why +
                                     " (want TIER:OP:N[+]:ERRNO, e.g. hdd:fsync:1+:EIO)");
  };
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t colon = spec.find(':', start);
    parts.push_back(spec.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (parts.size() != 4) return bad("four fields separated by ':'");
  if (parts[0] == "ssd")
    *tier = TierId::kSsd;
  else if (parts[0] == "hdd")
    *tier = TierId::kHdd;
  else
    return bad("tier \"" + parts[0] + "\" is not ssd or hdd");
  FaultRule r;
  bool known = false;
  for (size_t i = 0; i < size_t(IoOp::kCount) && !known; ++i) {
    if (parts[1] == IoOpName(IoOp(i))) {
      r.op = IoOp(i);
      known = true;
    }
  }
  if (!known) return bad("unknown operation \"" + parts[1] + "\"");
  std::string n = parts[2];
  if (!n.empty() && n.back() == '+') {
    r.and_after = true;
    n.pop_back();
  }
  if (!ParseCount(n, &r.nth)) return bad("call number \"" + parts[2] + "\" is not N or N+");
  const std::string& e = parts[3];
  uint64_t num = 0;
  if (e == "corrupt") {
    if (r.op != IoOp::kPread) return bad("only pread can be corrupt");
    r.corrupt = true;
    r.err = 0;
  } else if (ParseCount(e, &num) && num < 4096) {
    r.err = int(num);
  } else {
    r.err = 0;
    for (const ErrnoName& k : kErrnos)
      if (e == k.name) r.err = k.err;
    if (r.err == 0) return bad("unknown errno \"" + e + "\"");
  }
  *rule = r;
  return Status::Ok();
}

Status MakeFaultIos(const std::vector<std::string>& specs, std::shared_ptr<Io>* ssd,
                    std::shared_ptr<Io>* hdd) {
  std::vector<FaultRule> rules[2];
  for (const std::string& spec : specs) {
    TierId tier;
    FaultRule rule;
    Status st = ParseFaultSpec(spec, &tier, &rule);
    if (!st.ok()) return st;
    rules[size_t(tier)].push_back(rule);
  }
  std::shared_ptr<Io>* out[2] = {ssd, hdd};
  for (size_t i = 0; i < 2; ++i) {
    out[i]->reset();
    if (!rules[i].empty())
      *out[i] = std::make_shared<FaultIo>(std::make_shared<PosixIo>(), std::move(rules[i]));
  }
  return Status::Ok();
}

}  // namespace tierfs

#include "tiering/tier.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <random>

#include <spdlog/spdlog.h>

namespace tierfs {

namespace {

constexpr char kIdentityFile[] = "tierfs.id";

std::string RandomIdentity() {
  std::random_device rd;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  return buf;
}

// Reads the tier's identity file into *id; "" when there is none.
Status ReadIdentity(int root_fd, const std::string& where, std::string* id) {
  id->clear();
  int fd = openat(root_fd, kIdentityFile, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? Status::Ok()
                           : Status::Errno(errno, "open " + where + "/" + kIdentityFile);
  char buf[64];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return Status::Error(EIO, "unreadable identity file in tier " + where);
  id->assign(buf, n);
  while (!id->empty() && (id->back() == '\n' || id->back() == ' ')) id->pop_back();
  return Status::Ok();
}

Status CreateIdentity(int root_fd, const std::string& where, std::string* id) {
  *id = RandomIdentity();
  const std::string tmp = std::string(kIdentityFile) + ".tmp";
  int fd = openat(root_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Errno(errno, "create identity file in tier " + where);
  const std::string line = *id + "\n";
  bool ok = write(fd, line.data(), line.size()) == ssize_t(line.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok || renameat(root_fd, tmp.c_str(), root_fd, kIdentityFile) != 0)
    return Status::Errno(errno ? errno : EIO, "write identity file in tier " + where);
  return Status::Ok();
}

}  // namespace

bool Tier::ValidNamespaceName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.' || name[0] == '-') return false;
  for (char ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-')
      return false;
  return true;
}

Status Tier::Open(TierId id, const std::string& root, const std::string& ns,
                  std::unique_ptr<Tier>* out, std::shared_ptr<Io> io,
                  const std::string& known_identity) {
  const std::string what = std::string(TierName(id)) + " tier " + root;
  if (!ValidNamespaceName(ns)) return Status::Error(EINVAL, "bad namespace name '" + ns + "'");
  struct stat st;
  if (stat(root.c_str(), &st) != 0) return Status::Errno(errno, what);
  if (!S_ISDIR(st.st_mode)) return Status::Error(ENOTDIR, what + " is not a directory");
  std::unique_ptr<Tier> t(new Tier());
  t->id_ = id;
  t->root_ = root;
  t->ns_ = ns;
  t->ns_dir_ = root + "/" + NamespaceRelPath(ns);
  t->tier_fd_ = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (t->tier_fd_ < 0) return Status::Errno(errno, "open " + what);
  t->io_ = io ? std::move(io) : std::make_shared<PosixIo>();
  t->root_dev_ = st.st_dev;
  t->root_ino_ = st.st_ino;
  // Before anything is written: a tier the state knows but whose directory
  // has no identity is most likely a filesystem that is not mounted, its
  // bare mountpoint showing; nothing of ours may land there.
  Status s = ReadIdentity(t->tier_fd_, what, &t->identity_);
  if (!s.ok()) return s;
  if (t->identity_.empty() && !known_identity.empty())
    return Status::Error(EINVAL, "the " + std::string(TierName(id)) + " tier " + root + " has no " +
                                     kIdentityFile + ", but the state knows it as " +
                                     known_identity + ": is its filesystem mounted?");
  for (const std::string& dir : {std::string("ns"), NamespaceRelPath(ns)}) {
    if (mkdirat(t->tier_fd_, dir.c_str(), 0700) != 0 && errno != EEXIST)
      return Status::Errno(errno, "create " + dir + "/ in " + what);
  }
  t->root_fd_ = openat(t->tier_fd_, NamespaceRelPath(ns).c_str(),
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (t->root_fd_ < 0) return Status::Errno(errno, "open " + t->ns_dir_);
  if (mkdirat(t->root_fd_, "objects", 0700) != 0 && errno != EEXIST)
    return Status::Errno(errno, "create objects/ in " + t->ns_dir_);
  for (int i = 0; i < 256; ++i) {
    char sub[16];
    std::snprintf(sub, sizeof sub, "objects/%02x", i);
    if (mkdirat(t->root_fd_, sub, 0700) != 0 && errno != EEXIST)
      return Status::Errno(errno, std::string("create ") + sub + " in " + t->ns_dir_);
  }
  if (t->identity_.empty()) s = CreateIdentity(t->tier_fd_, what, &t->identity_);
  if (!s.ok()) return s;
  *out = std::move(t);
  return Status::Ok();
}

Tier::~Tier() {
  if (root_fd_ >= 0) close(root_fd_);
  if (tier_fd_ >= 0) close(tier_fd_);
}

Status Tier::HasObjects(bool* any, std::string* found) const {
  *any = false;
  for (int i = 0; i < 256 && !*any; ++i) {
    char sub[16];
    std::snprintf(sub, sizeof sub, "objects/%02x", i);
    int fd = openat(root_fd_, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      return Status::Errno(errno, "open " + ns_dir_ + "/" + sub);
    }
    DIR* d = fdopendir(fd);
    if (!d) {
      close(fd);
      return Status::Errno(errno, "read " + ns_dir_ + "/" + sub);
    }
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      *any = true;
      *found = ns_dir_ + "/" + sub + "/" + e->d_name;
      break;
    }
    closedir(d);
  }
  return Status::Ok();
}

std::string Tier::ObjectRelPath(uint64_t ino) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "objects/%02x/%llx", unsigned(ino & 0xff),
                static_cast<unsigned long long>(ino));
  return buf;
}

int Tier::OpenObject(uint64_t ino, int flags, Status* st) const {
  int fd = io_->OpenAt(root_fd_, ObjectRelPath(ino).c_str(), flags | O_CLOEXEC, 0600);
  if (fd < 0) *st = Status::Errno(-fd, std::string("open object ") + ObjectPath(ino));
  return fd < 0 ? -1 : fd;
}

Status Tier::StatObject(uint64_t ino, struct stat* out) const {
  if (fstatat(root_fd_, ObjectRelPath(ino).c_str(), out, 0) != 0)
    return Status::Errno(errno, "stat object " + ObjectPath(ino));
  return Status::Ok();
}

bool Tier::WritableElsewhere(uint64_t ino) const {
  Status st;
  const int fd = OpenObject(ino, O_RDONLY, &st);
  if (fd < 0) return false;
  // A write-open breaking the lease in the moment it is held signals its
  // holder, by default with SIGIO, whose default action ends the process;
  // SIGURG's is to ignore it.
  bool busy = false;
  if (fcntl(fd, F_SETSIG, SIGURG) == 0) {
    if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0)
      fcntl(fd, F_SETLEASE, F_UNLCK);
    else
      busy = errno == EAGAIN;
  }
  close(fd);
  return busy;
}

Status Tier::RemoveObject(uint64_t ino) const {
  int rc = io_->UnlinkAt(root_fd_, ObjectRelPath(ino).c_str(), 0);
  if (rc != 0 && rc != -ENOENT && rc != -ENOTDIR)
    return Status::Errno(-rc, "remove object " + ObjectPath(ino));
  // The identity sidecar, where the tier refused xattrs (tiering/identity.h);
  // looked for first, so a tier with xattrs sees the same calls as before.
  const std::string side = ObjectRelPath(ino) + ".id";
  struct stat sb;
  if (fstatat(root_fd_, side.c_str(), &sb, AT_SYMLINK_NOFOLLOW) != 0) return Status::Ok();
  rc = io_->UnlinkAt(root_fd_, side.c_str(), 0);
  if (rc != 0 && rc != -ENOENT && rc != -ENOTDIR)
    return Status::Errno(-rc, "remove identity sidecar " + ObjectPath(ino) + ".id");
  return Status::Ok();
}

std::string Tier::TempRelPath(uint64_t ino) {
  return ObjectRelPath(ino) + ".moving";
}

int Tier::OpenTemp(uint64_t ino, int flags, Status* st) const {
  int fd = io_->OpenAt(root_fd_, TempRelPath(ino).c_str(), flags | O_CLOEXEC, 0600);
  if (fd < 0) *st = Status::Errno(-fd, std::string("open temporary object ") + TempPath(ino));
  return fd < 0 ? -1 : fd;
}

Status Tier::RemoveTemp(uint64_t ino) const {
  const int rc = io_->UnlinkAt(root_fd_, TempRelPath(ino).c_str(), 0);
  if (rc != 0 && rc != -ENOENT && rc != -ENOTDIR)
    return Status::Errno(-rc, "remove temporary object " + TempPath(ino));
  return Status::Ok();
}

Status Tier::CommitTemp(uint64_t ino) const {
  const std::string rel = ObjectRelPath(ino);
  int rc = io_->RenameAt(root_fd_, TempRelPath(ino).c_str(), root_fd_, rel.c_str());
  if (rc != 0) return Status::Errno(-rc, "rename " + TempPath(ino) + " into place");
  const std::string dir = rel.substr(0, rel.rfind('/'));
  int fd = io_->OpenAt(root_fd_, dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0) return Status::Errno(-fd, "open " + ns_dir_ + "/" + dir);
  rc = io_->Fsync(fd);
  Status st = rc == 0 ? Status::Ok() : Status::Errno(-rc, "fsync " + ns_dir_ + "/" + dir);
  close(fd);
  return st;
}

Status Tier::SyncObjectDir(uint64_t ino) const {
  const std::string rel = ObjectRelPath(ino);
  const std::string dir = rel.substr(0, rel.rfind('/'));
  const int fd = io_->OpenAt(root_fd_, dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd == -ENOENT || fd == -ENOTDIR) return Status::Ok();
  if (fd < 0) return Status::Errno(-fd, "open " + ns_dir_ + "/" + dir);
  const int rc = io_->Fsync(fd);
  close(fd);
  if (rc != 0) return Status::Errno(-rc, "fsync " + ns_dir_ + "/" + dir);
  return Status::Ok();
}

Status Tier::StatFs(struct statvfs* out) const {
  const int rc = io_->Fstatvfs(tier_fd_, out);
  if (rc != 0) return Status::Errno(-rc, std::string("statfs ") + name());
  return Status::Ok();
}

Status Tier::GetSpace(Space* out) const {
  struct statvfs v;
  Status st = StatFs(&v);
  if (!st.ok()) return st;
  out->capacity = uint64_t(v.f_blocks) * v.f_frsize;
  out->free = uint64_t(v.f_bavail) * v.f_frsize;
  return Status::Ok();
}

Status Tier::CheckHealth() const {
  const std::string what = std::string(name()) + " tier " + root_;
  struct stat now;
  if (stat(root_.c_str(), &now) != 0)
    return Status::Error(EIO, what + " is unreachable: " + std::strerror(errno));
  if (now.st_dev != root_dev_ || now.st_ino != root_ino_)
    return Status::Error(EIO, what +
                                  " is no longer the directory mounted at start "
                                  "(removed, replaced or unmounted)");
  // Opened, not only looked up: a filesystem shut down (a dead device,
  // EXT4_IOC_SHUTDOWN) still answers lookups from its caches.
  const int id_fd = openat(tier_fd_, kIdentityFile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (id_fd < 0)
    return Status::Error(EIO, what + ": identity file unreadable: " + std::strerror(errno));
  close(id_fd);
  struct statvfs v;
  const int rc = io_->Fstatvfs(tier_fd_, &v);
  if (rc != 0) return Status::Error(EIO, what + ": statfs: " + std::strerror(-rc));
  if (v.f_flag & ST_RDONLY) return Status::Error(EIO, what + " is read-only");
  return owner_.empty() ? Status::Ok() : CheckOwner();
}

void Tier::ParseOwner(const std::string& text, std::string* id, std::string* note) {
  auto trimmed = [](std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  };
  const size_t eol = text.find('\n');
  *id = trimmed(text.substr(0, eol));
  if (note) *note = eol == std::string::npos ? "" : trimmed(text.substr(eol + 1));
}

Status Tier::CheckOwner() const {
  std::lock_guard<std::mutex> lock(owner_mu_);
  if (!owner_lost_.empty()) return Status::Error(EIO, owner_lost_);
  const int64_t now = NowNs();
  if (now - owner_checked_ns_ < 1000000000) return Status::Ok();
  owner_checked_ns_ = now;
  // Unreadable now (a transport hiccup the checks above did not see): the
  // next check reads it again.
  const int fd = openat(root_fd_, "owner", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Status::Ok();
  char buf[1024];
  const ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  if (n <= 0) return Status::Ok();
  std::string owner, note;
  ParseOwner(std::string(buf, size_t(n)), &owner, &note);
  if (owner == owner_) return Status::Ok();
  owner_lost_ = "namespace '" + ns_ + "' on the " + name() + " tier (" + ns_dir_ +
                ") now belongs to state " + owner + (note.empty() ? "" : ", " + note) +
                ": this mount no longer writes there; unmount it";
  spdlog::error("{}", owner_lost_);
  return Status::Error(EIO, owner_lost_);
}

Status Tier::SyncFs() const {
  if (syncfs(tier_fd_) != 0) return Status::Errno(errno, std::string("syncfs ") + name());
  return Status::Ok();
}

}  // namespace tierfs

#include "fs/namespace_setup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "meta/inode.h"
#include "meta/text_format.h"

namespace tierfs {

namespace {

constexpr char kNameKey[] = "namespace";
constexpr char kStateIdKey[] = "state_id";
constexpr char kOwnerFile[] = "owner";

std::string RandomHex(int words) {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < words; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%08x", rd());
    out += buf;
  }
  return out;
}

// The owner file of a namespace directory: the owning state's id on its
// first line ("" when there is no file), and what a takeover wrote on the
// second (`note`, may be null).
Status ReadOwner(const std::string& ns_dir, std::string* owner, std::string* note = nullptr) {
  owner->clear();
  if (note) note->clear();
  const std::string path = ns_dir + "/" + kOwnerFile;
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? Status::Ok() : Status::Errno(errno, "open " + path);
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf);
  const int err = errno;
  close(fd);
  if (n < 0) return Status::Errno(err, "read " + path);
  Tier::ParseOwner(std::string(buf, size_t(n)), owner, note);
  return Status::Ok();
}

// Writes the owner file (temporary + rename + fsync of both), so a crash
// leaves either the old owner or the whole new one.
Status WriteOwner(const std::string& ns_dir, const std::string& state_id,
                  const std::string& note = "") {
  const std::string path = ns_dir + "/" + kOwnerFile;
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Errno(errno, "create " + tmp);
  const std::string text = state_id + "\n" + (note.empty() ? "" : note + "\n");
  bool ok = write(fd, text.data(), text.size()) == ssize_t(text.size()) && fsync(fd) == 0;
  const int err = errno ? errno : EIO;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) return Status::Errno(err, "write " + path);
  int dfd = open(ns_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return Status::Ok();
}

std::string HostName() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) return "unknown host";
  return host;
}

// A state made by an older tierfs kept its objects in <tier>/objects/: they
// become the namespace's (one rename, before Tier::Open makes the new tree).
Status AdoptLegacyObjects(const std::string& root, const std::string& ns) {
  const std::string legacy = root + "/objects";
  const std::string ns_dir = root + "/" + Tier::NamespaceRelPath(ns);
  struct stat st;
  if (lstat(legacy.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return Status::Ok();
  if (lstat((ns_dir + "/objects").c_str(), &st) == 0)
    return Status::Error(EEXIST, "both " + legacy + " (objects of an older tierfs) and " + ns_dir +
                                     "/objects exist; move one away");
  for (const std::string& dir : {root + "/ns", ns_dir}) {
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      return Status::Errno(errno, "create " + dir);
  }
  if (rename(legacy.c_str(), (ns_dir + "/objects").c_str()) != 0)
    return Status::Errno(errno, "move " + legacy + " to " + ns_dir + "/objects");
  return Status::Ok();
}

// A fresh state must not take over a namespace directory someone else made.
Status CheckClaimable(const Tier& tier, const std::string& state_id) {
  std::string owner;
  Status st = ReadOwner(tier.namespace_dir(), &owner);
  if (!st.ok()) return st;
  if (!owner.empty() && owner != state_id)
    return Status::Error(EEXIST, "namespace '" + tier.namespace_name() + "' on the " + tier.name() +
                                     " tier (" + tier.namespace_dir() +
                                     ") belongs to another state (" + owner +
                                     "); choose another --namespace");
  bool any = false;
  std::string found;
  st = tier.HasObjects(&any, &found);
  if (!st.ok()) return st;
  if (any)
    return Status::Error(EEXIST, "a new state found objects it does not know in namespace '" +
                                     tier.namespace_name() + "' on the " + tier.name() + " tier (" +
                                     found +
                                     "); refusing to reuse their names: choose another "
                                     "--namespace, or mount with the state that made them");
  return Status::Ok();
}

// The state remembers which tiers it describes; another pair would show a
// namespace whose objects are not there.
Status CheckIdentity(Store& store, const Tier& tier, const std::string& state) {
  const std::string key = std::string(tier.name()) + "_identity";
  std::string known;
  Status st = store.GetMeta(key, &known);
  if (st.err() == ENOENT) return store.PutMeta(key, tier.identity());
  if (!st.ok()) return st;
  if (known != tier.identity())
    return Status::Error(EINVAL, "state " + state + " belongs to another " + tier.name() +
                                     " tier than " + tier.root() + " (identity " + known +
                                     ", found " + tier.identity() + ")");
  return Status::Ok();
}

Status GetMetaOrEmpty(Store& store, const char* key, std::string* value) {
  Status st = store.GetMeta(key, value);
  if (st.err() == ENOENT) {
    value->clear();
    return Status::Ok();
  }
  return st;
}

}  // namespace

NamespaceLock::~NamespaceLock() {
  if (fd_ >= 0) close(fd_);
}

NamespaceLock& NamespaceLock::operator=(NamespaceLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    exclusive_ = other.exclusive_;
    path_ = std::move(other.path_);
    other.fd_ = -1;
  }
  return *this;
}

void NamespaceLock::Announce(const std::string& what) const {
  if (fd_ < 0) return;
  const std::string me = "tierfs pid " + std::to_string(getpid()) + " on " + HostName() + " (" +
                         what + ", since " + UtcSeconds(NowNs()) + ")\n";
  // Through a descriptor of its own when the lock's is read-only (closing
  // it does not drop an OFD lock).
  const int wfd = exclusive_ ? fd_ : open(path_.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  if (wfd >= 0 && ftruncate(wfd, 0) == 0) static_cast<void>(pwrite(wfd, me.data(), me.size(), 0));
  if (wfd >= 0 && wfd != fd_) close(wfd);
}

Status LockNamespace(const std::string& ns_dir, const std::string& what, LockKind kind,
                     NamespaceLock* lock) {
  const std::string path = ns_dir + "/lock";
  const bool exclusive = kind == LockKind::kExclusive;
  // A mount's descriptor is read-only: a file open for writing would keep
  // an admin from remounting the tier read-only (EBUSY).
  const int fd =
      open(path.c_str(), (exclusive ? O_RDWR : O_RDONLY) | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EROFS && !exclusive) {
    spdlog::warn("cannot create {}: the tier is read-only; this mount holds no namespace lock",
                 path);
    *lock = NamespaceLock();
    return Status::Ok();
  }
  if (fd < 0) return Status::Errno(errno, "open " + path);
  // An OFD lock: it belongs to this open file, so it survives the
  // daemon's fork into the background, and network filesystems forward it.
  struct flock fl = {};
  fl.l_type = exclusive ? F_WRLCK : F_RDLCK;
  fl.l_whence = SEEK_SET;
  if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
    const int err = errno;
    if (err == EAGAIN || err == EACCES) {
      char holder[512] = {};
      const ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
      close(fd);
      std::string who = n > 0 ? std::string(holder, size_t(n)) : "";
      while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
      return Status::Error(EBUSY, "namespace directory " + ns_dir + " is in use" +
                                      (who.empty() ? "" : " by " + who) + " (its lock " + path +
                                      " is held; a node that died releases it once its "
                                      "filesystem client times out)");
    }
    close(fd);
    if (err == ENOLCK || err == EOPNOTSUPP || err == ENOSYS || err == EINVAL) {
      spdlog::warn(
          "cannot lock {}: {}; the filesystem has no locks, so nothing keeps a "
          "tierfs recover elsewhere from taking this namespace over while it is in use",
          path, std::strerror(err));
      *lock = NamespaceLock();
      return Status::Ok();
    }
    return Status::Errno(err, "lock " + path);
  }
  *lock = NamespaceLock();
  lock->fd_ = fd;
  lock->exclusive_ = exclusive;
  lock->path_ = path;
  if (exclusive) lock->Announce(what);
  return Status::Ok();
}

Status TakeOverNamespace(Store& store, const std::string& name,
                         const std::vector<std::string>& ns_dirs, std::string* previous) {
  previous->clear();
  const std::string state_id = RandomHex(4);
  for (size_t i = 0; i < ns_dirs.size(); ++i) {
    std::string owner;
    Status st = ReadOwner(ns_dirs[i], &owner);
    if (!st.ok()) return st;
    if (i == 0) *previous = owner;
    const std::string note = "taken over by tierfs recover from state " +
                             (owner.empty() ? std::string("(none)") : owner) + " on " + HostName() +
                             " at " + UtcSeconds(NowNs());
    st = WriteOwner(ns_dirs[i], state_id, note);
    if (!st.ok()) return st;
  }
  Status st = store.PutMeta(kNameKey, name);
  if (st.ok()) st = store.PutMeta(kStateIdKey, state_id);
  if (st.ok()) st = store.Sync();
  return st;
}

Status FindHddNamespace(const std::string& hdd_dir, const std::string& wanted, std::string* name,
                        std::string* ns_dir) {
  std::string ns = wanted;
  struct stat sb;
  const std::string all_dir = hdd_dir + "/ns";
  if (stat(all_dir.c_str(), &sb) != 0)
    return Status::Errno(errno, "HDD tier " + hdd_dir + ": no namespaces (" + all_dir + ")");
  if (ns.empty()) {
    std::vector<std::string> all;
    if (DIR* d = opendir(all_dir.c_str())) {
      while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') all.push_back(e->d_name);
      closedir(d);
    }
    std::sort(all.begin(), all.end());
    if (all.size() != 1) {
      std::string list;
      for (const auto& n : all) list += (list.empty() ? "" : ", ") + n;
      return Status::Error(EINVAL, "the HDD tier " + hdd_dir + " holds " +
                                       std::to_string(all.size()) + " namespaces (" + list +
                                       "): name one with --namespace");
    }
    ns = all[0];
  }
  if (!Tier::ValidNamespaceName(ns)) return Status::Error(EINVAL, "bad --namespace '" + ns + "'");
  const std::string dir = hdd_dir + "/" + Tier::NamespaceRelPath(ns);
  if (stat(dir.c_str(), &sb) != 0)
    return Status::Errno(errno, "namespace '" + ns + "' on the HDD tier (" + dir + ")");
  *name = ns;
  *ns_dir = dir;
  return Status::Ok();
}

Status OpenNamespace(const std::string& state_dir, const std::string& ssd_dir,
                     const std::string& hdd_dir, const NamespaceOptions& options,
                     const std::string& what, OpenedNamespace* out) {
  const std::string& wanted_name = options.name;
  if (!wanted_name.empty() && !Tier::ValidNamespaceName(wanted_name))
    return Status::Error(EINVAL, "bad --namespace '" + wanted_name +
                                     "': use 1-64 letters, digits, '.', '_' or '-', not "
                                     "starting with '.' or '-'");
  Status st = Store::Open(state_dir, &out->store, options.store);
  if (!st.ok()) return st;
  Store& store = *out->store;
  std::string name, state_id, known_ssd, known_hdd;
  st = GetMetaOrEmpty(store, kNameKey, &name);
  if (st.ok()) st = GetMetaOrEmpty(store, kStateIdKey, &state_id);
  if (st.ok()) st = GetMetaOrEmpty(store, "ssd_identity", &known_ssd);
  if (st.ok()) st = GetMetaOrEmpty(store, "hdd_identity", &known_hdd);
  if (!st.ok()) return st;
  if (!name.empty() && !wanted_name.empty() && name != wanted_name)
    return Status::Error(EINVAL, "state " + state_dir + " holds namespace '" + name + "', not '" +
                                     wanted_name + "'");
  const bool fresh = state_id.empty() && known_ssd.empty();
  const bool legacy = state_id.empty() && !known_ssd.empty();
  if (name.empty()) name = wanted_name.empty() ? RandomHex(2) : wanted_name;
  if (state_id.empty()) state_id = RandomHex(4);

  for (const std::string& root : {ssd_dir, hdd_dir}) {
    if (legacy) st = AdoptLegacyObjects(root, name);
    if (!st.ok()) return st;
  }
  // A tier the state knows must show its identity file: else its
  // filesystem is most likely not mounted, and Tier::Open refuses before
  // writing into the bare mountpoint (CheckIdentity below would only find
  // a new identity there, made by the refused mount itself).
  st = Tier::Open(TierId::kSsd, ssd_dir, name, &out->ssd, options.ssd_io, known_ssd);
  if (st.ok()) st = Tier::Open(TierId::kHdd, hdd_dir, name, &out->hdd, options.hdd_io, known_hdd);
  if (st.ok()) st = LockNamespace(out->hdd->namespace_dir(), what, LockKind::kShared, &out->lock);
  if (!st.ok()) return st;
  if (out->ssd->identity() == out->hdd->identity())
    return Status::Error(EINVAL, "--ssd and --hdd are the same directory");
  st = CheckIdentity(store, *out->ssd, state_dir);
  if (st.ok()) st = CheckIdentity(store, *out->hdd, state_dir);
  if (!st.ok()) return st;
  for (const Tier* tier : {out->ssd.get(), out->hdd.get()}) {
    std::string owner, note;
    st = fresh ? CheckClaimable(*tier, state_id) : ReadOwner(tier->namespace_dir(), &owner, &note);
    if (!st.ok()) return st;
    if (fresh || owner.empty() || owner == state_id) continue;
    const std::string where =
        "namespace '" + name + "' on the " + tier->name() + " tier (" + tier->namespace_dir() + ")";
    if (note.empty())
      return Status::Error(
          EEXIST, where + " belongs to another state (" + owner + "), not to " + state_dir);
    return Status::Error(EEXIST, where + " belongs to state " + owner + ", " + note + "; state " +
                                     state_dir +
                                     " is superseded and may not write there (the files it had "
                                     "only on the SSD tier stay in " +
                                     out->ssd->namespace_dir() + "/objects)");
  }
  // Recorded in the state first: a crash before the owner files are written
  // leaves a state that is no longer fresh and writes them next time.
  st = store.PutMeta(kNameKey, name);
  if (st.ok()) st = store.PutMeta(kStateIdKey, state_id);
  if (st.ok()) st = store.Sync();
  if (!st.ok()) return st;
  for (const Tier* tier : {out->ssd.get(), out->hdd.get()}) {
    std::string owner;
    st = ReadOwner(tier->namespace_dir(), &owner);
    if (st.ok() && owner.empty()) st = WriteOwner(tier->namespace_dir(), state_id);
    if (!st.ok()) return st;
  }
  // A recover elsewhere may still take the namespace over should this
  // node's lock be lost (a partition its filesystem took for a dead
  // client): the HDD tier then fails its health check, and nothing more is
  // written there.
  out->hdd->RequireOwner(state_id);
  out->name = name;
  out->lock.Announce(what);
  return Status::Ok();
}

}  // namespace tierfs

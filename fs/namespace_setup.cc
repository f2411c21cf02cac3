#include "fs/namespace_setup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <random>

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

// The owner file of a namespace directory: "" when there is none.
Status ReadOwner(const std::string& ns_dir, std::string* owner) {
  owner->clear();
  const std::string path = ns_dir + "/" + kOwnerFile;
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? Status::Ok() : Status::Errno(errno, "open " + path);
  char buf[128];
  ssize_t n = read(fd, buf, sizeof buf);
  const int err = errno;
  close(fd);
  if (n < 0) return Status::Errno(err, "read " + path);
  owner->assign(buf, size_t(n));
  while (!owner->empty() && (owner->back() == '\n' || owner->back() == ' ')) owner->pop_back();
  return Status::Ok();
}

// Writes the owner file (temporary + rename + fsync of both), so a crash
// leaves either no owner or the whole one.
Status WriteOwner(const std::string& ns_dir, const std::string& state_id) {
  const std::string path = ns_dir + "/" + kOwnerFile;
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Errno(errno, "create " + tmp);
  const std::string line = state_id + "\n";
  bool ok = write(fd, line.data(), line.size()) == ssize_t(line.size()) && fsync(fd) == 0;
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

Status OpenNamespace(const std::string& state_dir, const std::string& ssd_dir,
                     const std::string& hdd_dir, const NamespaceOptions& options,
                     OpenedNamespace* out) {
  const std::string& wanted_name = options.name;
  if (!wanted_name.empty() && !Tier::ValidNamespaceName(wanted_name))
    return Status::Error(EINVAL, "bad --namespace '" + wanted_name +
                                     "': use 1-64 letters, digits, '.', '_' or '-', not "
                                     "starting with '.' or '-'");
  Status st = Store::Open(state_dir, &out->store, options.store);
  if (!st.ok()) return st;
  Store& store = *out->store;
  std::string name, state_id, known_ssd;
  st = GetMetaOrEmpty(store, kNameKey, &name);
  if (st.ok()) st = GetMetaOrEmpty(store, kStateIdKey, &state_id);
  if (st.ok()) st = GetMetaOrEmpty(store, "ssd_identity", &known_ssd);
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
  st = Tier::Open(TierId::kSsd, ssd_dir, name, &out->ssd, options.ssd_io);
  if (st.ok()) st = Tier::Open(TierId::kHdd, hdd_dir, name, &out->hdd, options.hdd_io);
  if (!st.ok()) return st;
  if (out->ssd->identity() == out->hdd->identity())
    return Status::Error(EINVAL, "--ssd and --hdd are the same directory");
  st = CheckIdentity(store, *out->ssd, state_dir);
  if (st.ok()) st = CheckIdentity(store, *out->hdd, state_dir);
  if (!st.ok()) return st;
  for (const Tier* tier : {out->ssd.get(), out->hdd.get()}) {
    std::string owner;
    st = fresh ? CheckClaimable(*tier, state_id) : ReadOwner(tier->namespace_dir(), &owner);
    if (!st.ok()) return st;
    if (!fresh && !owner.empty() && owner != state_id)
      return Status::Error(EEXIST, "namespace '" + name + "' on the " + tier->name() + " tier (" +
                                       tier->namespace_dir() + ") belongs to another state (" +
                                       owner + "), not to " + state_dir);
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
  out->name = name;
  return Status::Ok();
}

}  // namespace tierfs

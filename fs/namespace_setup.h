// Opening a namespace: its state (LMDB) and its directory on each tier.
//
// A namespace is one tierfs file tree: one state directory plus, on each
// tier, a directory <tier>/ns/<name>/ that holds its objects
// (tiering/tier.h). Several namespaces may share a tier (the capacity tier
// that the nodes of a multi-node job share): each only ever touches objects
// below its own directory, so one cannot overwrite another's archive.
//
// The name is --namespace or, by default, random; it is chosen when the
// state is created and recorded in LMDB (meta key "namespace"), next to a
// random id of the state itself ("state_id"). Each namespace directory holds
// an `owner` file with the id of the state that owns it. A state opens a
// namespace directory only when the directory is new, is owned by that
// state, or (the first mount of a state that an older tierfs made, which
// kept its objects in <tier>/objects/: they are moved under the namespace)
// has no owner. A fresh state refuses a directory that already holds
// objects or belongs to another state, rather than reusing their names.
//
// `tierfs recover` rebuilds a state from the HDD tier and takes the
// namespace over (TakeOverNamespace): the owner file then names the new
// state, and the state it replaces is refused should it come back (a node
// thought dead that boots again), since both would write objects under the
// same names. While a mount or a recover uses a namespace it holds the
// namespace's lock (LockNamespace), so a recover on another node cannot
// take over a namespace that is still mounted.
//
// Also checked: the state belongs to these tiers (their tierfs.id), and
// --ssd and --hdd are two different tiers. A tier whose identity the state
// recorded but whose directory has no tierfs.id (its filesystem not
// mounted, the bare mountpoint showing) is refused before anything is
// written there; only a tier the state knows nothing of gets a new one.
// Errors: EEXIST when a namespace directory belongs to another state (or
// was taken over from this one) or a fresh state finds objects there;
// EBUSY when the namespace's lock is held; EINVAL for a bad name, a --namespace
// other than the state's, tiers the state does not describe, or a known
// tier without its tierfs.id; errno of the
// failing call otherwise. Every message names the path.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "meta/store.h"
#include "tiering/io.h"
#include "tiering/tier.h"

namespace tierfs {

struct NamespaceOptions {
  std::string name;  // --namespace: "" for the state's own, or a random one for a new state
  StoreOptions store;
  std::shared_ptr<Io> ssd_io, hdd_io;  // each tier's object calls (null: PosixIo)
};

// How LockNamespace locks: a mount shared, recover exclusive.
enum class LockKind { kShared, kExclusive };

// A namespace lock (LockNamespace): released when this goes, or when the
// process ends however it ends.
class NamespaceLock {
 public:
  NamespaceLock() = default;
  ~NamespaceLock();
  NamespaceLock(NamespaceLock&& other) noexcept
      : fd_(other.fd_), exclusive_(other.exclusive_), path_(std::move(other.path_)) {
    other.fd_ = -1;
  }
  NamespaceLock& operator=(NamespaceLock&& other) noexcept;
  NamespaceLock(const NamespaceLock&) = delete;
  NamespaceLock& operator=(const NamespaceLock&) = delete;
  // Whether a lock is held (false where the filesystem has none).
  bool held() const { return fd_ >= 0; }
  // Writes who holds it ("tierfs pid P on HOST (`what`, since T)") into the
  // lock file, for the EBUSY message of whoever is kept out. A mount calls
  // it once it is accepted: a shared lock does not keep a second mount out
  // (the namespace's owner check does), and a mount refused after locking
  // must not leave its name in place of the holder's. A failure to write is
  // not worth refusing over, so nothing is returned.
  void Announce(const std::string& what) const;

 private:
  friend Status LockNamespace(const std::string&, const std::string&, LockKind, NamespaceLock*);
  int fd_ = -1;
  bool exclusive_ = false;
  std::string path_;
};

// Takes the lock of the namespace directory `ns_dir` (on the HDD tier, the
// one nodes share) for as long as `lock` lives: an OFD lock on
// <ns_dir>/lock, which the filesystems that share a tier between nodes
// (NFSv4, GlusterFS, CephFS, Lustre) enforce across their clients, and
// which a node that dies gives up when its client times out. A mount
// takes it shared (through a read-only descriptor, so the tier can still
// be remounted read-only under it), `tierfs recover` exclusive: either
// keeps the other out. The file says who holds it: host, pid and `what`
// ("mount /ckpt", "recover into DIR"), written at once for an exclusive
// lock and by NamespaceLock::Announce for a shared one.
// Errors: EBUSY naming the holder when it is held against `kind`; the
// errno of the failing open otherwise. Where the filesystem has no locks
// (ENOLCK, EOPNOTSUPP), or a mount finds the tier read-only so the file
// cannot be made, a warning is logged and nothing is held.
Status LockNamespace(const std::string& ns_dir, const std::string& what, LockKind kind,
                     NamespaceLock* lock);

// `tierfs recover`: the rebuilt state in `store` (namespace `name`) takes
// the namespace directories `ns_dirs` over. It gets a new state id, written
// first to each directory's owner file, with a line saying from which
// state, on which host and when, then to LMDB (synced). `previous` gets
// the old owner of the first directory ("" when it had none). Call with
// the namespace's lock held.
Status TakeOverNamespace(Store& store, const std::string& name,
                         const std::vector<std::string>& ns_dirs, std::string* previous);

// The namespace `wanted` of the capacity tier at `hdd_dir` ("": the one
// it holds) for `tierfs recover` and `tierfs view`: its name and its
// directory. EINVAL for a bad name, or when none is named and the tier
// holds none or several (the message lists them); the errno of stat
// naming the directory when it is not there.
Status FindHddNamespace(const std::string& hdd_dir, const std::string& wanted, std::string* name,
                        std::string* ns_dir);

struct OpenedNamespace {
  std::string name;
  std::unique_ptr<Store> store;
  std::unique_ptr<Tier> ssd;
  std::unique_ptr<Tier> hdd;
  NamespaceLock lock;  // of the HDD tier's namespace directory, held while mounted
};

// Opens (creating on first use) the state in `state_dir` and the namespace's
// directories on the tiers at `ssd_dir` and `hdd_dir`, and takes the HDD
// directory's lock for `what` (LockNamespace).
Status OpenNamespace(const std::string& state_dir, const std::string& ssd_dir,
                     const std::string& hdd_dir, const NamespaceOptions& options,
                     const std::string& what, OpenedNamespace* out);

}  // namespace tierfs

// Tier: one directory that holds data objects, one per regular-file inode,
// at <root>/ns/<namespace>/objects/<xx>/<ino-hex> (xx = low byte of the
// inode number). Several namespaces (tierfs file trees, each with its own
// state) may share one tier: a Tier opened for a namespace only ever names
// objects below its own <root>/ns/<namespace>/ (fs/namespace_setup.h decides
// which namespace a state may open).
//
// Each tier root carries a `tierfs.id` file with a random identity, so the
// state (LMDB) can refuse to be used with another pair of tiers.
// Every system call on the tier's objects goes through the tier's Io
// (tiering/io.h): PosixIo, or a FaultIo in tests, so faults hit one tier.
// Thread-safety: all methods are safe to call concurrently.
// Errors name the tier and the object path.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "meta/inode.h"
#include "meta/status.h"
#include "tiering/io.h"

namespace tierfs {

class Tier {
 public:
  // Opens an existing directory as tier `id` for namespace `ns` (a valid
  // namespace name), creating the namespace's object fan-out and the tier's
  // identity file on first use. ENOENT/ENOTDIR when `root` is not a usable
  // directory, EINVAL for a bad namespace name. `io` makes the object calls
  // (null: PosixIo). `known_identity`: the identity a state recorded for
  // this tier ("" when it knows none); when it is given and `root` has no
  // identity file (a tier filesystem not mounted: its bare mountpoint),
  // EINVAL saying so, before anything is created in `root`.
  static Status Open(TierId id, const std::string& root, const std::string& ns,
                     std::unique_ptr<Tier>* out, std::shared_ptr<Io> io = nullptr,
                     const std::string& known_identity = "");
  // Whether `name` may name a namespace: 1-64 of [A-Za-z0-9._-], not
  // starting with '.' or '-'.
  static bool ValidNamespaceName(const std::string& name);
  // The namespace's directory relative to a tier root: "ns/<ns>".
  static std::string NamespaceRelPath(const std::string& ns) { return "ns/" + ns; }
  // The text of a namespace directory's `owner` file (fs/namespace_setup.h):
  // the owning state's id on the first line, and what a takeover wrote on
  // the second (`note`, may be null), both without trailing blanks.
  static void ParseOwner(const std::string& text, std::string* id, std::string* note);
  ~Tier();

  TierId id() const { return id_; }
  const char* name() const { return TierName(id_); }
  const std::string& root() const { return root_; }
  const std::string& identity() const { return identity_; }
  const std::string& namespace_name() const { return ns_; }
  // <root>/ns/<namespace>: everything this tier object touches but the
  // identity file lives below it.
  const std::string& namespace_dir() const { return ns_dir_; }
  // Whether the namespace directory holds any object or temporary object
  // (regular file below objects/); `found` names the first one seen.
  Status HasObjects(bool* any, std::string* found) const;
  // The calls on this tier's objects; the data path and the mover use it
  // for I/O on descriptors OpenObject/OpenTemp returned.
  Io& io() const { return *io_; }

  // Path of an inode's object relative to the namespace directory.
  static std::string ObjectRelPath(uint64_t ino);
  std::string ObjectPath(uint64_t ino) const { return ns_dir_ + "/" + ObjectRelPath(ino); }

  // openat() of the object; returns the fd or sets `st` and returns -1.
  int OpenObject(uint64_t ino, int flags, Status* st) const;
  // fstatat() of the object; ENOENT when the inode has no object yet.
  Status StatObject(uint64_t ino, struct stat* out) const;
  // True while the object may be written through an open file elsewhere:
  // the kernel refuses a read lease while the object's inode is open for
  // writing anywhere, and a shared mapping keeps its file open after the
  // mapper closed its descriptor (a FUSE passthrough file's mapping holds
  // the backing file, so tierfs sees neither the mapping nor its writes).
  // The caller's own writable descriptors of the object count too: close
  // them first. False when the lease was granted, and when it cannot tell
  // (no object; a filesystem without leases): as before it asked.
  bool WritableElsewhere(uint64_t ino) const;
  // Removes the object and its identity sidecar (tiering/identity.h), if
  // any; a missing object is not an error.
  Status RemoveObject(uint64_t ino) const;

  // The temporary name a move copies into (<object>.moving), next to the
  // final name so that the rename into place never crosses directories.
  static std::string TempRelPath(uint64_t ino);
  std::string TempPath(uint64_t ino) const { return ns_dir_ + "/" + TempRelPath(ino); }
  // openat() of the temporary object (mode 0600); -1 with `st` set on error.
  int OpenTemp(uint64_t ino, int flags, Status* st) const;
  // Removes the temporary object; a missing one is not an error.
  Status RemoveTemp(uint64_t ino) const;
  // Renames the temporary object to the final name and fsyncs the fan-out
  // directory, so the new name survives power loss before anyone relies on it.
  Status CommitTemp(uint64_t ino) const;
  // fsync of the fan-out directory that holds inode `ino`'s object: a new
  // object's name, or an unlink there, is durable only after it. A missing
  // directory is not an error (nothing in it can come back).
  Status SyncObjectDir(uint64_t ino) const;
  Status StatFs(struct statvfs* out) const;
  // st_dev of the tier root: two tiers on one filesystem share it.
  dev_t device() const { return root_dev_; }
  // Space of the tier's filesystem, in bytes (as an unprivileged writer
  // sees it: `free` excludes root's reserve).
  struct Space {
    uint64_t capacity = 0;
    uint64_t free = 0;
    double used_fraction() const { return capacity ? 1.0 - double(free) / double(capacity) : 1.0; }
  };
  Status GetSpace(Space* out) const;
  // Whether the tier can be used: its root path still names the directory
  // opened at mount (not removed, not unmounted), its identity file reads,
  // its filesystem is writable, and (after RequireOwner) the namespace is
  // still this mount's. EIO naming the cause otherwise.
  Status CheckHealth() const;
  // From now on CheckHealth fails for good once the namespace directory's
  // `owner` file (fs/namespace_setup.h) names another state than
  // `state_id`: a `tierfs recover` elsewhere took the namespace over (after
  // this node's lock was lost: a partition the shared filesystem took for
  // a dead client), and this mount must stop writing objects whose names
  // the new owner uses. Read at most once a second. Call before the tier is
  // shared between threads.
  void RequireOwner(const std::string& state_id) { owner_ = state_id; }
  // syncfs() on the tier's filesystem.
  Status SyncFs() const;

 private:
  Tier() = default;
  TierId id_ = TierId::kSsd;
  std::string root_;
  std::string identity_;
  std::string ns_;
  std::string ns_dir_;
  std::shared_ptr<Io> io_;
  int tier_fd_ = -1;  // the tier root: identity file, health, statfs
  int root_fd_ = -1;  // the namespace directory: every object path is relative to it
  dev_t root_dev_ = 0;
  ino_t root_ino_ = 0;
  // RequireOwner: the state id this mount must remain the owner as.
  Status CheckOwner() const;
  std::string owner_;
  mutable std::mutex owner_mu_;
  mutable int64_t owner_checked_ns_ = 0;  // guarded by owner_mu_
  mutable std::string owner_lost_;        // why, once taken over; guarded by owner_mu_
};

// The two tiers of a mount, by id. Borrowed: the daemon owns the tiers and
// outlives every unit that holds a Tiers.
struct Tiers {
  Tier* ssd = nullptr;
  Tier* hdd = nullptr;
  Tier& operator[](TierId id) const { return id == TierId::kSsd ? *ssd : *hdd; }
};

}  // namespace tierfs

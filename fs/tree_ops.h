// TreeOps: the daemon's EngineTree (fs/engine_tree.h), what the policy
// engine does to the mounted tree: thinning (removing a generation as
// unlink and rmdir would, with the kernel told, since it caches entries for
// long), holds, moves, hashing what is about to be deleted, and the limits
// a policy sets. It also keeps the set of long requests that hold a kernel
// inode lock (LockedRequest), which a removal's notification must not wait
// for.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <array>
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_set>

#include "fs/engine_tree.h"
#include "fs/holds.h"
#include "fs/inode_table.h"
#include "fs/options.h"
#include "fs/placement.h"
#include "fs/space.h"
#include "meta/mutex.h"
#include "meta/store.h"
#include "tiering/tier.h"

namespace tierfs {

class TreeOps : public EngineTree {
 public:
  struct Parts {
    Store* store;
    Tiers tiers;
    InodeTable* table;
    Placement* placement;
    Holds* holds;
    Space* space;
    const Options* options;  // its limits win over the policy's
    std::function<void(const std::vector<AuditRecord>&)> audit;
    // After a removal took a link away (frees the inode when it was the last).
    std::function<void(const Removed&)> on_removed;
    // Appends to the audit journal; OK once the records are durable.
    std::function<Status(const std::vector<AuditRecord>&)> journal;
  };
  explicit TreeOps(Parts parts) : p_(std::move(parts)) {}

  // The mounted session, told of removals; none before the mount.
  void SetSession(fuse_session* se) { session_ = se; }
  // Around a request that may take long while the kernel holds `ino`'s inode
  // lock (setxattr: a move, a policy reload). Notifications that would wait
  // for that lock are deferred meanwhile (RemovePath). EBUSY when such a
  // notification is already on its way to the kernel (it waits for this
  // request's reply): the request must then reply at once.
  Status BeginLockedRequest(uint64_t ino, const char* what);
  void EndLockedRequest(uint64_t ino);
  // Around every FUSE request (fs/op_table.h), for the inode whose kernel
  // lock it may hold (its inode or parent directory, and a rename's second
  // directory). A removal whose notification would wait for such a lock is
  // deferred (RemovePath): were the daemon killed while the notification
  // waits, the request holding the lock could never be answered, and the
  // waiting thread would keep the killed daemon, and its mount, alive.
  // Counted per slot of a hash of the inode: no lock on the request path; a
  // collision only defers a removal to the next scan.
  void EnterRequest(uint64_t ino) { in_flight_[ino % kSlots].fetch_add(1); }
  void ExitRequest(uint64_t ino) { in_flight_[ino % kSlots].fetch_sub(1); }
  // Size and xxh3_64 of a file's object as it is now, wherever it lives.
  Status HashObject(const Inode& n, uint64_t* bytes, uint64_t* checksum);

  // EngineTree:
  Status Walk(const std::function<Status(const Store::TreeEntry&)>& visit) override;
  std::vector<uint64_t> OpenInodes() override;
  int64_t LastOpen(uint64_t ino) override;
  Status ReadPointer(const Inode& n, size_t max, std::string* out) override;
  Status Move(uint64_t ino, TierId to, const std::string& rule, const std::string& path) override;
  using EngineTree::RemovePath;
  Status RemovePath(const std::string& path, uint64_t ino, const BeforeRemoving& before,
                    std::vector<RemovedFile>* files) override;
  Status HoldTree(uint64_t ino, const Store::Hold& hold, int* changed) override;
  int ExpireHolds(int64_t now, std::vector<AuditRecord>* records) override;
  void Audit(const std::vector<AuditRecord>& records) override { p_.audit(records); }
  Status Journal(const std::vector<AuditRecord>& records) override { return p_.journal(records); }
  void SetLimits(const TierLimits& policy_limits) override;
  Status WriteManifest(const std::string& name, const std::string& text) override;

 private:
  Parts p_;
  std::atomic<fuse_session*> session_{nullptr};
  static constexpr size_t kSlots = 4096;
  std::array<std::atomic<int>, kSlots> in_flight_{};
  // Inodes whose kernel lock a long request holds, and inodes a notification
  // is about to lock.
  Mutex kernel_locks_mu_;
  std::unordered_multiset<uint64_t> locked_by_request_ GUARDED_BY(kernel_locks_mu_);
  std::unordered_multiset<uint64_t> notifying_ GUARDED_BY(kernel_locks_mu_);
};

}  // namespace tierfs

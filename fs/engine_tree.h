// EngineTree: everything the policy engine's runner (fs/policy_runner.h) may
// see of and do to the mounted tree, and nothing more. The daemon gives the
// runner one (fs/tree_ops.h), the way the evictor gets its hooks; a test
// can give it another. Each call is safe from the runner's thread while
// FUSE requests run.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "meta/audit.h"
#include "meta/limits.h"
#include "meta/store.h"

namespace tierfs {

// A file a removal took out of the tree, with the xxh3_64 of its bytes just
// before.
struct RemovedFile {
  std::string path;
  uint64_t ino = 0;
  uint64_t bytes = 0;
  uint64_t checksum = 0;
};

class EngineTree {
 public:
  virtual ~EngineTree() = default;

  // Every entry below the root, each directory before its children, from
  // one consistent state of the tree (Store::WalkTree).
  virtual Status Walk(const std::function<Status(const Store::TreeEntry&)>& visit) = 0;
  // The inodes with open handles now, and when `ino` was last opened (0 if
  // unknown): what the policy's quiet periods and open-file refusals see.
  virtual std::vector<uint64_t> OpenInodes() = 0;
  virtual int64_t LastOpen(uint64_t ino) = 0;
  // The first `max` bytes of regular file `n` (a pointer file such as
  // DeepSpeed's `latest`); empty when it has no object yet.
  virtual Status ReadPointer(const Inode& n, size_t max, std::string* out) = 0;
  // Moves file `ino`, or every file below directory `ino`, to tier `to`
  // (fs/placement.h: one audit record per file moved).
  virtual Status Move(uint64_t ino, TierId to, const std::string& rule,
                      const std::string& path) = 0;
  // Removes `path` (inode `ino`; a directory with everything below it) as
  // unlink and rmdir would, and tells the kernel. EBUSY (and nothing
  // removed) when any of it is open, EPERM when any of it is held; ESTALE
  // when `path` no longer names `ino`; an error hashing a file also removes
  // nothing. `files` lists the regular files removed, children first, also
  // when the removal fails part way (an entry created meanwhile:
  // ENOTEMPTY); it is empty when nothing was removed. EBUSY with a message
  // starting "deferred:" (nothing removed) while a request holding a kernel
  // lock the removal's notification needs is running: retry at the next
  // scan. `before`, if given, is called once everything is checked and
  // hashed, with the regular files about to go; its error removes nothing
  // and is returned (the policy journals the thinning there, so nothing
  // goes unrecorded).
  using BeforeRemoving = std::function<Status(const std::vector<RemovedFile>& going)>;
  virtual Status RemovePath(const std::string& path, uint64_t ino, const BeforeRemoving& before,
                            std::vector<RemovedFile>* files) = 0;
  Status RemovePath(const std::string& path, uint64_t ino, std::vector<RemovedFile>* files) {
    return RemovePath(path, ino, nullptr, files);
  }
  // Sets `hold` on `ino` and everything below it; `changed` counts the
  // inodes whose hold was new or different.
  virtual Status HoldTree(uint64_t ino, const Store::Hold& hold, int* changed) = 0;
  // The holds whose time is up at `now` are removed; one record each
  // (action "unpin") goes to `records`. Returns how many were removed.
  virtual int ExpireHolds(int64_t now, std::vector<AuditRecord>* records) = 0;
  // Appends to the audit journal, durable together; a failure is logged.
  virtual void Audit(const std::vector<AuditRecord>& records) = 0;
  // The same, for records an action must not happen without: OK only once
  // they are durable.
  virtual Status Journal(const std::vector<AuditRecord>& records) = 0;
  // Writes `text` as the archived generation manifest `name` ("series/file",
  // fs/generation_manifest.h) on the capacity tier, replacing any older
  // one whole (a temporary, fsync, rename).
  virtual Status WriteManifest(const std::string& name, const std::string& text) = 0;
  // A (re)loaded policy's limits; options given on the command line win.
  virtual void SetLimits(const TierLimits& limits) = 0;
};

}  // namespace tierfs

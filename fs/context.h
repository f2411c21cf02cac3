// Context: the daemon's wiring, reached from every FUSE operation through
// fuse_req_userdata(). It owns the namespace store, the two tiers, the audit
// journal and the kernel-reference table, and the units that do the work,
// each with its own contract:
//   handles()    open files and their I/O modes        fs/handles.h
//   placement()  which tier holds a file; every move   fs/placement.h
//   space()      the SSD tier's room, the evictor      fs/space.h
//   holds()      pins and the one mutability check     fs/holds.h
//   request_rate() users' pin/unpin/move requests a second fs/request_rate.h
//   tree_ops()   what the policy engine does to the tree (fs/tree_ops.h),
//                given to the policy runner as an EngineTree
// What is left here is what every operation shares: turning records into
// FUSE replies (an op's error reply is fs/op_table.h's), the tier health check before a change,
// freeing inodes nobody names any more, and syncing everything.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "fs/block_hasher.h"
#include "fs/handles.h"
#include "fs/holds.h"
#include "fs/inode_reaper.h"
#include "fs/inode_table.h"
#include "fs/manual_moves.h"
#include "fs/metrics.h"
#include "fs/options.h"
#include "fs/placement.h"
#include "fs/policy_runner.h"
#include "fs/refusal_audit.h"
#include "fs/request_rate.h"
#include "fs/scrub.h"
#include "fs/session_io.h"
#include "fs/space.h"
#include "fs/tree_ops.h"
#include "fs/write_sizes.h"
#include "meta/audit.h"
#include "meta/store.h"
#include "tiering/tier.h"

namespace tierfs {

class Context {
 public:
  // `policy` is the policy the daemon starts with (its limits apply at once).
  Context(const Options& options, std::unique_ptr<Store> store, std::unique_ptr<Tier> ssd,
          std::unique_ptr<Tier> hdd, std::unique_ptr<AuditLog> audit, Policy policy);
  ~Context();

  const Options& options() const { return options_; }
  Store& store() { return *store_; }
  InodeTable& table() { return table_; }
  const Tier& tier(TierId id) const { return tiers_[id]; }
  Handles& handles() { return handles_; }
  Placement& placement() { return placement_; }
  Space& space() { return space_; }
  Holds& holds() { return holds_; }
  // The per-uid limit of users' pins, unpins and moves (fs/request_rate.h).
  RequestRate& request_rate() { return request_rate_; }
  TreeOps& tree_ops() { return tree_ops_; }
  ManualMoves& manual_moves() { return manual_moves_; }
  PolicyRunner& policy_runner() { return *policy_runner_; }
  SessionIo& session_io() { return session_io_; }
  // True once INIT negotiated POSIX ACLs (FUSE_POSIX_ACL with
  // FUSE_DONT_MASK): the daemon then applies the umask and inherits
  // default ACLs at create (fs/posix_acl.h). Set by Init, before any other
  // request.
  bool acls() const { return acls_.load(std::memory_order_relaxed); }
  void set_acls(bool on) { acls_.store(on, std::memory_order_relaxed); }
  // Records checksums after the last writer closes (fs/block_hasher.h).
  BlockHasher& hasher() { return hasher_; }
  // How big the files written through the mount became (fs/write_sizes.h).
  WriteSizes& write_sizes() { return write_sizes_; }
  // What the mount counts for --metrics (fs/metrics.h).
  Metrics& metrics() { return metrics_; }
  // The background scrub of the HDD tier (fs/scrub.h); the daemon starts
  // and stops it.
  Scrubber& scrubber() { return scrubber_; }

  // stat of an inode: metadata from LMDB, size/blocks/mtime of a regular
  // file from its object (the object is the truth for its bytes), or from
  // LMDB when it records them and no writer has the file open
  // (Inode::object_attrs_recorded). Returns how long the kernel may cache
  // them: 0 while a passthrough handle may write the file through a shared
  // mapping (each stat then asks, and sees the object's mtime), else
  // --attr-timeout.
  double FillStat(const Inode& n, struct stat* st);
  // Records the attributes of regular file `ino`'s object in LMDB
  // (Inode::object_attrs_recorded) if nobody has it open for writing and
  // the object agrees with LMDB's size and mtime; else forgets them. For a
  // change no writer's close follows (setattr). `n`, if given, gets the
  // inode as written. Failures are logged: stat then reads the object.
  void RecordObjectAttrs(uint64_t ino, Inode* n = nullptr);
  // An entry reply for `n` (the caller replies and must Ref the inode).
  void FillEntry(const Inode& n, fuse_entry_param* e);
  // Replies with the entry of `n`, which is `name` in `parent`, and records
  // the kernel's new reference.
  void ReplyEntry(fuse_req_t req, const Inode& n, uint64_t parent, const char* name);

  // Clears what a write, truncate or chown by someone else must clear
  // (fs/session_io.h): set-user-ID, set-group-ID when group-executable, and
  // security.capability. A no-op for other inodes and files without them.
  // `changed` (may be null): whether the mode changed, so that the kernel's
  // cached attributes must go.
  Status KillSuidSgid(uint64_t ino, bool* changed = nullptr);
  // Removes `ino`'s security.capability before a write, fallocate,
  // copy_file_range or truncate changes its bytes, whoever the caller, as
  // Linux's own filesystems do (the VFS's file_remove_privs and
  // do_truncate: CAP_FSETID spares only the set-ID bits). With
  // FUSE_HANDLE_KILLPRIV_V2 the kernel leaves it to the server for direct
  // I/O writes, which never pass its own check. Free (no LMDB lookup) once
  // `live` knows the file has none (LiveState::caps_set). A failure carries
  // the inode, and the caller must not write: the file would keep
  // capabilities its new bytes were never granted.
  Status DropCapabilities(uint64_t ino, LiveState& live);
  // Whether `ino` may have a security.capability (looked up once per
  // LiveState while it has none): a passthrough writer's writes would never
  // reach DropCapabilities, so such a file is not opened for writing
  // through passthrough.
  bool MayHaveCapabilities(uint64_t ino, LiveState& live);
  // After a setxattr of security.capability on `ino` committed: its next
  // write looks for it again.
  void NoteCapabilitiesSet(uint64_t ino);
  // Whether inode `ino`'s object on tier `t` may be changed now (`what`:
  // "truncate", "write", ...): EIO naming the tier when it is gone,
  // replaced or read-only (Tier::CheckHealth). Every path that changes a
  // file's bytes or the metadata of its object asks first, so nothing
  // changes on a tier that cannot be written (the change would be lost or
  // half made when it returns).
  Status CheckTierWritable(TierId t, uint64_t ino, const char* what) const;
  // Appends to the audit journal (meta/audit.h); a failure is logged with
  // the records, never returned: the action happened.
  void Audit(const std::vector<AuditRecord>& records);
  // Appends and returns the failure, for a record that must be durable
  // before the action it records may happen (fs/delete_audit.h).
  Status AppendAudit(const std::vector<AuditRecord>& records);

  // The mounted session: removals by the policy engine are told to it.
  void SetSession(fuse_session* se);
  // The control socket's path (fs/control.h), answered on the root as
  // user.tierfs.control; set before mounting, "" when there is none.
  void SetControlPath(std::string path) { control_path_ = std::move(path); }
  const std::string& control_path() const { return control_path_; }
  // Settles interrupted moves and frees orphans a previous run left (no
  // kernel references survive it); before serving.
  void Recover();
  // Starts and stops the evictor and the policy engine around serving.
  void StartBackground();
  void StopBackground();
  // Frees an orphan inode: its object and its LMDB records. When the object
  // cannot be removed (its tier gone or read-only), the inode stays an
  // orphan in LMDB and is freed later (RetryUnfreed, or the next mount's
  // Recover), so no object is ever leaked.
  void FreeInode(uint64_t ino);
  // FreeInode of each of `inos`, their LMDB records removed in one
  // transaction (falling back to one each when that fails).
  void FreeInodes(const std::vector<uint64_t>& inos);
  // Frees the inodes the kernel forgot, in batches (fs/inode_reaper.h).
  InodeReaper& reaper() { return reaper_; }
  // Frees the orphans FreeInode had to keep; cheap when there are none.
  // Called from the evictor's periodic tick.
  void RetryUnfreed();
  // Called after an unlink, rmdir or replacing rename removed a link.
  void OnRemoved(const Removed& removed);
  // Makes everything durable: LMDB and both tiers' filesystems.
  Status SyncAll();

 private:
  // Removes regular file `ino`'s object before its records go: false when
  // the inode is gone, or when its object must stay (its tier cannot be
  // written: kept in unfreed_ for RetryUnfreed).
  bool RemoveObjectOf(uint64_t ino);
  // Looks up `ino`'s security.capability under live.caps_mu unless `live`
  // knows it has none; removes it when `remove`. Returns whether the file
  // has one left (on a failure too, which goes to `st`).
  bool CheckCapabilities(uint64_t ino, LiveState& live, bool remove, Status* st);

  const Options options_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Tier> ssd_;
  std::unique_ptr<Tier> hdd_;
  Tiers tiers_;
  std::unique_ptr<AuditLog> audit_;
  InodeTable table_;
  BlockHasher hasher_{*store_, tiers_, table_};
  WriteSizes write_sizes_;
  Metrics metrics_;  // before the units that count into it
  Placement placement_;
  Handles handles_;
  Space space_;
  RefusalAudit refusals_;  // before holds_, which reports to it
  Holds holds_;
  RequestRate request_rate_;
  TreeOps tree_ops_;
  ManualMoves manual_moves_;  // after placement_: stopped before it goes
  std::unique_ptr<PolicyRunner> policy_runner_;
  SessionIo session_io_;
  Mutex unfreed_mu_;
  // Orphans whose object is still to remove.
  std::unordered_set<uint64_t> unfreed_ GUARDED_BY(unfreed_mu_);
  std::atomic<int64_t> unfreed_retry_ns_{0};
  std::atomic<bool> acls_{false};
  std::string control_path_;
  // After the units FreeInodes uses: stopped (and its queue freed) first.
  InodeReaper reaper_{[this](const std::vector<uint64_t>& inos) { FreeInodes(inos); }};
  // Last: destroyed (and its thread stopped) before the units it reads through.
  Scrubber scrubber_{*this, [this] { return policy_runner_->scrub_limits(); }};
};

// For its lifetime, registers a request during which the kernel may hold
// `ino`'s inode lock and that may take long (TreeOps::BeginLockedRequest);
// status() is EBUSY when the request must reply at once instead.
class LockedRequest {
 public:
  LockedRequest(Context& c, uint64_t ino, const std::string& what) : t_(c.tree_ops()), ino_(ino) {
    st_ = t_.BeginLockedRequest(ino_, what.c_str());
  }
  ~LockedRequest() {
    if (st_.ok()) t_.EndLockedRequest(ino_);
  }
  LockedRequest(const LockedRequest&) = delete;
  LockedRequest& operator=(const LockedRequest&) = delete;
  const Status& status() const { return st_; }

 private:
  TreeOps& t_;
  uint64_t ino_;
  Status st_;
};

inline Context& Ctx(fuse_req_t req) {
  return *static_cast<Context*>(fuse_req_userdata(req));
}
inline FileHandle* Handle(fuse_file_info* fi) {
  return reinterpret_cast<FileHandle*>(fi->fh);
}

// Whether the caller of `req` has `gid` as primary or supplementary group.
bool CallerInGroup(fuse_req_t req, gid_t gid);

// After a chmod, chown, ACL or xattr change of `n`: an archived file's
// identity on the HDD tier gets the new access and attributes
// (fs/archived_access.h); a failure is logged, the change itself stands.
void RefreshAccessOnHdd(Context& c, const Inode& n);
// The owner and mode a new node in `parent` gets for the caller of `req`:
// the caller's uid, the parent's gid under a setgid directory (which new
// subdirectories inherit), the caller's gid otherwise. With ACLs
// (Context::acls) the mode is masked by the caller's umask, or by the
// parent's default ACL, which the node then inherits (fs/posix_acl.h).
NewNode NewNodeFor(fuse_req_t req, uint64_t parent, mode_t mode, Status* st);

// The operation table; each ops_*.cc fills in its part with Status ops
// (fs/op_table.h: their reply convention and what each one changes).
void AddAttrOps(fuse_lowlevel_ops* ops);
void AddNamespaceOps(fuse_lowlevel_ops* ops);
void AddFileOps(fuse_lowlevel_ops* ops);
void AddWriteOps(fuse_lowlevel_ops* ops);
void AddDirOps(fuse_lowlevel_ops* ops);
void AddXattrOps(fuse_lowlevel_ops* ops);

}  // namespace tierfs

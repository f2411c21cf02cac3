// Context: the daemon's one state object, reached from every FUSE operation
// through fuse_req_userdata(). Holds the namespace store, the two tiers and
// the kernel-reference table, plus the helpers every operation shares to
// turn our records into FUSE replies.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "fs/inode_table.h"
#include "fs/passthrough.h"
#include "fs/policy_runner.h"
#include "fs/session_io.h"
#include "meta/audit.h"
#include "meta/store.h"
#include "tiering/evictor.h"
#include "tiering/mover.h"
#include "tiering/throttle.h"
#include "tiering/tier.h"

namespace tierfs {

struct Options {
  std::string ssd_dir;
  std::string hdd_dir;
  std::string state_dir;
  std::string policy_file;
  std::string namespace_name;  // --namespace; "" for the state's own (fs/namespace_setup.h)
  std::string mountpoint;
  std::string mount_options;  // comma-separated, passed to the kernel mount
  bool foreground = false;
  unsigned max_threads = 16;
  bool writeback_cache = false;  // the kernel's writeback cache (see Init)
  // Write-only opens bypass the kernel's page cache of the mount (see
  // fs/ops_file.cc SetOpenFlags).
  bool direct_writes = true;
  // Read-only opens read their object through the kernel (fs/passthrough.h).
  bool passthrough = true;
  // Set when the command line gave them: they then win over the policy file.
  bool watermarks_from_cli = false;
  bool throttle_from_cli = false;
  double scan_interval_s = 60;  // the policy engine's periodic scan
  // Limits shared by all moves between tiers, so foreground writes keep
  // their bandwidth while files migrate.
  uint64_t move_bytes_per_sec = uint64_t(256) << 20;
  unsigned max_moves = 2;
  Watermarks watermarks;  // of the SSD tier (tiering/evictor.h)
  // tierfs is the only writer of its namespace, so the kernel may keep
  // entries and attributes for long; we invalidate when we change them.
  double entry_timeout = 86400.0;
  double attr_timeout = 86400.0;
  double negative_timeout = 86400.0;
  // Tests only: --inject-fault TIER:OP:N[+]:ERRNO rules (tiering/fault_io.h).
  std::vector<std::string> inject_faults;
  size_t map_size = 0;  // of the LMDB state (--map-size); 0: the default
};

// How the kernel serves a handle's reads and writes.
enum class IoMode : uint8_t {
  kCached,       // through the mount's page cache (shared mmap works)
  kDirect,       // FOPEN_DIRECT_IO: each read and write comes to tierfs
  kPassthrough,  // the kernel reads the object itself (fs/passthrough.h)
};

// An open regular file. The object fd is opened lazily: a new file has no
// object until its first write, so creating and unlinking empty files costs
// no I/O on the tiers.
struct FileHandle {
  uint64_t ino = 0;
  IoMode mode = IoMode::kCached;
  int backing_id = -1;         // kPassthrough: the inode's backing file id (LiveState)
  TierId tier = TierId::kSsd;  // where fd's object is (refreshed when fd opens)
  int fd = -1;
  uint32_t fd_placement = 0;     // live->placement when fd was opened
  std::vector<int> retired_fds;  // of older placements; other threads may still use them
  bool writable = false;         // counted in live->writers
  bool wrote = false;
  std::shared_ptr<LiveState> live;
  std::mutex mu;  // guards fd creation
};

class Context {
 public:
  Context(const Options& options, std::unique_ptr<Store> store, std::unique_ptr<Tier> ssd,
          std::unique_ptr<Tier> hdd, std::unique_ptr<AuditLog> audit);

  const Options& options() const { return options_; }
  Store& store() { return *store_; }
  InodeTable& table() { return table_; }
  const Tier& tier(TierId id) const { return id == TierId::kSsd ? *ssd_ : *hdd_; }

  // stat of an inode: metadata from LMDB, size/blocks/mtime of a regular
  // file from its object (the object is the truth for its bytes).
  void FillStat(const Inode& n, struct stat* st) const;
  // An entry reply for `n` (the caller replies and must Ref the inode).
  void FillEntry(const Inode& n, fuse_entry_param* e) const;
  // Replies with the entry of `n` and records the kernel's new reference.
  void ReplyEntry(fuse_req_t req, const Inode& n);
  // Replies with -errno; unexpected errors (EIO and the like) are logged.
  void ReplyError(fuse_req_t req, const Status& st, const char* op);

  // The object fd of a handle, opening (and with `create`, creating) it on
  // first use. Returns -1 with st ENOENT when there is no object and !create.
  int ObjectFd(FileHandle& fh, bool create, Status* st);
  // Serializes opening an inode's object with switching its placement, so a
  // handle never opens an object a finished move is about to remove.
  std::mutex& PlacementLock(uint64_t ino) { return placement_locks_[ino % kPlacementLocks]; }
  // Sets up a handle of `n` opened with `flags` (counts it as a writer).
  FileHandle* NewHandle(const Inode& n, int flags);
  // Chooses how the kernel serves handle `fh` opened with `flags`, counts
  // it, and returns the mode; for kPassthrough, `backing_id` names the
  // inode's backing file for the open reply:
  //   any open while passthrough handles are open: passthrough (the kernel
  //   accepts nothing else then);
  //   write-only (unless --cached-writes): direct;
  //   read-only, no other handle open, an object to read: passthrough;
  //   anything else: cached.
  IoMode AdmitHandle(FileHandle& fh, int flags, bool may_passthrough, int* backing_id);
  Passthrough& passthrough() { return passthrough_; }
  SessionIo& session_io() { return session_io_; }
  // Clears what a write, truncate or chown by someone else must clear
  // (fs/session_io.h): set-user-ID, set-group-ID when group-executable, and
  // security.capability. A no-op for other inodes and files without them.
  Status KillSuidSgid(uint64_t ino);
  // Whether inode `ino`'s object on tier `t` may be changed now (`what`:
  // "truncate", "write", ...): EIO naming the tier when it is gone,
  // replaced or read-only (Tier::CheckHealth). Every path that changes a
  // file's bytes or the metadata of its object asks first, so nothing
  // changes on a tier that cannot be written (the change would be lost or
  // half made when it returns).
  Status CheckTierWritable(TierId t, uint64_t ino, const char* what) const;
  // EIO when a regular file nobody has open for writing has lost bytes: its
  // object is missing while LMDB records a size, or shorter than recorded.
  // A longer object is legitimate (written, then killed before release
  // recorded the size). stat keeps reporting the recorded size of a missing
  // object; open and read fail with this.
  Status CheckObjectIntact(uint64_t ino);
  // Whether a new name or node may be recorded: ENOSPC once the state's
  // filesystem is too full to keep LMDB's reserve, which is kept for
  // removals (unlink and rmdir never ask), so space can always be freed
  // through the mount.
  Status CheckMetaSpace(const char* what);
  // Undoes NewHandle and AdmitHandle: closes the object, drops the counts.
  void DeleteHandle(FileHandle* fh);
  // Moves a regular file's object to tier `to` (copy, verify, switch, remove:
  // tiering/mover.h). EBUSY while it is open for writing; ECANCELED when it
  // was written during the copy (it stays where it was). Ok if already there.
  // `why` (the rule, or "manual", "evict", "promote") and `path` (when
  // known) go to the audit journal and the log with the outcome; with
  // `below_dir`, `path` is relative to that directory (a manual tree move
  // knows the directory's inode only).
  Status MoveFile(uint64_t ino, TierId to, const std::string& why = "manual",
                  const std::string& path = "", uint64_t below_dir = 0);
  // MoveFile for every regular file below directory `ino`, as many at once
  // as the throttle allows (--max-moves); keeps going past failures and
  // returns the first.
  Status MoveTree(uint64_t ino, TierId to, const std::string& why = "manual",
                  const std::string& path = "");
  // The regular files below directory `ino` with their paths (below `path`).
  void CollectFiles(uint64_t ino, const std::string& path,
                    std::vector<std::pair<uint64_t, std::string>>* files, Status* first);
  // Appends to the audit journal (meta/audit.h); a failure is logged.
  void Audit(const AuditRecord& rec);
  void Audit(const std::vector<AuditRecord>& records);  // durable together

  // ---- What the policy engine does to the tree (fs/engine_ops.cc) ----
  // A file RemovePath removed, with the xxh3_64 of its bytes just before.
  struct RemovedFile {
    std::string path;
    uint64_t ino = 0;
    uint64_t bytes = 0;
    uint64_t checksum = 0;
  };
  // Removes `path` (inode `ino`; a directory with everything below it) as
  // unlink and rmdir would, and tells the kernel. EBUSY (and nothing
  // removed) when any of it is open, EPERM when any of it is held; ESTALE
  // when `path` no longer names `ino`; an error hashing a file also removes
  // nothing. `files` lists the regular files removed.
  // EBUSY ("deferred: ...", nothing removed) while a request that holds
  // the kernel's lock of the parent or of an inode to remove is running
  // (BeginLockedRequest): the kernel's side of a notification waits for
  // those locks, uninterruptibly, so the policy retries at its next scan.
  Status RemovePath(const std::string& path, uint64_t ino, std::vector<RemovedFile>* files);
  // Around a request that may take long while the kernel holds `ino`'s inode
  // lock (setxattr: a move, a policy reload). Notifications that would wait
  // for that lock are deferred meanwhile (RemovePath). EBUSY when such a
  // notification is already on its way to the kernel (it waits for this
  // request's reply): the request must then reply at once.
  Status BeginLockedRequest(uint64_t ino, const char* what);
  void EndLockedRequest(uint64_t ino);
  // Size and xxh3_64 of a file's object as it is now, wherever it lives.
  Status HashObject(const Inode& n, uint64_t* bytes, uint64_t* checksum);
  // Sets `hold` on `ino` and everything below it; `changed` counts the
  // inodes whose hold was new or different.
  Status HoldTree(uint64_t ino, const Store::Hold& hold, int* changed);
  // EPERM when `ino` is held immutable now (what: "unlink", "write", ...).
  Status CheckMutable(uint64_t ino, const char* what);
  // CheckMutable of the inode `name` in `parent` names (ok if none).
  Status CheckEntryMutable(uint64_t parent, const char* name, const char* what);
  // Recounts immutable holds (CheckMutable skips LMDB while there are none).
  void CountHolds();
  // Watermarks and move throttle from a (re)loaded policy, unless the
  // command line set them.
  void ApplyPolicyLimits(const Policy& policy);
  void SetSession(fuse_session* se) { session_ = se; }
  void SetPolicyRunner(std::unique_ptr<PolicyRunner> runner);
  PolicyRunner* policy_runner() { return policy_runner_.get(); }
  bool IsMoving(uint64_t ino);
  // Moves the object of a file that is being written (through `fh`) to the
  // HDD tier because the SSD tier is full; handles follow on their next
  // I/O. The caller must not hold fh.live->io. Ok if it is there already.
  Status SpillToHdd(FileHandle& fh);
  // True when the SSD tier's free space is below its reserve (rechecked at
  // most every few milliseconds); pokes the evictor above the high watermark.
  bool SsdNearlyFull();
  // The tier a new regular file starts on: SSD unless it is nearly full
  // while the HDD tier is usable.
  TierId TierForNewFile();
  // Starts and stops the evictor (tiering/evictor.h) around serving.
  void StartBackground();
  void StopBackground();
  // Settles moves a crash interrupted (before serving).
  void RecoverMoves();
  // Frees an orphan inode: its object and its LMDB records. When the object
  // cannot be removed (its tier gone or read-only), the inode stays an
  // orphan in LMDB and is freed later (RetryUnfreed, or the next mount's
  // ReapOrphans), so no object is ever leaked.
  void FreeInode(uint64_t ino);
  // Frees the orphans FreeInode had to keep; cheap when there are none.
  // Called from the evictor's periodic tick (fs/space.cc).
  void RetryUnfreed();
  // Called after an unlink, rmdir or replacing rename removed a link.
  void OnRemoved(const Removed& removed);
  // Makes everything durable: LMDB and both tiers' filesystems.
  Status SyncAll();
  // Frees orphans left by a previous run (no kernel references survive it).
  void ReapOrphans();

 private:
  Options options_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Tier> ssd_;
  std::unique_ptr<Tier> hdd_;
  std::unique_ptr<AuditLog> audit_;
  InodeTable table_;
  MoveThrottle throttle_;
  std::mutex moving_mu_;
  std::unordered_set<uint64_t> moving_;
  // `naming` is how the log names the file (inode, and path when known).
  Status MoveFileUnaudited(uint64_t ino, TierId to, const std::string& why,
                           const std::string& naming, TierId* from, MoveResult* result);
  static constexpr size_t kPlacementLocks = 64;
  std::mutex placement_locks_[kPlacementLocks];
  std::unique_ptr<Evictor> evictor_;
  std::unique_ptr<PolicyRunner> policy_runner_;
  fuse_session* session_ = nullptr;
  // Inodes whose kernel lock a long request holds, and inodes a notification
  // is about to lock (BeginLockedRequest, RemovePath).
  std::mutex kernel_locks_mu_;
  std::unordered_multiset<uint64_t> locked_by_request_;
  std::unordered_multiset<uint64_t> notifying_;
  // Registers the inode's object as its backing file (under `live.modes`).
  bool StartPassthrough(uint64_t ino, LiveState& live);
  Passthrough passthrough_;
  SessionIo session_io_;
  std::atomic<bool> passthrough_warned_{false};  // the refusal is logged once
  std::atomic<int> immutable_holds_{0};
  std::mutex unfreed_mu_;
  std::unordered_set<uint64_t> unfreed_;  // orphans whose object is still to remove
  std::atomic<int64_t> unfreed_retry_ns_{0};
  std::atomic<uint64_t> meta_reserve_{0};  // bytes LMDB keeps past its end (fs/space.cc)
  std::atomic<double> high_mark_{0.9};     // the evictor's, for pokes from the write path
  std::atomic<int64_t> space_checked_ns_{0};
  std::atomic<bool> ssd_close_to_full_{false};
};

// For its lifetime, registers a request during which the kernel may hold
// `ino`'s inode lock and that may take long (Context::BeginLockedRequest);
// status() is EBUSY when the request must reply at once instead.
class LockedRequest {
 public:
  LockedRequest(Context& c, uint64_t ino, const std::string& what) : c_(c), ino_(ino) {
    st_ = c_.BeginLockedRequest(ino_, what.c_str());
  }
  ~LockedRequest() {
    if (st_.ok()) c_.EndLockedRequest(ino_);
  }
  LockedRequest(const LockedRequest&) = delete;
  LockedRequest& operator=(const LockedRequest&) = delete;
  const Status& status() const { return st_; }

 private:
  Context& c_;
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
// The owner and mode a new node in `parent` gets for the caller of `req`:
// the caller's uid, the parent's gid under a setgid directory (which new
// subdirectories inherit), the caller's gid otherwise.
NewNode NewNodeFor(fuse_req_t req, uint64_t parent, mode_t mode, Status* st);

// The operation table; each ops_*.cc fills in its part.
void AddAttrOps(fuse_lowlevel_ops* ops);
void AddNamespaceOps(fuse_lowlevel_ops* ops);
void AddFileOps(fuse_lowlevel_ops* ops);
void AddDirOps(fuse_lowlevel_ops* ops);
void AddXattrOps(fuse_lowlevel_ops* ops);

}  // namespace tierfs

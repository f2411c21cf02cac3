// Store: the whole namespace in one LMDB environment.
//
// Databases: inodes (ino -> Inode), dentries ((parent, name) -> child),
// symlinks (ino -> target), xattrs ((ino, name) -> value), orphans (inodes
// with nlink 0 that the kernel may still reference) and meta (tier
// identities, namespace name and state id, next inode number).
//
// Every mutating call is one LMDB write transaction, so rename, link and
// unlink are atomic. Commits are not synced to disk one by one (a crash of
// the daemon loses nothing, the kernel holds the pages); Sync() makes
// everything committed so far durable across power loss, and is what fsync,
// fsyncdir and unmount call. (syncfs(2) on the mount never reaches the
// daemon: the kernel sends FUSE_SYNCFS to virtiofs only.)
//
// Thread-safety: all methods may be called from many threads at once.
// Errors: Status with an errno (ENOENT, EEXIST, ENOTEMPTY, ENOTDIR, EISDIR,
// ENODATA, ERANGE, ENOSPC when the map is full, EIO for LMDB failures) and a
// message naming the inode or entry.
#pragma once

#include <lmdb.h>
#include <sys/statvfs.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "meta/inode.h"
#include "meta/mutex.h"
#include "meta/status.h"

namespace tierfs {

struct NewNode {
  uint32_t mode = 0;  // includes S_IFMT
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t rdev = 0;
  std::string symlink_target;  // for S_IFLNK
  TierId tier = TierId::kSsd;  // where a regular file's object will live
  // Extended attributes it is born with (the ACLs it inherits:
  // fs/posix_acl.h), in the creating transaction.
  std::vector<std::pair<std::string, std::string>> xattrs;
};

// What an unlink, rmdir or replacing rename did to the inode it removed.
struct Removed {
  uint64_t ino = 0;    // 0 when nothing was removed
  uint32_t nlink = 0;  // links left; 0 means the inode is now an orphan
};

struct StoreOptions {
  // The LMDB map: the most the namespace can hold (sparse: costs nothing
  // until used). Creates, links and xattr writes are refused with ENOSPC
  // while less than a reserve of it is left (Store::CheckRoom), so that
  // unlink, rmdir and the like, which need free pages too, always work.
  size_t map_size = size_t(64) << 30;
};

class MapAllocation;  // meta/txn.h

// The name a POSIX access ACL is stored under, with the inode's other
// extended attributes (fs/posix_acl.h has its rules); a move to the HDD
// tier copies it into the object's identity (tiering/identity.h).
inline constexpr char kAccessAclXattr[] = "system.posix_acl_access";

class Store {
 public:
  // Opens (creating if needed) the environment in `dir`. The root directory
  // (inode 1) is created on first open, 0755 and owned by the caller.
  static Status Open(const std::string& dir, std::unique_ptr<Store>* out,
                     const StoreOptions& opt = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Status GetInode(uint64_t ino, Inode* out);
  Status Lookup(uint64_t parent, const std::string& name, Inode* out);
  // A snapshot of a directory's entries, in name order; with attrs also fills
  // `inodes` in the same order.
  Status ListDir(uint64_t parent, std::vector<DirEntry>* entries, std::vector<Inode>* inodes);
  Status ReadSymlink(uint64_t ino, std::string* target);

  // Creates `name` in `parent`; EEXIST if taken. Directories get nlink 2 and
  // bump the parent's nlink.
  Status Create(uint64_t parent, const std::string& name, const NewNode& node, Inode* out);
  Status Link(uint64_t ino, uint64_t new_parent, const std::string& new_name, Inode* out);
  Status Unlink(uint64_t parent, const std::string& name, Removed* removed);
  Status Rmdir(uint64_t parent, const std::string& name, Removed* removed);
  // flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE.
  Status Rename(uint64_t old_parent, const std::string& old_name, uint64_t new_parent,
                const std::string& new_name, unsigned flags, Removed* replaced);

  // Reads the inode, lets `mutate` change it (returning non-ok aborts), and
  // writes it back in one transaction.
  Status Update(uint64_t ino, const std::function<Status(Inode&)>& mutate, Inode* out);
  // Removes an orphan inode with its xattrs and symlink target.
  Status DeleteInode(uint64_t ino);
  // DeleteInode of each of `inos`, in one transaction (all or none).
  Status DeleteInodes(const std::vector<uint64_t>& inos);
  Status ListOrphans(std::vector<uint64_t>* out);
  // Calls `fn` for every inode of one consistent snapshot (a read
  // transaction: writers are not blocked), in inode order; stops at and
  // returns the first non-ok result of `fn`.
  Status ForEachInode(const std::function<Status(const Inode&)>& fn);

  // flags: 0, XATTR_CREATE or XATTR_REPLACE. ENOSPC when a new name would
  // make the inode's names longer than listxattr(2) returns (64 KiB).
  Status SetXattr(uint64_t ino, const std::string& name, const std::string& value, int flags);
  Status GetXattr(uint64_t ino, const std::string& name, std::string* value);
  Status ListXattr(uint64_t ino, std::vector<std::string>* names);
  // Calls `fn` for every extended attribute named `name`, of any inode, in
  // inode order (one read transaction); stops at its first non-ok result.
  Status ForEachXattrNamed(const std::string& name,
                           const std::function<Status(uint64_t ino, const std::string& value)>& fn);
  // Calls `fn` for every extended attribute of every inode, in inode order
  // (one read transaction); stops at its first non-ok result.
  Status ForEachXattr(const std::function<Status(uint64_t ino, const std::string& name,
                                                 const std::string& value)>& fn);
  Status RemoveXattr(uint64_t ino, const std::string& name);
  // Reads the inode and its extended attribute `name` (nullopt when it has
  // none), lets `mutate` change both (returning non-ok aborts), and writes
  // them back in one transaction: a POSIX ACL and the mode bits it implies
  // change together (fs/posix_acl.h). nullopt afterwards removes it.
  Status UpdateWithXattr(uint64_t ino, const std::string& name,
                         const std::function<Status(Inode&, std::optional<std::string>*)>& mutate,
                         Inode* out);

  // Meta key/value (tier identities, format); ENOENT when absent.
  Status GetMeta(const std::string& key, std::string* value);
  Status PutMeta(const std::string& key, const std::string& value);

  Status Sync();
  // Keeps `bytes` of disk allocated past LMDB's last page in its data file
  // (fallocate with KEEP_SIZE; meta/txn.h MapAllocation), so that metadata commits keep working
  // when the state's filesystem (by default the SSD tier) fills up with data. Ok where the
  // filesystem cannot preallocate; ENOSPC when there is no room.
  Status ReserveSpace(uint64_t bytes);
  // statvfs of the filesystem the LMDB data file lives on.
  Status StatFs(struct statvfs* out);

  // ---- Move journal (meta/store_journal.cc) ---------------------------------
  // One record per inode whose object is being moved between tiers, written
  // before the copy starts so that a restarted daemon can finish or undo the
  // move (tiering/mover.h: RecoverMoves). At most one record per inode: the
  // record is also what keeps two moves of one inode from overlapping.
  enum class MoveState : uint8_t {
    kCopying = 1,   // placement still names `from`; the copy may be partial
    kSwitched = 2,  // placement names `to` (committed); the source may remain
  };
  struct MoveRecord {
    uint64_t ino = 0;
    TierId from = TierId::kSsd;
    TierId to = TierId::kHdd;
    MoveState state = MoveState::kCopying;
    uint8_t pad[5] = {};  // explicit, so no uninitialized bytes reach LMDB
    int64_t started_ns = 0;
  };
  // Records `rec` (state kCopying) after checking that rec.ino is a regular
  // file placed on rec.from. EBUSY when a record for the inode exists, ENOENT
  // when the inode is gone, EINVAL when it is not a file or not on rec.from.
  // Not synced: the caller decides (Sync()).
  Status BeginMove(const MoveRecord& rec);
  // In one transaction: inode.tier = to, inode.checksum = checksum, record
  // state = kSwitched, and the block sums when given (else any recorded
  // ones stay, valid only if `checksum` is the one they were recorded with).
  // ENOENT when the record or the inode is gone; ESTALE
  // when the record is not kCopying toward `to` or the inode's placement no
  // longer names the record's source (someone else moved it).
  Status CommitMove(uint64_t ino, TierId to, uint64_t checksum,
                    const std::vector<uint64_t>* block_sums = nullptr);
  // Deletes the record; a missing record is not an error.
  Status EndMove(uint64_t ino);
  // All records, in inode order.
  Status ListMoves(std::vector<MoveRecord>* out);
  // ---- end of move journal ---------------------------------------------------

  // ---- Holds (meta/store_holds.cc) --------------------------------------------
  // A hold keeps an inode from being thinned (and, when immutable, from being
  // written, renamed or unlinked) until `until_ns` (0: indefinitely). The
  // policy engine sets them from pin rules and lifts them when they expire.
  // A manual hold (tierctl pin/move, setxattr user.tierfs.tier; rule
  // "manual") was set by user `uid`; the policy never overrides it: no rule
  // moves, thins or re-pins the inode while it is in force, and `tier`, when
  // set, is where the file must stay. A move's hold is `placement_only`:
  // only the tier is kept (no rule migrates it), thinning is not held off. Records written before
  // manual holds existed decode as rule holds (the fields live in what was zero padding).
  struct Hold {
    int64_t until_ns = 0;
    int64_t since_ns = 0;
    bool immutable = false;
    std::string rule;
    bool manual = false;
    // A manual placement only (a move): keeps the tier, retains nothing,
    // so the policy may still thin it.
    bool placement_only = false;
    std::optional<TierId> tier;
    uint32_t uid = 0;
  };
  Status SetHold(uint64_t ino, const Hold& hold);
  // ENOENT when the inode has no hold.
  Status GetHold(uint64_t ino, Hold* out);
  // A missing hold is not an error.
  Status RemoveHold(uint64_t ino);
  // Every hold, keyed by inode, in inode order.
  Status ListHolds(std::vector<std::pair<uint64_t, Hold>>* out);
  // ---- end of holds -----------------------------------------------------------

  // ---- Tree walks (meta/store_walk.cc) -----------------------------------------
  struct TreeEntry {
    // The directory whose entry this is, and the entry's name there; 0 and
    // "" for the inode a WalkBelow starts from (an inode may have several
    // names: the caller knows which one it came by).
    uint64_t parent = 0;
    std::string name;
    // The `path` given to WalkBelow for its start; below it, the parent's
    // path, a '/' unless that path is empty or ends in one, and the name:
    // "/" gives "/a/b", "" gives "a/b", "/x" gives "/x/a/b".
    std::string path;
    const Inode* inode = nullptr;
    std::string symlink_target;  // symlinks only
    const Hold* hold = nullptr;  // null when the inode has none
  };
  // Visits `ino` itself, then every entry below it, each directory before
  // its children (depth first; a directory's entries in name order), all
  // read in ONE LMDB read transaction: the visitor sees one consistent state
  // of the tree (what a policy scan or a removal must judge), and writers
  // are never blocked. The walk keeps an explicit stack, so any depth is
  // fine. A hard-linked file is visited once per name. The pointers in the
  // entry are valid during the visit only. The visitor may call Store (its
  // own transactions do not see what it changes, nor block the walk).
  // Errors: a visitor's error ends the walk and is returned as it is;
  // ENOENT when `ino` does not exist (nothing is visited). A start that is
  // not a directory is visited alone (never ENOTDIR), so one call collects
  // a file or a tree alike; a removed directory (nlink 0) is visited and
  // has no entries. An entry naming a missing inode (a damaged state: a
  // transaction never sees half an unlink) ends the walk with EIO naming
  // its path. LMDB failures are EIO.
  Status WalkBelow(uint64_t ino, const std::string& path,
                   const std::function<Status(const TreeEntry&)>& visit);
  // WalkBelow(kRootIno, "/") without the root itself: every entry of the
  // namespace, paths from the root ("/a/b").
  Status WalkTree(const std::function<Status(const TreeEntry&)>& visit);
  // ---- end of tree walks ------------------------------------------------------

  // ---- Snapshots and recovery (meta/store_snapshot.cc) -------------------------
  // Writes a compacted copy of the whole environment to `fd` (mdb_env_copyfd2
  // with MDB_CP_COMPACT): one consistent read transaction, writers are not
  // blocked (but a removal that finds no free page while it runs waits for
  // it: LMDB cannot reuse pages the copy's transaction still sees). The result is a data.mdb file;
  // the caller syncs `fd`.
  Status CopyCompactTo(int fd, const std::string& what);
  // Deletes a meta key; a missing one is not an error.
  Status DeleteMeta(const std::string& key);
  // Raises the next inode number handed out to at least `ino` (recovery
  // re-creates files whose objects carry numbers a snapshot never gave out).
  Status RaiseNextIno(uint64_t ino);
  // ---- end of snapshots and recovery --------------------------------------------
  // ---- Block checksums (meta/store_block_sums.cc, meta/block_sums.h) ---------
  // xxh3_64 of each kSumBlockBytes block of a regular file's object, kept
  // with the whole-file xxh3 in Inode::checksum; they vouch for the bytes
  // only together (Update drops them when the checksum is cleared).
  // The block sums of `ino` recorded with its current checksum; ENOENT when
  // there are none (or they belong to another checksum, or another size).
  Status GetBlockSums(uint64_t ino, std::vector<uint64_t>* out);
  // In one transaction: when `still_valid` accepts the inode as it is now,
  // sets its checksum to `whole` and records `blocks`; ESTALE otherwise
  // (the bytes hashed are no longer the file's). ENOSPC, recording
  // nothing, when the map is down to the reserve removals need (CheckRoom):
  // a background hash must never take the room an unlink counts on.
  // `attrs`, when given, are the object's attributes as hashed, recorded
  // with the sums (Inode::object_attrs_recorded; its ctime when later).
  struct ObjectAttrs {
    uint64_t blocks = 0;
    int64_t ctime_ns = 0;
  };
  Status CommitSums(uint64_t ino, const std::function<bool(const Inode&)>& still_valid,
                    uint64_t whole, const std::vector<uint64_t>& blocks,
                    const ObjectAttrs* attrs = nullptr);
  // Sets (or clears) the corrupt flag (meta/inode.h) of `ino` when its
  // checksum is still `checksum` (the one a failed verification used).
  Status MarkCorrupt(uint64_t ino, uint64_t checksum);
  // ---- end of block checksums -------------------------------------------------

  struct Dbs;  // the database handles; defined in meta/txn.h, internal to meta/

 private:
  Store() = default;
  // ENOSPC naming the state when fewer pages than the reserve (1/8 of the
  // map, 64 pages to 64 MiB) are left for `what` (a create, link or xattr
  // write): LMDB copies every page it changes, so a delete needs free
  // pages too, and a map filled to the last page could not even unlink.
  // Pages LMDB may reuse (its free list, meta/txn.h ReusableBytes) count as free.
  Status CheckRoom(const char* what);
  // ENOSPC when adding xattr `name` to `ino` would make its names longer
  // than listxattr(2) can return (XATTR_LIST_MAX).
  Status CheckNameRoom(MDB_txn* t, uint64_t ino, const std::string& name);
  // Runs `op`, a removal (unlink, rmdir, rename, an orphan's or xattr's
  // deletion). A read transaction keeps LMDB from reusing any page freed
  // after it began, so in a nearly full map a removal made while one is
  // open can find no page at all. When `op` fails with ENOSPC, this waits
  // for the copies (CopyCompactTo) to end, then runs it again, backing off
  // up to kRemovalBackoffMax, while other readers (a policy scan's walk)
  // may still hold theirs, for up to kRemovalPatience: rather than refuse
  // the very call that makes room.
  Status RetryRemoval(const std::function<Status()>& op) EXCLUDES(copy_mu_);
  static constexpr std::chrono::milliseconds kRemovalPatience{5000};
  static constexpr std::chrono::milliseconds kRemovalBackoffMax{50};
  Status UnlinkOnce(uint64_t parent, const std::string& name, Removed* removed);
  Status RmdirOnce(uint64_t parent, const std::string& name, Removed* removed);
  Status RenameOnce(uint64_t old_parent, const std::string& old_name, uint64_t new_parent,
                    const std::string& new_name, unsigned flags, Removed* replaced);
  Mutex copy_mu_;
  CondVar copies_ended_;
  int copies_ GUARDED_BY(copy_mu_) = 0;
  MDB_env* env_ = nullptr;
  std::string dir_;
  std::unique_ptr<Dbs> dbs_;
  // The blocks kept allocated past LMDB's last page (meta/txn.h).
  std::unique_ptr<MapAllocation> alloc_;
};

}  // namespace tierfs

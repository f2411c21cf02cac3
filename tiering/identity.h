// The identity of an object on the capacity tier: which file of which
// namespace it holds, so that the HDD tier describes itself when the state
// (LMDB) and the SSD tier are gone (`tierfs recover`, fs/recover.h).
//
// The mover writes it on the copy before the placement commit
// (tiering/mover.h): the xattr user.tierfs.identity on the object, JSON of
// ObjectIdentity below (at most kMaxIdentityBytes; a longer path is cut and
// flagged). Where the tier's filesystem refuses user xattrs (ENOTSUP) it
// goes to a sidecar file <object>.id next to the object instead (written
// to <object>.id.tmp, synced, renamed). Tier::RemoveObject removes the
// sidecar with the object. The identity is not rewritten when the file is
// renamed later: recovery takes names from the newest LMDB snapshot first
// and uses the identity's path only for files the snapshot does not know.
// It is rewritten when the file's owners, mode, ACL or extended attributes
// change while it is on the HDD tier (fs/archived_access.h).
// Errors name the object and the tier.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "meta/inode.h"
#include "meta/status.h"
#include "tiering/tier.h"

namespace tierfs {

class Store;

inline constexpr char kIdentityXattr[] = "user.tierfs.identity";
inline constexpr char kIdentitySidecarSuffix[] = ".id";
// Under one filesystem block, so the xattr fits ext4's in-inode/one-block limit.
inline constexpr size_t kMaxIdentityBytes = 3584;
// The room the file's extended attributes may take in the identity's JSON
// (names, values, quoting): what is left of one block once the fixed fields,
// an ACL of up to half of it (below) and an ordinary path have theirs.
// Annotations such as user.checkpoint.sha fit many times over; a file with
// more is flagged `xattrs_unknown` instead, never cut.
inline constexpr size_t kMaxIdentityXattrBytes = 1024;

struct ObjectIdentity {
  std::string ns;  // namespace name
  uint64_t ino = 0;
  std::string path;             // in the mount when archived ("/a/b"), "" if unknown
  bool path_truncated = false;  // `path` is only its first bytes
  uint64_t size = 0;
  uint32_t mode = 0, uid = 0, gid = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  uint64_t xxh3 = 0;  // of the object's bytes
  int64_t archived_ns = 0;
  // The file's POSIX access ACL when archived (the xattr's bytes, "" for
  // none), so that a view or a recovery restricts the bytes as the mount
  // did. `acl_unknown`: the file had one too long for the identity; a
  // reader must then grant no one but the owner.
  std::string access_acl;
  bool acl_unknown = false;
  // The file's other extended attributes (user.*, trusted.*, security.*;
  // not system.* and not tierfs's own user.tierfs.*), name to value, so
  // that annotations set after the newest snapshot survive it.
  // `xattrs_recorded`: the writer recorded them (format v2); false in an
  // identity an older tierfs wrote, whose empty `xattrs` say nothing.
  // `xattrs_unknown`: they took more than kMaxIdentityXattrBytes and none
  // were recorded; a reader keeps the snapshot's (if any).
  std::map<std::string, std::string> xattrs;
  bool xattrs_recorded = false;
  bool xattrs_unknown = false;
};

// Whether an identity records extended attribute `name` (see `xattrs` above).
bool IsArchivedXattr(const std::string& name);

// Fills `id->xattrs` from inode `ino`'s attributes in `store` and sets
// `xattrs_recorded` (EncodeIdentity applies the bound). Errors name the inode.
Status ReadArchivedXattrs(Store& store, uint64_t ino, ObjectIdentity* id);

// The identity of file `n` (inode, owners, mode, ctime, access ACL and
// xattrs from `store`) in namespace `ns` under `path`, for an object of
// `size` bytes with mtime `mtime_ns` and checksum `xxh3` (the caller's:
// what it copied or hashed), archived now. Errors name the inode.
Status IdentityFromStore(Store& store, const Inode& n, const std::string& ns,
                         const std::string& path, uint64_t size, int64_t mtime_ns, uint64_t xxh3,
                         ObjectIdentity* out);

// The JSON text (one line, under kMaxIdentityBytes) and back. EINVAL naming
// what is wrong for text that is not an identity.
std::string EncodeIdentity(const ObjectIdentity& id);
Status DecodeIdentity(const std::string& text, ObjectIdentity* out);

// Writes `id` for inode `ino`'s object on `tier`, whose open descriptor
// (the move's copy) is `fd`: as the xattr, or as the sidecar when the
// filesystem refuses user xattrs. Not synced when it went to the xattr
// (the caller fsyncs `fd`); the sidecar is synced before its rename.
// `sidecar` (may be null) tells which was used.
Status WriteIdentity(const Tier& tier, uint64_t ino, int fd, const ObjectIdentity& id,
                     bool* sidecar);

// Reads the identity of the object at `object_path`: the xattr, else the
// sidecar. ENODATA when it has neither.
Status ReadIdentity(const std::string& object_path, ObjectIdentity* out);

// Where a file placed by its identity alone goes (recover, view): the
// archived path's directories, outermost first, and its name. False when
// the path cannot name a file: empty, relative, cut short, ending in '/',
// or with a "." or ".." component (empty components are skipped).
bool SplitArchivedPath(const ObjectIdentity& id, std::vector<std::string>* dirs, std::string* name);

// Calls `visit` with the inode number and path of each object below the
// namespace directory `ns_dir` (objects/<xx>/<ino in lowercase hex>;
// temporaries, sidecars and the like are not objects), in sorted order.
// A missing directory holds none. Stops at the first error `visit`
// returns and returns it.
Status ForEachObject(const std::string& ns_dir,
                     const std::function<Status(uint64_t ino, const std::string& path)>& visit);

}  // namespace tierfs

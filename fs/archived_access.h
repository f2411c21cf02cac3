// Keeps an archived object's identity (tiering/identity.h) true to who may
// read the file and to its extended attributes. The identity records the
// owners, mode, access ACL and xattrs as they were when the file moved to
// the HDD tier; `tierfs view` and `tierfs recover` take them from it for
// files the newest LMDB snapshot does not know, or knows from before a
// later change (its ctime is older). A chmod, chown, setfacl, setxattr or
// removexattr of a file already on the HDD tier, and a write in place there
// that clears its set-ID bits or capabilities, therefore rewrites them
// there, or a view would keep serving the bytes to whoever the old mode let
// in, and a recovery would lose an annotation (user.run_id) set since the
// snapshot.
//
// Thread-safety: any thread; a move switching the object meanwhile writes
// its own identity from LMDB, which already has the change.
#pragma once

#include <cstdint>

#include "meta/status.h"
#include "meta/store.h"
#include "tiering/tier.h"

namespace tierfs {

// Rewrites the mode, owners, ctime, access ACL and xattrs in the identity of inode
// `ino`'s object on `hdd`, from LMDB, and syncs it. Ok (nothing to do) when
// the file is not on the HDD tier or its object has no identity yet.
// Errors name the object.
Status RefreshArchivedAccess(Store& store, const Tier& hdd, uint64_t ino);

// Writes the whole identity of inode `ino`'s object on `hdd` (its
// namespace, inode, `path`, the object's size and mtime, owners, mode,
// ACL, xattrs, and `checksum`, what its bytes were just hashed to) and
// syncs it. A file written on the HDD tier (created there while the SSD
// tier was full, or written in place while pinned there) has no move to
// write one, and without it `tierfs recover` and `tierfs view` cannot name
// the file once the SSD tier is lost. Ok, writing nothing, when the file
// is no longer on the HDD tier or no longer as hashed (size, mtime or
// checksum changed since: its next writer's close comes back here).
Status WriteArchivedIdentity(Store& store, const Tier& hdd, uint64_t ino, const std::string& path,
                             uint64_t checksum);

}  // namespace tierfs

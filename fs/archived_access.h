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

}  // namespace tierfs

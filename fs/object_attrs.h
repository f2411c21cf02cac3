// RecordObjectAttrs: puts a regular file's object attributes (size, mtime,
// ctime, blocks) into its LMDB record (Inode::object_attrs_recorded), so
// stat answers from LMDB without a call on the tier, for changes no
// writer's close records: a setattr of size or times, a move.
//
// Recorded only when, inside the write transaction, no handle has the file
// open for writing (an open for writing counts itself before it forgets the
// record in its own transaction, so the two cannot interleave wrongly) and
// the object agrees with LMDB's size and mtime; otherwise the record is
// forgotten and stat reads the object, as before any record.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>

#include "fs/inode_table.h"
#include "meta/status.h"
#include "meta/store.h"
#include "tiering/tier.h"

namespace tierfs {

// The attributes worth recording for `n`, given what Tier::StatObject
// returned for its object (`found`, and `obj` when found): the object's
// blocks and ctime when it agrees with LMDB's size and mtime; 0 blocks and
// LMDB's ctime when there is no object and the size is 0 (an empty file
// never written); nothing otherwise (stat keeps asking the tier). The one
// rule both recorders follow: RecordObjectAttrs below and the hasher's
// commit (fs/block_hasher.h).
std::optional<Store::ObjectAttrs> AgreeingObjectAttrs(const Inode& n, const Status& found,
                                                      const struct stat& obj);

// `out`, if given, gets the inode as written. Errors are LMDB's (the
// object's absence or a failing tier only mean "not recorded").
Status RecordObjectAttrs(Store& store, const Tiers& tiers, InodeTable& table, uint64_t ino,
                         Inode* out = nullptr);

}  // namespace tierfs

// Block sums in `tierfs recover` (fs/recover.h): a file the rebuilt state
// places on the HDD tier without block sums (recreated from its identity,
// placed after the snapshot, or kept without them) would be served
// unverified (fs/verified_read.h). Its object is read once: the whole-file
// xxh3 is checked against the checksum recorded for it (the identity's or
// the snapshot's) when there is one, and the per-block sums are recorded.
#pragma once

#include "fs/recover.h"
#include "meta/status.h"
#include "meta/store.h"
#include "tiering/tier.h"

namespace tierfs {

// For a kept, placed or recreated `entry`: records the block sums of its
// object, or marks the file corrupt (Store::MarkCorrupt) when the object
// does not hash to its recorded checksum or cannot be read, and then turns
// `entry` into a "corrupt" one saying why. Errors are the state's (LMDB).
Status SumRecoveredFile(Store& store, const Tier& hdd, RecoverEntry* entry);

}  // namespace tierfs

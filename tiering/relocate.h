// Relocation of one inode's data object between tiers while nothing else
// uses it: copy to a temporary name on the target tier, fsync, rename into
// place, switch the placement in LMDB, then remove the source object.
//
// This is the primitive the mover builds on; today it is used offline (the
// daemon not mounted) by tests and tools to place objects on the HDD tier.
#pragma once

#include <cstdint>

#include "meta/store.h"
#include "tiering/tier.h"

namespace tierfs {

Status RelocateObject(Store& store, const Tier& from, const Tier& to, uint64_t ino);

}  // namespace tierfs

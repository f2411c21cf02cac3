// Relocation of one inode's data object between tiers while nothing else
// uses it: a MoveObject (tiering/mover.h) without abort or throttle, so it
// is journaled, verified and crash-safe like any move.
//
// Used offline (the daemon not mounted) by tests and tools to place objects
// on the HDD tier. Errors as MoveObject's.
#pragma once

#include <cstdint>

#include "meta/store.h"
#include "tiering/tier.h"

namespace tierfs {

Status RelocateObject(Store& store, const Tier& from, const Tier& to, uint64_t ino);

}  // namespace tierfs

// Internal to tiering/: settling one journaled move, shared by a failing
// MoveObject (undo) and RecoverMoves (restart).
#pragma once

#include <cstdint>

#include "meta/store.h"
#include "tiering/tier.h"

namespace tierfs {

// Makes inode `ino` consistent after a move from `from` to `to` stopped at
// any step, then deletes its journal record. The rule needs no step number:
// the object on the tier the inode names is the live one, so the copy on
// the other tier and the temporary on `to` are removed. With `repair`, an
// inode whose named object is missing while the other tier holds one is
// pointed at the existing one instead (only a crash can cause that). When
// the inode is gone, both copies are garbage (inode numbers are not reused).
// The removals are made durable (SyncObjectDir) before the record goes.
// The record stays when a removal fails, so a later recovery retries.
Status SettleMove(Store& store, const Tier& from, const Tier& to, uint64_t ino, bool repair);

// fsync of the fan-out directory holding inode `ino`'s object on `tier`,
// through the tier's Io: an unlink there is durable only after it. Without
// it, power loss after the journal record was deleted would bring back an
// object nothing names, which no recovery would ever remove. A missing
// directory is not an error (nothing in it can come back).
Status SyncObjectDir(const Tier& tier, uint64_t ino);

}  // namespace tierfs

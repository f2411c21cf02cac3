#include "tiering/relocate.h"

#include "tiering/mover.h"

namespace tierfs {

Status RelocateObject(Store& store, const Tier& from, const Tier& to, uint64_t ino) {
  return MoveObject(store, from, to, ino, MoveOptions{}, nullptr, nullptr);
}

}  // namespace tierfs

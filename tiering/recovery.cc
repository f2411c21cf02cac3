// Settling interrupted moves: SettleMove (tiering/settle.h) and RecoverMoves
// (tiering/mover.h).
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tiering/mover.h"
#include "tiering/settle.h"

namespace tierfs {

Status SyncObjectDir(const Tier& tier, uint64_t ino) {
  return tier.SyncObjectDir(ino);
}

Status SettleMove(Store& store, const Tier& from, const Tier& to, uint64_t ino, bool repair) {
  Status st = to.RemoveTemp(ino);
  if (!st.ok()) return st;
  if (from.id() == to.id()) {  // a corrupt record: nothing to choose
    st = SyncObjectDir(to, ino);
    return st.ok() ? store.EndMove(ino) : st;
  }
  Inode n;
  st = store.GetInode(ino, &n);
  if (st.err() == ENOENT || (st.ok() && !n.is_reg())) {
    st = to.RemoveObject(ino);
    if (st.ok()) st = from.RemoveObject(ino);
  } else if (st.ok()) {
    const Tier& home = n.tier == to.id() ? to : from;
    const Tier& other = n.tier == to.id() ? from : to;
    struct stat sb;
    const bool home_missing = home.StatObject(ino, &sb).err() == ENOENT;
    if (repair && home_missing && other.StatObject(ino, &sb).ok()) {
      // Losing neither data nor the file: the copy that exists becomes live.
      st = store.Update(
          ino,
          [&](Inode& i) {
            i.tier = other.id();
            i.ForgetObjectAttrs();  // recorded of the lost object
            return Status::Ok();
          },
          nullptr);
    } else {
      st = other.RemoveObject(ino);
    }
  }
  // Both directories: a removed copy must not come back once the record
  // that would remove it again is gone.
  if (st.ok()) st = SyncObjectDir(to, ino);
  if (st.ok()) st = SyncObjectDir(from, ino);
  if (st.ok()) st = store.EndMove(ino);
  return st;
}

Status RecoverMoves(Store& store, const Tier& ssd, const Tier& hdd, int* handled,
                    std::vector<Store::MoveRecord>* rolled_forward) {
  if (handled) *handled = 0;
  if (ssd.id() != TierId::kSsd || hdd.id() != TierId::kHdd)
    return Status::Error(EINVAL, "recover moves: tiers passed in the wrong order");
  std::vector<Store::MoveRecord> records;
  Status st = store.ListMoves(&records);
  if (!st.ok()) return Status::Error(st.err(), "recover moves: " + st.message());
  Status first;
  int done = 0;
  for (const Store::MoveRecord& r : records) {
    const Tier& from = r.from == TierId::kSsd ? ssd : hdd;
    const Tier& to = r.to == TierId::kSsd ? ssd : hdd;
    st = SettleMove(store, from, to, r.ino, /*repair=*/true);
    if (!st.ok()) {
      const char* state = r.state == Store::MoveState::kSwitched ? "switched" : "copying";
      if (first.ok())
        first = Status::Error(st.err(), "recover move of inode " + std::to_string(r.ino) + " " +
                                            from.name() + " -> " + to.name() + " (" + state +
                                            "): " + st.message());
      continue;
    }
    done++;
    Inode n;
    if (rolled_forward && r.state == Store::MoveState::kSwitched &&
        store.GetInode(r.ino, &n).ok() && n.tier == r.to)
      rolled_forward->push_back(r);
  }
  if (handled) *handled = done;
  // The settled state must not regress on power loss while serving.
  if (done > 0) st = store.Sync();
  return first.ok() ? st : first;
}

}  // namespace tierfs

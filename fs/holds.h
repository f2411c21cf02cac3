// Holds: pins the policy engine sets (Store::Hold: until when, by which
// rule, immutable or not) and the one check of mutability. A held inode is
// never thinned or moved against its pin; an immutable hold also refuses
// every change a user makes (write, truncate, chmod, chown, utimes, rename,
// unlink, link, setxattr, removexattr: EPERM, root included) until it
// expires. CheckMutable is the one place that decides; the FUSE operations
// reach it through the ops table, which declares what each op changes
// (fs/op_table.h), and never call it themselves.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "meta/audit.h"
#include "meta/store.h"

namespace tierfs {

class Holds {
 public:
  // Who asks for a change (fuse_req_ctx), for the audit of a refusal.
  struct Caller {
    int64_t uid = -1, pid = -1;
  };
  // Told of each refusal CheckMutable makes for a caller (fs/refusal_audit.h).
  using OnRefusal =
      std::function<void(const Caller&, uint64_t ino, const char* what, const Store::Hold&)>;
  explicit Holds(Store& store, OnRefusal on_refusal = {})
      : store_(store), on_refusal_(std::move(on_refusal)) {}

  // Sets `hold` on `ino` and everything below it; `changed` counts the
  // inodes whose hold was new or different. A hold that is not manual
  // leaves the inodes with a manual pin in force alone: the policy never
  // overrides one (Store::Hold). It replaces a manual placement: the
  // rule's pin then governs.
  Status HoldTree(uint64_t ino, const Store::Hold& hold, int* changed);
  // What HoldForMove changed: each inode's hold before (none: nullopt) and
  // the one it set, so that where the move does not happen the old hold
  // comes back (UndoMoveHolds).
  struct MoveHolds {
    struct Entry {
      uint64_t ino = 0;
      bool is_reg = false;
      std::optional<Store::Hold> before;
      Store::Hold set;
    };
    TierId to = TierId::kSsd;
    std::vector<Entry> entries;
  };
  // Before a manual move of `ino` (a tree: everything below it) to `to` by
  // user `uid`: makes the placement sticky with a manual hold naming `to`.
  // An immutable hold or a manual pin in force stays a pin, with its end,
  // now naming `to`; anything else becomes a placement-only hold without
  // end (until an unpin), which does not keep the policy from thinning.
  // `undo` (may be null) gets what was changed.
  Status HoldForMove(uint64_t ino, TierId to, uint32_t uid, int* changed,
                     MoveHolds* undo = nullptr);
  // After the manual move HoldForMove prepared as `undo` ended (done,
  // failed, cancelled or never started): each regular file that is not on
  // `undo.to` gets its hold from before back (or none), and so do the
  // other entries (directories) when `failed` and no file kept the new
  // hold. A hold changed since (a pin or unpin meanwhile) is left as it is.
  // Returns how many holds were given back.
  int UndoMoveHolds(const MoveHolds& undo, bool failed);
  // At mount, after the interrupted moves are settled (no move runs): a
  // manual placement (placement-only hold, as a move sets) naming a tier
  // its regular file is not on never took effect (the daemon died before
  // the move, or the file was evicted or promoted since), so it is removed
  // and the policy governs the file again; its hold from before is not
  // known, and a rule's pin comes back at the next scan. Manual pins stay
  // as they are. One "unpin" record each goes to `records`.
  int DropStalePlacements(std::vector<AuditRecord>* records);
  // Removes the holds whose time is up at `now`; one "unpin" record each
  // goes to `records`. Returns how many were removed.
  int ExpireHolds(int64_t now, std::vector<AuditRecord>* records);
  // EPERM naming the rule when `ino` is held immutable now (`what`:
  // "unlink", "write", ...). Cheap while no immutable hold exists. A refusal
  // for a `by` (a user's request) is told to OnRefusal, to be audited.
  Status CheckMutable(uint64_t ino, const char* what, const Caller* by = nullptr);
  // CheckMutable of the inode `name` in `parent` names (ok if none).
  Status CheckEntryMutable(uint64_t parent, const char* name, const char* what,
                           const Caller* by = nullptr);
  // Whether `h` is a manual hold in force at `now`: no rule may move it.
  static bool ManualActive(const Store::Hold* h, int64_t now) {
    return h != nullptr && h->manual && Active(*h, now);
  }
  // Whether `h` keeps its inode from being thinned at `now` (a manual
  // placement alone does not).
  static bool Retains(const Store::Hold& h, int64_t now) {
    return Active(h, now) && !h.placement_only;
  }
  // Whether `h` is in force at `now`.
  static bool Active(const Store::Hold& h, int64_t now) {
    return h.until_ns == 0 || h.until_ns > now;
  }
  // Whether some hold that retains (Retains, in force or not) may exist:
  // false only when none does, so that a truncate of a file nothing holds
  // skips the lookup of its hold (fs/delete_audit.h). Cheap: one atomic.
  bool MayRetain() const { return retaining_holds_.load(std::memory_order_relaxed) != 0; }
  // Recounts immutable and retaining holds (at mount and after any change
  // of holds).
  void Count();

 private:
  Store& store_;
  const OnRefusal on_refusal_;
  // Immutable holds in LMDB; CheckMutable skips LMDB while there are none.
  // Errs toward 1 ("ask LMDB") when they cannot be counted.
  std::atomic<int> immutable_holds_{0};
  // Holds that are not placement-only, counted alike (errs toward 1).
  std::atomic<int> retaining_holds_{1};
};

}  // namespace tierfs

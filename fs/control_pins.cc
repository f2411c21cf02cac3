// The control commands of manual placement: pin, unpin, move and
// move_status (fs/control_commands.h). Who may do what, from the peer's uid:
// root anything; another user only on a tree whose every entry they own
// (EPERM naming the first that is not theirs). An immutable hold in force
// can be shortened or removed by nobody before it ends, and extended only
// by root (EPERM naming its end). Another user's immutable pin must end,
// no later than the policy's [pins] max_user_immutable from now (EPERM
// naming the limit and the key). Each pin, unpin and move writes one audit
// record naming the path, the uid, the tier and the end; a user other than
// root gets at most so many of them a second (Context::request_rate,
// fs/request_rate.h: EAGAIN beyond, with no record).
//   {"cmd":"pin","path":P,"tier":"ssd"|"hdd"?,"until_ns":N?|"for_s":N?,
//    "immutable":bool?}  -> entries, until, immutable, tier, job (a tier
//                           given: the move that puts it there)
//   {"cmd":"unpin","path":P}           -> removed (holds)
//   {"cmd":"move","path":P,"to":T}     -> job (queued; pinned to T at once,
//        the hold from before given back to each file not moved in the end;
//        EINVAL, nothing pinned, when P is neither a file nor a directory,
//        as for a pin with a "tier")
//   {"cmd":"move_status","job":N}      -> state (queued, moving, done,
//        failed), files, files_done, bytes, copied, error; the asker's
//        own jobs only, unless root
#include <cstring>
#include <optional>

#include "fs/context.h"
#include "fs/control_internal.h"
#include "policy/units.h"

namespace tierfs {

using nlohmann::json;

namespace {

struct Item {
  uint64_t ino = 0;
  std::string path;
  std::optional<Store::Hold> hold;
  bool has_tier = false;  // a regular file or a directory
};

// Resolves the request's "path" for `peer` and collects the tree below it,
// refusing with EPERM unless the peer is root or owns every entry.
Status Collect(Context& c, const char* what, const json& req, const ControlPeer& peer,
               std::string* clean, std::vector<Item>* items) {
  std::string path;
  if (!PathField(req, &path))
    return Status::Error(EINVAL, std::string(what) + ": \"path\" (a string) is required");
  Inode top;
  Status st = ResolveForPeer(c, path, peer, &top, clean);
  if (!st.ok()) return Status::Error(st.err(), std::string(what) + " " + st.message());
  std::string refused;
  st = c.store().WalkBelow(top.ino, *clean, [&](const Store::TreeEntry& e) {
    if (peer.uid != 0 && e.inode->uid != peer.uid && refused.empty())
      refused = std::string(what) + " " + e.path + ": owned by uid " +
                std::to_string(e.inode->uid) + ", not by uid " + std::to_string(peer.uid) +
                " (only root or the owner may " + what + " it)";
    Item item;
    item.ino = e.inode->ino;
    item.path = e.path;
    if (e.hold) item.hold = *e.hold;
    item.has_tier = e.inode->is_reg() || e.inode->is_dir();
    items->push_back(std::move(item));
    return Status::Ok();
  });
  if (!st.ok())
    return Status::Error(st.err(), std::string(what) + " " + *clean + ": " + st.message());
  if (!refused.empty()) return Status::Error(EPERM, refused);
  return Status::Ok();
}

std::string UntilText(int64_t until_ns) {
  return until_ns == 0 ? "indefinitely" : "until " + UtcSeconds(until_ns);
}

// EPERM when `want` (null: removing the hold) would shorten an immutable
// hold in force, or extend one and the peer is not root.
Status CheckImmutable(const Item& item, const Store::Hold* want, const ControlPeer& peer,
                      const char* what, int64_t now) {
  if (!item.hold || !item.hold->immutable || !Holds::Active(*item.hold, now)) return Status::Ok();
  const int64_t have = item.hold->until_ns;
  const std::string held =
      item.path + " is held immutable " + UntilText(have) + " (rule '" + item.hold->rule + "')";
  const bool shorter =
      !want || !want->immutable || (want->until_ns != 0 && (have == 0 || want->until_ns < have));
  if (shorter)
    return Status::Error(EPERM, std::string(what) + " refused: " + held +
                                    "; nobody may shorten or remove it before then");
  const bool longer = have != 0 && (want->until_ns == 0 || want->until_ns > have);
  if (longer && peer.uid != 0)
    return Status::Error(EPERM,
                         std::string(what) + " refused: " + held + "; only root may extend it");
  return Status::Ok();
}

// A user other than root pins immutable only with an end within `limits`:
// nobody, root included, may remove such a hold before it ends, so one
// without an end (or decades away) would keep the user's files, and the
// tiers' space, for ever. Root's pins and the policy's rules (the admin's)
// are not bound by it.
Status CheckUserImmutable(const Store::Hold& want, const ControlPeer& peer, const std::string& path,
                          const PinLimits& limits, int64_t now) {
  if (!want.immutable || peer.uid == 0) return Status::Ok();
  const int64_t max = limits.max_user_immutable_ns;
  const std::string refused =
      "pin --immutable " + path + " refused for uid " + std::to_string(peer.uid) + ": ";
  if (max == 0)
    return Status::Error(EPERM, refused +
                                    "the policy forbids immutable pins by users other than root "
                                    "([pins] max_user_immutable = \"0\")");
  const int64_t latest = SaturatingAdd(now, max);
  const std::string limit = "users other than root may pin immutable for at most " +
                            FormatDuration(max) + " ([pins] max_user_immutable in the policy)";
  if (want.until_ns == 0)
    return Status::Error(EPERM, refused + "an immutable pin needs an end (--for or --until), " +
                                    "no later than " + UtcSeconds(latest) + "; " + limit);
  // By the second, as the message shows them and dates are given.
  if (want.until_ns / kNsPerSecond > latest / kNsPerSecond)
    return Status::Error(EPERM, refused + "it would end " + UtcSeconds(want.until_ns) +
                                    ", later than " + UtcSeconds(latest) + "; " + limit);
  return Status::Ok();
}

// Pins, unpins and moves change the mount; on a read-only one (-o ro)
// nothing may (Placement refuses the moves themselves too).
Status RefuseOnReadOnly(Context& c, const char* cmd) {
  if (!c.options().read_only) return Status::Ok();
  return Status::Error(EROFS, std::string(cmd) + " refused: " + c.options().mountpoint +
                                  " is mounted read-only (-o ro)");
}

// EINVAL unless the tree `top` names has a tier to be put on: a regular
// file or a directory (the files below it). A symbolic link, a device or a
// FIFO has no data on a tier; moving or pinning it to one would only put a
// hold on it that says nothing (setfattr user.tierfs.tier refuses it too).
Status CheckHasTier(const Item& top, const char* what) {
  if (top.has_tier) return Status::Ok();
  return Status::Error(EINVAL, std::string(what) + " " + top.path +
                                   ": not a regular file or a directory; only files and "
                                   "directories have a tier");
}

// EAGAIN when the peer (not root) asked too often (fs/request_rate.h).
Status Limit(Context& c, const ControlPeer& peer, const char* cmd) {
  return c.request_rate().Take(peer.uid, NowNs(), cmd);
}

std::optional<TierId> TierOf(const std::string& v) {
  if (v == "ssd") return TierId::kSsd;
  if (v == "hdd") return TierId::kHdd;
  return std::nullopt;
}

AuditRecord Record(const char* action, const std::string& path, uint64_t ino,
                   const ControlPeer& peer) {
  AuditRecord rec;
  rec.action = action;
  rec.rule = "manual";
  rec.path = path;
  rec.ino = ino;
  rec.detail = "by uid " + std::to_string(peer.uid);
  return rec;
}

}  // namespace

json ControlPin(Context& c, const ControlInfo&, const json& req, const ControlPeer& peer) {
  if (Status ro = RefuseOnReadOnly(c, "pin"); !ro.ok()) return ControlErrorOf(ro);
  if (Status rate = Limit(c, peer, "pin"); !rate.ok()) return ControlErrorOf(rate);
  const int64_t now = NowNs();
  Store::Hold want;
  want.since_ns = now;
  want.rule = "manual";
  want.manual = true;
  want.uid = peer.uid;
  if (HasField(req, "tier")) {
    want.tier = TierOf(StringField(req, "tier", ""));
    if (!want.tier) return ControlError(EINVAL, "pin: \"tier\" must be \"ssd\" or \"hdd\"");
  }
  const bool has_until = HasField(req, "until_ns");
  const bool has_for = HasField(req, "for_s");
  if (has_until && has_for) return ControlError(EINVAL, "pin: give until_ns or for_s, not both");
  if (has_until) {
    want.until_ns = IntField(req, "until_ns", 0);
    if (want.until_ns <= now)
      return ControlError(EINVAL, "pin: \"until_ns\" must be a time in the future");
  }
  if (has_for) {
    const int64_t for_s = IntField(req, "for_s", 0);
    if (for_s <= 0 || for_s > (INT64_MAX - now) / 1000000000)
      return ControlError(EINVAL, "pin: \"for_s\" must be a positive number of seconds");
    want.until_ns = now + for_s * 1000000000;
  }
  want.immutable = BoolField(req, "immutable", false);
  std::string clean;
  std::vector<Item> items;
  Status st = Collect(c, "pin", req, peer, &clean, &items);
  if (st.ok() && want.tier) st = CheckHasTier(items.front(), "pin --tier");
  if (st.ok()) st = CheckUserImmutable(want, peer, clean, c.policy_runner().pin_limits(), now);
  for (size_t i = 0; st.ok() && i < items.size(); ++i)
    st = CheckImmutable(items[i], &want, peer, "pin", now);
  for (size_t i = 0; st.ok() && i < items.size(); ++i) st = c.store().SetHold(items[i].ino, want);
  c.holds().Count();
  if (!st.ok()) return ControlErrorOf(st);
  AuditRecord rec = Record("pin", clean, items.front().ino, peer);
  if (want.tier) rec.to = TierName(*want.tier);
  rec.detail += std::string(want.immutable ? ", immutable" : "") + ", " + UntilText(want.until_ns) +
                ", " + std::to_string(items.size()) + " entries";
  json reply = {{"ok", true},
                {"path", clean},
                {"entries", items.size()},
                {"until", want.until_ns ? json(UtcSeconds(want.until_ns)) : json(nullptr)},
                {"immutable", want.immutable},
                {"tier", want.tier ? json(TierName(*want.tier)) : json(nullptr)}};
  if (want.tier) {  // the pin names a tier: put it there
    uint64_t id = 0;
    st = c.manual_moves().Enqueue(items.front().ino, *want.tier, clean, peer.uid, &id);
    if (st.ok()) reply["job"] = id;
    if (!st.ok()) rec.result = st.message();
  }
  c.Audit({rec});
  if (!st.ok()) return ControlErrorOf(st);
  return reply;
}

json ControlUnpin(Context& c, const ControlInfo&, const json& req, const ControlPeer& peer) {
  if (Status ro = RefuseOnReadOnly(c, "unpin"); !ro.ok()) return ControlErrorOf(ro);
  if (Status rate = Limit(c, peer, "unpin"); !rate.ok()) return ControlErrorOf(rate);
  const int64_t now = NowNs();
  std::string clean;
  std::vector<Item> items;
  Status st = Collect(c, "unpin", req, peer, &clean, &items);
  for (size_t i = 0; st.ok() && i < items.size(); ++i)
    st = CheckImmutable(items[i], nullptr, peer, "unpin", now);
  size_t removed = 0;
  for (size_t i = 0; st.ok() && i < items.size(); ++i) {
    if (!items[i].hold) continue;
    st = c.store().RemoveHold(items[i].ino);
    if (st.ok()) removed++;
  }
  c.holds().Count();
  if (!st.ok()) return ControlErrorOf(st);
  AuditRecord rec = Record("unpin", clean, items.front().ino, peer);
  rec.detail += ", " + std::to_string(removed) + " holds removed";
  c.Audit({rec});
  return {{"ok", true}, {"path", clean}, {"removed", removed}};
}

json ControlMove(Context& c, const ControlInfo&, const json& req, const ControlPeer& peer) {
  if (Status ro = RefuseOnReadOnly(c, "move"); !ro.ok()) return ControlErrorOf(ro);
  if (Status rate = Limit(c, peer, "move"); !rate.ok()) return ControlErrorOf(rate);
  const std::optional<TierId> to = TierOf(StringField(req, "to", ""));
  if (!to) return ControlError(EINVAL, "move: \"to\" must be \"ssd\" or \"hdd\"");
  std::string clean;
  std::vector<Item> items;
  Status st = Collect(c, "move", req, peer, &clean, &items);
  if (st.ok()) st = CheckHasTier(items.front(), "move");
  if (!st.ok()) return ControlErrorOf(st);
  // Sticky before it starts: a scan meanwhile must not move it back. What
  // is not moved in the end (a failure, the daemon stopping) gets its hold
  // from before back (ManualMoves, Holds::UndoMoveHolds).
  int pinned = 0;
  Holds::MoveHolds undo;
  st = c.holds().HoldForMove(items.front().ino, *to, peer.uid, &pinned, &undo);
  uint64_t id = 0;
  if (st.ok()) {
    Holds::MoveHolds queued = undo;
    st = c.manual_moves().Enqueue(items.front().ino, *to, clean, peer.uid, &id, std::move(queued));
  }
  if (!st.ok()) c.holds().UndoMoveHolds(undo, true);
  AuditRecord rec = Record("move", clean, items.front().ino, peer);
  rec.to = TierName(*to);
  rec.detail += ", queued; pinned to " + std::string(TierName(*to)) + " until unpinned";
  if (!st.ok()) rec.result = st.message();
  c.Audit({rec});
  if (!st.ok()) return ControlError(st.err(), "move " + clean + ": " + st.message());
  return {{"ok", true}, {"path", clean}, {"to", TierName(*to)}, {"job", id}};
}

json ControlMoveStatus(Context& c, const ControlInfo&, const json& req, const ControlPeer& peer) {
  if (!HasField(req, "job"))
    return ControlError(EINVAL, "move_status: \"job\" (a job id) is required");
  const uint64_t id = UintField(req, "job", 0);
  ManualMoves::Job job;
  if (!c.manual_moves().Get(id, &job) || (peer.uid != 0 && job.uid != peer.uid))
    return ControlError(ENOENT, "move_status: no job " + std::to_string(id));
  return {{"ok", true},
          {"job", job.id},
          {"path", job.path},
          {"to", TierName(job.to)},
          {"state", ManualMoves::StateName(job.state)},
          {"files", job.files},
          {"files_done", job.files_done},
          {"bytes", job.bytes},
          {"copied", job.copied},
          {"error", job.error.empty() ? json(nullptr) : json(job.error)}};
}

}  // namespace tierfs

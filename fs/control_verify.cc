// The `verify` command (tierctl verify [PATH]): re-reads the object of every
// regular file at or below PATH and checks each 1 MiB block against its
// recorded checksum (fs/verified_read.h says what is recorded and when).
// Root only: it reads every object, and its answer names files of
// directories other users may not list. A corrupt file is reported as a
// verified read reports it: logged, audited, and marked corrupt (the check
// is fs/verify_object.h's, shared with the scrub).
#include <map>

#include "fs/context.h"
#include "fs/control_internal.h"
#include "fs/verify_object.h"

namespace tierfs {

using nlohmann::json;

namespace {

// One file: "ok", "corrupt" (with "block"), "no sums", "busy" (open for
// writing: its sums are being replaced) or "error" (with "error").
json VerifyFile(Context& c, const Inode& n, const std::string& path) {
  json j = {{"path", path}, {"tier", TierName(n.tier)}, {"bytes", n.size}};
  const ObjectCheck r = CheckObject(c, n, path, "verify");
  j["result"] = ObjectCheckName(r.result);
  if (r.result == ObjectCheck::Result::kCorrupt) {
    j["block"] = r.block;
    j["detail"] = r.detail;
  } else if (r.result == ObjectCheck::Result::kError) {
    j["error"] = r.detail;
  }
  return j;
}

}  // namespace

json ControlVerify(Context& c, const ControlInfo&, const json& req, const ControlPeer& peer) {
  if (peer.uid != 0)
    return ControlError(EPERM, "verify: only root may verify (it reads every file)");
  std::string path = "/";
  PathField(req, &path);
  Inode top;
  std::string clean;
  Status st = ResolveForPeer(c, path, peer, &top, &clean);
  if (!st.ok()) return ControlError(st.err(), "verify " + st.message());
  json files = json::array();
  std::map<std::string, uint64_t> counts;
  st = c.store().WalkBelow(top.ino, clean, [&](const Store::TreeEntry& e) {
    if (!e.inode->is_reg() || e.inode->nlink == 0) return Status::Ok();
    json f = VerifyFile(c, *e.inode, e.path);
    ++counts[f["result"].get<std::string>()];
    files.push_back(std::move(f));
    return Status::Ok();
  });
  if (!st.ok()) return ControlErrorOf(st);
  return {{"ok", true}, {"path", clean}, {"files", std::move(files)}, {"counts", counts}};
}

}  // namespace tierfs

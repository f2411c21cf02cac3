// The audit_files command of the control socket (fs/control_commands.h):
//   {"cmd":"audit_files"} -> {"ok":true,"journal":J,"head":H}
// The audit journal and the head of its hash chain on the HDD tier
// (meta/audit_verify.h), for `tierctl audit verify`, which reads and checks
// them itself. Root only: the journal names every user's files, and the
// paths are only useful to one who may read them.
#include "fs/context.h"
#include "fs/control_internal.h"
#include "meta/audit_verify.h"

namespace tierfs {

using nlohmann::json;

json ControlAuditFiles(Context& c, const ControlInfo& info, const json& /*req*/,
                       const ControlPeer& peer) {
  if (peer.uid != 0) return ControlError(EPERM, "audit_files: root only (the journal is root's)");
  return {{"ok", true},
          {"journal", info.state + "/audit.jsonl"},
          {"head", c.tier(TierId::kHdd).namespace_dir() + "/" + kAuditHeadName}};
}

}  // namespace tierfs

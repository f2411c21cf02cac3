// The control socket's commands (fs/control.h), answered from the mount's
// units without changing anything (this slice of tierctl is read-only):
//   {"cmd":"status"}            anyone: version, pid, start, mountpoint,
//                               policy file, watermarks in force, and per
//                               tier its path, capacity, used, free, files
//                               and bytes (one pass over the inodes)
//   {"cmd":"where","path":P}    P relative to the mount's root ("a/b" or
//                               "/a/b"): type, tier, size, generation,
//                               hold, moving, the object's path on its tier
//   policy-show, policy-dry-run, policy-reload: fs/control_policy.cc
//   audit: fs/control_audit.cc
//   {"cmd":"pin"|"unpin"|"move"|"move_status", ...}  manual holds and
//                               placement (fs/control_pins.cc: who may, and
//                               the fields)
// `where` resolves P in the store itself, never through the kernel: `..`
// that would leave the root is refused (EACCES), a symlink is never
// followed (one in the middle of P is ELOOP; one at the end is described
// itself), and, as stat(2) would, every directory on the way must grant
// the peer search permission (owner, group or other x bit; root passes).
// Times in replies are RFC 3339 UTC strings.
#pragma once

#include <spdlog/sinks/ringbuffer_sink.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "fs/control.h"
#include "meta/text_format.h"  // UtcSeconds, for every control command

namespace tierfs {

class Context;

// How many of the daemon's last warnings and errors `status` shows.
inline constexpr size_t kRecentErrors = 20;

struct ControlInfo {
  std::string mountpoint;
  std::string state;
  int64_t started_ns = 0;
  // The daemon's last warnings and errors (a sink of its logger; null when
  // the logger has none, as in tests that serve without main's logger).
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> recent_errors;
};

nlohmann::json HandleControl(Context& c, const ControlInfo& info, const nlohmann::json& request,
                             const ControlPeer& peer);

}  // namespace tierfs

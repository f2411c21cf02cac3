// The scrub of the HDD tier on the control socket (fs/scrub.h):
//   status's "scrub" object    the interval and bandwidth in force, when
//                              the next pass is due (null: none is, the
//                              scrub is off), the pass under way, and the
//                              last finished pass (files, bytes, corrupt,
//                              errors, skipped, seconds; null before one)
//   {"cmd":"scrub"}            root only: starts a pass now (the reply does
//                              not wait for it; status and the audit tell
//                              what it found)
#include "fs/context.h"
#include "fs/control_internal.h"

namespace tierfs {

using nlohmann::json;

json ScrubStatusOf(Context& c) {
  const Scrubber::Info s = c.scrubber().GetInfo();
  json j = {{"interval_s", s.interval_ns / 1000000000},
            {"bytes_per_second", s.bytes_per_sec},
            {"next", s.next_ns ? json(UtcSeconds(s.next_ns)) : json(nullptr)},
            {"running_since", s.running_ns ? json(UtcSeconds(s.running_ns)) : json(nullptr)},
            {"last", nullptr}};
  if (s.has_last)
    j["last"] = {{"started", UtcSeconds(s.last.started_ns)},
                 {"ended", UtcSeconds(s.last.ended_ns)},
                 {"files", s.last.files},
                 {"bytes", s.last.bytes},
                 {"corrupt", s.last.corrupt},
                 {"errors", s.last.errors},
                 {"skipped", s.last.skipped},
                 {"seconds", s.last.seconds()}};
  return j;
}

json ControlScrub(Context& c, const ControlInfo&, const json&, const ControlPeer& peer) {
  if (peer.uid != 0)
    return ControlError(EPERM, "scrub: only root may start a scrub pass (it reads every file)");
  if (!c.scrubber().GetInfo().started)
    return ControlError(ESHUTDOWN, "scrub: the scrub is not running (the mount is stopping)");
  c.scrubber().RequestPass();
  return {{"ok", true}, {"scrub", ScrubStatusOf(c)}};
}

}  // namespace tierfs

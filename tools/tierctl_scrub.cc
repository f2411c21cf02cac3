// tierctl scrub [PATH...] and the scrub line of tierctl status
// (tools/tierctl.h): the background scrub of the HDD tier (fs/scrub.h).
#include <iostream>

#include "tools/tierctl.h"

namespace tierctl {

std::string ScrubText(const json& s, const Flags& f) {
  if (!s.is_object()) return "-";
  std::string out;
  if (s.contains("last") && s["last"].is_object()) {
    const json& l = s["last"];
    out = "last pass " + Date(l["ended"]) + ": " + Text(l["files"]) + " files, " +
          Size(l["bytes"], f) + ", " + Text(l["corrupt"]) + " corrupt";
    if (l.value("errors", uint64_t(0)) > 0) out += ", " + Text(l["errors"]) + " unreadable";
  } else {
    out = "no pass yet";
  }
  if (s["running_since"].is_string()) out += "; a pass running since " + Date(s["running_since"]);
  if (s["next"].is_string())
    out += "; next due " + Date(s["next"]);
  else if (!s["running_since"].is_string())
    out += "; off (interval 0 in the policy)";
  return out;
}

int CmdScrub(const std::vector<std::string>& args, const Flags& f) {
  return AskEachMount("scrub", args, f, [&](const std::string&, const std::string& root, json&) {
    if (!f.json) std::cout << root << ": scrub pass started (tierctl status shows what it finds)\n";
    return 0;
  });
}

}  // namespace tierctl

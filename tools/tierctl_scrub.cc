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
  std::vector<std::string> paths = args;
  if (paths.empty()) {  // the mount of the working directory
    std::string root, rel, err;
    if (!FindMount(".", &root, &rel, &err)) {
      std::cerr << "tierctl: scrub " << err << "\n";
      return 1;
    }
    paths.push_back(root);
  }
  Clients clients;
  json all = json::array();
  int rc = 0;
  for (const std::string& p : paths) {
    std::string root, err;
    json reply;
    if (!clients.AskAbout(p, {{"cmd", "scrub"}}, &reply, &root, &err)) {
      std::cerr << "tierctl: scrub " << err << "\n";
      rc = 1;
      continue;
    }
    reply.erase("ok");
    reply["mountpoint"] = root;
    if (!f.json) std::cout << root << ": scrub pass started (tierctl status shows what it finds)\n";
    all.push_back(std::move(reply));
  }
  if (f.json) std::cout << all.dump(2) << "\n";
  return rc;
}

}  // namespace tierctl

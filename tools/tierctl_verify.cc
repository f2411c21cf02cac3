// tierctl verify [PATH...] (tools/tierctl.h): re-reads and checks the
// objects of every file below PATH against their block checksums.
#include <iostream>

#include "tools/tierctl.h"

namespace tierctl {

namespace {

int Refused(const std::string& err) {
  std::cerr << "tierctl: verify " << err << "\n";
  return 1;
}

}  // namespace

int CmdVerify(const std::vector<std::string>& args, const Flags& f) {
  std::vector<std::string> paths = args;
  if (paths.empty()) {  // the mount of the working directory
    std::string root, rel, err;
    if (!FindMount(".", &root, &rel, &err)) return Refused(err);
    paths.push_back(root);
  }
  Clients clients;
  json all = json::array();
  int rc = 0;
  for (const std::string& p : paths) {
    std::string root, err;
    json reply;
    if (!clients.AskAbout(p, {{"cmd", "verify"}}, &reply, &root, &err)) {
      rc = Refused(err);
      continue;
    }
    for (const json& file : reply["files"]) {
      const std::string result = Text(file["result"]);
      if (result == "corrupt" || result == "error") rc = 1;
      if (f.json) continue;
      std::cout << root << Text(file["path"]) << ": " << result;
      if (result == "corrupt")
        std::cout << " at block " << Text(file["block"]) << " (" << Text(file["detail"]) << ")";
      if (result == "error") std::cout << " (" << Text(file["error"]) << ")";
      std::cout << "\n";
    }
    reply.erase("ok");
    reply["mountpoint"] = root;
    all.push_back(std::move(reply));
  }
  if (f.json) std::cout << all.dump(2) << "\n";
  return rc;
}

}  // namespace tierctl

// tierctl verify [PATH...] (tools/tierctl.h): re-reads and checks the
// objects of every file below PATH against their block checksums.
#include <iostream>

#include "tools/tierctl.h"

namespace tierctl {

int CmdVerify(const std::vector<std::string>& args, const Flags& f) {
  return AskEachMount("verify", args, f,
                      [&](const std::string&, const std::string& root, json& reply) {
                        int rc = 0;
                        for (const json& file : reply["files"]) {
                          const std::string result = Text(file["result"]);
                          if (result == "corrupt" || result == "error") rc = 1;
                          if (f.json) continue;
                          std::cout << ShownBytes(root + Text(file["path"])) << ": " << result;
                          if (result == "corrupt")
                            std::cout << " at block " << Text(file["block"]) << " ("
                                      << ShownBytes(Text(file["detail"])) << ")";
                          if (result == "error")
                            std::cout << " (" << ShownBytes(Text(file["error"])) << ")";
                          std::cout << "\n";
                        }
                        return rc;
                      });
}

}  // namespace tierctl

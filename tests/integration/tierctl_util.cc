#include "tests/integration/tierctl_util.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <gtest/gtest.h>

namespace tierfs_test {

std::string TierctlBin() {
  const char* b = getenv("TIERCTL_BIN");
  if (b != nullptr && *b != '\0') return b;
  const std::string fs = TierfsBin();
  return fs.substr(0, fs.find_last_of('/') + 1) + "tierctl";
}

CommandResult Tierctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {TierctlBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, 60);
}

std::string TierctlForOthers(const std::string& dir) {
  const std::string bin = dir + "/tierctl";
  if (access(bin.c_str(), X_OK) != 0) {
    EXPECT_EQ(0, RunCommand({"cp", TierctlBin(), bin}, 30).exit_code) << bin;
    EXPECT_EQ(0, chmod(bin.c_str(), 0755)) << bin;
  }
  return bin;
}

int TierctlAs(const Creds& creds, const std::string& bin, const std::string& args,
              std::string* out) {
  out->clear();
  return RunAs(
      creds,
      [&](std::string* o) {
        FILE* p = popen((bin + " " + args + " 2>&1").c_str(), "r");
        if (!p) return -1;
        char buf[4096];
        for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) o->append(buf, n);
        const int status = pclose(p);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      },
      out);
}

}  // namespace tierfs_test

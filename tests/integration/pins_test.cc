// Manual placement and holds on a live mount: a manual move (setxattr
// user.tierfs.tier, tierctl move) stays where it was put, scan after scan;
// tierctl pin/unpin as root, as an owner and as a stranger; immutable pins.
// One mount per fixture; the policy scans every second, and a canary file a
// rule moves proves that a scan has run since (no sleeps).
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

using nlohmann::json;

std::string TierctlBin() {
  const char* b = getenv("TIERCTL_BIN");
  if (b != nullptr && *b != '\0') return b;
  const std::string fs = TierfsBin();
  return fs.substr(0, fs.find_last_of('/') + 1) + "tierctl";
}

// /hot goes to the SSD tier, /cold to the HDD tier, /junk is thinned.
class PinsTest : public MountTest {
 protected:
  static std::string PolicyPath() { return "/tmp/tierfs-pins-test.toml"; }
  PinsTest() : MountTest(WithPolicy()) {}
  static MountOptions WithPolicy() {
    std::ofstream(PolicyPath()) << "[[rule]]\nname = \"hot-to-ssd\"\npath = \"/hot/**\"\n"
                                   "action = \"migrate\"\nto = \"ssd\"\n"
                                   "[[rule]]\nname = \"cold-to-hdd\"\npath = \"/cold/**\"\n"
                                   "action = \"migrate\"\nto = \"hdd\"\n"
                                   "[[rule]]\nname = \"wipe-junk\"\npath = \"/junk/*\"\n"
                                   "action = \"thin\"\n";
    MountOptions o;
    o.extra_args = {"--policy", PolicyPath(), "--scan-interval", "1"};
    return o;
  }
  ~PinsTest() override { unlink(PolicyPath().c_str()); }
  void SetUp() override {
    MountTest::SetUp();
    for (const char* d : {"hot", "cold", "junk"}) ASSERT_EQ(0, Err(mkdir(P(d).c_str(), 0777)));
  }

  // Waits until a policy scan has run from start to end after this call:
  // a new canary under /cold reaches the HDD tier in the scan that sees it,
  // which is also a scan that judged everything else.
  void WaitForScan() {
    const std::string canary = P("cold/canary-" + std::to_string(++canaries_));
    ASSERT_EQ(0, WriteFile(canary, "c"));
    ASSERT_TRUE(WaitFor([&] { return GetTier(canary) == "hdd"; }, 30)) << fs_.Log();
  }

  CommandResult Tierctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {TierctlBin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, 60);
  }

  int canaries_ = 0;
};

TEST_F(PinsTest, SetxattrMoveSurvivesAPolicyScan) {
  const std::string f = P("hot/model.bin");
  ASSERT_EQ(0, WriteFile(f, Pattern(100000, 1)));
  ASSERT_EQ(0, SetTier(f, "hdd")) << fs_.Log();
  ASSERT_EQ("hdd", GetTier(f));
  WaitForScan();
  WaitForScan();
  EXPECT_EQ("hdd", GetTier(f)) << fs_.Log();
}

}  // namespace
}  // namespace tierfs_test

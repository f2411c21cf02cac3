// A pointer file ("latest") whose object cannot be read: the policy scan
// fails and says why, instead of judging the series by empty content.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/tier_fault_util.h"

namespace tierfs_test {
namespace {

class PointerFaultTest : public MountTest {
 protected:
  PointerFaultTest() : MountTest(Fast()) {}
  static MountOptions Fast() {
    MountOptions o;
    o.extra_args = {"--scan-interval", "1"};
    return o;
  }
};

TEST_F(PointerFaultTest, UnreadablePointerFailsTheScan) {
  ASSERT_EQ(0, Err(mkdir(P("ds").c_str(), 0755)));
  for (int step = 10; step <= 60; step += 10) {
    const std::string d = P("ds/global_step" + std::to_string(step));
    ASSERT_EQ(0, Err(mkdir(d.c_str(), 0755)));
    ASSERT_EQ(0, WriteFile(d + "/mp_rank_00_model_states.pt", Pattern(4096, step)));
  }
  ASSERT_EQ(0, WriteFile(P("ds/latest"), "global_step50"));
  // What the built-in policy does with a readable pointer: 20 goes.
  ASSERT_TRUE(WaitFor([&] { return ListDir(P("ds")).size() == 5; }, 20)) << fs_.Log();
  const std::string obj = ObjectPath(fs_.ssd(), Ino(P("ds/latest")));
  const std::vector<std::string> before = ListDir(P("ds"));
  ASSERT_TRUE(fs_.Unmount());
  // A directory in the object's place: opening works, reading fails (EISDIR).
  ASSERT_EQ(0, unlink(obj.c_str()));
  ASSERT_EQ(0, mkdir(obj.c_str(), 0700));
  ASSERT_TRUE(fs_.Mount());
  EXPECT_TRUE(
      WaitFor([&] { return fs_.Log().find("read pointer file " + obj) != std::string::npos; }, 20))
      << "the unreadable pointer was not reported";
  EXPECT_EQ(before, ListDir(P("ds")));
  ASSERT_TRUE(fs_.Unmount());
  ASSERT_EQ(0, rmdir(obj.c_str()));
}

}  // namespace
}  // namespace tierfs_test

// A full LMDB state (a small --map-size): creates fail with ENOSPC, unlink
// still works and frees room, and nothing made before is lost.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

class StateFullTest : public MountTest {
 protected:
  StateFullTest() : MountTest(Options()) {}
  static MountOptions Options() {
    MountOptions o;
    o.extra_args = {"--map-size", "1048576"};
    return o;
  }
  // Creates empty files with long names until a create fails; their count,
  // and the errno of the failure in `err`.
  int Fill(int* err) {
    const std::string pad(200, 'x');
    for (int i = 0; i < 20000; ++i) {
      const std::string name = P("fill/" + std::to_string(i) + pad);
      int fd = open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0) {
        *err = errno;
        return i;
      }
      close(fd);
    }
    *err = 0;
    return 20000;
  }
  std::string FillName(int i) const {
    return P("fill/" + std::to_string(i) + std::string(200, 'x'));
  }
};

TEST_F(StateFullTest, CreatesFailWithEnospcUnlinkWorksAndNothingIsLost) {
  const std::string a = Pattern(100000, 1), b = Pattern(5000, 2);
  ASSERT_EQ(0, WriteFile(P("a"), a));
  ASSERT_EQ(0, WriteFile(P("b"), b));
  ASSERT_EQ(0, Err(mkdir(P("fill").c_str(), 0755)));
  int err = 0;
  const int made = Fill(&err);
  ASSERT_EQ(ENOSPC, err) << "after " << made << " files";
  ASSERT_GT(made, 10);
  // Other growth is refused the same way, and the daemon says why.
  EXPECT_EQ(ENOSPC, Err(mkdir(P("d").c_str(), 0755)));
  EXPECT_NE(std::string::npos, fs_.Log().find("the LMDB state in")) << fs_.Log();
  // Removing works while full (every removal, not just the first few), and
  // frees room for creates again.
  for (int i = 0; i < made; ++i) ASSERT_EQ(0, Err(unlink(FillName(i).c_str()))) << i;
  ASSERT_EQ(0, Err(unlink(P("b").c_str())));
  ASSERT_EQ(0, WriteFile(P("c"), "after"));
  Remount();
  std::string got;
  ASSERT_EQ(0, ReadFile(P("a"), &got));
  EXPECT_TRUE(got == a);
  EXPECT_EQ(ENOENT, ReadFile(P("b"), &got));
  ASSERT_EQ(0, ReadFile(P("c"), &got));
  EXPECT_EQ("after", got);
  EXPECT_TRUE(ListDir(P("fill")).empty());
}

}  // namespace
}  // namespace tierfs_test

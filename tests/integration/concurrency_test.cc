// Namespace operations from several threads at once, as many ranks of a
// training job would issue them; the result must equal a serial execution.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

constexpr int kThreads = 4;

class ConcurrencyTest : public MountTest {
 protected:
  // Runs fn(t) on kThreads threads; each returns 0 or an error description.
  void RunThreads(const std::function<std::string(int)>& fn) {
    std::vector<std::string> errs(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) threads.emplace_back([&, t] { errs[t] = fn(t); });
    for (auto& th : threads) th.join();
    for (int t = 0; t < kThreads; t++) EXPECT_EQ("", errs[t]) << "thread " << t;
  }
  nlink_t Nlink(const std::string& rel) {
    struct stat st {};
    return lstat(P(rel).c_str(), &st) == 0 ? st.st_nlink : 0;
  }
};

std::string Fail(const std::string& what, int err) {
  return what + ": " + strerror(err);
}

TEST_F(ConcurrencyTest, CreateRenameUnlinkInSharedDirectories) {
  ASSERT_EQ(0, mkdir(P("a").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("b").c_str(), 0755));
  std::atomic<bool> done{false};
  std::atomic<int> list_errors{0};
  std::thread lister([&] {
    while (!done) {
      if (access(P("a").c_str(), F_OK) != 0) list_errors++;
      ListDir(P("a"));
      ListDir(P("b"));
    }
  });
  RunThreads([&](int t) -> std::string {
    for (int i = 0; i < 150; i++) {
      std::string n = std::to_string(t) + "_" + std::to_string(i);
      if (int e = WriteFile(P("a/tmp" + n), n)) return Fail("create " + n, e);
      if (rename(P("a/tmp" + n).c_str(), P("b/f" + n).c_str()) != 0) {
        return Fail("rename " + n, errno);
      }
      if (i % 2 == 1 && unlink(P("b/f" + n).c_str()) != 0) return Fail("unlink " + n, errno);
    }
    return "";
  });
  done = true;
  lister.join();
  EXPECT_EQ(0, list_errors.load());
  std::set<std::string> want;
  for (int t = 0; t < kThreads; t++)
    for (int i = 0; i < 150; i += 2) want.insert("f" + std::to_string(t) + "_" + std::to_string(i));
  for (int pass = 0; pass < 2; pass++) {
    EXPECT_TRUE(ListDir(P("a")).empty());
    std::vector<std::string> got = ListDir(P("b"));
    EXPECT_EQ(want, std::set<std::string>(got.begin(), got.end()));
    EXPECT_EQ(want.size(), got.size());
    std::string data;
    ASSERT_EQ(0, ReadFile(P("b/f3_148"), &data));
    EXPECT_EQ("3_148", data);
    if (pass == 0) Remount();
  }
}

TEST_F(ConcurrencyTest, LinkUnlinkOfOneInode) {
  ASSERT_EQ(0, WriteFile(P("base"), "base"));
  RunThreads([&](int t) -> std::string {
    for (int i = 0; i < 100; i++) {
      std::string l = P("l" + std::to_string(t) + "_" + std::to_string(i));
      if (link(P("base").c_str(), l.c_str()) != 0) return Fail("link", errno);
      if (i % 10 != 0 && unlink(l.c_str()) != 0) return Fail("unlink", errno);
    }
    return "";
  });
  nlink_t want = 1 + kThreads * 10;
  EXPECT_EQ(want, Nlink("base"));
  EXPECT_EQ(want, Nlink("l2_90"));
  Remount();
  EXPECT_EQ(want, Nlink("base"));
  EXPECT_EQ(static_cast<size_t>(want), ListDir(fs_.mnt()).size());
}

TEST_F(ConcurrencyTest, MkdirRmdirKeepsParentLinkCount) {
  ASSERT_EQ(0, mkdir(P("p").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("q").c_str(), 0755));
  RunThreads([&](int t) -> std::string {
    for (int i = 0; i < 100; i++) {
      std::string d = "p/d" + std::to_string(t) + "_" + std::to_string(i);
      if (mkdir(P(d).c_str(), 0755) != 0) return Fail("mkdir " + d, errno);
      if (i % 3 == 0) {
        if (rmdir(P(d).c_str()) != 0) return Fail("rmdir " + d, errno);
      } else if (i % 3 == 1) {
        std::string to = "q/d" + std::to_string(t) + "_" + std::to_string(i);
        if (rename(P(d).c_str(), P(to).c_str()) != 0) return Fail("rename " + d, errno);
      }
    }
    return "";
  });
  // Per thread: 33 directories stay in p, 33 moved to q, 34 removed.
  EXPECT_EQ(2u + kThreads * 33, Nlink("p"));
  EXPECT_EQ(2u + kThreads * 33, Nlink("q"));
  Remount();
  EXPECT_EQ(2u + kThreads * 33, Nlink("p"));
  EXPECT_EQ(2u + kThreads * 33, Nlink("q"));
  EXPECT_EQ(static_cast<size_t>(kThreads * 33), ListDir(P("q")).size());
}

}  // namespace
}  // namespace tierfs_test

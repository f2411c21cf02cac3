// A directory move by setxattr and the policy engine thinning inside that
// directory at the same time. The kernel holds the directory's inode lock
// for the whole setxattr request, and its side of a delete notification
// takes the parent's lock, uninterruptibly: a thin that notified while the
// move ran waited for the whole move, and a kill -9 then never ended the
// daemon (its connection stayed open, the mount hung). The engine defers
// such a thin to its next scan instead (Context::RemovePath).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

constexpr char kNoRules[] = "# no rules yet\n";
constexpr char kThinOld[] = R"(# keep the newest generation
[[series]]
name = "ckpt"
pattern = "run/checkpoint-{gen}"
kind = "dir"
complete = "rename"
[[rule]]
name = "thin-old"
series = "*"
older_than_newest = 1
action = "thin"
)";

void WritePolicy(const std::string& path, const char* text) {
  std::ofstream(path + ".new") << text;
  ASSERT_EQ(0, Err(rename((path + ".new").c_str(), path.c_str())));
}

void WriteGeneration(TierfsMount& fs, int gen) {
  const std::string tmp = fs.path("run/tmp-checkpoint-" + std::to_string(gen));
  ASSERT_EQ(0, Err(mkdir(tmp.c_str(), 0755)));
  ASSERT_EQ(0, WriteFile(tmp + "/trainer_state.json", "{\"global_step\": 1}"));
  ASSERT_EQ(0, Err(rename(tmp.c_str(), fs.path("run/checkpoint-" + std::to_string(gen)).c_str())));
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// The move of run/ (24 MiB at 1 MiB/s) is still running when the policy
// wants checkpoint-1 gone: the thin is deferred (logged, not audited as a
// failure), a kill -9 during the move ends the daemon at once, and after a
// remount the next scan thins the generation.
TEST(TreeMoveLockTest, ThinDuringADirectoryMoveIsDeferredAndAKillEndsTheDaemon) {
  TierfsMount fs;
  const std::string policy = fs.root() + "/policy.toml";
  WritePolicy(policy, kNoRules);
  fs.options().extra_args = {"--policy",         policy, "--scan-interval", "3600",
                             "--move-bandwidth", "1",    "--max-moves",     "1"};
  ASSERT_TRUE(fs.Mount());
  ASSERT_EQ(0, Err(mkdir(fs.path("run").c_str(), 0755)));
  WriteGeneration(fs, 1);
  WriteGeneration(fs, 2);
  ASSERT_EQ(0, WriteFile(fs.path("run/big"), Pattern(24 << 20, 7)));
  ASSERT_EQ(0, RunCommand({"sync", "-f", fs.path("run")}, 30).exit_code);

  std::atomic<bool> move_returned{false};
  std::thread mover([&] {
    SetTier(fs.path("run"), "hdd");  // ends with the kill below
    move_returned = true;
  });
  // The move has started once its first file shows "moving".
  ASSERT_TRUE(WaitFor([&] { return GetTier(fs.path("run/big")) == "moving"; }, 30)) << fs.Log();
  WritePolicy(policy, kThinOld);
  ASSERT_EQ(0, kill(fs.pid(), SIGHUP));  // reload, then a scan
  EXPECT_TRUE(WaitFor([&] { return fs.Log().find("deferred:") != std::string::npos; }, 8))
      << "the thin of run/checkpoint-1 should be deferred while run/ moves\n"
      << fs.Log();
  EXPECT_FALSE(move_returned) << "the move ended before the kill: the test proves nothing";
  EXPECT_TRUE(fs.Kill9()) << "a thread of the daemon stayed in the kernel after SIGKILL";
  mover.join();

  ASSERT_TRUE(fs.Mount()) << "the mount must come back after the kill";
  ASSERT_EQ(0, kill(fs.pid(), SIGHUP));  // a scan now, not in an hour
  EXPECT_TRUE(WaitFor([&] { return !Exists(fs.path("run/checkpoint-1")); }, 30))
      << "the deferred thin must happen at a later scan\n"
      << fs.Log();
  EXPECT_TRUE(Exists(fs.path("run/checkpoint-2")));
  std::string data;
  EXPECT_EQ(0, ReadFile(fs.path("run/big"), &data));
  EXPECT_TRUE(data == Pattern(24 << 20, 7)) << "run/big changed across the killed move";
  std::string audit;
  ReadFile(fs.ssd() + "/state/audit.jsonl", &audit);
  EXPECT_EQ(std::string::npos, audit.find("deferred:")) << "a deferral is no refusal\n" << audit;
  EXPECT_TRUE(fs.Unmount());
}

// The same lock held by another request: with the writeback cache the
// kernel holds a file's lock while an O_TRUNC open of it runs, and opening
// an HDD-resident file for writing first brings it back to SSD, which waits
// for a move slot while a tree move (--max-moves 1) holds it. A thin of the
// file's generation meanwhile is deferred too.
TEST(TreeMoveLockTest, ThinDuringAPromotingOpenIsDeferredAndAKillEndsTheDaemon) {
  TierfsMount fs;
  const std::string policy = fs.root() + "/policy.toml";
  WritePolicy(policy, kNoRules);
  fs.options().extra_args = {"--policy",         policy, "--scan-interval", "3600",
                             "--move-bandwidth", "1",    "--max-moves",     "1",
                             "--writeback-cache"};
  ASSERT_TRUE(fs.Mount());
  ASSERT_EQ(0, Err(mkdir(fs.path("run").c_str(), 0755)));
  WriteGeneration(fs, 1);
  WriteGeneration(fs, 2);
  const std::string victim = fs.path("run/checkpoint-1/trainer_state.json");
  ASSERT_TRUE(WaitFor([&] { return SetTier(victim, "hdd") != EBUSY; }, 10));
  ASSERT_EQ("hdd", GetTier(victim));
  ASSERT_EQ(0, Err(mkdir(fs.path("big").c_str(), 0755)));
  ASSERT_EQ(0, WriteFile(fs.path("big/f"), Pattern(24 << 20, 9)));
  ASSERT_EQ(0, RunCommand({"sync", "-f", fs.path("big")}, 30).exit_code);

  std::atomic<bool> move_returned{false};
  std::thread mover([&] {
    SetTier(fs.path("big"), "hdd");  // holds the only move slot until the kill
    move_returned = true;
  });
  ASSERT_TRUE(WaitFor([&] { return GetTier(fs.path("big/f")) == "moving"; }, 30)) << fs.Log();
  std::thread opener([&] {
    const int fd = open(victim.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd >= 0) close(fd);
  });
  // The promotion waits for a slot: the file shows "moving" meanwhile.
  EXPECT_TRUE(WaitFor([&] { return GetTier(victim) == "moving"; }, 10)) << fs.Log();
  WritePolicy(policy, kThinOld);
  ASSERT_EQ(0, kill(fs.pid(), SIGHUP));
  EXPECT_TRUE(WaitFor([&] { return fs.Log().find("deferred:") != std::string::npos; }, 8))
      << "the thin of run/checkpoint-1 should be deferred while its file is being opened\n"
      << fs.Log();
  EXPECT_FALSE(move_returned) << "the move ended before the kill: the test proves nothing";
  EXPECT_TRUE(fs.Kill9()) << "a thread of the daemon stayed in the kernel after SIGKILL";
  mover.join();
  opener.join();

  ASSERT_TRUE(fs.Mount()) << "the mount must come back after the kill";
  ASSERT_EQ(0, kill(fs.pid(), SIGHUP));
  EXPECT_TRUE(WaitFor([&] { return !Exists(fs.path("run/checkpoint-1")); }, 30)) << fs.Log();
  std::string data;
  EXPECT_EQ(0, ReadFile(fs.path("big/f"), &data));
  EXPECT_TRUE(data == Pattern(24 << 20, 9)) << "big/f changed across the killed move";
  EXPECT_TRUE(fs.Unmount());
}

}  // namespace
}  // namespace tierfs_test

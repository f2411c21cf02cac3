// A thinning is journaled before anything goes (fs/policy_runner.cc Thin):
// while the audit journal cannot be written (its filesystem is full), the
// policy removes nothing, says why in the log, and thins once the journal
// takes records again. Before, the generations went and the log said
// "records not journaled": the compliance record missed them for good.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

class ThinAuditTest : public MountTest {
 protected:
  static std::string PolicyPath() { return TmpPolicyPath("thin-audit-test"); }
  // An 8 MiB tmpfs of its own for the state and its journal, so that
  // filling it fills nothing else (on the SSD tier, the evictor would free
  // room); a 4 MiB LMDB map, which tierfs allocates up front, so renames
  // keep working once that filesystem is full.
  static std::string StateFs() {
    return "/tmp/tierfs-thin-audit-state-" + std::to_string(getpid());
  }
  ThinAuditTest() : MountTest(Options()) {}
  static MountOptions Options() {
    std::ofstream(PolicyPath())
        << "[[series]]\nname = \"hf\"\npattern = \"**/checkpoint-{gen}\"\ncomplete = \"rename\"\n"
           "[[rule]]\nname = \"thin-old\"\nseries = \"hf\"\nolder_than_newest = 1\n"
           "action = \"thin\"\n";
    mkdir(StateFs().c_str(), 0700);
    RunCommand({"mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", StateFs()}, 10);
    MountOptions o;
    o.state_dir = StateFs() + "/state";
    o.extra_args = {"--policy", PolicyPath(), "--scan-interval", "1", "--map-size", "4194304"};
    return o;
  }
  void TearDown() override {
    fs_.Unmount();
    umount2(StateFs().c_str(), MNT_DETACH);
    rmdir(StateFs().c_str());
    unlink(PolicyPath().c_str());
  }
  std::set<std::string> Names(const std::string& dir) {
    const auto names = ListDir(dir);
    return {names.begin(), names.end()};
  }
  std::string Journal() { return SlurpFile(StateFs() + "/state/audit.jsonl"); }
};

TEST_F(ThinAuditTest, NothingIsThinnedWhileTheJournalCannotRecordIt) {
  ASSERT_EQ(0, Err(mkdir(P("run").c_str(), 0755)));
  for (int step : {100, 200, 300}) {
    const std::string tmp = P("run/tmp-" + std::to_string(step));
    ASSERT_EQ(0, Err(mkdir(tmp.c_str(), 0755)));
    ASSERT_EQ(0, WriteFile(tmp + "/model.bin", Pattern(4096, step)));
  }
  // Fill the state's filesystem: the journal's appends fail with ENOSPC.
  const std::string junk = StateFs() + "/junk";
  {
    const int fd = open(junk.c_str(), O_WRONLY | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    const std::string block(1 << 20, 'j');
    while (write(fd, block.data(), block.size()) > 0) {
    }
    const std::string small(512, 'j');
    while (write(fd, small.data(), small.size()) > 0) {
    }
    close(fd);
  }
  const std::string journal_before = Journal();
  for (int step : {100, 200, 300})
    ASSERT_EQ(0, Err(rename(P("run/tmp-" + std::to_string(step)).c_str(),
                            P("run/checkpoint-" + std::to_string(step)).c_str())))
        << step;
  const std::string why = "not thinned: its audit records cannot be written";
  EXPECT_TRUE(WaitFor(
      [&] { return fs_.Log().find(why) != std::string::npos || Names(P("run")).size() < 3; }, 30));
  EXPECT_NE(std::string::npos, fs_.Log().find(why)) << fs_.Log();
  std::this_thread::sleep_for(std::chrono::seconds(3));  // more scans
  EXPECT_EQ((std::set<std::string>{"checkpoint-100", "checkpoint-200", "checkpoint-300"}),
            Names(P("run")));
  EXPECT_EQ(journal_before, Journal());

  // Room again: the next scans thin, and the journal says so.
  ASSERT_EQ(0, unlink(junk.c_str()));
  ASSERT_TRUE(WaitFor([&] { return Names(P("run")).size() == 1; }, 30)) << fs_.Log();
  EXPECT_EQ(1u, Names(P("run")).count("checkpoint-300"));
  const std::string journal = Journal();
  for (int step : {100, 200})
    EXPECT_NE(std::string::npos,
              journal.find("\"path\":\"/run/checkpoint-" + std::to_string(step) + "/model.bin\""))
        << journal;
  std::string got;
  ASSERT_EQ(0, ReadFile(P("run/checkpoint-300/model.bin"), &got));
  EXPECT_TRUE(got == Pattern(4096, 300));
}

}  // namespace
}  // namespace tierfs_test

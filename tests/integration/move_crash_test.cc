// The crash campaign: kill -9 the daemon at random moments while files move
// between tiers (and are rewritten), remount, and check every file against
// the content it had when last fsynced. Fixed seeds, printed on failure.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

class MoveCrashTest : public MountTest {
 protected:
  // Slow moves (16 MiB/s), so that most kills land inside a copy.
  MoveCrashTest() : MountTest(Throttled()) {}
  static MountOptions Throttled() {
    MountOptions o;
    o.extra_args = {"--move-bandwidth", "16", "--max-moves", "4"};
    return o;
  }
};

int WriteSynced(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) return errno;
  int err = PwriteAll(fd, data.data(), data.size(), 0);
  if (err == 0 && fsync(fd) != 0) err = errno;
  close(fd);
  return err;
}

// TIERFS_MOVE_KILLS sets the number of kills (default 50): the ASan run
// does fewer, as each restart there costs several times as much.
TEST_F(MoveCrashTest, FiftyKillsDuringMovesLoseNothing) {
  constexpr int kFiles = 8;
  const char* kills_env = getenv("TIERFS_MOVE_KILLS");
  const int kKills = kills_env != nullptr && *kills_env != '\0' ? atoi(kills_env) : 50;
  ASSERT_GT(kKills, 0) << "TIERFS_MOVE_KILLS";
  const uint64_t seed = 20261125;
  std::mt19937_64 rng(seed);
  std::map<std::string, std::string> expect;
  for (int i = 0; i < kFiles; ++i) {
    const std::string name = "f" + std::to_string(i);
    expect[name] = Pattern((1 + rng() % 6) << 20, rng());
    ASSERT_EQ(0, WriteSynced(P(name), expect[name])) << "seed " << seed;
  }
  for (int kill = 0; kill < kKills; ++kill) {
    SCOPED_TRACE("seed " + std::to_string(seed) + ", kill " + std::to_string(kill));
    // Now and then a file gets new content first (fsynced, so it must win).
    if (rng() % 3 == 0) {
      const std::string name = "f" + std::to_string(rng() % kFiles);
      expect[name] = Pattern((1 + rng() % 6) << 20, rng());
      ASSERT_EQ(0, WriteSynced(P(name), expect[name]));
    }
    std::atomic<bool> stop{false};
    std::vector<std::thread> movers;
    for (int m = 0; m < 3; ++m) {
      const uint64_t s = rng();
      movers.emplace_back([&, s] {
        std::mt19937_64 r(s);
        while (!stop) {
          if (SetTier(P("f" + std::to_string(r() % kFiles)), r() % 2 ? "hdd" : "ssd") == ENOTCONN)
            return;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 400));
    fs_.Kill9();
    stop = true;
    for (auto& t : movers) t.join();
    ASSERT_TRUE(fs_.Mount());
    for (const auto& [name, data] : expect) {
      std::string got;
      ASSERT_EQ(0, ReadFile(P(name), &got)) << name;
      ASSERT_TRUE(got == data) << name << " lost its fsynced content (" << got.size() << " of "
                               << data.size() << " bytes)";
    }
  }
  // Nothing half-moved is left on either tier: no temporaries, and each
  // object exists exactly on the tier that serves it.
  for (const auto& [name, data] : expect) {
    const ino_t ino = Ino(P(name));
    const bool on_ssd = ObjectOn(fs_.ssd(), ino), on_hdd = ObjectOn(fs_.hdd(), ino);
    EXPECT_NE(on_ssd, on_hdd) << name;
    EXPECT_EQ(on_ssd ? "ssd" : "hdd", GetTier(P(name))) << name;
  }
  const auto r = RunCommand({"find", fs_.ssd(), fs_.hdd(), "-name", "*.moving"}, 30);
  EXPECT_EQ("", r.out) << "temporaries left behind";
  // The campaign means something only if kills did land inside moves.
  const std::string log = fs_.Log();
  int interrupted = 0;
  for (size_t at = 0; (at = log.find("interrupted by a crash", at)) != std::string::npos; ++at)
    interrupted++;
  EXPECT_GE(interrupted, kKills / 2) << "too few kills landed inside a move";
  std::printf("[ campaign ] %d of %d restarts settled interrupted moves\n", interrupted, kKills);
}

}  // namespace
}  // namespace tierfs_test

// The crash campaign: a seeded random workload (writes with fsync,
// overwrites, renames, unlinks, moves between tiers, checkpoint generations
// that the policy thins, policy reloads) is SIGKILLed at a random moment,
// the daemon is remounted on the same tiers and state, and everything is
// checked against a model of what was made durable:
//   - a file's bytes count once fsync(file) returned 0, its name once
//     fsync(parent dir) returned 0 (POSIX promises no more);
//   - only generations the policy may thin (at least kMinKeep newer complete
//     ones) may disappear; nothing outside the checkpoint series may;
//   - every object file on either tier belongs to a regular file placed on
//     that tier (no leaked objects or move temporaries), and every non-empty
//     regular file has its object.
// TIERFS_CRASH_KILLS sets the number of kills (default 12; `make
// crash-campaign` runs 200), TIERFS_CRASH_SEED the seed (printed).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/crash_model.h"
#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

constexpr int kThreads = 2;
constexpr int kDataDirs = 3;
constexpr size_t kMaxDataFiles = 40;  // per thread; beyond it unlinks win

uint64_t EnvU64(const char* name, uint64_t def) {
  const char* v = getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 0) : def;
}

// The policies the campaign runs. Both thin only generations with at least
// kMinKeep newer complete ones; the quiet one acts on nothing, so that the
// object check after a remount sees a namespace nobody else changes.
const char* kPolicyA = R"(# crash campaign A: keep 2 generations, older ones on HDD
[throttle]
move_bandwidth = "64MiB"
max_moves = 4
[[series]]
name = "ckpt"
pattern = "**/checkpoint-{gen}"
kind = "dir"
complete = "rename"
[[rule]]
name = "newest-on-ssd"
series = "*"
keep_last = 1
action = "migrate"
to = "ssd"
[[rule]]
name = "older-to-hdd"
series = "*"
older_than_newest = 1
action = "migrate"
to = "hdd"
[[rule]]
name = "thin-old"
series = "*"
older_than_newest = 2
action = "thin"
)";
const char* kPolicyB = R"(# crash campaign B: keep 3 after a short quiet period
[[series]]
name = "ckpt"
pattern = "**/checkpoint-{gen}"
kind = "dir"
complete = ["rename", "quiet:1s"]
[[rule]]
name = "older-to-hdd"
series = "*"
older_than_newest = 2
action = "migrate"
to = "hdd"
[[rule]]
name = "thin-old"
series = "*"
older_than_newest = 3
action = "thin"
[[rule]]
name = "cold-data-to-hdd"
in_series = false
path = "/w/*/d*/**"
older_than = "2s"
action = "migrate"
to = "hdd"
)";
const char* kPolicyQuiet = "# crash campaign: no rules while the tiers are checked\n";
constexpr int kMinKeep = 2;  // the fewest newer generations any policy above keeps

// Everything the workers share; the model under `mu`.
struct Shared {
  std::mutex mu;
  CrashModel model;
  std::atomic<bool> stop{false}, killed{false};
  std::vector<std::string> errors;  // failures not caused by the kill
  std::atomic<int> creates{0}, overwrites{0}, renames{0}, unlinks{0}, moves{0}, move_errors{0},
      generations{0};
};

int FsyncPath(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int e = fsync(fd) == 0 ? 0 : errno;
  close(fd);
  return e;
}

// Writes `data` into `path` (created or truncated) and fsyncs it.
int WriteAndFsync(const std::string& path, const std::string& data, bool create) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_EXCL : O_TRUNC), 0644);
  if (fd < 0) return errno;
  int e = PwriteAll(fd, data.data(), data.size(), 0);
  if (e == 0 && fsync(fd) != 0) e = errno;
  close(fd);
  return e;
}

std::string Parent(const std::string& rel) {
  return rel.substr(0, rel.rfind('/'));
}

// One workload thread: owns w/t<id>/ and the model files it made there.
class Worker {
 public:
  // Generations are numbered from `first_gen` on.
  Worker(TierfsMount& fs, Shared& sh, int id, uint64_t seed, int cycle, int first_gen)
      : fs_(fs), sh_(sh), id_(id), rng_(seed), cycle_(cycle), next_gen_(first_gen) {}
  // The number the next generation would get (the next cycle starts there).
  int next_gen() const { return next_gen_; }

  void Run() {
    while (!sh_.stop) {
      const int op = int(rng_() % 100);
      if (op < 30) {
        Create();
      } else if (op < 40) {
        Overwrite();
      } else if (op < 52) {
        Rename();
      } else if (op < 60) {
        Unlink();
      } else if (op < 80) {
        Move();
      } else {
        Checkpoint();
      }
    }
  }

 private:
  std::string Home() const { return "w/t" + std::to_string(id_); }
  std::string P(const std::string& rel) const { return fs_.path(rel); }
  std::string Ctx(const std::string& what) const {
    return "cycle " + std::to_string(cycle_) + " t" + std::to_string(id_) + ": " + what;
  }
  // True if `err` is 0. Otherwise records a failure unless the daemon was
  // killed (then the state of the operation is unknown, as the model allows).
  bool Ok(int err, const std::string& what) {
    if (err == 0) return true;
    if (!sh_.killed) {
      std::lock_guard<std::mutex> l(sh_.mu);
      sh_.errors.push_back(Ctx(what) + ": " + strerror(err));
    }
    return false;
  }
  std::string RandomData() {
    const int r = int(rng_() % 100);
    const size_t len = r < 70   ? 1 + rng_() % (64 << 10)
                       : r < 95 ? (64 << 10) + rng_() % (960 << 10)
                                : (1 << 20) + rng_() % (3 << 20);
    return Pattern(len, rng_());
  }
  std::string DataDir() { return Home() + "/d" + std::to_string(rng_() % kDataDirs); }
  // A random data file of this thread, or 0.
  uint64_t PickData() {
    std::lock_guard<std::mutex> l(sh_.mu);
    return sh_.model.Pick(id_, rng_());
  }

  void Create() {
    size_t count;
    {
      std::lock_guard<std::mutex> l(sh_.mu);
      count = sh_.model.DataCount(id_);
    }
    if (count >= kMaxDataFiles) return Unlink();
    const std::string rel = DataDir() + "/f" + std::to_string(rng_());
    const std::string data = RandomData();
    if (!Ok(WriteAndFsync(P(rel), data, true), "create " + rel)) return;
    if (!Ok(FsyncPath(P(Parent(rel))), "fsync dir of " + rel)) return;
    std::lock_guard<std::mutex> l(sh_.mu);
    sh_.model.Add(id_, rel, data, Ctx("created " + rel));
    sh_.creates++;
  }

  void Overwrite() {
    const uint64_t f = PickData();
    if (f == 0) return Create();
    const std::string data = RandomData();
    std::string rel;
    {
      std::lock_guard<std::mutex> l(sh_.mu);
      rel = sh_.model.BeginOverwrite(f, Ctx("overwriting"));
    }
    if (!Ok(WriteAndFsync(P(rel), data, false), "overwrite " + rel)) return;
    std::lock_guard<std::mutex> l(sh_.mu);
    sh_.model.EndOverwrite(f, data, Ctx("overwrote, fsync ok"));
    sh_.overwrites++;
  }

  void Rename() {
    const uint64_t f = PickData();
    if (f == 0) return Create();
    const std::string to = DataDir() + "/r" + std::to_string(rng_());
    std::string from;
    {
      std::lock_guard<std::mutex> l(sh_.mu);
      from = sh_.model.BeginRename(f, to, Ctx("renaming to " + to));
    }
    if (!Ok(Err(rename(P(from).c_str(), P(to).c_str())), "rename " + from + " " + to)) return;
    if (!Ok(FsyncPath(P(Parent(from))), "fsync dir of " + from)) return;
    if (!Ok(FsyncPath(P(Parent(to))), "fsync dir of " + to)) return;
    std::lock_guard<std::mutex> l(sh_.mu);
    sh_.model.EndRename(f, to, Ctx("renamed, dirs fsynced"));
    sh_.renames++;
  }

  void Unlink() {
    const uint64_t f = PickData();
    if (f == 0) return;
    std::string rel;
    {
      std::lock_guard<std::mutex> l(sh_.mu);
      rel = sh_.model.Forget(f);  // from here on it may or may not exist
    }
    if (Ok(Err(unlink(P(rel).c_str())), "unlink " + rel)) sh_.unlinks++;
  }

  // setfattr user.tierfs.tier on a file or a directory of this thread.
  void Move() {
    std::string rel;
    const int r = int(rng_() % 10);
    if (r < 5) {
      std::lock_guard<std::mutex> l(sh_.mu);
      rel = sh_.model.PickAny(id_, rng_());
    }
    // Tree moves of directories that hold generations while the policy
    // thins them: the thin waits for the move (Context::RemovePath), and a
    // kill during such a move must still end the daemon.
    if (rel.empty()) rel = r < 8 ? DataDir() : r < 9 ? Home() + "/run" : Home();
    const int e = SetTier(P(rel), rng_() % 2 ? "hdd" : "ssd");
    // A move may be refused (the file is being thinned, moved or written);
    // only a dead mount ends the worker.
    if (e == 0) {
      sh_.moves++;
    } else if (!sh_.killed) {
      sh_.move_errors++;
    }
  }

  // Hugging Face style: tmp-checkpoint-G/, files fsynced, renamed into place.
  void Checkpoint() {
    const int gen = next_gen_++;
    const std::string run = Home() + "/run";
    const std::string tmp = run + "/tmp-checkpoint-" + std::to_string(gen);
    const std::string fin = run + "/checkpoint-" + std::to_string(gen);
    if (!Ok(Err(mkdir(P(tmp).c_str(), 0755)), "mkdir " + tmp)) return;
    std::vector<std::pair<std::string, std::string>> files = {
        {"model.safetensors", Pattern((128 << 10) + rng_() % (1400 << 10), rng_())},
        {"trainer_state.json", "{\"global_step\": " + std::to_string(gen) + "}"}};
    for (const auto& [name, data] : files)
      if (!Ok(WriteAndFsync(P(tmp + "/" + name), data, true), "write " + tmp + "/" + name)) return;
    if (!Ok(FsyncPath(P(tmp)), "fsync " + tmp) || !Ok(FsyncPath(P(run)), "fsync " + run)) return;
    std::vector<uint64_t> ids;
    {
      std::lock_guard<std::mutex> l(sh_.mu);
      for (const auto& [name, data] : files)
        ids.push_back(sh_.model.AddGeneration(id_, run, gen, tmp + "/" + name, data,
                                              Ctx("written in " + tmp)));
      for (size_t i = 0; i < files.size(); i++)
        sh_.model.BeginRename(ids[i], fin + "/" + files[i].first, Ctx("renaming to " + fin));
    }
    if (!Ok(Err(rename(P(tmp).c_str(), P(fin).c_str())), "rename " + tmp)) return;
    if (!Ok(FsyncPath(P(run)), "fsync " + run)) return;
    std::lock_guard<std::mutex> l(sh_.mu);
    for (size_t i = 0; i < files.size(); i++)
      sh_.model.EndRename(ids[i], fin + "/" + files[i].first, Ctx("renamed to " + fin));
    sh_.model.Renamed(run, gen);
    sh_.generations++;
  }

  TierfsMount& fs_;
  Shared& sh_;
  const int id_;
  std::mt19937_64 rng_;
  const int cycle_;
  int next_gen_;
};

// Writes a policy file the way an operator would: a new file renamed over.
void WritePolicy(const std::string& path, const char* text) {
  std::ofstream(path + ".new") << text;
  ASSERT_EQ(0, Err(rename((path + ".new").c_str(), path.c_str())));
}

TEST(CrashCampaign, KillsAtRandomMomentsLoseNothingFsyncedAndLeakNoObject) {
  const uint64_t seed = EnvU64("TIERFS_CRASH_SEED", std::random_device{}());
  const int kills = int(EnvU64("TIERFS_CRASH_KILLS", 12));
  std::printf("[ campaign ] seed %llu (TIERFS_CRASH_SEED), %d kills (TIERFS_CRASH_KILLS)\n",
              static_cast<unsigned long long>(seed), kills);
  std::fflush(stdout);
  SCOPED_TRACE("TIERFS_CRASH_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  umask(022);
  TierfsMount fs;
  const std::string policy = fs.root() + "/policy.toml";
  fs.options().extra_args = {"--policy", policy, "--scan-interval", "1", "--move-bandwidth", "64"};
  WritePolicy(policy, kPolicyQuiet);
  ASSERT_TRUE(fs.Mount());
  for (int t = 0; t < kThreads; t++) {
    const std::string home = "w/t" + std::to_string(t);
    for (const std::string d : {"d0", "d1", "d2", "run"})
      ASSERT_EQ(0, RunCommand({"mkdir", "-p", fs.path(home + "/" + d)}, 10).exit_code);
  }
  ASSERT_EQ(0, RunCommand({"sync", "-f", fs.path("w")}, 30).exit_code);

  Shared sh;
  CampaignCounts counts;
  std::vector<int> next_gen(kThreads, 1);
  int reloads = 0;
  for (int cycle = 0; cycle < kills; cycle++) {
    // The workload policy for this cycle, reloaded with SIGHUP.
    WritePolicy(policy, rng() % 2 ? kPolicyA : kPolicyB);
    ASSERT_EQ(0, kill(fs.pid(), SIGHUP));
    reloads++;
    sh.stop = false;
    sh.killed = false;
    std::vector<std::unique_ptr<Worker>> workers;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
      workers.push_back(std::make_unique<Worker>(fs, sh, t, rng(), cycle, next_gen[t]));
      threads.emplace_back([w = workers.back().get()] { w->Run(); });
    }
    // Run for a random while, reloading another policy half-way now and then.
    const int run_ms = 100 + int(rng() % 1900);
    if (rng() % 3 == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(run_ms / 2));
      WritePolicy(policy, rng() % 2 ? kPolicyA : kPolicyB);
      kill(fs.pid(), SIGHUP);
      reloads++;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(run_ms - run_ms / 2));
    sh.killed = true;
    if (!fs.Kill9()) {
      counts.wedged++;
      ADD_FAILURE() << "seed " << seed << ", kill " << cycle
                    << ": the daemon survived SIGKILL (a thread stuck in the kernel) until its "
                       "FUSE connection was aborted";
    }
    counts.kills++;
    sh.stop = true;
    for (auto& th : threads) th.join();
    for (int t = 0; t < kThreads; t++) next_gen[t] = workers[t]->next_gen();
    {
      std::lock_guard<std::mutex> l(sh.mu);
      for (const auto& e : sh.errors) ADD_FAILURE() << "seed " << seed << ", " << e;
      sh.errors.clear();
    }
    // Remount with no rules, so the check sees the state recovery left.
    WritePolicy(policy, kPolicyQuiet);
    ASSERT_TRUE(fs.Mount()) << "seed " << seed << ", cycle " << cycle;
    const std::string where = "seed " + std::to_string(seed) + ", after kill " +
                              std::to_string(cycle) + " (" + std::to_string(run_ms) + " ms in)";
    sh.model.Verify(fs, kMinKeep, where, &counts);
    CheckObjects(fs, where, &counts);
    sh.model.RemoveStaleTemporaries(fs);
  }
  EXPECT_TRUE(fs.Unmount());
  // How many restarts found a move to finish or undo (the kill landed in it).
  const std::string log = fs.Log();
  int interrupted = 0;
  for (size_t at = 0; (at = log.find("interrupted by a crash", at)) != std::string::npos; ++at)
    interrupted++;
  std::printf(
      "[ campaign ] kills %d, checks %d, fsynced files verified %llu, lost %d, corrupt %d, "
      "leaked objects %d, missing objects %d, wedged kills %d (seed %llu)\n",
      counts.kills, counts.checks, static_cast<unsigned long long>(counts.verified), counts.lost,
      counts.corrupt, counts.leaked, counts.missing, counts.wedged,
      static_cast<unsigned long long>(seed));
  std::printf(
      "[ campaign ] ops: %d creates, %d overwrites, %d renames, %d unlinks, %d moves (%d refused), "
      "%d generations (%d thinned files seen), %d policy reloads, %llu objects checked, "
      "%d interrupted moves settled at remount\n",
      sh.creates.load(), sh.overwrites.load(), sh.renames.load(), sh.unlinks.load(),
      sh.moves.load(), sh.move_errors.load(), sh.generations.load(), counts.thinned, reloads,
      static_cast<unsigned long long>(counts.objects), interrupted);
  EXPECT_EQ(0, counts.lost);
  EXPECT_EQ(0, counts.corrupt);
  EXPECT_EQ(0, counts.leaked);
  EXPECT_EQ(0, counts.missing);
  EXPECT_EQ(0, counts.wedged);
  EXPECT_GT(counts.verified, 0u) << "the campaign verified nothing";
}

}  // namespace
}  // namespace tierfs_test

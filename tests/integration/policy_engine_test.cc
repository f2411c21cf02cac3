// The policy engine on a real mount with the built-in policy: checkpoint
// series written the way the frameworks write them, 30 generations, and
// exactly which generations stay on which tier; the safety rules; reload;
// the audit journal; the command-line policy tools.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class PolicyEngineTest : public MountTest {
 protected:
  PolicyEngineTest() : MountTest(Fast()) {}
  static MountOptions Fast() {
    MountOptions o;
    o.extra_args = {"--scan-interval", "1"};
    return o;
  }
  std::string Audit() { return Slurp(fs_.ssd() + "/state/audit.jsonl"); }
  // Hugging Face Trainer: write tmp-checkpoint-N/, then rename it.
  void WriteHfCheckpoint(const std::string& run, int step) {
    const std::string tmp = P(run + "/tmp-checkpoint-" + std::to_string(step));
    ASSERT_EQ(0, Err(mkdir(tmp.c_str(), 0755)));
    ASSERT_EQ(0, WriteFile(tmp + "/model.safetensors", Pattern(64 << 10, step)));
    ASSERT_EQ(0, WriteFile(tmp + "/trainer_state.json", "{\"global_step\": 1}"));
    ASSERT_EQ(0, Err(rename(tmp.c_str(), P(run + "/checkpoint-" + std::to_string(step)).c_str())));
  }
};

std::set<std::string> Names(const std::string& dir) {
  auto v = ListDir(dir);
  return std::set<std::string>(v.begin(), v.end());
}

TEST_F(PolicyEngineTest, HuggingFaceThirtyGenerationsUnderTheDefaultPolicy) {
  ASSERT_EQ(0, Err(mkdir(P("run").c_str(), 0755)));
  for (int step = 100; step <= 3000; step += 100) WriteHfCheckpoint("run", step);
  // Kept: the newest 3 (on SSD) and every 5th (multiples of 500) pinned on HDD.
  const std::set<std::string> kept = {"checkpoint-500",  "checkpoint-1000", "checkpoint-1500",
                                      "checkpoint-2000", "checkpoint-2500", "checkpoint-2800",
                                      "checkpoint-2900", "checkpoint-3000"};
  ASSERT_TRUE(WaitFor([&] { return Names(P("run")) == kept; }, 30))
      << "left: " << ::testing::PrintToString(Names(P("run"))) << "\n"
      << fs_.Log();
  ASSERT_TRUE(
      WaitFor([&] { return GetTier(P("run/checkpoint-2500/model.safetensors")) == "hdd"; }, 30));
  for (int step : {500, 1000, 1500, 2000, 2500}) {
    const std::string f = P("run/checkpoint-" + std::to_string(step) + "/model.safetensors");
    EXPECT_EQ("hdd", GetTier(f)) << f;
    char pin[256];
    ssize_t n = getxattr(f.c_str(), "user.tierfs.pin", pin, sizeof pin);
    ASSERT_GT(n, 0) << f;
    EXPECT_NE(std::string::npos, std::string(pin, n).find("retain-every-5th"));
    std::string got;
    ASSERT_EQ(0, ReadFile(f, &got));
    EXPECT_TRUE(got == Pattern(64 << 10, step));
  }
  for (int step : {2800, 2900, 3000})
    EXPECT_EQ("ssd", GetTier(P("run/checkpoint-" + std::to_string(step) + "/model.safetensors")));
  // Each archived generation describes itself on the HDD tier: what was
  // kept, by which rule, as which bytes (fs/generation_manifest.h).
  std::string manifest_path;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& ns : std::filesystem::directory_iterator(fs_.hdd() + "/ns")) {
          const std::string m = ns.path().string() + "/manifests/hf/run%2Fcheckpoint-1500.json";
          if (access(m.c_str(), F_OK) == 0) return manifest_path = m, true;
        }
        return false;
      },
      30))
      << fs_.Log();
  const nlohmann::json manifest = nlohmann::json::parse(Slurp(manifest_path), nullptr, false);
  ASSERT_TRUE(manifest.is_object()) << Slurp(manifest_path);
  EXPECT_EQ("hf", manifest["series"]);
  EXPECT_EQ(1500, manifest["generation"]);
  EXPECT_EQ(nlohmann::json::array({"retain-every-5th"}), manifest["kept_by"]);
  EXPECT_TRUE(manifest["kept_until"].is_string()) << manifest.dump();
  const std::string model1500 = Pattern(64 << 10, 1500);
  char want[32];
  std::snprintf(want, sizeof want, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits(model1500.data(), model1500.size())));
  bool listed = false;
  for (const auto& e : manifest["entries"]) {
    if (e["path"] != "/run/checkpoint-1500/model.safetensors") continue;
    listed = true;
    EXPECT_EQ(65536, e["size"]);
    EXPECT_EQ(want, e["xxh3"]) << e.dump();
  }
  EXPECT_TRUE(listed) << manifest.dump();
  EXPECT_EQ(2u, manifest["files"].get<uint64_t>());
  const std::string audit = Audit();
  EXPECT_NE(std::string::npos, audit.find("\"action\":\"manifest\"")) << audit;
  EXPECT_NE(std::string::npos, audit.find("\"action\":\"thin\",\"rule\":\"thin-superseded\","
                                          "\"path\":\"/run/checkpoint-100\""))
      << audit;
  // Each thinned file has its own record, with the checksum of its bytes.
  const std::string model = Pattern(64 << 10, 100);
  char xxh3[32];
  std::snprintf(xxh3, sizeof xxh3, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits(model.data(), model.size())));
  EXPECT_NE(std::string::npos,
            audit.find("\"path\":\"/run/checkpoint-100/model.safetensors\",\"ino\":"))
      << audit;
  EXPECT_NE(std::string::npos,
            audit.find("\"bytes\":65536,\"xxh3\":\"" + std::string(xxh3) +
                       "\",\"result\":\"ok\",\"detail\":\"part of /run/checkpoint-100\""))
      << audit;
  EXPECT_NE(std::string::npos, audit.find("\"action\":\"pin\",\"rule\":\"retain-every-5th\""));
  // A remount sees the same tree (thinning was synced).
  Remount();
  EXPECT_EQ(kept, Names(P("run")));
}

TEST_F(PolicyEngineTest, DeepSpeedIncompleteNewerGenerationAndOpenFilesAreNeverThinned) {
  ASSERT_EQ(0, Err(mkdir(P("ds").c_str(), 0755)));
  for (int step = 10; step <= 60; step += 10) {
    const std::string d = P("ds/global_step" + std::to_string(step));
    ASSERT_EQ(0, Err(mkdir(d.c_str(), 0755)));
    ASSERT_EQ(0, WriteFile(d + "/mp_rank_00_model_states.pt", Pattern(4096, step)));
  }
  // `latest` names 50; global_step60 is still being written (not complete).
  ASSERT_EQ(0, WriteFile(P("ds/latest"), "global_step50"));
  int fd = open(P("ds/global_step10/mp_rank_00_model_states.pt").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, Err(rename(P("ds/latest").c_str(), P("ds/latest").c_str())));  // poke
  // 20 goes (3 newer complete: 30, 40, 50); 10 is open; 30..50 stay; 60 is incomplete.
  ASSERT_TRUE(WaitFor([&] { return Names(P("ds")).count("global_step20") == 0; }, 30)) << fs_.Log();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const std::set<std::string> want = {"global_step10", "global_step30", "global_step40",
                                      "global_step50", "global_step60", "latest"};
  EXPECT_EQ(want, Names(P("ds")));
  close(fd);
  // Closed now: 10 goes on a later scan; the newest complete (50) and 60 stay.
  ASSERT_TRUE(WaitFor([&] { return Names(P("ds")).count("global_step10") == 0; }, 30));
  EXPECT_EQ(1u, Names(P("ds")).count("global_step50"));
  EXPECT_EQ(1u, Names(P("ds")).count("global_step60"));
}

// The kernel clears the nlink of an inode whose entry is notified deleted;
// the name outside the thinned generation used to stat with nlink 0.
TEST_F(PolicyEngineTest, AHardLinkOutsideAThinnedGenerationKeepsItsLinkCount) {
  ASSERT_EQ(0, Err(mkdir(P("run").c_str(), 0755)));
  WriteHfCheckpoint("run", 100);
  const std::string kept = P("kept.safetensors");
  ASSERT_EQ(0, Err(link(P("run/checkpoint-100/model.safetensors").c_str(), kept.c_str())));
  struct stat st;
  ASSERT_EQ(0, Err(stat(P("run/checkpoint-100/model.safetensors").c_str(), &st)));
  ASSERT_EQ(0, Err(stat(kept.c_str(), &st)));  // both names in the kernel's caches
  EXPECT_EQ(2u, st.st_nlink);
  for (int step : {200, 300, 400}) WriteHfCheckpoint("run", step);
  ASSERT_TRUE(WaitFor([&] { return Names(P("run")).count("checkpoint-100") == 0; }, 30))
      << fs_.Log();
  ASSERT_EQ(0, Err(stat(kept.c_str(), &st)));
  EXPECT_EQ(1u, st.st_nlink);
  std::string got;
  ASSERT_EQ(0, ReadFile(kept, &got));
  EXPECT_TRUE(got == Pattern(64 << 10, 100));
}

// The sticky-directory attack: another user's newer checkpoint-N generations
// used to make the built-in policy thin root's older one. A series spans one
// owner's generations only; the refusal reaches the audit journal and the log.
TEST_F(PolicyEngineTest, OtherUsersNewerGenerationsNeverThinRootsCheckpoint) {
  ASSERT_EQ(0, Err(mkdir(P("shared").c_str(), 0755)));
  ASSERT_EQ(0, Err(chmod(P("shared").c_str(), 01777)));
  WriteHfCheckpoint("shared", 1);
  const std::string shared = P("shared");
  const Creds nobody{65534, 65534, {}};
  ASSERT_EQ(0, RunAs(nobody, [&] {
              for (int step = 2; step <= 5; ++step) {
                const std::string tmp = shared + "/tmp-checkpoint-" + std::to_string(step);
                if (mkdir(tmp.c_str(), 0755) != 0) return errno;
                if (int e = WriteFile(tmp + "/model.safetensors", Pattern(4096, step))) return e;
                const std::string final_name = shared + "/checkpoint-" + std::to_string(step);
                if (rename(tmp.c_str(), final_name.c_str()) != 0) return errno;
              }
              return 0;
            }));
  // The engine did run over the directory: nobody's own checkpoint-2 has 3
  // newer complete generations of nobody's and goes.
  ASSERT_TRUE(WaitFor([&] { return Names(P("shared")).count("checkpoint-2") == 0; }, 30))
      << fs_.Log();
  ASSERT_TRUE(
      WaitFor([&] { return Audit().find("does not span owners") != std::string::npos; }, 20))
      << Audit();
  EXPECT_EQ(1u, Names(P("shared")).count("checkpoint-1")) << Audit();
  std::string got;
  ASSERT_EQ(0, ReadFile(P("shared/checkpoint-1/model.safetensors"), &got));
  EXPECT_TRUE(got == Pattern(64 << 10, 1));
  const std::string audit = Audit();
  EXPECT_NE(std::string::npos, audit.find("\"action\":\"refuse\",\"rule\":\"thin-superseded\","
                                          "\"path\":\"/shared/checkpoint-1\""))
      << audit;
  EXPECT_NE(std::string::npos, fs_.Log().find("does not span owners")) << fs_.Log();
}

// One framework's way of writing generation `step` into `dir`, with its
// real file names and its completion signal; and that generation's name.
struct Layout {
  const char* name;
  std::function<std::string(int step)> entry;
  std::function<void(const std::string& dir, int step)> write;
};

void Put(const std::string& path, const std::string& data) {
  ASSERT_EQ(0, WriteFile(path, data)) << path;
}
void Dir(const std::string& path) {
  ASSERT_EQ(0, Err(mkdir(path.c_str(), 0755))) << path;
}
void Move(const std::string& from, const std::string& to) {
  ASSERT_EQ(0, Err(rename(from.c_str(), to.c_str()))) << from;
}

std::string Iter(int step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "iter_%07d", step);
  return buf;
}

const Layout kLayouts[] = {
    {"deepspeed", [](int s) { return "global_step" + std::to_string(s); },
     [](const std::string& d, int s) {
       const std::string g = d + "/global_step" + std::to_string(s);
       Dir(g);
       Put(g + "/mp_rank_00_model_states.pt", Pattern(8192, s));
       Put(g + "/zero_pp_rank_0_mp_rank_00_optim_states.pt", Pattern(8192, s + 1));
       Put(d + "/latest", "global_step" + std::to_string(s));
     }},
    {"megatron", Iter,
     [](const std::string& d, int s) {
       Dir(d + "/" + Iter(s));
       Dir(d + "/" + Iter(s) + "/mp_rank_00");
       Put(d + "/" + Iter(s) + "/mp_rank_00/model_optim_rng.pt", Pattern(8192, s));
       Put(d + "/latest_checkpointed_iteration.txt", std::to_string(s));
     }},
    {"dcp", [](int s) { return "step-" + std::to_string(s); },
     [](const std::string& d, int s) {
       const std::string g = d + "/step-" + std::to_string(s);
       Dir(g);
       Put(g + "/__0_0.distcp", Pattern(8192, s));
       Put(g + "/__1_0.distcp", Pattern(8192, s + 1));
       Put(g + "/.metadata", "metadata");  // written last: the generation is complete
     }},
    {"orbax", [](int s) { return std::to_string(s); },
     [](const std::string& d, int s) {
       const std::string tmp = d + "/" + std::to_string(s) + ".orbax-checkpoint-tmp-1764";
       Dir(tmp);
       Dir(tmp + "/default");
       Put(tmp + "/default/array_metadatas", Pattern(8192, s));
       Put(tmp + "/_CHECKPOINT_METADATA", "{}");
       Move(tmp, d + "/" + std::to_string(s));
     }},
};

class LayoutTest : public PolicyEngineTest, public ::testing::WithParamInterface<Layout> {};

// 30 generations at a save interval of 10: the newest 3 stay on SSD, every
// 5th interval (50, 100, ...) is pinned on HDD, the rest are thinned.
TEST_P(LayoutTest, ThirtyGenerationsUnderTheDefaultPolicy) {
  const Layout& l = GetParam();
  const std::string run = P(std::string("run-") + l.name);
  Dir(run);
  for (int step = 10; step <= 300; step += 10) l.write(run, step);
  std::set<std::string> kept;
  for (int step : {50, 100, 150, 200, 250, 280, 290, 300}) kept.insert(l.entry(step));
  auto generations = [&] {
    std::set<std::string> left;
    for (const auto& n : Names(run))
      if (n.find('.') == std::string::npos && n.rfind("latest", 0) != 0) left.insert(n);
    return left;
  };
  ASSERT_TRUE(WaitFor([&] { return generations() == kept; }, 40))
      << l.name << " left " << ::testing::PrintToString(generations()) << "\n"
      << fs_.Log();
  for (int step : {50, 250}) {
    const std::string g = run + "/" + l.entry(step);
    ASSERT_TRUE(WaitFor(
        [&] {
          return RunCommand({"getfattr", "-R", "-n", "user.tierfs.pin", g}, 10)
                     .out.find("retain-every-5th") != std::string::npos;
        },
        20))
        << g;
  }
}

INSTANTIATE_TEST_SUITE_P(Frameworks, LayoutTest, ::testing::ValuesIn(kLayouts),
                         [](const auto& info) { return std::string(info.param.name); });

// Lightning and NeMo checkpoints count as complete after a quiet period
// (2 and 1 minutes in the built-in policy); these run the built-in policy
// with 2 s instead, everything else as shipped.
class QuietLayoutTest : public MountTest {
 protected:
  static std::string PolicyPath() { return TmpPolicyPath("quiet-policy-test"); }
  QuietLayoutTest() : MountTest(WithPolicy()) {}
  static MountOptions WithPolicy() {
    std::string text = RunCommand({TierfsBin(), "--print-default-policy"}, 30).out;
    for (const char* q : {"quiet:2m", "quiet:1m"})
      for (size_t at; (at = text.find(q)) != std::string::npos;) text.replace(at, 8, "quiet:2s");
    std::ofstream(PolicyPath()) << text;
    MountOptions o;
    o.extra_args = {"--policy", PolicyPath(), "--scan-interval", "1"};
    return o;
  }
  ~QuietLayoutTest() override { unlink(PolicyPath().c_str()); }
  // Generation files left in `dir` (not last.ckpt, not markers).
  std::set<std::string> Checkpoints(const std::string& dir) {
    std::set<std::string> out;
    for (const auto& n : Names(dir))
      if (n.size() > 5 && n.substr(n.size() - 5) == ".ckpt" && n != "last.ckpt") out.insert(n);
    return out;
  }
};

TEST_F(QuietLayoutTest, LightningThirtyGenerationsWithLastCkptSymlink) {
  const std::string dir = P("lightning_logs/version_0/checkpoints");
  ASSERT_EQ(0, RunCommand({"mkdir", "-p", dir}, 10).exit_code);
  auto name = [](int step) {
    return "epoch=" + std::to_string(step / 100) + "-step=" + std::to_string(step) + ".ckpt";
  };
  for (int step = 10; step <= 300; step += 10) {
    Put(dir + "/" + name(step), Pattern(8192, step));
    unlink((dir + "/last.ckpt").c_str());
    ASSERT_EQ(0, Err(symlink(name(step).c_str(), (dir + "/last.ckpt").c_str())));
  }
  std::set<std::string> kept;
  for (int step : {50, 100, 150, 200, 250, 280, 290, 300}) kept.insert(name(step));
  ASSERT_TRUE(WaitFor([&] { return Checkpoints(dir) == kept; }, 40))
      << ::testing::PrintToString(Checkpoints(dir)) << "\n"
      << fs_.Log();
  EXPECT_EQ("hdd", GetTier(dir + "/" + name(250)));
  std::string target(64, '\0');
  target.resize(readlink((dir + "/last.ckpt").c_str(), target.data(), target.size()));
  EXPECT_EQ(name(300), target);
}

TEST_F(QuietLayoutTest, NemoThirtyGenerationsWithUnfinishedMarkers) {
  const std::string dir = P("nemo_experiments/megatron_gpt/checkpoints");
  ASSERT_EQ(0, RunCommand({"mkdir", "-p", dir}, 10).exit_code);
  auto stem = [](int step) {
    return "megatron_gpt--val_loss=1.00-step=" + std::to_string(step) +
           "-consumed_samples=" + std::to_string(8 * step) + ".0";
  };
  for (int step = 10; step <= 300; step += 10) {
    const std::string marker = dir + "/" + stem(step) + "-unfinished";
    Put(marker, "");
    Put(dir + "/" + stem(step) + ".ckpt", Pattern(8192, step));
    if (step < 300) {  // the last save "crashed": its marker stays
      ASSERT_EQ(0, Err(unlink(marker.c_str())));
    }
  }
  // 300 never finished: it is not a complete generation, so 270-290 are the
  // newest three complete ones and nothing thins 300.
  std::set<std::string> kept;
  for (int step : {50, 100, 150, 200, 250, 270, 280, 290, 300}) kept.insert(stem(step) + ".ckpt");
  ASSERT_TRUE(WaitFor([&] { return Checkpoints(dir) == kept; }, 40))
      << ::testing::PrintToString(Checkpoints(dir)) << "\n"
      << fs_.Log();
}

TEST_F(PolicyEngineTest, ReloadAndDryRunOfTheBuiltInPolicy) {
  // The daemon runs the built-in policy (no --policy): a reload rereads it.
  EXPECT_EQ(0, Err(setxattr(P("").c_str(), "user.tierfs.reload", "1", 1, 0)));
  char plan[65536];
  ssize_t n = getxattr(P("").c_str(), "user.tierfs.plan", plan, sizeof plan);
  ASSERT_GE(n, 0) << strerror(errno);
  EXPECT_NE(std::string::npos, Audit().find("\"action\":\"reload\""));
}

class PolicyFileTest : public MountTest {
 protected:
  static std::string PolicyPath() { return TmpPolicyPath("policy-test"); }
  PolicyFileTest() : MountTest(WithPolicy()) {}
  static MountOptions WithPolicy() {
    std::ofstream(PolicyPath()) << "[[rule]]\nname = \"all-to-hdd\"\npath = \"/cold/**\"\n"
                                   "action = \"migrate\"\nto = \"hdd\"\n";
    MountOptions o;
    o.extra_args = {"--policy", PolicyPath(), "--scan-interval", "1"};
    return o;
  }
  ~PolicyFileTest() override { unlink(PolicyPath().c_str()); }
};

TEST_F(PolicyFileTest, RulesApplyAndABrokenFileIsRefusedOnReload) {
  ASSERT_EQ(0, Err(mkdir(P("cold").c_str(), 0755)));
  ASSERT_EQ(0, WriteFile(P("cold/a"), Pattern(100000, 1)));
  ASSERT_EQ(0, WriteFile(P("hot"), "stays"));
  ASSERT_TRUE(WaitFor([&] { return GetTier(P("cold/a")) == "hdd"; }, 20)) << fs_.Log();
  EXPECT_EQ("ssd", GetTier(P("hot")));
  // Break the file: the reload is refused, and the old rules keep working.
  std::ofstream(PolicyPath()) << "[[rule]]\nname = \"x\"\naction = \"teleport\"\n";
  EXPECT_EQ(EINVAL, Err(setxattr(P("").c_str(), "user.tierfs.reload", "1", 1, 0)));
  EXPECT_EQ(0, kill(fs_.pid(), SIGHUP));  // also refused, and the daemon stays up
  ASSERT_EQ(0, WriteFile(P("cold/b"), Pattern(100000, 2)));
  ASSERT_TRUE(WaitFor([&] { return GetTier(P("cold/b")) == "hdd"; }, 20)) << fs_.Log();
  EXPECT_NE(std::string::npos, fs_.Log().find(PolicyPath() + ":3:10: action must be"));
}

// A FIFO in place of the policy file used to block the policy thread in
// open() for ever; the daemon then ignored SIGTERM (it waits for that thread).
TEST_F(PolicyFileTest, ReloadOfAFifoKeepsTheOldPolicyAndSigtermStillUnmounts) {
  ASSERT_EQ(0, Err(unlink(PolicyPath().c_str())));
  ASSERT_EQ(0, Err(mkfifo(PolicyPath().c_str(), 0600)));
  ASSERT_EQ(0, kill(fs_.pid(), SIGHUP));
  ASSERT_TRUE(
      WaitFor([&] { return fs_.Log().find("policy reload refused") != std::string::npos; }, 20))
      << fs_.Log();
  EXPECT_NE(std::string::npos, fs_.Log().find("is a FIFO, not a regular file")) << fs_.Log();
  ASSERT_EQ(0, Err(mkdir(P("cold").c_str(), 0755)));
  ASSERT_EQ(0, WriteFile(P("cold/a"), Pattern(100000, 1)));
  ASSERT_TRUE(WaitFor([&] { return GetTier(P("cold/a")) == "hdd"; }, 20)) << fs_.Log();
  EXPECT_EQ(0, fs_.SignalAndWait(SIGTERM, 30)) << fs_.Log();
  EXPECT_FALSE(IsMountPoint(fs_.mnt()));
}

class ImmutablePinTest : public MountTest {
 protected:
  static std::string PolicyPath() { return TmpPolicyPath("immutable-test"); }
  ImmutablePinTest() : MountTest(WithPolicy()) {}
  static MountOptions WithPolicy() {
    std::ofstream(PolicyPath()) << "[[rule]]\nname = \"legal-hold\"\npath = \"/kept/**\"\n"
                                   "action = \"pin\"\nfor = \"30d\"\nimmutable = true\n"
                                   "[[rule]]\nname = \"wipe\"\npath = \"/kept/**\"\n"
                                   "action = \"thin\"\n";
    MountOptions o;
    o.extra_args = {"--policy", PolicyPath(), "--scan-interval", "1"};
    return o;
  }
  ~ImmutablePinTest() override { unlink(PolicyPath().c_str()); }
};

TEST_F(ImmutablePinTest, HeldFilesCannotBeWrittenRenamedUnlinkedOrThinned) {
  ASSERT_EQ(0, Err(mkdir(P("kept").c_str(), 0755)));
  ASSERT_EQ(0, WriteFile(P("kept/model.pt"), "weights"));
  char pin[256];
  ASSERT_TRUE(WaitFor(
      [&] { return getxattr(P("kept/model.pt").c_str(), "user.tierfs.pin", pin, sizeof pin) > 0; },
      20))
      << fs_.Log();
  EXPECT_NE(std::string::npos, std::string(pin).find("immutable=yes"));
  EXPECT_EQ(EPERM, OpenErr(P("kept/model.pt"), O_WRONLY));
  EXPECT_EQ(EPERM, OpenErr(P("kept/model.pt"), O_RDONLY | O_TRUNC));
  EXPECT_EQ(EPERM, Err(truncate(P("kept/model.pt").c_str(), 0)));
  EXPECT_EQ(EPERM, Err(unlink(P("kept/model.pt").c_str())));
  EXPECT_EQ(EPERM, Err(rename(P("kept/model.pt").c_str(), P("elsewhere").c_str())));
  EXPECT_EQ(EPERM, Err(chmod(P("kept/model.pt").c_str(), 0600)));
  ASSERT_EQ(0, WriteFile(P("other"), "x"));
  EXPECT_EQ(EPERM, Err(rename(P("other").c_str(), P("kept/model.pt").c_str())));
  std::string got;
  ASSERT_EQ(0, ReadFile(P("kept/model.pt"), &got));  // reading is fine
  EXPECT_EQ("weights", got);
  // The thin rule never gets to it, scan after scan, and survives a remount.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  Remount();
  ASSERT_EQ(0, ReadFile(P("kept/model.pt"), &got));
  EXPECT_EQ("weights", got);
  EXPECT_EQ(EPERM, Err(unlink(P("kept/model.pt").c_str())));
}

// Extended attributes are the file's data too: setxattr and removexattr of
// an ordinary attribute used to slip past the hold. tierfs's own control
// attributes (a move) are no change of the data and stay allowed.
TEST_F(ImmutablePinTest, HeldFilesRefuseXattrChangesAndNewLinksButMayStillBeMoved) {
  ASSERT_EQ(0, Err(mkdir(P("staging").c_str(), 0755)));
  ASSERT_EQ(0, Err(mkdir(P("kept").c_str(), 0755)));
  ASSERT_EQ(0, WriteFile(P("staging/model.pt"), "weights"));
  // Set before the file is under the pin rule, so it is there to remove.
  ASSERT_EQ(0, Err(setxattr(P("staging/model.pt").c_str(), "user.x", "a", 1, 0)));
  ASSERT_EQ(0, Err(rename(P("staging/model.pt").c_str(), P("kept/model.pt").c_str())));
  const std::string f = P("kept/model.pt");
  char pin[256];
  ASSERT_TRUE(
      WaitFor([&] { return getxattr(f.c_str(), "user.tierfs.pin", pin, sizeof pin) > 0; }, 20))
      << fs_.Log();
  EXPECT_EQ(EPERM, Err(setxattr(f.c_str(), "user.x", "b", 1, 0)));
  EXPECT_EQ(EPERM, Err(setxattr(f.c_str(), "user.y", "c", 1, XATTR_CREATE)));
  EXPECT_EQ(EPERM, Err(removexattr(f.c_str(), "user.x")));
  char v[16] = {};
  ASSERT_EQ(1, getxattr(f.c_str(), "user.x", v, sizeof v)) << fs_.Log();
  EXPECT_EQ("a", std::string(v, 1));
  EXPECT_EQ(-1, getxattr(f.c_str(), "user.y", v, sizeof v));
  // A new name is a change of its link count, refused as chattr +i does.
  EXPECT_EQ(EPERM, Err(link(f.c_str(), P("staging/alias").c_str())));
  struct stat st;
  ASSERT_EQ(0, stat(f.c_str(), &st));
  EXPECT_EQ(1u, st.st_nlink);
  // Moving it is not a change of its data.
  ASSERT_EQ(0, SetTierOfClosed(f, "hdd")) << fs_.Log();
  char tier[16] = {};
  ASSERT_EQ(3, getxattr(f.c_str(), "user.tierfs.tier", tier, sizeof tier));
  EXPECT_EQ("hdd", std::string(tier, 3));
  std::string got;
  ASSERT_EQ(0, ReadFile(f, &got));
  EXPECT_EQ("weights", got);
}

// last write + 15250 weeks passes INT64_MAX; the end used to wrap into the
// past, so the pin ended before it began and the generation was thinned.
class FarFuturePinTest : public MountTest {
 protected:
  static std::string PolicyPath() { return TmpPolicyPath("far-pin-test"); }
  FarFuturePinTest() : MountTest(WithPolicy()) {}
  static MountOptions WithPolicy() {
    std::ofstream(PolicyPath())
        << "[[series]]\nname = \"hf\"\npattern = \"**/checkpoint-{gen}\"\ncomplete = \"rename\"\n"
           "[[rule]]\nname = \"forever\"\nseries = \"hf\"\npath = \"**/checkpoint-100\"\n"
           "action = \"pin\"\nfor = \"15250w\"\n"
           "[[rule]]\nname = \"thin\"\nseries = \"hf\"\nolder_than_newest = 1\n"
           "action = \"thin\"\n";
    MountOptions o;
    o.extra_args = {"--policy", PolicyPath(), "--scan-interval", "1"};
    return o;
  }
  ~FarFuturePinTest() override { unlink(PolicyPath().c_str()); }
};

TEST_F(FarFuturePinTest, AFarFuturePinHoldsAGenerationThatWouldBeThinned) {
  ASSERT_EQ(0, Err(mkdir(P("run").c_str(), 0755)));
  for (int step : {100, 200, 300}) {
    const std::string tmp = P("run/tmp-" + std::to_string(step));
    ASSERT_EQ(0, Err(mkdir(tmp.c_str(), 0755)));
    ASSERT_EQ(0, WriteFile(tmp + "/model.bin", Pattern(4096, step)));
    ASSERT_EQ(0, Err(rename(tmp.c_str(), P("run/checkpoint-" + std::to_string(step)).c_str())));
  }
  // 200 goes (a newer complete one exists); 100 is held.
  ASSERT_TRUE(WaitFor([&] { return Names(P("run")).count("checkpoint-200") == 0; }, 30))
      << fs_.Log();
  EXPECT_EQ(1u, Names(P("run")).count("checkpoint-100")) << fs_.Log();
  char pin[256];
  ssize_t n =
      getxattr(P("run/checkpoint-100/model.bin").c_str(), "user.tierfs.pin", pin, sizeof pin);
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string::npos, std::string(pin, n).find("forever")) << std::string(pin, n);
}

TEST(PolicyCliTest, CheckPolicyAndPrintDefaultPolicy) {
  auto def = RunCommand({TierfsBin(), "--print-default-policy"}, 30);
  ASSERT_EQ(0, def.exit_code);
  const std::string path = TmpPolicyPath("default-policy-test");
  std::ofstream(path) << def.out;
  auto ok = RunCommand({TierfsBin(), "--check-policy", path}, 30);
  EXPECT_EQ(0, ok.exit_code) << ok.err;
  std::ofstream(path) << "[tiers]\nssd_high_watermark = \"90%\"\nbogus_key = 1\n";
  auto bad = RunCommand({TierfsBin(), "--check-policy", path}, 30);
  EXPECT_EQ(1, bad.exit_code);
  EXPECT_EQ(0u, bad.err.find(path + ":3:")) << bad.err;
  unlink(path.c_str());
}

}  // namespace
}  // namespace tierfs_test

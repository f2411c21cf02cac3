// Unit tests of checkpoint-series recognition: the pattern language, every
// framework layout of the default policy under its real names, instances,
// numeric ordering, and a million-file scan.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "tests/unit/policy_test_util.h"

namespace tierfs {
namespace {

using namespace testing_util;

PathPattern Compile(const std::string& text, bool series = true) {
  PathPattern pattern;
  Status st = PathPattern::Compile(
      text, series ? PathPattern::GenRule::kRequired : PathPattern::GenRule::kForbidden, &pattern);
  EXPECT_TRUE(st.ok()) << st.message();
  return pattern;
}

std::optional<uint64_t> GenOf(const PathPattern& pattern, const std::string& path) {
  uint64_t gen = 0;
  if (!pattern.Match(path, &gen)) return std::nullopt;
  return gen;
}

TEST(PolicySeries, PatternLanguage) {
  PathPattern hf = Compile("**/checkpoint-{gen}");
  EXPECT_EQ(GenOf(hf, "/checkpoint-5"), 5u);  // ** may be empty
  EXPECT_EQ(GenOf(hf, "/runs/a/b/checkpoint-500"), 500u);
  EXPECT_EQ(GenOf(hf, "/runs/tmp-checkpoint-500"), std::nullopt);
  EXPECT_EQ(GenOf(hf, "/runs/checkpoint-500x"), std::nullopt);
  EXPECT_EQ(GenOf(hf, "/runs/checkpoint-"), std::nullopt);
  EXPECT_EQ(GenOf(hf, "/runs/checkpoint-500/model.bin"), std::nullopt);
  EXPECT_EQ(GenOf(hf, "/runs/checkpoint-99999999999999999999999"), std::nullopt);  // overflow

  PathPattern one_level = Compile("/runs/*/global_step{gen}");
  EXPECT_EQ(GenOf(one_level, "/runs/a/global_step3"), 3u);
  EXPECT_EQ(GenOf(one_level, "/runs/a/b/global_step3"), std::nullopt);
  EXPECT_EQ(GenOf(Compile("runs/*/global_step{gen}"), "/runs/x/global_step7"), 7u);

  EXPECT_EQ(GenOf(Compile("**/iter_{gen}"), "/m/iter_0001200"), 1200u);
  EXPECT_EQ(GenOf(Compile("**/{gen}5"), "/1235"), std::nullopt);  // {gen} is greedy
  EXPECT_EQ(GenOf(Compile("**/epoch=*-step={gen}*.ckpt"), "/c/epoch=3-step=400-v1.ckpt"), 400u);
  EXPECT_EQ(GenOf(Compile("**/*_{gen}"), "/o/checkpoint_300"), 300u);

  PathPattern scratch = Compile("/scratch/**", false);
  EXPECT_TRUE(scratch.Match("/scratch/a/b/c", nullptr));
  EXPECT_FALSE(scratch.Match("/scratchy/a", nullptr));
  EXPECT_TRUE(Compile("**/*.tmp", false).Match("/a/b/x.tmp", nullptr));
}

// Matched on a thread of its own: false when it has not finished within a
// minute (a pattern that backtracks exponentially would run for years; the
// thread is left behind and ends with the process).
bool FinishesSoon(const PathPattern& pattern, const std::string& path, bool* matched) {
  auto done = std::make_shared<std::promise<bool>>();
  std::future<bool> result = done->get_future();
  std::thread([pattern, path, done] { done->set_value(pattern.Match(path, nullptr)); }).detach();
  if (result.wait_for(std::chrono::seconds(60)) != std::future_status::ready) return false;
  *matched = result.get();
  return true;
}

// Many stars in a component, or many "**", against names and paths they
// almost match: before, the matcher backtracked exponentially, and a user's
// policy dry run hung a control thread and the policy engine for good.
TEST(PolicySeries, NoPatternBacktracksExponentially) {
  bool matched = true;
  const std::string many_a = "/mal/" + std::string(200, 'a');
  ASSERT_TRUE(FinishesSoon(Compile("**/*a*a*a*a*a*a*a*a*a*a*a*a*c{gen}"), many_a, &matched));
  EXPECT_FALSE(matched);
  std::string deep;
  for (int i = 0; i < 300; ++i) deep += "/d";
  matched = true;
  ASSERT_TRUE(FinishesSoon(Compile("**/d/**/d/**/d/**/d/**/d/**/d/**/x", false), deep, &matched));
  EXPECT_FALSE(matched);
  // What such patterns match, and the generation they capture, is as before.
  EXPECT_TRUE(FinishesSoon(Compile("**/d/**/d/**/d/**/d/**/d/**/d/**/d", false), deep, &matched));
  EXPECT_TRUE(matched);
  EXPECT_EQ(GenOf(Compile("**/*a*a*c{gen}"), "/x/aaxac12"), 12u);
  EXPECT_EQ(GenOf(Compile("**/*-*-{gen}*"), "/x/run-7-step-300-final"), 300u);
  EXPECT_EQ(GenOf(Compile("**/*-*-{gen}-*"), "/x/run-a-300-final"), 300u);
  EXPECT_EQ(GenOf(Compile("**/*-{gen}*-*"), "/x/run-12-step-500"), 12u);  // leftmost first
  EXPECT_EQ(GenOf(Compile("**/a/**/b/**/step{gen}"), "/a/x/b/y/b/step9"), 9u);
}

TEST(PolicySeries, PatternCompileErrors) {
  PathPattern p;
  using G = PathPattern::GenRule;
  EXPECT_FALSE(PathPattern::Compile("", G::kForbidden, &p).ok());
  EXPECT_FALSE(PathPattern::Compile("/", G::kForbidden, &p).ok());
  EXPECT_FALSE(PathPattern::Compile("a//b", G::kForbidden, &p).ok());
  EXPECT_FALSE(PathPattern::Compile("a/***/b", G::kForbidden, &p).ok());
  EXPECT_FALSE(PathPattern::Compile("a/{gen}", G::kForbidden, &p).ok());
  EXPECT_FALSE(PathPattern::Compile("a/b", G::kRequired, &p).ok());
  EXPECT_FALSE(PathPattern::Compile("{gen}/{gen}", G::kRequired, &p).ok());
  EXPECT_FALSE(PathPattern::Compile("{step}", G::kRequired, &p).ok());
}

// Finds the generation with `root` among its roots.
const Generation* GenerationAt(const std::vector<Generation>& gens, const Snapshot& snapshot,
                               const std::string& root) {
  for (const Generation& gen : gens) {
    for (size_t r : gen.roots) {
      if (snapshot[r].path == root) return &gen;
    }
  }
  return nullptr;
}

struct Expected {
  std::string root;
  std::string series;
  uint64_t number;
  bool complete;
};

void ExpectGenerations(const Tree& tree, const std::vector<Expected>& expected,
                       size_t total_generations) {
  Policy policy = DefaultPolicy();
  std::vector<Generation> gens = RecognizeGenerations(policy, tree.snapshot(), kNow);
  EXPECT_EQ(gens.size(), total_generations);
  for (const Expected& e : expected) {
    const Generation* gen = GenerationAt(gens, tree.snapshot(), e.root);
    ASSERT_NE(gen, nullptr) << e.root << " is not a generation";
    EXPECT_EQ(policy.series[gen->series].name, e.series) << e.root;
    EXPECT_EQ(gen->number, e.number) << e.root;
    EXPECT_EQ(gen->complete, e.complete) << e.root << ": " << gen->incomplete_reason;
  }
}

TEST(PolicySeries, HuggingFaceTrainer) {
  Tree t;
  for (std::string name : {"model.safetensors", "optimizer.pt", "trainer_state.json"}) {
    t.File("/runs/llama/checkpoint-500/" + name);
    t.File("/runs/llama/tmp-checkpoint-1000/" + name, 1 << 20, kSecond);  // being written
  }
  ExpectGenerations(t, {{"/runs/llama/checkpoint-500", "hf", 500, true}}, 1);
}

TEST(PolicySeries, PyTorchLightning) {
  Tree t;
  const std::string dir = "/lightning_logs/version_0/checkpoints/";
  t.File(dir + "epoch=0-step=100.ckpt");
  t.File(dir + "epoch=1-step=200.ckpt");
  t.File(dir + "epoch=1-step=200-v1.ckpt");
  t.File(dir + "epoch=2-step=300.ckpt", 1 << 20, 10 * kSecond);  // closed, not yet quiet
  t.File(dir + "epoch=3-step=400.ckpt").open = true;             // still being written
  t.Symlink(dir + "last.ckpt", "epoch=1-step=200.ckpt");
  ExpectGenerations(t,
                    {{dir + "epoch=0-step=100.ckpt", "lightning", 100, true},
                     {dir + "epoch=1-step=200-v1.ckpt", "lightning", 200, true},
                     {dir + "epoch=2-step=300.ckpt", "lightning", 300, false},
                     {dir + "epoch=3-step=400.ckpt", "lightning", 400, false}},
                    4);
  Policy policy = DefaultPolicy();
  auto gens = RecognizeGenerations(policy, t.snapshot(), kNow);
  const Generation* g200 = GenerationAt(gens, t.snapshot(), dir + "epoch=1-step=200.ckpt");
  EXPECT_EQ(g200->roots.size(), 2u);  // the -v1 copy is the same generation
  EXPECT_EQ(g200->named_by, dir + "last.ckpt");
  EXPECT_TRUE(g200->newest_complete);
}

TEST(PolicySeries, DeepSpeed) {
  Tree t;
  for (int step : {100, 200, 300}) {
    std::string g = "/out/global_step" + std::to_string(step);
    t.File(g + "/mp_rank_00_model_states.pt");
    t.File(g + "/zero_pp_rank_0_mp_rank_00_optim_states.pt");
  }
  t.Text("/out/latest", "global_step200\n");
  ExpectGenerations(t,
                    {{"/out/global_step100", "deepspeed", 100, true},
                     {"/out/global_step200", "deepspeed", 200, true},
                     {"/out/global_step300", "deepspeed", 300, false}},
                    3);
}

TEST(PolicySeries, MegatronLM) {
  Tree t;
  for (int iter : {100, 200, 300}) {
    char name[32];
    std::snprintf(name, sizeof(name), "/ckpt/iter_%07d", iter);
    t.File(std::string(name) + "/mp_rank_00/model_optim_rng.pt");
  }
  t.Text("/ckpt/latest_checkpointed_iteration.txt", "300");
  ExpectGenerations(t,
                    {{"/ckpt/iter_0000100", "megatron", 100, true},
                     {"/ckpt/iter_0000300", "megatron", 300, true}},
                    3);
  t.At("/ckpt/latest_checkpointed_iteration.txt").content = "release";
  ExpectGenerations(t, {{"/ckpt/iter_0000100", "megatron", 100, false}}, 3);
}

TEST(PolicySeries, NeMo) {
  Tree t;
  const std::string dir = "/nemo_experiments/megatron_gpt/checkpoints/";
  const std::string g100 = dir + "megatron_gpt--val_loss=2.10-step=100-consumed_samples=800.0";
  const std::string g200 = dir + "megatron_gpt--val_loss=1.90-step=200-consumed_samples=1600.0";
  t.File(g100 + ".ckpt");
  t.File(g100 + "-last.ckpt");
  t.File(g200 + "/model_weights/common.pt");  // a distributed checkpoint directory
  t.File(g200 + "-unfinished", 0);
  ExpectGenerations(t, {{g100 + ".ckpt", "nemo", 100, true}, {g200, "nemo", 200, false}}, 2);
}

TEST(PolicySeries, Orbax) {
  Tree t;
  t.File("/jax/ckpt/100/_CHECKPOINT_METADATA");
  t.File("/jax/ckpt/100/default/_METADATA");
  t.File("/jax/ckpt/100/default/manifest.ocdbt");
  t.File("/jax/ckpt/200.orbax-checkpoint-tmp-1712345678/default/_METADATA", 1, kSecond);
  t.File("/jax/gcs/checkpoint_300/commit_success.txt");
  t.File("/jax/gcs/checkpoint_400/state/d/0", 1, kSecond);  // not committed yet
  t.File("/datasets/shard_0001/part-0.parquet");            // numbers, but no checkpoint
  ExpectGenerations(t,
                    {{"/jax/ckpt/100", "orbax", 100, true},
                     {"/jax/gcs/checkpoint_300", "orbax", 300, true},
                     {"/jax/gcs/checkpoint_400", "orbax", 400, false},
                     {"/datasets/shard_0001", "orbax", 1, false}},
                    4);
}

TEST(PolicySeries, TorchDistributedCheckpoint) {
  Tree t;
  t.File("/outputs/checkpoint/step-100/.metadata");
  t.File("/outputs/checkpoint/step-100/__0_0.distcp");
  t.File("/outputs/checkpoint/step-100/__1_0.distcp");
  t.File("/outputs/checkpoint/step-200/__0_0.distcp");  // .metadata not written yet
  ExpectGenerations(t,
                    {{"/outputs/checkpoint/step-100", "dcp", 100, true},
                     {"/outputs/checkpoint/step-200", "dcp", 200, false}},
                    2);
}

TEST(PolicySeries, GenerationsSortNumerically) {
  Tree t;
  t.File("/r/checkpoint-9000/a");
  t.File("/r/checkpoint-10000/a");
  t.File("/r/checkpoint-800/a");
  // Created in the order of their numbers (what supersedes must also be
  // created later: policy/completeness.h CountSuperseding).
  t.At("/r/checkpoint-800").ino = 100;
  t.At("/r/checkpoint-9000").ino = 101;
  t.At("/r/checkpoint-10000").ino = 102;
  Policy policy = DefaultPolicy();
  auto gens = RecognizeGenerations(policy, t.snapshot(), kNow);
  const Generation* newest = GenerationAt(gens, t.snapshot(), "/r/checkpoint-10000");
  const Generation* middle = GenerationAt(gens, t.snapshot(), "/r/checkpoint-9000");
  ASSERT_TRUE(newest && middle);
  EXPECT_TRUE(newest->newest_complete);
  EXPECT_FALSE(middle->newest_complete);
  EXPECT_EQ(middle->newer_complete, 1u);
  EXPECT_EQ(GenerationAt(gens, t.snapshot(), "/r/checkpoint-800")->newer_complete, 2u);
}

TEST(PolicySeries, InstancesAreSeparateAndNestedMatchesBelongToTheOuterGeneration) {
  Tree t;
  t.File("/runs/a/checkpoint-100/w");
  t.File("/runs/b/checkpoint-100/w");
  t.File("/runs/b/checkpoint-200/global_step200/mp_rank_00_model_states.pt");
  t.Text("/runs/b/checkpoint-200/latest", "global_step200");
  Policy policy = DefaultPolicy();
  auto gens = RecognizeGenerations(policy, t.snapshot(), kNow);
  ASSERT_EQ(gens.size(), 3u);
  EXPECT_TRUE(GenerationAt(gens, t.snapshot(), "/runs/a/checkpoint-100")->newest_complete);
  EXPECT_FALSE(GenerationAt(gens, t.snapshot(), "/runs/b/checkpoint-100")->newest_complete);
  const Generation* outer = GenerationAt(gens, t.snapshot(), "/runs/b/checkpoint-200");
  EXPECT_EQ(outer->members.size(), 4u);  // dir, global_step200/, its file, latest
  EXPECT_EQ(outer->instance_dir, "/runs/b");
}

// Speed is measured by `make bench` (build/scanbench), never by a timed test;
// this checks that a million-file scan still plans every run correctly.
TEST(PolicySeries, AMillionFilesPlanEveryRunAndSpareTheNewestGenerations) {
  Snapshot snapshot;
  snapshot.reserve(1'000'000);
  auto add = [&](std::string path, bool dir) {
    FileFacts f;
    f.path = std::move(path);
    f.ino = snapshot.size() + 2;  // created in this order
    f.is_dir = dir;
    f.size = dir ? 0 : 4096;
    f.mtime_ns = f.atime_ns = kNow - kDay;
    snapshot.push_back(std::move(f));
  };
  constexpr int kGenerations = 20;
  int runs = 0;
  for (; snapshot.size() < 1'000'000; ++runs) {
    std::string base = "/team/project/runs/run-" + std::to_string(runs);
    add(base, true);
    for (int gen = 1; gen <= kGenerations; ++gen) {
      std::string g = base + "/checkpoint-" + std::to_string(gen * 500);
      add(g, true);
      for (int shard = 0; shard < 8; ++shard) add(g + "/model-0000" + std::to_string(shard), false);
    }
    for (int i = 0; i < 300; ++i) add(base + "/data/part-" + std::to_string(i) + ".parquet", false);
  }
  Plan plan = Evaluate(DefaultPolicy(), snapshot, kNow);

  std::map<std::string, std::set<uint64_t>> thinned_by_run;
  for (const Action& a : plan) {
    if (a.kind != Action::Kind::kThin || !a.generation) continue;
    std::string run = a.path.substr(0, a.path.find("/checkpoint-"));
    thinned_by_run[run].insert(*a.generation);
  }
  ASSERT_EQ(thinned_by_run.size(), static_cast<size_t>(runs));
  for (const auto& [run, gens] : thinned_by_run) {
    for (int gen = kGenerations - 2; gen <= kGenerations; ++gen)
      EXPECT_EQ(gens.count(static_cast<uint64_t>(gen * 500)), 0u) << run << " generation " << gen;
    for (uint64_t gen : gens) EXPECT_NE(gen % (5 * 500), 0u) << run << " thinned a kept generation";
  }
}

}  // namespace
}  // namespace tierfs

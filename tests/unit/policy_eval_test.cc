// Unit tests of the rule evaluator: the default policy on every framework
// layout through 31 generations, rule-order semantics, and each safety rule.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>

#include "tests/unit/policy_test_util.h"

namespace tierfs {
namespace {

using namespace testing_util;

constexpr int kGenerations = 31;

// Builds generation i (1-based) of a layout, written (40 - i) hours ago.
using LayoutWriter = std::function<void(Tree&, int i, int64_t age)>;

// Under the default policy, with save interval `step`: the newest 3 complete
// generations stay (no action, already on SSD); every 5th interval of the
// older ones is moved to HDD and pinned; the rest are thinned. An incomplete
// generation is never thinned; abandoned for over an hour, it moves to HDD.
void ExpectDefaultOutcome(const Plan& plan, uint64_t step,
                          std::map<uint64_t, std::set<std::string>> expected = {}) {
  for (int i = 1; i <= kGenerations - 3; ++i) {
    uint64_t number = step * i;
    if (i % 5 == 0)
      expected[number] = {"migrate", "pin"};
    else
      expected[number] = {"thin"};
  }
  EXPECT_EQ(KindsByGeneration(plan), expected) << DescribePlan(plan);
  for (const Action& action : plan) {
    EXPECT_NE(action.kind, Action::Kind::kRefuse) << action.path << ": " << action.reason;
  }
}

Plan RunLayout(const LayoutWriter& write, const std::function<void(Tree&)>& finish) {
  Tree tree;
  for (int i = 1; i <= kGenerations; ++i) write(tree, i, (40 - i) * kHour);
  finish(tree);
  return Evaluate(DefaultPolicy(), tree.snapshot(), kNow);
}

TEST(PolicyEvalDefault, HuggingFaceTrainer) {
  Plan plan = RunLayout(
      [](Tree& t, int i, int64_t age) {
        std::string dir = "/runs/llama/checkpoint-" + std::to_string(500 * i);
        for (const char* f : {"model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth",
                              "trainer_state.json"}) {
          t.File(dir + "/" + f, 1 << 20, age);
        }
      },
      [](Tree& t) { t.File("/runs/llama/tmp-checkpoint-16000/model.safetensors", 1, kSecond); });
  ExpectDefaultOutcome(plan, 500);
  // Spot checks with the real names.
  const Action* thin = FindAction(plan, Action::Kind::kThin, "/runs/llama/checkpoint-9000");
  ASSERT_NE(thin, nullptr);
  EXPECT_EQ(thin->bytes, 5u << 20);
  EXPECT_EQ(thin->rule, "thin-superseded");
  const Action* pin = FindAction(plan, Action::Kind::kPin, "/runs/llama/checkpoint-10000");
  ASSERT_NE(pin, nullptr);
  EXPECT_EQ(pin->to, TierId::kHdd);
  EXPECT_EQ(pin->pin_until_ns, kNow - 20 * kHour + 90 * kDay);
  EXPECT_NE(FindAction(plan, Action::Kind::kMigrate, "/runs/llama/checkpoint-10000/optimizer.pt"),
            nullptr);
}

TEST(PolicyEvalDefault, PyTorchLightning) {
  const std::string dir = "/lightning_logs/version_0/checkpoints/";
  Plan plan = RunLayout(
      [&](Tree& t, int i, int64_t age) {
        t.File(
            dir + "epoch=" + std::to_string(i / 10) + "-step=" + std::to_string(100 * i) + ".ckpt",
            1 << 20, age);
      },
      [&](Tree& t) {
        t.Symlink(dir + "last.ckpt", "epoch=3-step=3100.ckpt");
        t.File(dir + "epoch=3-step=3200.ckpt", 1, kSecond).open = true;  // being written
      });
  ExpectDefaultOutcome(plan, 100);
}

TEST(PolicyEvalDefault, DeepSpeed) {
  Plan plan = RunLayout(
      [](Tree& t, int i, int64_t age) {
        std::string dir = "/out/llama/global_step" + std::to_string(100 * i);
        t.File(dir + "/mp_rank_00_model_states.pt", 1 << 20, age);
        t.File(dir + "/zero_pp_rank_0_mp_rank_00_optim_states.pt", 1 << 20, age);
      },
      [](Tree& t) {
        t.Text("/out/llama/latest", "global_step3100");
        t.File("/out/llama/global_step3200/mp_rank_00_model_states.pt", 1, 2 * kHour);  // crashed
      });
  ExpectDefaultOutcome(plan, 100, {{3200, {"migrate"}}});
}

TEST(PolicyEvalDefault, MegatronLM) {
  Plan plan = RunLayout(
      [](Tree& t, int i, int64_t age) {
        char dir[64];
        std::snprintf(dir, sizeof(dir), "/ckpt/gpt/iter_%07d", 100 * i);
        t.File(std::string(dir) + "/mp_rank_00/model_optim_rng.pt", 1 << 20, age);
        t.File(std::string(dir) + "/mp_rank_01/model_optim_rng.pt", 1 << 20, age);
      },
      [](Tree& t) {
        t.Text("/ckpt/gpt/latest_checkpointed_iteration.txt", "3100\n");
        t.File("/ckpt/gpt/iter_0003200/mp_rank_00/model_optim_rng.pt", 1, kSecond).open = true;
      });
  ExpectDefaultOutcome(plan, 100);
}

TEST(PolicyEvalDefault, NeMo) {
  const std::string dir = "/nemo_experiments/megatron_gpt/checkpoints/megatron_gpt--val_loss=";
  auto name = [&](int i) {
    return dir + std::to_string(3.0 - i / 20.0).substr(0, 4) + "-step=" + std::to_string(100 * i) +
           "-consumed_samples=" + std::to_string(800 * i) + ".0";
  };
  Plan plan =
      RunLayout([&](Tree& t, int i, int64_t age) { t.File(name(i) + ".ckpt", 1 << 20, age); },
                [&](Tree& t) {
                  t.File(name(31) + "-last.ckpt", 1 << 20, 9 * kHour);
                  t.File(name(32) + ".ckpt", 1 << 20, 2 * kHour);  // save crashed
                  t.File(name(32) + "-unfinished", 0, 2 * kHour);
                });
  ExpectDefaultOutcome(plan, 100, {{3200, {"migrate"}}});
}

TEST(PolicyEvalDefault, Orbax) {
  Plan plan = RunLayout(
      [](Tree& t, int i, int64_t age) {
        std::string dir = "/jax/run1/ckpt/" + std::to_string(100 * i);
        t.File(dir + "/_CHECKPOINT_METADATA", 100, age);
        t.File(dir + "/default/_METADATA", 100, age);
        t.File(dir + "/default/manifest.ocdbt", 1 << 20, age);
      },
      [](Tree& t) {
        t.File("/jax/run1/ckpt/3200.orbax-checkpoint-tmp-1764028800/default/_METADATA", 1, kSecond);
      });
  ExpectDefaultOutcome(plan, 100);
}

TEST(PolicyEvalDefault, TorchDistributedCheckpoint) {
  Plan plan = RunLayout(
      [](Tree& t, int i, int64_t age) {
        std::string dir = "/outputs/llama3_8b/checkpoint/step-" + std::to_string(100 * i);
        t.File(dir + "/__0_0.distcp", 1 << 20, age);
        t.File(dir + "/__1_0.distcp", 1 << 20, age);
        t.File(dir + "/.metadata", 4096, age);
      },
      [](Tree& t) {
        t.File("/outputs/llama3_8b/checkpoint/step-3200/__0_0.distcp", 1, 2 * kHour);
      });
  ExpectDefaultOutcome(plan, 100, {{3200, {"migrate"}}});
}

TEST(PolicyEvalDefault, OtherFilesMoveToHddAfterAnHourIdle) {
  Tree t;
  t.File("/data/old.parquet", 1 << 20, 2 * kHour);
  t.File("/data/fresh.parquet", 1 << 20, 10 * kMinute);
  t.File("/data/already.parquet", 1 << 20, 2 * kHour).tier = TierId::kHdd;
  t.File("/data/read-recently.parquet", 1 << 20, 2 * kHour).atime_ns = kNow - kMinute;
  Plan plan = Evaluate(DefaultPolicy(), t.snapshot(), kNow);
  ASSERT_EQ(plan.size(), 1u) << DescribePlan(plan);
  EXPECT_EQ(plan[0].path, "/data/old.parquet");
  EXPECT_EQ(plan[0].rule, "idle-to-hdd");
  EXPECT_EQ(plan[0].to, TierId::kHdd);
}

TEST(PolicyEvalDefault, DescribePlanGroupsByRule) {
  Tree t;
  for (int i = 1; i <= 8; ++i) {
    t.File("/r/checkpoint-" + std::to_string(i) + "/w", 10, (9 - i) * kHour);
  }
  t.File("/r/notes.txt", 3, 2 * kHour);
  std::string text = DescribePlan(Evaluate(DefaultPolicy(), t.snapshot(), kNow));
  EXPECT_NE(text.find("rule \"retain-every-5th\": 1 migrate"), std::string::npos) << text;
  EXPECT_NE(text.find("rule \"thin-superseded\": 4 thin (40 B)"), std::string::npos) << text;
  EXPECT_NE(text.find("  thin /r/checkpoint-1 [hf #1] 10 B"), std::string::npos) << text;
  EXPECT_NE(text.find("  migrate /r/notes.txt -> hdd"), std::string::npos) << text;
  EXPECT_EQ(DescribePlan({}), "nothing to do\n");
}

}  // namespace
}  // namespace tierfs

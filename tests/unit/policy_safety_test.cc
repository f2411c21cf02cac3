// Unit tests of the evaluator's safety rules, which no policy can override,
// and of rule-order semantics (first match per kind, exclude, pins retain).
#include <gtest/gtest.h>

#include "tests/unit/policy_test_util.h"

namespace tierfs {
namespace {

using namespace testing_util;

// A policy of one series and the given rules (TOML [[rule]] text).
Policy PolicyWith(const std::string& series, const std::string& rules) {
  Policy policy;
  Status st = ParsePolicy(series + rules, "test.toml", &policy);
  EXPECT_TRUE(st.ok()) << st.message();
  return policy;
}

const std::string kHf =
    "[[series]]\nname = \"hf\"\npattern = \"**/checkpoint-{gen}\"\ncomplete = \"rename\"\n";
const std::string kDeepSpeed =
    "[[series]]\nname = \"ds\"\npattern = \"**/global_step{gen}\"\ncomplete = \"pointer:latest\"\n";
const std::string kThinAll = "[[rule]]\nname = \"thin-all\"\nseries = \"*\"\naction = \"thin\"\n";
const std::string kThinOld =
    "[[rule]]\nname = \"thin-old\"\nseries = \"*\"\nolder_than_newest = 1\naction = \"thin\"\n";

// The refusal for `path`, or a failure.
std::string RefusalOf(const Plan& plan, const std::string& path) {
  const Action* refuse = FindAction(plan, Action::Kind::kRefuse, path);
  EXPECT_NE(refuse, nullptr) << path << " not refused:\n" << DescribePlan(plan);
  EXPECT_EQ(FindAction(plan, Action::Kind::kThin, path), nullptr) << path;
  return refuse ? refuse->reason : "";
}

Tree ThreeHfGenerations() {
  Tree t;
  for (int g : {100, 200, 300}) t.File("/r/checkpoint-" + std::to_string(g) + "/model.bin");
  return t;
}

TEST(PolicySafety, NeverThinsTheNewestCompleteGeneration) {
  Plan plan = Evaluate(PolicyWith(kHf, kThinAll), ThreeHfGenerations().snapshot(), kNow);
  EXPECT_NE(RefusalOf(plan, "/r/checkpoint-300").find("newest complete hf generation 300"),
            std::string::npos);
  EXPECT_NE(FindAction(plan, Action::Kind::kThin, "/r/checkpoint-200"), nullptr);
  // Newest per instance: another run's newer checkpoint does not expose this one.
  Tree t = ThreeHfGenerations();
  t.File("/other/checkpoint-900/model.bin");
  plan = Evaluate(PolicyWith(kHf, kThinAll), t.snapshot(), kNow);
  RefusalOf(plan, "/r/checkpoint-300");
  RefusalOf(plan, "/other/checkpoint-900");
}

// In a group-writable directory another user may rename the owner's
// generations but not delete them. Renaming the old checkpoint-100 to
// checkpoint-1000 (a rename keeps its inode, older than checkpoint-200's)
// must not make the policy thin the owner's newest, checkpoint-200.
TEST(PolicySafety, ARenamedOldGenerationSupersedesNothing) {
  Tree t;
  t.File("/p/run/checkpoint-1000/model.bin");  // was checkpoint-100: created first
  t.File("/p/run/checkpoint-200/model.bin");
  Plan plan = Evaluate(PolicyWith(kHf, kThinOld), t.snapshot(), kNow);
  EXPECT_EQ(FindAction(plan, Action::Kind::kThin, "/p/run/checkpoint-200"), nullptr)
      << DescribePlan(plan);
  EXPECT_EQ(FindAction(plan, Action::Kind::kThin, "/p/run/checkpoint-1000"), nullptr)
      << DescribePlan(plan);
  // A generation newer in both ways supersedes them both.
  t.File("/p/run/checkpoint-1300/model.bin");
  plan = Evaluate(PolicyWith(kHf, kThinOld), t.snapshot(), kNow);
  EXPECT_NE(FindAction(plan, Action::Kind::kThin, "/p/run/checkpoint-200"), nullptr)
      << DescribePlan(plan);
  EXPECT_NE(FindAction(plan, Action::Kind::kThin, "/p/run/checkpoint-1000"), nullptr)
      << DescribePlan(plan);
}

TEST(PolicySafety, NeverThinsWhatDeepSpeedLatestNames) {
  const std::string series =
      "[[series]]\nname = \"ds\"\npattern = \"**/global_step{gen}\"\n"
      "complete = \"rename\"\npointers = [\"latest\"]\n";
  Tree t;
  for (int g : {1100, 1200, 1300}) t.File("/o/global_step" + std::to_string(g) + "/states.pt");
  t.Text("/o/latest", "global_step1200\n");  // e.g. the run was rolled back to 1200
  Plan plan = Evaluate(PolicyWith(series, kThinOld), t.snapshot(), kNow);
  EXPECT_NE(RefusalOf(plan, "/o/global_step1200").find("named by /o/latest"), std::string::npos);
  EXPECT_NE(FindAction(plan, Action::Kind::kThin, "/o/global_step1100"), nullptr);
}

TEST(PolicySafety, NeverThinsWhatTheMegatronTrackerNames) {
  const std::string series =
      "[[series]]\nname = \"mg\"\npattern = \"**/iter_{gen}\"\ncomplete = \"rename\"\n"
      "pointers = [\"latest_checkpointed_iteration.txt\"]\n";
  Tree t;
  for (int g : {1100, 1200, 1300}) t.File("/m/iter_000" + std::to_string(g) + "/mp_rank_00/m.pt");
  t.Text("/m/latest_checkpointed_iteration.txt", "1200");
  Plan plan = Evaluate(PolicyWith(series, kThinOld), t.snapshot(), kNow);
  EXPECT_NE(RefusalOf(plan, "/m/iter_0001200").find("named by"), std::string::npos);
  EXPECT_NE(FindAction(plan, Action::Kind::kThin, "/m/iter_0001100"), nullptr);
}

TEST(PolicySafety, NeverThinsWhatLightningLastCkptLinksTo) {
  const std::string dir = "/l/checkpoints/";
  Tree t;
  for (int s : {100, 200, 300}) t.File(dir + "epoch=0-step=" + std::to_string(s) + ".ckpt");
  t.Symlink(dir + "last.ckpt", "epoch=0-step=100.ckpt");
  Policy policy = DefaultPolicy();
  policy.rules = PolicyWith(kHf, kThinOld).rules;  // "series = *" resolves without indexes
  Plan plan = Evaluate(policy, t.snapshot(), kNow);
  EXPECT_NE(RefusalOf(plan, dir + "epoch=0-step=100.ckpt").find("named by " + dir + "last.ckpt"),
            std::string::npos);
  EXPECT_NE(FindAction(plan, Action::Kind::kThin, dir + "epoch=0-step=200.ckpt"), nullptr);
}

TEST(PolicySafety, NeverThinsAnIncompleteGeneration) {
  Tree t;
  for (int g : {100, 200, 300, 400}) t.File("/o/global_step" + std::to_string(g) + "/states.pt");
  t.Text("/o/latest", "global_step300");  // 400 is still being written
  Plan plan = Evaluate(PolicyWith(kDeepSpeed, kThinAll), t.snapshot(), kNow);
  EXPECT_NE(RefusalOf(plan, "/o/global_step400").find("incomplete"), std::string::npos);
  // The incomplete 400 does not make 300 any less the newest complete one.
  EXPECT_NE(RefusalOf(plan, "/o/global_step300").find("newest complete"), std::string::npos);
  EXPECT_NE(FindAction(plan, Action::Kind::kThin, "/o/global_step200"), nullptr);

  // Selectors only count complete generations: older_than_newest = 1 thins
  // 100 and 200, and never 300 on the strength of the incomplete 400.
  plan = Evaluate(PolicyWith(kDeepSpeed, kThinOld), t.snapshot(), kNow);
  EXPECT_EQ(KindsByGeneration(plan),
            (std::map<uint64_t, std::set<std::string>>{{100, {"thin"}}, {200, {"thin"}}}));

  // Without its pointer nothing is complete, so nothing is thinned.
  Tree no_pointer;
  for (int g : {100, 200}) no_pointer.File("/o/global_step" + std::to_string(g) + "/states.pt");
  plan = Evaluate(PolicyWith(kDeepSpeed, kThinAll), no_pointer.snapshot(), kNow);
  RefusalOf(plan, "/o/global_step100");
}

TEST(PolicySafety, NeverThinsAGenerationBeingWritten) {
  Tree t = ThreeHfGenerations();
  t.At("/r/checkpoint-100/model.bin").open = true;  // e.g. a resumed job re-reading it
  Plan plan = Evaluate(PolicyWith(kHf, kThinOld), t.snapshot(), kNow);
  EXPECT_NE(RefusalOf(plan, "/r/checkpoint-100").find("/r/checkpoint-100/model.bin is open"),
            std::string::npos);
}

TEST(PolicySafety, NeverThinsAnythingOpenPinnedOrImmutable) {
  const std::string thin_tmp =
      "[[rule]]\nname = \"thin-tmp\"\npath = \"**/*.tmp\"\naction = \"thin\"\n";
  Tree t;
  t.File("/s/open.tmp").open = true;
  FileFacts& held = t.File("/s/held.tmp");
  held.pinned = true, held.pin_until_ns = kNow + kDay;
  FileFacts& expired = t.File("/s/expired.tmp");
  expired.pinned = true, expired.pin_until_ns = kNow - kSecond;
  FileFacts& forever = t.File("/s/forever.tmp");
  forever.pinned = true;  // no end
  t.File("/s/frozen.tmp").immutable = true;
  t.File("/s/plain.tmp");
  Plan plan = Evaluate(PolicyWith(kHf, thin_tmp), t.snapshot(), kNow);
  EXPECT_NE(RefusalOf(plan, "/s/open.tmp").find("is open"), std::string::npos);
  EXPECT_NE(RefusalOf(plan, "/s/held.tmp").find("pinned for another 1d"), std::string::npos);
  EXPECT_NE(RefusalOf(plan, "/s/forever.tmp").find("is pinned"), std::string::npos);
  EXPECT_NE(RefusalOf(plan, "/s/frozen.tmp").find("immutable"), std::string::npos);
  EXPECT_NE(FindAction(plan, Action::Kind::kThin, "/s/expired.tmp"), nullptr);
  EXPECT_NE(FindAction(plan, Action::Kind::kThin, "/s/plain.tmp"), nullptr);

  // The same inside a generation: one pinned or immutable file protects all of it.
  for (bool immutable : {false, true}) {
    Tree g = ThreeHfGenerations();
    FileFacts& f = g.At("/r/checkpoint-100/model.bin");
    (immutable ? f.immutable : f.pinned) = true;
    plan = Evaluate(PolicyWith(kHf, kThinOld), g.snapshot(), kNow);
    RefusalOf(plan, "/r/checkpoint-100");
  }
}

// In a shared sticky directory, other users' newer generations used to make
// the engine thin root's older one: a series now spans one owner's
// generations only, and the thin the bound prevents is a refusal.
Tree StickyDirWithRootsOldGeneration() {
  Tree t;
  t.Dir("/shared").uid = 0;
  for (int g = 1; g <= 5; ++g) {
    const std::string gen = "/shared/checkpoint-" + std::to_string(g);
    const uint32_t uid = g == 1 ? 0 : 65534;
    t.Dir(gen).uid = uid;
    t.File(gen + "/model.bin").uid = uid;
  }
  return t;
}

TEST(PolicySafety, OtherOwnersNewerGenerationsNeverThinAGeneration) {
  Tree t = StickyDirWithRootsOldGeneration();
  Plan plan = Evaluate(DefaultPolicy(), t.snapshot(), kNow);
  EXPECT_EQ(FindAction(plan, Action::Kind::kThin, "/shared/checkpoint-1"), nullptr)
      << DescribePlan(plan);
  std::string why = RefusalOf(plan, "/shared/checkpoint-1");
  EXPECT_NE(why.find("owned by uid 0"), std::string::npos) << why;
  EXPECT_NE(why.find("by uid 65534"), std::string::npos) << why;
  EXPECT_NE(why.find("does not span owners"), std::string::npos) << why;
  // The other user's own series is thinned as usual (2 has 3 newer: 3, 4, 5).
  EXPECT_NE(FindAction(plan, Action::Kind::kThin, "/shared/checkpoint-2"), nullptr)
      << DescribePlan(plan);
  // A series that spans owners (the admin's choice) counts them all.
  Plan spanning = Evaluate(PolicyWith(kHf + "span_owners = true\n", kThinOld), t.snapshot(), kNow);
  EXPECT_NE(FindAction(spanning, Action::Kind::kThin, "/shared/checkpoint-1"), nullptr)
      << DescribePlan(spanning);
  Plan bounded = Evaluate(PolicyWith(kHf, kThinOld), t.snapshot(), kNow);
  EXPECT_EQ(FindAction(bounded, Action::Kind::kThin, "/shared/checkpoint-1"), nullptr);
  EXPECT_NE(FindAction(bounded, Action::Kind::kRefuse, "/shared/checkpoint-1"), nullptr);
}

TEST(PolicySafety, AFileRuleCannotThinPartOfAProtectedGeneration) {
  const std::string thin_bins =
      "[[rule]]\nname = \"thin-bins\"\npath = \"**/*.bin\"\naction = \"thin\"\n";
  Plan plan = Evaluate(PolicyWith(kHf, thin_bins), ThreeHfGenerations().snapshot(), kNow);
  EXPECT_NE(RefusalOf(plan, "/r/checkpoint-300/model.bin").find("newest complete"),
            std::string::npos);
}

TEST(PolicyRules, FirstMatchWinsPerKindAndExcludeShields) {
  const std::string rules =
      "[[rule]]\nname = \"keep-scratch\"\npath = \"/scratch/**\"\naction = \"exclude\"\n"
      "[[rule]]\nname = \"big-to-hdd\"\nmin_size = \"1MiB\"\naction = \"migrate\"\nto = \"hdd\"\n"
      "[[rule]]\nname = \"all-to-ssd\"\naction = \"migrate\"\nto = \"ssd\"\n"
      "[[rule]]\nname = \"thin-tmp\"\npath = \"**/*.tmp\"\naction = \"thin\"\n";
  Tree t;
  t.File("/scratch/x.tmp", 5 << 20);
  t.File("/data/big.tmp", 5 << 20);
  t.File("/data/small", 10).tier = TierId::kHdd;
  Plan plan = Evaluate(PolicyWith(kHf, rules), t.snapshot(), kNow);
  EXPECT_EQ(FindAction(plan, Action::Kind::kThin, "/scratch/x.tmp"), nullptr);
  EXPECT_EQ(FindAction(plan, Action::Kind::kMigrate, "/scratch/x.tmp"), nullptr);
  const Action* big = FindAction(plan, Action::Kind::kThin, "/data/big.tmp");
  ASSERT_NE(big, nullptr);  // thinned, so not also migrated
  EXPECT_EQ(FindAction(plan, Action::Kind::kMigrate, "/data/big.tmp"), nullptr);
  const Action* small = FindAction(plan, Action::Kind::kMigrate, "/data/small");
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(small->rule, "all-to-ssd");
  EXPECT_EQ(small->to, TierId::kSsd);
}

TEST(PolicyRules, APinInEffectRetainsAndExpiresIntoThinning) {
  const std::string rules =
      "[[rule]]\nname = \"keep-200\"\nseries = \"hf\"\npath = \"**/checkpoint-200\"\n"
      "action = \"pin\"\nfor = \"7d\"\nimmutable = true\n" +
      kThinOld;
  Tree t = ThreeHfGenerations();
  Plan plan = Evaluate(PolicyWith(kHf, rules), t.snapshot(), kNow);
  const Action* pin = FindAction(plan, Action::Kind::kPin, "/r/checkpoint-200/model.bin");
  ASSERT_NE(pin, nullptr);
  EXPECT_TRUE(pin->immutable);
  EXPECT_EQ(pin->pin_until_ns, kNow - kDay + 7 * kDay);  // from the last write
  EXPECT_EQ(FindAction(plan, Action::Kind::kThin, "/r/checkpoint-200"), nullptr);
  EXPECT_EQ(FindAction(plan, Action::Kind::kRefuse, "/r/checkpoint-200"), nullptr);
  EXPECT_NE(FindAction(plan, Action::Kind::kThin, "/r/checkpoint-100"), nullptr);
  // Eight days later the pin has ended and the generation is thinned like any other.
  plan = Evaluate(PolicyWith(kHf, rules), t.snapshot(), kNow + 7 * kDay);
  EXPECT_NE(FindAction(plan, Action::Kind::kThin, "/r/checkpoint-200"), nullptr);
}

// last write + 15250 weeks passes INT64_MAX: the end saturates instead of
// wrapping into the past (which pinned nothing and let the thin rule run).
TEST(PolicyRules, AFarFuturePinSaturatesAndHolds) {
  for (const char* hold : {"for = \"15250w\"", "until = 2262-04-11T23:47:16Z"}) {
    const std::string rules =
        "[[rule]]\nname = \"keep-200\"\nseries = \"hf\"\npath = \"**/checkpoint-200\"\n"
        "action = \"pin\"\n" +
        std::string(hold) + "\n" + kThinOld;
    Tree t = ThreeHfGenerations();
    Plan plan = Evaluate(PolicyWith(kHf, rules), t.snapshot(), kNow);
    const Action* pin = FindAction(plan, Action::Kind::kPin, "/r/checkpoint-200/model.bin");
    ASSERT_NE(pin, nullptr) << hold << "\n" << DescribePlan(plan);
    EXPECT_GT(pin->pin_until_ns, int64_t{9'223'372'000} * kSecond) << hold;
    EXPECT_EQ(FindAction(plan, Action::Kind::kThin, "/r/checkpoint-200"), nullptr) << hold;
    EXPECT_NE(FindAction(plan, Action::Kind::kThin, "/r/checkpoint-100"), nullptr) << hold;
  }
}

TEST(PolicyRules, AlreadyPlacedAndAlreadyPinnedFilesNeedNoAction) {
  const std::string rules =
      "[[rule]]\nname = \"hold\"\nseries = \"hf\"\naction = \"pin\"\nto = \"hdd\"\n";
  Tree t = ThreeHfGenerations();
  for (FileFacts& f : const_cast<Snapshot&>(t.snapshot())) {
    f.tier = TierId::kHdd;
    f.pinned = true;
  }
  EXPECT_TRUE(Evaluate(PolicyWith(kHf, rules), t.snapshot(), kNow).empty());
}

}  // namespace
}  // namespace tierfs

// Manual pins (Store::Hold manual, tier, uid): the record round-trips, a
// rule's pin never replaces one in force (Holds::HoldTree), a manual move
// keeps an immutable hold's end (Holds::HoldForMove), and the evaluator
// refuses every rule on a manually pinned file, saying who pinned it where.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "fs/holds.h"
#include "policy/policy.h"
#include "tests/unit/policy_test_util.h"
#include "tests/unit/store_fixture.h"
#include "tiering/uring_copy.h"

namespace tierfs {
namespace {

using namespace testing_util;

class ManualPinsTest : public StoreFixture {
 protected:
  uint64_t MakeFile(const std::string& name) {
    NewNode node;
    node.mode = S_IFREG | 0644;
    Inode n;
    Status st = store_->Create(kRootIno, name, node, &n);
    EXPECT_TRUE(st.ok()) << st.message();
    return n.ino;
  }
};

TEST_F(ManualPinsTest, ManualHoldRoundTripsAndARulePinDoesNotReplaceIt) {
  const uint64_t f = MakeFile("f");
  Store::Hold manual;
  manual.rule = "manual";
  manual.manual = true;
  manual.tier = TierId::kHdd;
  manual.uid = 4242;
  manual.since_ns = NowNs();
  ASSERT_TRUE(store_->SetHold(f, manual).ok());
  Store::Hold got;
  ASSERT_TRUE(store_->GetHold(f, &got).ok());
  EXPECT_TRUE(got.manual);
  ASSERT_TRUE(got.tier.has_value());
  EXPECT_EQ(TierId::kHdd, *got.tier);
  EXPECT_EQ(4242u, got.uid);
  EXPECT_EQ("manual", got.rule);

  Holds holds(*store_);
  Store::Hold rule;
  rule.rule = "keep-a-week";
  rule.until_ns = NowNs() + 7 * kDay;
  int changed = -1;
  ASSERT_TRUE(holds.HoldTree(f, rule, &changed).ok());
  EXPECT_EQ(0, changed);
  ASSERT_TRUE(store_->GetHold(f, &got).ok());
  EXPECT_TRUE(got.manual);
  EXPECT_EQ(4242u, got.uid);

  // A rule hold decodes as it did before manual holds existed.
  const uint64_t g = MakeFile("g");
  ASSERT_TRUE(store_->SetHold(g, rule).ok());
  ASSERT_TRUE(store_->GetHold(g, &got).ok());
  EXPECT_FALSE(got.manual);
  EXPECT_FALSE(got.tier.has_value());
  EXPECT_EQ(0u, got.uid);
}

TEST_F(ManualPinsTest, HoldForMoveKeepsAnImmutableHoldsEnd) {
  const uint64_t f = MakeFile("f");
  Store::Hold frozen;
  frozen.rule = "legal";
  frozen.immutable = true;
  frozen.until_ns = NowNs() + kDay;
  ASSERT_TRUE(store_->SetHold(f, frozen).ok());
  Holds holds(*store_);
  int changed = 0;
  ASSERT_TRUE(holds.HoldForMove(f, TierId::kSsd, 7, &changed).ok());
  EXPECT_EQ(1, changed);
  Store::Hold got;
  ASSERT_TRUE(store_->GetHold(f, &got).ok());
  EXPECT_TRUE(got.manual && got.immutable);
  EXPECT_EQ(frozen.until_ns, got.until_ns);
  EXPECT_EQ(TierId::kSsd, *got.tier);
  EXPECT_EQ(7u, got.uid);
}

TEST(ManualPinsEvalTest, NoRuleMovesThinsOrRepinsAManuallyPinnedFile) {
  Policy policy;
  ASSERT_TRUE(ParsePolicy("[[rule]]\nname = \"keep\"\npath = \"/p/**\"\naction = \"pin\"\n"
                          "for = \"7d\"\n"
                          "[[rule]]\nname = \"to-ssd\"\npath = \"/a/**\"\naction = \"migrate\"\n"
                          "to = \"ssd\"\n"
                          "[[rule]]\nname = \"wipe\"\npath = \"/a/*\"\naction = \"thin\"\n",
                          "t", &policy)
                  .ok());
  Tree tree;
  for (const char* p : {"/a/x", "/a/y", "/p/z"}) {
    FileFacts& f = tree.File(p);
    f.tier = TierId::kHdd;
    f.pinned = f.manual_pin = true;
    f.pin_tier = TierId::kHdd;
    f.pin_uid = 1000;
    f.pin_until_ns = kNow + kDay;
  }
  tree.At("/a/y").pin_until_ns = kNow - 1;  // expired: the rules act again
  const Plan plan = Evaluate(policy, tree.snapshot(), kNow);
  int refused = 0, acted = 0;
  for (const Action& a : plan) {
    if (a.path == "/a/y") {
      acted += a.kind != Action::Kind::kRefuse;
      continue;
    }
    if (a.path != "/a/x" && a.path != "/p/z") continue;  // the directories have no pin
    EXPECT_EQ(Action::Kind::kRefuse, a.kind) << a.path << " " << a.rule;
    EXPECT_NE(std::string::npos,
              a.reason.find("manually pinned to hdd by uid 1000 until 2026-11-26"))
        << a.reason;
    ++refused;
  }
  EXPECT_EQ(3, refused);  // /a/x: migrate and thin; /p/z: pin
  EXPECT_EQ(1, acted);    // /a/y is thinned
  EXPECT_NE(std::string::npos, DescribePlan(plan).find("manually pinned to hdd by uid 1000"));
}

// tierctl move's progress: the copy adds every byte it writes (whichever
// path, io_uring or plain, this machine runs).
TEST(ManualPinsCopyTest, CopyReportsEveryByteWrittenAsProgress) {
  char in_name[] = "/tmp/tierfs-progress-in-XXXXXX";
  char out_name[] = "/tmp/tierfs-progress-out-XXXXXX";
  const int in = mkstemp(in_name), out = mkstemp(out_name);
  ASSERT_GE(in, 0);
  ASSERT_GE(out, 0);
  unlink(in_name);
  unlink(out_name);
  const std::string data(5 * 1000 * 1000 + 123, 'p');
  ASSERT_EQ(ssize_t(data.size()), pwrite(in, data.data(), data.size(), 0));
  CopyParams p;
  p.chunk_bytes = 1 << 20;
  std::atomic<uint64_t> progress{0};
  p.progress = &progress;
  uint64_t hash = 0;
  Status st = CopyAndHash(in, out, data.size(), p, &hash);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(data.size(), progress.load());
  close(in);
  close(out);
}

// A manual move only keeps the tier: the rules may still thin the file.
TEST(ManualPinsEvalTest, AManuallyPlacedFileIsNotMigratedButMayBeThinned) {
  Policy policy;
  ASSERT_TRUE(ParsePolicy("[[rule]]\nname = \"to-ssd\"\npath = \"/a/**\"\naction = \"migrate\"\n"
                          "to = \"ssd\"\n"
                          "[[rule]]\nname = \"wipe\"\npath = \"/a/old\"\naction = \"thin\"\n",
                          "t", &policy)
                  .ok());
  Tree tree;
  for (const char* p : {"/a/old", "/a/new"}) {
    FileFacts& f = tree.File(p);
    f.tier = TierId::kHdd;
    f.placed = true;
    f.pin_tier = TierId::kHdd;
    f.pin_uid = 7;
  }
  const Plan plan = Evaluate(policy, tree.snapshot(), kNow);
  bool thinned = false, refused = false;
  for (const Action& a : plan) {
    EXPECT_NE(Action::Kind::kMigrate, a.kind) << a.path;
    if (a.path == "/a/old" && a.kind == Action::Kind::kThin) thinned = true;
    if (a.path == "/a/new" && a.kind == Action::Kind::kRefuse) {
      refused = true;
      EXPECT_NE(std::string::npos, a.reason.find("manually placed on hdd by uid 7")) << a.reason;
    }
  }
  EXPECT_TRUE(thinned);
  EXPECT_TRUE(refused);
}

}  // namespace
}  // namespace tierfs

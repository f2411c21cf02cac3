// Unit tests of fs/holds: the one mutability check (EPERM naming the rule
// while an immutable hold is in force), hold expiry, and HoldTree's counts.
// A real Store, no mount.
#include "fs/holds.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/unit/store_fixture.h"

namespace tierfs {
namespace {

constexpr int64_t kHourNs = int64_t(3600) * 1000000000;

class HoldsTest : public StoreFixture {
 protected:
  uint64_t Make(uint64_t parent, const std::string& name, bool dir) {
    NewNode node;
    node.mode = dir ? (S_IFDIR | 0755) : (S_IFREG | 0644);
    Inode n;
    Status st = store_->Create(parent, name, node, &n);
    EXPECT_TRUE(st.ok()) << st.message();
    return n.ino;
  }
  static Store::Hold HoldOf(const std::string& rule, bool immutable, int64_t until_ns) {
    Store::Hold h;
    h.rule = rule;
    h.immutable = immutable;
    h.until_ns = until_ns;
    h.since_ns = NowNs();
    return h;
  }
};

TEST_F(HoldsTest, CheckMutableRefusesOnlyWhileAnImmutableHoldIsInForce) {
  Holds holds(*store_);
  const uint64_t frozen = Make(kRootIno, "frozen", false);
  const uint64_t pinned = Make(kRootIno, "pinned", false);
  const uint64_t expired = Make(kRootIno, "expired", false);
  const uint64_t free_file = Make(kRootIno, "free", false);
  int changed = 0;
  ASSERT_TRUE(holds.HoldTree(frozen, HoldOf("keep", true, NowNs() + kHourNs), &changed).ok());
  ASSERT_TRUE(holds.HoldTree(pinned, HoldOf("pin-only", false, 0), &changed).ok());
  ASSERT_TRUE(holds.HoldTree(expired, HoldOf("old", true, NowNs() - kHourNs), &changed).ok());

  Status st = holds.CheckMutable(frozen, "unlink");
  EXPECT_EQ(EPERM, st.err());
  EXPECT_NE(std::string::npos, st.message().find("'keep'")) << st.message();
  EXPECT_NE(std::string::npos, st.message().find("unlink")) << st.message();
  EXPECT_TRUE(holds.CheckMutable(pinned, "write").ok());     // a pin alone does not freeze
  EXPECT_TRUE(holds.CheckMutable(expired, "write").ok());    // its time is up
  EXPECT_TRUE(holds.CheckMutable(free_file, "write").ok());  // no hold
  // By entry: the inode the name leads to; a missing name is the op's to report.
  EXPECT_EQ(EPERM, holds.CheckEntryMutable(kRootIno, "frozen", "rename").err());
  EXPECT_TRUE(holds.CheckEntryMutable(kRootIno, "free", "rename").ok());
  EXPECT_TRUE(holds.CheckEntryMutable(kRootIno, "missing", "rename").ok());
  // An indefinite immutable hold never runs out.
  ASSERT_TRUE(holds.HoldTree(free_file, HoldOf("forever", true, 0), &changed).ok());
  EXPECT_EQ(EPERM, holds.CheckMutable(free_file, "chmod").err());
}

TEST_F(HoldsTest, CheckMutableAsksTheStoreOnlyAfterCounting) {
  // A hold written behind the unit's back is not seen until Count: the check
  // is cheap while the unit counts no immutable hold.
  const uint64_t ino = Make(kRootIno, "f", false);
  ASSERT_TRUE(store_->SetHold(ino, HoldOf("keep", true, NowNs() + kHourNs)).ok());
  Holds holds(*store_);
  EXPECT_TRUE(holds.CheckMutable(ino, "write").ok());
  holds.Count();
  EXPECT_EQ(EPERM, holds.CheckMutable(ino, "write").err());
}

TEST_F(HoldsTest, ExpireHoldsRemovesExpiredHoldsAndReturnsOneRecordEach) {
  Holds holds(*store_);
  const uint64_t a = Make(kRootIno, "a", false);
  const uint64_t b = Make(kRootIno, "b", false);
  const uint64_t c = Make(kRootIno, "c", false);
  const int64_t now = NowNs();
  int changed = 0;
  ASSERT_TRUE(holds.HoldTree(a, HoldOf("short", true, now + kHourNs), &changed).ok());
  ASSERT_TRUE(holds.HoldTree(b, HoldOf("long", false, now + 10 * kHourNs), &changed).ok());
  ASSERT_TRUE(holds.HoldTree(c, HoldOf("forever", false, 0), &changed).ok());
  ASSERT_EQ(EPERM, holds.CheckMutable(a, "write").err());

  std::vector<AuditRecord> records;
  EXPECT_EQ(0, holds.ExpireHolds(now, &records));
  EXPECT_TRUE(records.empty());
  // Two hours on: only a's hold is up.
  EXPECT_EQ(1, holds.ExpireHolds(now + 2 * kHourNs, &records));
  ASSERT_EQ(1u, records.size());
  EXPECT_EQ("unpin", records[0].action);
  EXPECT_EQ("short", records[0].rule);
  EXPECT_EQ(a, records[0].ino);
  EXPECT_EQ("ok", records[0].result);
  Store::Hold h;
  EXPECT_EQ(ENOENT, store_->GetHold(a, &h).err());
  EXPECT_TRUE(store_->GetHold(b, &h).ok());
  EXPECT_TRUE(store_->GetHold(c, &h).ok());
  EXPECT_TRUE(holds.CheckMutable(a, "write").ok());

  // No immutable hold is left, and the unit knows it: a hold written behind
  // its back is not looked up (the cheap path), which a stale count of 1
  // would do.
  ASSERT_TRUE(store_->SetHold(a, HoldOf("behind", true, 0)).ok());
  EXPECT_TRUE(holds.CheckMutable(a, "write").ok());
}

TEST_F(HoldsTest, HoldTreeCountsChangesAndIsIdempotent) {
  Holds holds(*store_);
  const uint64_t dir = Make(kRootIno, "gen", true);
  const uint64_t sub = Make(dir, "sub", true);
  const uint64_t f1 = Make(dir, "f1", false);
  const uint64_t f2 = Make(sub, "f2", false);
  const uint64_t outside = Make(kRootIno, "outside", false);
  const Store::Hold hold = HoldOf("keep", false, NowNs() + kHourNs);
  int changed = -1;
  ASSERT_TRUE(holds.HoldTree(dir, hold, &changed).ok());
  EXPECT_EQ(4, changed);  // gen, sub, f1, f2
  Store::Hold got;
  for (uint64_t ino : {dir, sub, f1, f2}) {
    ASSERT_TRUE(store_->GetHold(ino, &got).ok()) << ino;
    EXPECT_EQ("keep", got.rule);
    EXPECT_EQ(hold.until_ns, got.until_ns);
  }
  EXPECT_EQ(ENOENT, store_->GetHold(outside, &got).err());
  // The same hold again changes nothing.
  ASSERT_TRUE(holds.HoldTree(dir, hold, &changed).ok());
  EXPECT_EQ(0, changed);
  // Each field counts: longer, immutable, another rule.
  Store::Hold longer = hold;
  longer.until_ns += kHourNs;
  ASSERT_TRUE(holds.HoldTree(dir, longer, &changed).ok());
  EXPECT_EQ(4, changed);
  Store::Hold frozen = longer;
  frozen.immutable = true;
  ASSERT_TRUE(holds.HoldTree(f2, frozen, &changed).ok());
  EXPECT_EQ(1, changed);
  EXPECT_EQ(EPERM, holds.CheckMutable(f2, "write").err());
  EXPECT_TRUE(holds.CheckMutable(f1, "write").ok());
  Store::Hold renamed = longer;
  renamed.rule = "other";
  ASSERT_TRUE(holds.HoldTree(sub, renamed, &changed).ok());
  EXPECT_EQ(2, changed);                              // sub and f2
  EXPECT_TRUE(holds.CheckMutable(f2, "write").ok());  // no longer immutable
}

TEST_F(HoldsTest, HoldTreeOfAMissingInodeFails) {
  Holds holds(*store_);
  int changed = -1;
  EXPECT_EQ(ENOENT, holds.HoldTree(999, HoldOf("keep", true, 0), &changed).err());
  EXPECT_EQ(0, changed);
}

}  // namespace
}  // namespace tierfs

// Unit tests of the move journal in meta/Store (BeginMove, CommitMove,
// EndMove, ListMoves).
#include <gtest/gtest.h>

#include "meta/store.h"
#include "tests/unit/store_fixture.h"

namespace tierfs {
namespace {

class StoreJournalTest : public StoreFixture {
 protected:
  uint64_t MakeFile(const std::string& name) {
    NewNode node;
    node.mode = S_IFREG | 0644;
    Inode n;
    EXPECT_TRUE(store_->Create(kRootIno, name, node, &n).ok());
    return n.ino;
  }
  static Store::MoveRecord Rec(uint64_t ino, TierId from = TierId::kSsd, TierId to = TierId::kHdd) {
    Store::MoveRecord r;
    r.ino = ino;
    r.from = from;
    r.to = to;
    r.started_ns = 42;
    return r;
  }
};

TEST_F(StoreJournalTest, RecordLifecycleSurvivesReopen) {
  uint64_t a = MakeFile("a"), b = MakeFile("b");
  ASSERT_TRUE(store_->BeginMove(Rec(b)).ok());
  ASSERT_TRUE(store_->BeginMove(Rec(a)).ok());
  Reopen();
  std::vector<Store::MoveRecord> recs;
  ASSERT_TRUE(store_->ListMoves(&recs).ok());
  ASSERT_EQ(2u, recs.size());
  EXPECT_EQ(a, recs[0].ino);  // inode order
  EXPECT_EQ(b, recs[1].ino);
  EXPECT_EQ(Store::MoveState::kCopying, recs[0].state);
  EXPECT_EQ(42, recs[0].started_ns);

  ASSERT_TRUE(store_->CommitMove(a, TierId::kHdd, 0xabcdef).ok());
  Inode n;
  ASSERT_TRUE(store_->GetInode(a, &n).ok());
  EXPECT_EQ(TierId::kHdd, n.tier);
  EXPECT_EQ(0xabcdefu, n.checksum);
  ASSERT_TRUE(store_->ListMoves(&recs).ok());
  EXPECT_EQ(Store::MoveState::kSwitched, recs[0].state);

  ASSERT_TRUE(store_->EndMove(a).ok());
  ASSERT_TRUE(store_->EndMove(a).ok());  // idempotent
  ASSERT_TRUE(store_->ListMoves(&recs).ok());
  ASSERT_EQ(1u, recs.size());
  EXPECT_EQ(b, recs[0].ino);
}

TEST_F(StoreJournalTest, BeginChecksInodeAndOverlap) {
  uint64_t a = MakeFile("a");
  EXPECT_EQ(ENOENT, store_->BeginMove(Rec(999)).err());
  EXPECT_EQ(EINVAL, store_->BeginMove(Rec(kRootIno)).err());
  EXPECT_EQ(EINVAL, store_->BeginMove(Rec(a, TierId::kHdd, TierId::kSsd)).err());
  ASSERT_TRUE(store_->BeginMove(Rec(a)).ok());
  Status st = store_->BeginMove(Rec(a));
  EXPECT_EQ(EBUSY, st.err());
  EXPECT_NE(std::string::npos, st.message().find("inode " + std::to_string(a))) << st.message();
}

TEST_F(StoreJournalTest, CommitRefusesStaleMoves) {
  uint64_t a = MakeFile("a");
  EXPECT_EQ(ENOENT, store_->CommitMove(a, TierId::kHdd, 1).err());  // no record
  ASSERT_TRUE(store_->BeginMove(Rec(a)).ok());
  EXPECT_EQ(ESTALE, store_->CommitMove(a, TierId::kSsd, 1).err());  // wrong direction
  // Placement changed behind the mover's back: the switch must not happen.
  ASSERT_TRUE(store_
                  ->Update(
                      a,
                      [](Inode& i) {
                        i.tier = TierId::kHdd;
                        return Status::Ok();
                      },
                      nullptr)
                  .ok());
  EXPECT_EQ(ESTALE, store_->CommitMove(a, TierId::kHdd, 1).err());
  ASSERT_TRUE(store_->CommitMove(a, TierId::kHdd, 1).err() != 0);
  std::vector<Store::MoveRecord> recs;
  ASSERT_TRUE(store_->ListMoves(&recs).ok());
  ASSERT_EQ(1u, recs.size());
  EXPECT_EQ(Store::MoveState::kCopying, recs[0].state);
}

// The recorded attributes of the old object do not survive the switch:
// the new object's are recorded by the daemon once it is in place.
TEST_F(StoreJournalTest, TheSwitchForgetsTheOldObjectsRecordedAttributes) {
  const uint64_t a = MakeFile("a");
  ASSERT_TRUE(store_
                  ->Update(
                      a,
                      [](Inode& n) {
                        n.RecordObjectAttrs(8);
                        return Status::Ok();
                      },
                      nullptr)
                  .ok());
  ASSERT_TRUE(store_->BeginMove(Rec(a)).ok());
  ASSERT_TRUE(store_->CommitMove(a, TierId::kHdd, 1).ok());
  Inode n;
  ASSERT_TRUE(store_->GetInode(a, &n).ok());
  EXPECT_FALSE(n.object_attrs_recorded());
  EXPECT_EQ(0u, n.recorded_blocks());
}

TEST(InodeRecordTest, BlocksRoundTripIn48BitsBesideTheCorruptFlag) {
  Inode n;
  n.set_corrupt(true);
  EXPECT_FALSE(n.object_attrs_recorded());
  n.RecordObjectAttrs((uint64_t(1) << 48) - 1);
  EXPECT_TRUE(n.object_attrs_recorded());
  EXPECT_EQ((uint64_t(1) << 48) - 1, n.recorded_blocks());
  EXPECT_TRUE(n.corrupt());
  n.RecordObjectAttrs(0x123456789aULL);
  EXPECT_EQ(0x123456789aULL, n.recorded_blocks());
  n.RecordObjectAttrs(uint64_t(1) << 48);  // too many to record: not recorded
  EXPECT_FALSE(n.object_attrs_recorded());
  EXPECT_EQ(0u, n.recorded_blocks());
  EXPECT_TRUE(n.corrupt());
  n.RecordObjectAttrs(1);
  n.ForgetObjectAttrs();
  EXPECT_FALSE(n.object_attrs_recorded());
  EXPECT_TRUE(n.corrupt());
}

}  // namespace
}  // namespace tierfs

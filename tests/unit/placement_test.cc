// Unit tests of fs/placement: every move through Run leaves one audit record
// naming the path, routine refusals leave none, and PathOf names a file the
// caller knows only by inode. A real Store and two directory tiers, no mount.
#include "fs/placement.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <map>
#include <thread>

#include "tests/unit/fs_units_fixture.h"
#include "tiering/fault_io.h"
#include "tiering/mover.h"

namespace tierfs {
namespace {

using PlacementTest = FsUnitsFixture;

uint64_t Xxh3(const std::string& s) {
  return XXH3_64bits(s.data(), s.size());
}

TEST_F(PlacementTest, MoveRecordsOneAuditRecordWithRuleTiersBytesChecksumAndPath) {
  const uint64_t dir = MakeDir(kRootIno, "d");
  const std::string content = Pattern(100000, 1);
  const uint64_t ino = MakeFile(dir, "f", content);
  Status st = placement_->Move(ino, TierId::kHdd, "to-hdd");
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(TierId::kHdd, Placement(ino));
  bool exists = false;
  EXPECT_EQ(content, Object(*hdd_, ino, &exists));
  EXPECT_TRUE(exists);
  const auto recs = AuditRecords();
  ASSERT_EQ(1u, recs.size());
  const AuditRecord& r = recs[0];
  EXPECT_EQ("move", r.action);
  EXPECT_EQ("to-hdd", r.rule);
  EXPECT_EQ("ssd", r.from);
  EXPECT_EQ("hdd", r.to);
  EXPECT_EQ(content.size(), r.bytes);
  EXPECT_TRUE(r.has_checksum);
  EXPECT_EQ(Xxh3(content), r.checksum);
  EXPECT_EQ("/d/f", r.path);  // found by a walk: the table knows no name
  EXPECT_EQ(ino, r.ino);
  EXPECT_EQ("ok", r.result);
  EXPECT_FALSE(placement_->IsMoving(ino));
}

// The journal record of a move is written before the mover lets go of it:
// a daemon killed between the switch and that record leaves a switched
// record, and the next mount's Recover journals the move.
TEST_F(PlacementTest, RecoverJournalsAMoveACrashCaughtAfterItsSwitch) {
  const uint64_t dir = MakeDir(kRootIno, "d");
  const std::string content = Pattern(50000, 2);
  const uint64_t ino = MakeFile(dir, "f", content);
  MoveOptions opt;
  opt.crash_after = MoveStep::kCommit;
  Status st = MoveObject(
      *store_, *ssd_, *hdd_, ino, opt, [] { return false; }, nullptr);
  ASSERT_EQ(EINTR, st.err()) << st.message();
  EXPECT_TRUE(AuditRecords().empty());
  placement_->Recover();
  EXPECT_EQ(TierId::kHdd, Placement(ino));
  const auto recs = AuditRecords();
  ASSERT_EQ(1u, recs.size());
  EXPECT_EQ("move", recs[0].action);
  EXPECT_EQ("crash recovery", recs[0].rule);
  EXPECT_EQ("/d/f", recs[0].path);
  EXPECT_EQ("ssd", recs[0].from);
  EXPECT_EQ("hdd", recs[0].to);
  EXPECT_EQ(content.size(), recs[0].bytes);
  EXPECT_TRUE(recs[0].has_checksum);
  EXPECT_EQ(Xxh3(content), recs[0].checksum);
  // Settled: a second mount journals nothing more.
  placement_->Recover();
  EXPECT_EQ(1u, AuditRecords().size());
}

TEST_F(PlacementTest, MoveKeepsThePathTheCallerGives) {
  const uint64_t ino = MakeFile(kRootIno, "f", "abc");
  ASSERT_TRUE(placement_->Move(ino, TierId::kHdd, "manual", "/given").ok());
  const auto recs = AuditRecords();
  ASSERT_EQ(1u, recs.size());
  EXPECT_EQ("/given", recs[0].path);
}

TEST_F(PlacementTest, MoveToTheTierItIsOnRecordsNothing) {
  const uint64_t ino = MakeFile(kRootIno, "f", "abc");
  Status st = placement_->Move(ino, TierId::kSsd, "manual");
  EXPECT_TRUE(st.ok()) << st.message();
  EXPECT_TRUE(AuditRecords().empty());
  EXPECT_EQ(TierId::kSsd, Placement(ino));
}

TEST_F(PlacementTest, MoveOfAFileOpenForWritingIsBusyAndRecordsNothing) {
  const uint64_t ino = MakeFile(kRootIno, "f", "abc");
  table_.Live(ino)->writers++;
  Status st = placement_->Move(ino, TierId::kHdd, "manual");
  EXPECT_EQ(EBUSY, st.err()) << st.message();
  EXPECT_TRUE(AuditRecords().empty());
  EXPECT_EQ(TierId::kSsd, Placement(ino));
  // Closed again: it moves.
  table_.Live(ino)->writers--;
  st = placement_->Move(ino, TierId::kHdd, "manual");
  EXPECT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(1u, AuditRecords().size());
}

TEST_F(PlacementTest, MoveOfAFileReadThroughPassthroughIsBusy) {
  const uint64_t ino = MakeFile(kRootIno, "f", "abc");
  table_.Live(ino)->passthrough_handles++;
  EXPECT_EQ(EBUSY, placement_->Move(ino, TierId::kHdd, "manual").err());
  EXPECT_TRUE(AuditRecords().empty());
  EXPECT_EQ(TierId::kSsd, Placement(ino));
}

// An unlinked file waiting for the reaper (fs/inode_reaper.h) may have
// lost its object while its record stays: a policy move of it is routine
// and silent (ECANCELED), never "source object missing" (EIO), which the
// journal would keep as a failed move of a file the user removed.
TEST_F(PlacementTest, MoveOfAnUnlinkedFileIsCancelledAndRecordsNothing) {
  const uint64_t ino = MakeFile(kRootIno, "f", "abc");
  Removed r;
  ASSERT_TRUE(store_->Unlink(kRootIno, "f", &r).ok());
  ASSERT_TRUE(ssd_->RemoveObject(ino).ok());  // freed, but for the record
  Status st = placement_->Move(ino, TierId::kHdd, "retain-every-5th");
  EXPECT_EQ(ECANCELED, st.err()) << st.message();
  EXPECT_TRUE(AuditRecords().empty());
}

TEST_F(PlacementTest, MoveOfADirectoryIsInvalid) {
  const uint64_t dir = MakeDir(kRootIno, "d");
  EXPECT_EQ(EINVAL, placement_->Move(dir, TierId::kHdd, "manual").err());
  EXPECT_TRUE(AuditRecords().empty());
}

TEST_F(PlacementTest, FailedMoveIsRecordedWithItsReason) {
  // LMDB records 3 bytes, but there is no object: the mover refuses (EIO),
  // which is worth a record (not routine like EBUSY).
  const uint64_t ino = MakeFile(kRootIno, "f", "abc");
  ASSERT_TRUE(ssd_->RemoveObject(ino).ok());
  ASSERT_TRUE(store_
                  ->Update(
                      ino,
                      [](Inode& n) {
                        n.checksum = 42;  // vouches for bytes the object no longer has
                        return Status::Ok();
                      },
                      nullptr)
                  .ok());
  Status st = placement_->Move(ino, TierId::kHdd, "manual");
  ASSERT_EQ(EIO, st.err()) << st.message();
  const auto recs = AuditRecords();
  ASSERT_EQ(1u, recs.size());
  EXPECT_EQ("/f", recs[0].path);
  EXPECT_FALSE(recs[0].has_checksum);
  EXPECT_EQ(st.message(), recs[0].result);
}

TEST_F(PlacementTest, PathOfUsesTheKnownName) {
  const uint64_t dir = MakeDir(kRootIno, "d");
  const uint64_t ino = MakeFile(dir, "f", "abc");
  Inode linked;
  ASSERT_TRUE(store_->Link(ino, kRootIno, "g", &linked).ok());
  // The walk would find /d/f first (directories in name order); the kernel
  // knew it as /g.
  table_.Ref(ino, kRootIno, "g");
  EXPECT_EQ("/g", placement_->PathOf(ino));
  EXPECT_EQ("/", placement_->PathOf(kRootIno));
}

TEST_F(PlacementTest, PathOfWalksWhenTheKnownNameIsStale) {
  const uint64_t dir = MakeDir(kRootIno, "d");
  const uint64_t ino = MakeFile(dir, "f", "abc");
  table_.Ref(dir, kRootIno, "d");
  table_.Ref(ino, dir, "f");
  ASSERT_EQ("/d/f", placement_->PathOf(ino));
  // Renamed in the store behind the table's back.
  Removed replaced;
  ASSERT_TRUE(store_->Rename(dir, "f", kRootIno, "moved", 0, &replaced).ok());
  EXPECT_EQ("/d/f", table_.KnownPath(ino));
  EXPECT_EQ("/moved", placement_->PathOf(ino));
  // The stale name now names another inode: still not believed.
  const uint64_t other = MakeFile(dir, "f", "xyz");
  ASSERT_NE(other, ino);
  EXPECT_EQ("/moved", placement_->PathOf(ino));
}

TEST_F(PlacementTest, PathOfAnUnlinkedInodeIsEmpty) {
  const uint64_t ino = MakeFile(kRootIno, "f", "abc");
  table_.Ref(ino, kRootIno, "f");
  Removed removed;
  ASSERT_TRUE(store_->Unlink(kRootIno, "f", &removed).ok());
  ASSERT_EQ(0u, removed.nlink);
  EXPECT_EQ("", placement_->PathOf(ino));
}

TEST_F(PlacementTest, MoveTreeMovesEveryFileOnceAndNamesEachByItsPath) {
  const uint64_t top = MakeDir(kRootIno, "top");
  const uint64_t sub = MakeDir(top, "sub");
  std::map<uint64_t, std::string> content;
  const uint64_t a = MakeFile(top, "a", content[0] = Pattern(5000, 2));
  const uint64_t b = MakeFile(sub, "b", content[1] = Pattern(7000, 3));
  // A hard link inside the tree: one object, moved once.
  Inode linked;
  ASSERT_TRUE(store_->Link(a, sub, "a-link", &linked).ok());
  const uint64_t outside = MakeFile(kRootIno, "outside", "stay");
  Status st = placement_->MoveTree(top, TierId::kHdd, "manual");
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(TierId::kHdd, Placement(a));
  EXPECT_EQ(TierId::kHdd, Placement(b));
  EXPECT_EQ(TierId::kSsd, Placement(outside));
  auto recs = AuditRecords();
  ASSERT_EQ(2u, recs.size());
  std::sort(recs.begin(), recs.end(),
            [](const AuditRecord& x, const AuditRecord& y) { return x.ino < y.ino; });
  EXPECT_EQ(a, recs[0].ino);
  EXPECT_EQ("/top/a", recs[0].path);  // the first name the walk meets
  EXPECT_EQ(b, recs[1].ino);
  EXPECT_EQ("/top/sub/b", recs[1].path);
  EXPECT_EQ(Xxh3(content[0]), recs[0].checksum);
  EXPECT_EQ(Xxh3(content[1]), recs[1].checksum);
}

TEST_F(PlacementTest, MoveTreeKeepsGoingPastAFailureAndReturnsIt) {
  const uint64_t top = MakeDir(kRootIno, "top");
  const uint64_t busy = MakeFile(top, "busy", "abc");
  const uint64_t free_file = MakeFile(top, "free", "def");
  table_.Live(busy)->writers++;
  Status st = placement_->MoveTree(top, TierId::kHdd, "manual", "/top");
  EXPECT_EQ(EBUSY, st.err()) << st.message();
  EXPECT_EQ(TierId::kSsd, Placement(busy));
  EXPECT_EQ(TierId::kHdd, Placement(free_file));
  const auto recs = AuditRecords();
  ASSERT_EQ(1u, recs.size());
  EXPECT_EQ("/top/free", recs[0].path);
}

TEST_F(PlacementTest, SpillMovesToHddAndIsNamed) {
  const uint64_t ino = MakeFile(kRootIno, "f", "written");
  table_.Ref(ino, kRootIno, "f");
  auto live = table_.Live(ino);
  live->writers++;  // a writer spills its own file
  const uint32_t placement_before = live->placement.load();
  Status st = placement_->Spill(ino, *live, "test");
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(TierId::kHdd, Placement(ino));
  EXPECT_GT(live->placement.load(), placement_before);  // handles reopen
  const auto recs = AuditRecords();
  ASSERT_EQ(1u, recs.size());
  EXPECT_EQ("spill", recs[0].rule);
  EXPECT_EQ("/f", recs[0].path);
  // On the HDD tier already: nothing to do, nothing recorded.
  EXPECT_TRUE(placement_->Spill(ino, *live, "test").ok());
  EXPECT_EQ(1u, AuditRecords().size());
}

// The SSD tier's calls go through a FaultIo.
class PlacementFaultTest : public FsUnitsFixture {
 protected:
  std::shared_ptr<Io> IoFor(TierId id) override { return id == TierId::kSsd ? ssd_io_ : nullptr; }
  std::shared_ptr<FaultIo> ssd_io_ = std::make_shared<FaultIo>(std::make_shared<PosixIo>());
};

// The switch committed, then the old object could not be removed: the file
// lives on the HDD tier, so the spill is done, and its handles must follow
// (a writer writing on into the old object would lose those bytes).
TEST_F(PlacementFaultTest, ASpillWhoseOldObjectStaysIsDoneAndItsHandlesFollow) {
  const uint64_t ino = MakeFile(kRootIno, "f", "written");
  auto live = table_.Live(ino);
  live->writers++;
  const uint32_t placement_before = live->placement.load();
  ssd_io_->AddRule({IoOp::kUnlink, 1, false, EIO, false});
  Status st = placement_->Spill(ino, *live, "test");
  EXPECT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(TierId::kHdd, Placement(ino));
  EXPECT_GT(live->placement.load(), placement_before);
  struct stat old;
  EXPECT_TRUE(ssd_->StatObject(ino, &old).ok()) << "the old object stays for Recover";
  const auto recs = AuditRecords();
  ASSERT_EQ(1u, recs.size());
  EXPECT_TRUE(recs[0].has_checksum);
  // Its move record stays too: the file does not move again before Recover.
  live->writers--;
  st = placement_->Move(ino, TierId::kSsd, "manual");
  EXPECT_EQ(EBUSY, st.err()) << st.message();
}

TEST_F(PlacementTest, SpillRefusesWhileReadThroughPassthrough) {
  const uint64_t ino = MakeFile(kRootIno, "f", "written");
  auto live = table_.Live(ino);
  live->passthrough_handles++;
  EXPECT_EQ(EBUSY, placement_->Spill(ino, *live, "test").err());
  EXPECT_EQ(TierId::kSsd, Placement(ino));
  EXPECT_TRUE(AuditRecords().empty());
  live->passthrough_handles--;
  EXPECT_TRUE(placement_->Spill(ino, *live, "test").ok());
  EXPECT_EQ(TierId::kHdd, Placement(ino));
}

TEST_F(PlacementTest, IsMovingDuringTheMoveOnly) {
  const uint64_t ino = MakeFile(kRootIno, "f", Pattern(1 << 20, 4));
  EXPECT_FALSE(placement_->IsMoving(ino));
  // Holding the placement lock keeps the move from switching: it is seen
  // moving, and a second move of the same inode is refused.
  std::unique_lock<std::mutex> hold(placement_->Lock(ino));
  Status first;
  std::thread mover([&] { first = placement_->Move(ino, TierId::kHdd, "manual"); });
  while (!placement_->IsMoving(ino)) std::this_thread::yield();
  Status second = placement_->Move(ino, TierId::kHdd, "manual");
  EXPECT_EQ(EBUSY, second.err()) << second.message();
  hold.unlock();
  mover.join();
  EXPECT_TRUE(first.ok()) << first.message();
  EXPECT_FALSE(placement_->IsMoving(ino));
  EXPECT_EQ(1u, AuditRecords().size());
}

TEST_F(PlacementTest, MoveAndSpillToATierThatCannotBeUsedFailWithEio) {
  const uint64_t ino = MakeFile(kRootIno, "f", "abc");
  // The HDD tier's directory is gone (removed, or its disk unmounted): the
  // mover's descriptors would write into a directory nobody sees.
  std::filesystem::rename(dir_ + "/hdd", dir_ + "/hdd-gone");
  Status st = placement_->Move(ino, TierId::kHdd, "manual");
  EXPECT_EQ(EIO, st.err()) << st.message();
  st = placement_->Spill(ino, *table_.Live(ino), "test");
  EXPECT_EQ(EIO, st.err()) << st.message();
  EXPECT_EQ(TierId::kSsd, Placement(ino));
  bool exists = false;
  EXPECT_EQ("abc", Object(*ssd_, ino, &exists));
  EXPECT_TRUE(exists);
  EXPECT_FALSE(placement_->IsMoving(ino));
  // Both refusals are journaled, with the reason and the file's path.
  const auto recs = AuditRecords();
  ASSERT_EQ(2u, recs.size());
  for (const AuditRecord& rec : recs) {
    EXPECT_EQ("/f", rec.path);
    EXPECT_NE("ok", rec.result);
    EXPECT_FALSE(rec.has_checksum);
  }
  EXPECT_EQ("manual", recs[0].rule);
  EXPECT_EQ("spill", recs[1].rule);
}

TEST_F(PlacementTest, ResolvePathNamesEntriesAndRefusesTheRoot) {
  const uint64_t dir = MakeDir(kRootIno, "d");
  const uint64_t ino = MakeFile(dir, "f", "abc");
  uint64_t parent = 0;
  std::string name;
  Inode n;
  ASSERT_TRUE(ResolvePath(*store_, "/d//f", &parent, &name, &n).ok());
  EXPECT_EQ(dir, parent);
  EXPECT_EQ("f", name);
  EXPECT_EQ(ino, n.ino);
  EXPECT_EQ(EINVAL, ResolvePath(*store_, "/", nullptr, nullptr, &n).err());
  Status st = ResolvePath(*store_, "/d/missing", nullptr, nullptr, &n);
  EXPECT_EQ(ENOENT, st.err());
  EXPECT_NE(std::string::npos, st.message().find("/d/missing")) << st.message();
}

}  // namespace
}  // namespace tierfs

// Unit tests of tiering/mover under simulated power loss (tiering/crash_io.h):
// a move killed after each of its steps, then everything the tiers did not
// sync is dropped, then RecoverMoves: the file reads back whole from exactly
// one tier, the one its inode names, and nothing of the move is left. A
// second power loss right after recovery must not bring anything back.
// LMDB is not behind the Io; the mover syncs it itself at journal and commit,
// so its committed state is what a restart sees.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include "tests/unit/tier_pair_fixture.h"
#include "tiering/crash_io.h"
#include "tiering/fault_io.h"
#include "tiering/mover.h"

namespace tierfs {
namespace {

namespace fs = std::filesystem;

// The step a move is killed after, and whether it moves hdd -> ssd.
using CrashCase = std::tuple<MoveStep, bool>;

class MoverCrashBase : public TierPairFixture {
 protected:
  // A file whose object on tier `on` holds `content`, written and synced
  // before the test (outside the Io: durable as it is).
  uint64_t MakeFile(const std::string& name, const std::string& content, const Tier& on) {
    NewNode node;
    node.mode = S_IFREG | 0644;
    Inode n;
    Status st = store_->Create(kRootIno, name, node, &n);
    EXPECT_TRUE(st.ok()) << st.message();
    st = store_->Update(
        n.ino,
        [&](Inode& i) {
          i.tier = on.id();
          return Status::Ok();
        },
        nullptr);
    EXPECT_TRUE(st.ok()) << st.message();
    std::ofstream(on.ObjectPath(n.ino), std::ios::binary) << content;
    return n.ino;
  }
  // Power loss on both tiers, then a restart: the state reopened.
  void PowerLoss() {
    Status st = ssd_io_->SimulateCrash();
    ASSERT_TRUE(st.ok()) << st.message();
    st = hdd_io_->SimulateCrash();
    ASSERT_TRUE(st.ok()) << st.message();
    store_.reset();
    st = Store::Open(dir_ + "/state", &store_);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  // The file is whole on the tier its inode names and only there, no
  // temporary and no journal record is left.
  void ExpectWholeOnOneTier(uint64_t ino, const std::string& content, const char* when) {
    SCOPED_TRACE(when);
    Inode n;
    ASSERT_TRUE(store_->GetInode(ino, &n).ok());
    const Tier& home = n.tier == TierId::kSsd ? *ssd_ : *hdd_;
    const Tier& other = n.tier == TierId::kSsd ? *hdd_ : *ssd_;
    bool exists = false;
    EXPECT_TRUE(Object(home, ino, &exists) == content)
        << "content lost or changed on " << home.name();
    EXPECT_TRUE(exists) << "no object on " << home.name() << ", the tier the inode names";
    Object(other, ino, &exists);
    EXPECT_FALSE(exists) << "a second object left on " << other.name();
    EXPECT_EQ(0, Temps());
    std::vector<Store::MoveRecord> recs;
    ASSERT_TRUE(store_->ListMoves(&recs).ok());
    EXPECT_EQ(0u, recs.size());
  }

  std::shared_ptr<Io> IoFor(TierId id) override {
    if (id == TierId::kSsd) return ssd_io_;
    return hdd_io_;
  }
  std::shared_ptr<CrashIo> ssd_io_ = std::make_shared<CrashIo>(std::make_shared<PosixIo>());
  // The HDD tier's calls may also fail: power loss over injected faults.
  std::shared_ptr<FaultIo> hdd_faults_ = std::make_shared<FaultIo>(std::make_shared<PosixIo>());
  std::shared_ptr<CrashIo> hdd_io_ = std::make_shared<CrashIo>(hdd_faults_);
};

class MoverCrashTest : public MoverCrashBase, public ::testing::WithParamInterface<CrashCase> {};
using MoverUndoCrashTest = MoverCrashBase;

TEST_P(MoverCrashTest, PowerLossAfterTheStepThenRecoveryKeepsTheFileWhole) {
  const auto [step, up] = GetParam();
  const Tier& from = up ? *hdd_ : *ssd_;
  const Tier& to = up ? *ssd_ : *hdd_;
  const std::string content = Pattern(200000 + 777 * int(step), uint32_t(step) + 11);
  const uint64_t ino = MakeFile("f", content, from);
  MoveOptions opt;
  opt.chunk_bytes = 64 << 10;
  opt.crash_after = step;
  Status st = MoveObject(*store_, from, to, ino, opt, nullptr, nullptr);
  if (step == MoveStep::kNone) {
    ASSERT_TRUE(st.ok()) << st.message();
  } else {
    ASSERT_EQ(EINTR, st.err()) << st.message();
  }
  PowerLoss();
  {
    // What the move had synced by then: the copy from its rename on (the
    // commit relies on it; recovery could otherwise only fall back to the
    // source), nothing of it before (its name was never synced).
    SCOPED_TRACE("after the power loss, before recovery");
    bool exists = false;
    const std::string copy = Object(to, ino, &exists);
    if (step >= MoveStep::kRename || step == MoveStep::kNone) {
      EXPECT_TRUE(exists && copy == content) << "the renamed copy did not survive on " << to.name();
    } else {
      EXPECT_FALSE(exists);
      EXPECT_EQ(0, Temps()) << "an unsynced temporary survived the power loss";
    }
  }
  int handled = 0;
  st = RecoverMoves(*store_, *ssd_, *hdd_, &handled);
  ASSERT_TRUE(st.ok()) << st.message();
  ExpectWholeOnOneTier(ino, content, "after recovery");
  // What recovery did must itself be durable.
  PowerLoss();
  st = RecoverMoves(*store_, *ssd_, *hdd_, &handled);
  ASSERT_TRUE(st.ok()) << st.message();
  ExpectWholeOnOneTier(ino, content, "after a power loss right after recovery");
}

// A write arrives just after the copy was renamed into place: the move is
// undone (the renamed copy removed) and the file stays. Power loss right
// after must not bring the removed copy back, since no record would name it.
TEST_F(MoverUndoCrashTest, UndoneAfterTheRenameThenPowerLossLeavesNoCopy) {
  const std::string content = Pattern(150000, 21);
  const uint64_t ino = MakeFile("g", content, *ssd_);
  MoveOptions opt;
  opt.chunk_bytes = 64 << 10;
  const std::string renamed = hdd_->ObjectPath(ino);
  Status st = MoveObject(
      *store_, *ssd_, *hdd_, ino, opt, [&] { return fs::exists(renamed); }, nullptr);
  ASSERT_EQ(ECANCELED, st.err()) << st.message();
  ExpectWholeOnOneTier(ino, content, "after the undo");
  PowerLoss();
  int handled = 0;
  st = RecoverMoves(*store_, *ssd_, *hdd_, &handled);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(0, handled);
  ExpectWholeOnOneTier(ino, content, "after a power loss right after the undo");
}

// Every fsync of the HDD tier from the directory's in CommitTemp on fails:
// the move fails at its rename, and its cleanup cannot be made durable, so
// the record stays. Power loss, the disk recovers, RecoverMoves: the file
// is whole on the SSD tier and nothing of the move is left.
TEST_F(MoverUndoCrashTest, FailingDirectoryFsyncThenPowerLossKeepsTheFile) {
  const std::string content = Pattern(120000, 22);
  const uint64_t ino = MakeFile("h", content, *ssd_);
  hdd_faults_->AddRule({IoOp::kFsync, 2, true, EIO, false});
  MoveOptions opt;
  opt.chunk_bytes = 64 << 10;
  Status st = MoveObject(*store_, *ssd_, *hdd_, ino, opt, nullptr, nullptr);
  ASSERT_EQ(EIO, st.err()) << st.message();
  EXPECT_NE(std::string::npos, st.message().find("rename")) << st.message();
  EXPECT_NE(std::string::npos, st.message().find("left to recovery")) << st.message();
  PowerLoss();
  hdd_faults_->ClearRules();
  int handled = 0;
  st = RecoverMoves(*store_, *ssd_, *hdd_, &handled);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(1, handled);
  ExpectWholeOnOneTier(ino, content, "after recovery");
  EXPECT_EQ(TierId::kSsd, [&] {
    Inode n;
    EXPECT_TRUE(store_->GetInode(ino, &n).ok());
    return n.tier;
  }());
}

INSTANTIATE_TEST_SUITE_P(EachStep, MoverCrashTest,
                         ::testing::Combine(::testing::Values(MoveStep::kJournal, MoveStep::kCopy,
                                                              MoveStep::kFsync, MoveStep::kVerify,
                                                              MoveStep::kRename, MoveStep::kCommit,
                                                              MoveStep::kRemove, MoveStep::kNone),
                                            ::testing::Bool()),
                         [](const ::testing::TestParamInfo<CrashCase>& info) {
                           const MoveStep step = std::get<0>(info.param);
                           std::string name = MoveStepName(step);
                           if (step == MoveStep::kNone) name = "completed";
                           if (step == MoveStep::kRemove) name = "remove";
                           return name + (std::get<1>(info.param) ? "_HddToSsd" : "_SsdToHdd");
                         });

}  // namespace
}  // namespace tierfs

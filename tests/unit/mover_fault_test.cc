// Unit tests of tiering/mover under injected I/O faults (tiering/fault_io.h):
// whatever call of a move fails, the file is whole on exactly one tier, and
// a failure past the switch is left to RecoverMoves, which settles it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/unit/tier_pair_fixture.h"
#include "tiering/fault_io.h"
#include "tiering/mover.h"

namespace tierfs {
namespace {

namespace fs = std::filesystem;

class MoverFaultTest : public TierPairFixture {
 protected:
  // A file whose object on the SSD tier holds `content`.
  uint64_t MakeFile(const std::string& name, const std::string& content) {
    NewNode node;
    node.mode = S_IFREG | 0644;
    Inode n;
    Status st = store_->Create(kRootIno, name, node, &n);
    EXPECT_TRUE(st.ok()) << st.message();
    std::ofstream(ssd_->ObjectPath(n.ino), std::ios::binary) << content;
    return n.ino;
  }
  Status Move(uint64_t ino) {
    MoveOptions opt;
    opt.chunk_bytes = 64 << 10;  // several chunks through the Io
    return MoveObject(*store_, *ssd_, *hdd_, ino, opt, nullptr, nullptr);
  }
  // A failed move before the switch: the file is on the SSD tier with its
  // bytes, and nothing of the move is left.
  void ExpectStayed(uint64_t ino, const std::string& content) {
    EXPECT_EQ(TierId::kSsd, Placement(ino));
    bool exists = false;
    EXPECT_TRUE(Object(*ssd_, ino, &exists) == content) << "source changed";
    EXPECT_TRUE(exists);
    Object(*hdd_, ino, &exists);
    EXPECT_FALSE(exists) << "copy left on hdd";
    EXPECT_EQ(0, Temps());
    EXPECT_EQ(0u, Records());
  }

  std::shared_ptr<Io> IoFor(TierId id) override { return id == TierId::kSsd ? ssd_io_ : hdd_io_; }
  std::shared_ptr<FaultIo> ssd_io_ = std::make_shared<FaultIo>(std::make_shared<PosixIo>());
  std::shared_ptr<FaultIo> hdd_io_ = std::make_shared<FaultIo>(std::make_shared<PosixIo>());
};

// Without faults, the copy through a non-POSIX Io (no io_uring) is exact.
TEST_F(MoverFaultTest, CopyThroughAnIoIsExact) {
  const std::string content = Pattern((1 << 20) + 12345, 3);
  uint64_t ino = MakeFile("f", content);
  Status st = Move(ino);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(TierId::kHdd, Placement(ino));
  bool exists = false;
  EXPECT_TRUE(Object(*hdd_, ino, &exists) == content);
  EXPECT_GT(hdd_io_->Calls(IoOp::kPwrite), 1u) << "the copy bypassed the Io";
  EXPECT_GT(ssd_io_->Calls(IoOp::kPread), 1u) << "the copy bypassed the Io";
  EXPECT_EQ(0, Temps());
  EXPECT_EQ(0u, Records());
}

TEST_F(MoverFaultTest, FailingFsyncOfTheCopyLeavesTheFileWhereItWas) {
  const std::string content = Pattern(300000, 4);
  uint64_t ino = MakeFile("f", content);
  hdd_io_->AddRule({IoOp::kFsync, 1, false, EIO, false});
  Status st = Move(ino);
  EXPECT_EQ(EIO, st.err()) << st.message();
  EXPECT_NE(std::string::npos, st.message().find("fsync " + hdd_->TempPath(ino))) << st.message();
  ExpectStayed(ino, content);
}

TEST_F(MoverFaultTest, FailingWriteOrPreallocationOfTheCopyLeavesTheFile) {
  const std::string content = Pattern(300000, 5);
  uint64_t ino = MakeFile("f", content);
  hdd_io_->AddRule({IoOp::kPwrite, 2, false, ENOSPC, false});
  Status st = Move(ino);
  EXPECT_EQ(ENOSPC, st.err()) << st.message();
  EXPECT_NE(std::string::npos, st.message().find("write " + hdd_->TempPath(ino)));
  ExpectStayed(ino, content);
  hdd_io_->ClearRules();
  hdd_io_->AddRule({IoOp::kFallocate, 1, false, ENOSPC, false});
  st = Move(ino);
  EXPECT_EQ(ENOSPC, st.err()) << st.message();
  EXPECT_NE(std::string::npos, st.message().find("preallocate")) << st.message();
  ExpectStayed(ino, content);
}

// The read-back of the copy returns a flipped byte: the copy does not equal
// the source, the move fails with EIO and the file stays.
TEST_F(MoverFaultTest, ChecksumMismatchOfTheCopyFailsWithEio) {
  const std::string content = Pattern(200000, 6);
  uint64_t ino = MakeFile("f", content);
  hdd_io_->AddRule({IoOp::kPread, 2, false, 0, true});
  Status st = Move(ino);
  EXPECT_EQ(EIO, st.err()) << st.message();
  EXPECT_NE(std::string::npos, st.message().find("checksum mismatch")) << st.message();
  EXPECT_NE(std::string::npos, st.message().find("verify")) << st.message();
  ExpectStayed(ino, content);
  // The checksum recorded is not the corrupt one: none was recorded.
  Inode n;
  ASSERT_TRUE(store_->GetInode(ino, &n).ok());
  EXPECT_EQ(0u, n.checksum);
}

// Removing the source after the switch fails: the file lives on the target,
// the record stays, and RecoverMoves removes the stale source.
TEST_F(MoverFaultTest, FailedCleanupIsLeftToRecoveryWhichSettlesIt) {
  const std::string content = Pattern(150000, 7);
  uint64_t ino = MakeFile("f", content);
  ssd_io_->AddRule({IoOp::kUnlink, 1, false, EIO, false});
  Status st = Move(ino);
  EXPECT_EQ(EIO, st.err()) << st.message();
  EXPECT_NE(std::string::npos, st.message().find("remove source")) << st.message();
  EXPECT_EQ(TierId::kHdd, Placement(ino));
  bool exists = false;
  EXPECT_TRUE(Object(*hdd_, ino, &exists) == content);
  Object(*ssd_, ino, &exists);
  EXPECT_TRUE(exists) << "the source was removed although unlink failed";
  EXPECT_EQ(1u, Records());
  int handled = 0;
  st = RecoverMoves(*store_, *ssd_, *hdd_, &handled);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(1, handled);
  EXPECT_EQ(TierId::kHdd, Placement(ino));
  EXPECT_TRUE(Object(*hdd_, ino, &exists) == content);
  Object(*ssd_, ino, &exists);
  EXPECT_FALSE(exists);
  EXPECT_EQ(0u, Records());
  EXPECT_EQ(0, Temps());
}

}  // namespace
}  // namespace tierfs

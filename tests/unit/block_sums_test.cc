// Block checksums: what the hasher records at close (fs/block_hasher.h),
// when it must give up, what a move records and checks (tiering/mover.h),
// and that every change of the bytes drops them (meta/store.h).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "fs/block_hasher.h"
#include "meta/block_sums.h"
#include "tests/unit/fs_units_fixture.h"
#include "tiering/mover.h"

namespace tierfs {
namespace {

std::vector<uint64_t> SumsOf(const std::string& data) {
  std::vector<uint64_t> out;
  for (size_t off = 0; off < data.size(); off += kSumBlockBytes)
    out.push_back(
        XXH3_64bits(data.data() + off, std::min<size_t>(kSumBlockBytes, data.size() - off)));
  return out;
}

// The sums are xxh3_64 as libxxhash's plain functions compute them,
// whichever vector unit hashed them (meta/xxh3.h): sums recorded by any
// version verify with any other. Reference values from the plain
// functions (SSE2) of Debian's libxxhash 0.8.1.
TEST(BlockSummerTest, SumsAreTheReferenceXxh3Values) {
  std::string data((size_t(3) << 20) + 123, '\0');
  uint64_t x = 1;
  for (char& c : data) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    c = char(x >> 56);
  }
  BlockSummer summer;
  // In uneven pieces, as writes come.
  for (size_t off = 0, piece = 1000; off < data.size(); off += piece, piece = piece * 3 + 1)
    summer.Update(data.data() + off, std::min(piece, data.size() - off));
  std::vector<uint64_t> blocks;
  EXPECT_EQ(0x9ee2ed7e7ef138c9ULL, summer.Finish(&blocks));
  EXPECT_EQ((std::vector<uint64_t>{0x7b0c7e7348bde3ffULL, 0x337a548cdf5739b9ULL,
                                   0xc775d0a9d2e5a70eULL, 0x235a0195b16b1c3cULL}),
            blocks);
  EXPECT_EQ(0xedced795343597fdULL, XXH3_64bits(data.data(), 200));
}

class BlockSumsTest : public FsUnitsFixture {
 protected:
  std::vector<uint64_t> Recorded(uint64_t ino) {
    std::vector<uint64_t> sums;
    Status st = store_->GetBlockSums(ino, &sums);
    EXPECT_TRUE(st.ok()) << st.message();
    return sums;
  }
  bool HasSums(uint64_t ino) {
    std::vector<uint64_t> sums;
    return store_->GetBlockSums(ino, &sums).ok();
  }
  uint64_t Checksum(uint64_t ino) {
    Inode n;
    EXPECT_TRUE(store_->GetInode(ino, &n).ok());
    return n.checksum;
  }
};

TEST_F(BlockSumsTest, SummerSplitsAnyPiecesIntoBlocks) {
  const std::string data = Pattern(3 * kSumBlockBytes + 99, 1);
  BlockSummer s;
  for (size_t off = 0; off < data.size(); off += 333333)
    s.Update(data.data() + off, std::min<size_t>(333333, data.size() - off));
  std::vector<uint64_t> blocks;
  EXPECT_EQ(XXH3_64bits(data.data(), data.size()), s.Finish(&blocks));
  EXPECT_EQ(SumsOf(data), blocks);
  EXPECT_EQ(4u, SumBlockCount(data.size()));
}

TEST_F(BlockSumsTest, HashRecordsSumsAndEveryChangeDropsThem) {
  const std::string data = Pattern(2 * kSumBlockBytes + 5, 2);
  const uint64_t ino = MakeFile(kRootIno, "f", data);
  BlockHasher h(*store_, tiers(), table_);
  Status st = h.HashNow(ino, table_.epoch());
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(SumsOf(data), Recorded(ino));
  EXPECT_EQ(XXH3_64bits(data.data(), data.size()), Checksum(ino));
  // Clearing the checksum (every write, truncate, open for writing) drops them.
  st = store_->Update(
      ino,
      [](Inode& i) {
        i.checksum = 0;
        return Status::Ok();
      },
      nullptr);
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(HasSums(ino));
  // A checksum recorded elsewhere (an older tierfs's move) does not revive
  // sums of other bytes.
  ASSERT_TRUE(h.HashNow(ino, table_.epoch()).ok());
  st = store_->Update(
      ino,
      [](Inode& i) {
        i.checksum = 12345;
        return Status::Ok();
      },
      nullptr);
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(HasSums(ino));
}

TEST_F(BlockSumsTest, StaleHashIsDropped) {
  const std::string data = Pattern(kSumBlockBytes + 1, 3);
  const uint64_t ino = MakeFile(kRootIno, "f", data);
  BlockHasher h(*store_, tiers(), table_);
  auto live = table_.Live(ino);
  // A writer open: nothing vouches for the bytes.
  live->writers++;
  EXPECT_EQ(ESTALE, h.HashNow(ino, table_.epoch()).err());
  live->writers--;
  // A write since the job was queued.
  const uint64_t queued = table_.epoch();
  table_.NoteWrite(*live);
  EXPECT_EQ(ESTALE, h.HashNow(ino, queued).err());
  EXPECT_FALSE(HasSums(ino));
  // An object of another size than recorded (a write not yet released).
  WriteObject(*ssd_, ino, data + "more");
  EXPECT_EQ(ESTALE, h.HashNow(ino, table_.epoch()).err());
  EXPECT_FALSE(HasSums(ino));
  EXPECT_EQ(0u, Checksum(ino));
}

TEST_F(BlockSumsTest, QueuedFileIsHashedOnTheThread) {
  const std::string data = Pattern(100000, 4);
  const uint64_t ino = MakeFile(kRootIno, "f", data);
  BlockHasher h(*store_, tiers(), table_);
  h.Start();
  h.Enqueue(ino, table_.epoch());
  for (int i = 0; i < 500 && !HasSums(ino); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  h.Stop();
  EXPECT_EQ(SumsOf(data), Recorded(ino));
}

// Stop gives up a file it is reading through: an unmount waited for the
// whole of a 32 GiB sparse object of a deleted file (55 s, xfstests), and
// a remount meanwhile was refused. Given up, the file gets no sums.
TEST_F(BlockSumsTest, StopGivesUpTheFileBeingRead) {
  const uint64_t ino = MakeFile(kRootIno, "big", "x");
  constexpr uint64_t kSize = uint64_t(16) << 30;  // sparse: reading it through takes seconds
  ASSERT_EQ(0, truncate(ssd_->ObjectPath(ino).c_str(), off_t(kSize)));
  ASSERT_TRUE(store_
                  ->Update(
                      ino,
                      [&](Inode& i) {
                        i.size = kSize;
                        i.checksum = 0;
                        return Status::Ok();
                      },
                      nullptr)
                  .ok());
  BlockHasher h(*store_, tiers(), table_);
  h.Start();
  h.Enqueue(ino, table_.epoch());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // reading by now
  h.Stop();
  EXPECT_FALSE(HasSums(ino)) << "the whole object was read before Stop returned";
}

TEST_F(BlockSumsTest, MoveRecordsSumsAndNamesTheCorruptBlock) {
  const std::string data = Pattern(3 * kSumBlockBytes, 5);
  const uint64_t ino = MakeFile(kRootIno, "f", data);
  MoveResult r;
  Status st = MoveObject(*store_, *ssd_, *hdd_, ino, {}, nullptr, &r);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(SumsOf(data), r.block_sums);
  EXPECT_EQ(SumsOf(data), Recorded(ino));
  // Block 2 damaged on the HDD tier: the move back refuses it, naming it.
  std::string bad = data;
  bad[2 * kSumBlockBytes + 10] ^= 1;
  WriteObject(*hdd_, ino, bad);
  st = MoveObject(*store_, *hdd_, *ssd_, ino, {}, nullptr, nullptr);
  EXPECT_EQ(EIO, st.err()) << st.message();
  EXPECT_NE(std::string::npos, st.message().find("corrupt at block 2")) << st.message();
  EXPECT_EQ(SumsOf(data), Recorded(ino));
  // Deleting the inode deletes its sums.
  ASSERT_TRUE(store_->DeleteInode(ino).ok());
  std::vector<uint64_t> sums;
  EXPECT_EQ(ENOENT, store_->GetBlockSums(ino, &sums).err());
}

TEST_F(BlockSumsTest, MarkCorruptOnlyForTheVerifiedChecksum) {
  const std::string data = Pattern(1000, 6);
  const uint64_t ino = MakeFile(kRootIno, "f", data);
  BlockHasher h(*store_, tiers(), table_);
  ASSERT_TRUE(h.HashNow(ino, table_.epoch()).ok());
  EXPECT_EQ(ESTALE, store_->MarkCorrupt(ino, Checksum(ino) + 1).err());
  ASSERT_TRUE(store_->MarkCorrupt(ino, Checksum(ino)).ok());
  Inode n;
  ASSERT_TRUE(store_->GetInode(ino, &n).ok());
  EXPECT_TRUE(n.corrupt());
}

}  // namespace
}  // namespace tierfs

// Tier::WritableElsewhere: the read-lease probe by which tierfs tells that
// a file's object is still open for writing after its last handle closed,
// as a shared mapping keeps it (fs/block_hasher.h, fs/placement.h).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/unit/tier_pair_fixture.h"

namespace tierfs {
namespace {

class WritableElsewhereTest : public TierPairFixture {
 protected:
  // Makes inode `ino`'s object on the SSD tier, `size` bytes; its path.
  std::string MakeObject(uint64_t ino, size_t size) {
    const std::string path = ssd_->ObjectPath(ino);
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << std::string(size, 'a');
    return path;
  }
};

TEST_F(WritableElsewhereTest, AMappingThatOutlivesItsDescriptorKeepsTheObjectOpenForWriting) {
  constexpr size_t kSize = 8192;
  const std::string path = MakeObject(7, kSize);
  EXPECT_FALSE(ssd_->WritableElsewhere(7)) << "nobody has it open";
  const int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(ssd_->WritableElsewhere(7)) << "a descriptor open for writing";
  void* map = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(MAP_FAILED, map);
  ASSERT_EQ(0, close(fd));
  EXPECT_TRUE(ssd_->WritableElsewhere(7)) << "the mapping holds the file open";
  ASSERT_EQ(0, munmap(map, kSize));
  EXPECT_FALSE(ssd_->WritableElsewhere(7)) << "unmapped";
}

TEST_F(WritableElsewhereTest, ReadersAndMissingObjectsAreNotWriters) {
  const std::string path = MakeObject(8, 4096);
  const int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* map = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(MAP_FAILED, map);
  EXPECT_FALSE(ssd_->WritableElsewhere(8)) << "a reader and its mapping";
  munmap(map, 4096);
  close(fd);
  EXPECT_FALSE(ssd_->WritableElsewhere(9)) << "no object";
}

}  // namespace
}  // namespace tierfs

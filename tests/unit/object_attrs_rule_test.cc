// AgreeingObjectAttrs: when an object's attributes may stand in for a stat
// of the tier (fs/object_attrs.h). Both recorders (a setattr or move, and
// the hasher's commit) follow this one rule.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>

#include "fs/object_attrs.h"

namespace tierfs {
namespace {

Inode RegularFile(uint64_t size, int64_t mtime_ns, int64_t ctime_ns) {
  Inode n;
  n.ino = 42;
  n.mode = S_IFREG | 0644;
  n.size = size;
  n.mtime_ns = mtime_ns;
  n.ctime_ns = ctime_ns;
  return n;
}

struct stat Object(off_t size, int64_t mtime_ns, int64_t ctime_ns, blkcnt_t blocks) {
  struct stat st {};
  st.st_size = size;
  st.st_blocks = blocks;
  st.st_mtim = {time_t(mtime_ns / 1000000000), long(mtime_ns % 1000000000)};
  st.st_ctim = {time_t(ctime_ns / 1000000000), long(ctime_ns % 1000000000)};
  return st;
}

constexpr int64_t kMtime = 1700000000123456789;
constexpr int64_t kCtime = 1700000000987654321;

TEST(AgreeingObjectAttrsTest, AnObjectAsLmdbRecordsItGivesItsBlocksAndCtime) {
  const auto attrs = AgreeingObjectAttrs(RegularFile(8192, kMtime, kMtime), Status::Ok(),
                                         Object(8192, kMtime, kCtime, 8));
  ASSERT_TRUE(attrs.has_value());
  EXPECT_EQ(attrs->blocks, 8u);
  EXPECT_EQ(attrs->ctime_ns, kCtime);
}

TEST(AgreeingObjectAttrsTest, AnObjectOfAnotherSizeOrMtimeGivesNothing) {
  const Inode n = RegularFile(8192, kMtime, kMtime);
  // A write not yet released, or a setattr between LMDB and the object.
  EXPECT_FALSE(AgreeingObjectAttrs(n, Status::Ok(), Object(4096, kMtime, kCtime, 8)));
  EXPECT_FALSE(AgreeingObjectAttrs(n, Status::Ok(), Object(8192, kMtime + 1, kCtime, 8)));
}

TEST(AgreeingObjectAttrsTest, NoObjectForAnEmptyFileGivesNoBlocksAndLmdbsCtime) {
  const auto attrs =
      AgreeingObjectAttrs(RegularFile(0, kMtime, kCtime), Status::Error(ENOENT, "no object"), {});
  ASSERT_TRUE(attrs.has_value());
  EXPECT_EQ(attrs->blocks, 0u);
  EXPECT_EQ(attrs->ctime_ns, kCtime);
}

TEST(AgreeingObjectAttrsTest, NoObjectForAFileWithBytesOrAFailingTierGivesNothing) {
  // A file with bytes and no object is damage for the reader to report, not
  // a size to vouch for; a tier that fails says nothing about the object.
  EXPECT_FALSE(
      AgreeingObjectAttrs(RegularFile(10, kMtime, kCtime), Status::Error(ENOENT, "no object"), {}));
  EXPECT_FALSE(
      AgreeingObjectAttrs(RegularFile(0, kMtime, kCtime), Status::Error(EIO, "tier failed"), {}));
}

}  // namespace
}  // namespace tierfs

// Unit tests of tiering/uring_copy: the copy and the read-back that every move
// runs, with O_DIRECT descriptors and sizes that are not whole pages.
#include "tiering/uring_copy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "tiering/fault_io.h"

namespace tierfs {
namespace {

namespace fs = std::filesystem;

class UringCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tierfs-copy-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Content(size_t n, uint32_t seed) {
    std::string s(n, '\0');
    uint32_t x = seed;
    for (char& c : s) c = char((x = x * 1664525u + 1013904223u) >> 24);
    return s;
  }
  int WriteFile(const std::string& name, const std::string& content) {
    int fd = open((dir_ + "/" + name).c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    EXPECT_EQ(ssize_t(content.size()), pwrite(fd, content.data(), content.size(), 0));
    return fd;
  }
  // -1 (and the test skipped) where the filesystem under /tmp refuses O_DIRECT.
  int OpenDirect(const std::string& name, int flags) {
    int fd = open((dir_ + "/" + name).c_str(), flags | O_DIRECT, 0600);
    if (fd < 0 && errno == EINVAL) return -1;
    EXPECT_GE(fd, 0) << name << ": " << strerror(errno);
    return fd;
  }
  // Through a buffered descriptor of its own (the test's string buffer is not
  // aligned for O_DIRECT).
  std::string ReadAll(const std::string& name) {
    int fd = open((dir_ + "/" + name).c_str(), O_RDONLY);
    std::string s(size_t(lseek(fd, 0, SEEK_END)), '\0');
    EXPECT_EQ(ssize_t(s.size()), pread(fd, s.data(), s.size(), 0));
    close(fd);
    return s;
  }

  std::string dir_;
};

TEST_F(UringCopyTest, DirectCopyOfAnySizeIsExactAndHashed) {
  // Pages, less and more than a page, less and more than a chunk.
  for (size_t size : {size_t(1), size_t(4095), size_t(4096), size_t(4097), size_t(5 << 20),
                      size_t((1 << 20) + 7), size_t((3 << 20) + 12289)}) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::string content = Content(size, uint32_t(size));
    int in = WriteFile("src", content);
    int out = OpenDirect("dst", O_RDWR | O_CREAT | O_TRUNC);
    if (out < 0) GTEST_SKIP() << "no O_DIRECT under /tmp";
    CopyParams p;
    p.direct_out = true;
    p.queue_depth = 3;
    p.src_name = "src";
    p.dst_name = "dst";
    uint64_t hash = 0;
    Status st = CopyAndHash(in, out, size, p, &hash);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(XXH3_64bits(content.data(), size), hash);
    // The padding of the last page is gone: the copy is byte for byte.
    EXPECT_TRUE(ReadAll("dst") == content);
    uint64_t back = 0;
    st = ReadAndHash(out, size, p, &back);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(hash, back);
    close(in);
    close(out);
  }
}

TEST_F(UringCopyTest, ReadBackOfAShortCopyIsAnError) {
  const std::string content = Content(10000, 3);
  close(WriteFile("copy", content));
  int fd = OpenDirect("copy", O_RDONLY);
  if (fd < 0) GTEST_SKIP() << "no O_DIRECT under /tmp";
  CopyParams p;
  p.src_name = dir_ + "/copy";
  uint64_t hash = 0;
  Status st = ReadAndHash(fd, content.size() + 1, p, &hash);
  EXPECT_EQ(EIO, st.err()) << st.message();
  EXPECT_NE(std::string::npos, st.message().find(p.src_name)) << st.message();
  st = ReadAndHash(fd, content.size(), p, &hash);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(XXH3_64bits(content.data(), content.size()), hash);
  close(fd);
}

TEST_F(UringCopyTest, CopyOfASourceThatShrankIsCancelled) {
  const std::string content = Content(8192, 5);
  int in = WriteFile("src", content);
  int out = WriteFile("dst", "");
  CopyParams p;
  p.src_name = "src";
  uint64_t hash = 0;
  Status st = CopyAndHash(in, out, content.size() + 4096, p, &hash);
  EXPECT_EQ(ECANCELED, st.err()) << st.message();
  close(in);
  close(out);
}

// With an Io that is not plain POSIX the copy goes through it (not
// io_uring): exact, padded direct writes truncated through it too, and its
// faults reach the caller naming the file.
TEST_F(UringCopyTest, CopyThroughAnIoUsesItAndReportsItsFaults) {
  const std::string content = Content((2 << 20) + 4097, 9);
  int in = WriteFile("src", content);
  int out = OpenDirect("dst", O_RDWR | O_CREAT | O_TRUNC);
  if (out < 0) GTEST_SKIP() << "no O_DIRECT under /tmp";
  FaultIo io(std::make_shared<PosixIo>());
  CopyParams p;
  p.direct_out = true;
  p.chunk_bytes = 1 << 20;
  p.src_name = "src";
  p.dst_name = "dst";
  p.in_io = &io;
  p.out_io = &io;
  uint64_t hash = 0;
  Status st = CopyAndHash(in, out, content.size(), p, &hash);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(XXH3_64bits(content.data(), content.size()), hash);
  EXPECT_TRUE(ReadAll("dst") == content);
  EXPECT_EQ(3u, io.Calls(IoOp::kPwrite));
  EXPECT_EQ(1u, io.Calls(IoOp::kFtruncate));
  io.AddRule({IoOp::kPwrite, 2, false, EIO, false});
  st = CopyAndHash(in, out, content.size(), p, &hash);
  EXPECT_EQ(EIO, st.err());
  EXPECT_NE(std::string::npos, st.message().find("write dst")) << st.message();
  io.AddRule({IoOp::kPread, 1, false, ENOMEM, false});
  st = ReadAndHash(in, content.size(), p, &hash);
  EXPECT_EQ(ENOMEM, st.err());
  EXPECT_NE(std::string::npos, st.message().find("read src")) << st.message();
  close(in);
  close(out);
}

// A sparse file: `size` bytes, with data (Content) only in `runs`
// ({offset, length}); the rest reads as zeros. Returns its descriptor and
// puts what it reads as in `*expected`.
int SparseFile(const std::string& path, uint64_t size,
               const std::vector<std::pair<uint64_t, size_t>>& runs, std::string* expected) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  EXPECT_GE(fd, 0) << path;
  EXPECT_EQ(0, ftruncate(fd, off_t(size)));
  expected->assign(size, '\0');
  uint32_t x = 77;
  for (auto [off, len] : runs) {
    std::string bytes(len, '\0');
    for (char& c : bytes) c = char((x = x * 1664525u + 1013904223u) >> 24);
    EXPECT_EQ(ssize_t(len), pwrite(fd, bytes.data(), len, off_t(off)));
    expected->replace(off, len, bytes);
  }
  return fd;
}

uint64_t AllocatedBytes(int fd) {
  struct stat st;
  EXPECT_EQ(0, fstat(fd, &st));
  return uint64_t(st.st_blocks) * 512;
}

// A move's copy of a sparse file (skip_holes) reads and writes only the
// chunks that hold data: the copy is byte for byte, hashed as the whole
// file reads, and has holes where the source had whole chunks of them,
// also at its end. Through io_uring and through an Io, buffered and direct.
TEST_F(UringCopyTest, SparseFileCopiesOnlyItsDataAndStaysSparse) {
  constexpr uint64_t kMiB = 1 << 20;
  const uint64_t size = 40 * kMiB + 123;
  std::string expected;
  // Data in chunk 0, in chunks 10-13 (not chunk-aligned), then a hole to
  // the end: 5 chunks of 41 hold data.
  int in = SparseFile(dir_ + "/src", size, {{0, 4096}, {10 * kMiB + 5000, 3 * kMiB}}, &expected);
  if (AllocatedBytes(in) >= 8 * kMiB) GTEST_SKIP() << "no sparse files under /tmp";
  const uint64_t want_hash = XXH3_64bits(expected.data(), expected.size());
  for (bool direct : {false, true}) {
    for (bool through_io : {false, true}) {
      SCOPED_TRACE(std::string(direct ? "direct" : "buffered") + (through_io ? ", an Io" : ""));
      int out = direct ? OpenDirect("dst", O_RDWR | O_CREAT | O_TRUNC)
                       : open((dir_ + "/dst").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
      if (out < 0) continue;  // no O_DIRECT under /tmp
      FaultIo io(std::make_shared<PosixIo>());
      CopyParams p;
      p.direct_out = direct;
      p.skip_holes = true;
      p.queue_depth = 3;
      p.src_name = "src";
      p.dst_name = "dst";
      if (through_io) p.in_io = p.out_io = &io;
      std::vector<uint64_t> blocks;
      p.block_sums = &blocks;
      uint64_t hash = 0;
      Status st = CopyAndHash(in, out, size, p, &hash);
      ASSERT_TRUE(st.ok()) << st.message();
      EXPECT_EQ(want_hash, hash);
      ASSERT_EQ(41u, blocks.size());
      EXPECT_EQ(XXH3_64bits(expected.data() + 20 * kMiB, kMiB), blocks[20]);  // a hole's
      EXPECT_TRUE(ReadAll("dst") == expected);
      EXPECT_LE(AllocatedBytes(out), 6 * kMiB);
      if (through_io) {
        EXPECT_EQ(5u, io.Calls(IoOp::kPwrite));
      }
      uint64_t back = 0;
      st = ReadAndHash(out, size, p, &back);
      ASSERT_TRUE(st.ok()) << st.message();
      EXPECT_EQ(want_hash, back);
      if (through_io) {
        EXPECT_EQ(10u, io.Calls(IoOp::kPread));  // the data only, twice
      }
      close(out);
    }
  }
  close(in);
}

// A copy that ends in a hole is still checked for its length: a read-back
// of a file shorter than it should be fails, holes or not.
TEST_F(UringCopyTest, ReadBackSkippingHolesStillFindsAShortCopy) {
  constexpr uint64_t kMiB = 1 << 20;
  std::string expected;
  int fd = SparseFile(dir_ + "/copy", 3 * kMiB, {{0, 4096}}, &expected);
  CopyParams p;
  p.skip_holes = true;
  p.src_name = dir_ + "/copy";
  for (bool through_io : {false, true}) {
    FaultIo io(std::make_shared<PosixIo>());
    if (through_io) p.in_io = &io;
    uint64_t hash = 0;
    Status st = ReadAndHash(fd, 5 * kMiB, p, &hash);
    EXPECT_EQ(EIO, st.err()) << st.message();
    st = ReadAndHash(fd, 3 * kMiB, p, &hash);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(XXH3_64bits(expected.data(), expected.size()), hash);
  }
  close(fd);
}

}  // namespace
}  // namespace tierfs

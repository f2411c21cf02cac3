// Unit tests of tiering/uring_copy: the copy and the read-back that every move
// runs, with O_DIRECT descriptors and sizes that are not whole pages.
#include "tiering/uring_copy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <xxhash.h>

#include <filesystem>
#include <string>

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

}  // namespace
}  // namespace tierfs

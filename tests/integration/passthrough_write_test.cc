// Read-write opens served through FUSE passthrough (fs/ops_file.cc
// PromiseWriterRoom): the kernel writes the object itself, so tierfs learns
// what was written at the close (size, mtime, checksums), and such a writer
// is admitted only while the SSD tier has room promised for it (fs/space.h):
// a storm of writers larger than the SSD tier's free space gets no ENOSPC
// while the HDD tier has room, and every byte is kept.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "meta/store.h"
#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

constexpr size_t kMiB = 1 << 20;

// Writes `data` through an O_RDWR descriptor in 1 MiB pieces, reads it back
// through the same descriptor, fsyncs and closes: 0 or the first errno.
int WriteReadWrite(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return errno;
  int err = 0;
  for (size_t off = 0; off < data.size() && err == 0; off += kMiB)
    err = PwriteAll(fd, data.data() + off, std::min(kMiB, data.size() - off), off_t(off));
  std::string back(data.size(), '\0');
  if (err == 0 && PreadAll(fd, back.data(), back.size(), 0) != ssize_t(back.size())) err = EIO;
  if (err == 0 && back != data) err = EILSEQ;
  if (err == 0 && fsync(fd) != 0) err = errno;
  if (close(fd) != 0 && err == 0) err = errno;
  return err;
}

class PassthroughWriteTest : public MountTest {
 protected:
  // `ssd_mb`: a tmpfs SSD tier of that size, or with `ext4`, an ext4 one
  // on a loop device (whose own metadata takes about 10 MiB of it).
  explicit PassthroughWriteTest(int ssd_mb = 0, bool ext4 = false)
      : MountTest(Options(ssd_mb, ext4, FreePort())) {}

  static MountOptions Options(int ssd_mb, bool ext4, uint16_t port) {
    MountOptions o;
    (ext4 ? o.ssd_ext4_mb : o.ssd_tmpfs_mb) = ssd_mb;
    o.hdd_tmpfs_mb = ssd_mb ? 1024 : 0;
    o.extra_args = {"--metrics", "127.0.0.1:" + std::to_string(port)};
    return o;
  }
  // The value of the metric line starting with `series` ("" when absent).
  std::string Metric(const std::string& series) {
    // The address given to --metrics (extra_args: {"--metrics", ADDR}).
    const std::string text =
        RunCommand({"curl", "-s", "http://" + fs_.options().extra_args[1] + "/metrics"}, 10).out;
    const size_t at = text.find("\n" + series + " ");
    if (at == std::string::npos) return "";
    const size_t from = at + series.size() + 2;
    return text.substr(from, text.find('\n', from) - from);
  }
  std::string PassthroughWrites() {
    return Metric("tierfs_opens_total{access=\"write\",mode=\"passthrough\"}");
  }
  // The size and checksum LMDB records for `rel` (read while mounted: LMDB
  // allows it).
  bool Recorded(const std::string& rel, uint64_t* size, uint64_t* checksum) {
    std::unique_ptr<tierfs::Store> store;
    if (!tierfs::Store::Open(fs_.ssd() + "/state", &store).ok()) return false;
    struct stat st;
    if (stat(P(rel).c_str(), &st) != 0) return false;
    tierfs::Inode n;
    if (!store->GetInode(st.st_ino, &n).ok()) return false;
    *size = n.size;
    *checksum = n.checksum;
    return true;
  }
};

TEST_F(PassthroughWriteTest, AReadWriteFileIsRecordedWhenItCloses) {
  const std::string data = Pattern(3 * kMiB + 5, 31);
  ASSERT_EQ(0, WriteReadWrite(P("rw"), data));
  EXPECT_EQ("1", PassthroughWrites());
  // Size and checksum in LMDB once it closed (the checksum read back: the
  // writes never passed through tierfs).
  uint64_t size = 0, checksum = 0;
  EXPECT_TRUE(WaitFor([&] { return Recorded("rw", &size, &checksum) && checksum != 0; }, 10));
  EXPECT_EQ(data.size(), size);
  EXPECT_EQ("1", Metric("tierfs_checksums_recorded_total{how=\"read\"}"));
  // Its mtime is the writes' (the object's), and a move verifies it.
  struct stat st;
  ASSERT_EQ(0, stat(P("rw").c_str(), &st));
  EXPECT_LE(time(nullptr) - st.st_mtime, 60);
  int err = 0;
  WaitFor([&] { return (err = SetTier(P("rw"), "hdd")) != EBUSY; }, 10);
  ASSERT_EQ(0, err);
  Remount();
  std::string got;
  ASSERT_EQ(0, ReadFile(P("rw"), &got));
  EXPECT_TRUE(got == data);
}

// Writes through a shared mapping of a passthrough file change the object's
// mtime behind the kernel's cached attributes: after the close, stat shows
// the new one (before, the old one for as long as the inode stayed cached;
// xfstests generic/080).
TEST_F(PassthroughWriteTest, AMappedWriteIsSeenInTheMtimeAfterTheClose) {
  const std::string f = P("mapped");
  ASSERT_EQ(0, WriteFile(f, std::string(4096, 'a')));
  struct statx before {};
  ASSERT_EQ(0, statx(AT_FDCWD, f.c_str(), 0, STATX_MTIME, &before));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const int fd = open(f.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  void* map = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(MAP_FAILED, map);
  static_cast<char*>(map)[0] = 'b';
  ASSERT_EQ(0, munmap(map, 4096));
  ASSERT_EQ(0, close(fd));
  struct statx after {};
  ASSERT_TRUE(WaitFor(
      [&] {
        return statx(AT_FDCWD, f.c_str(), 0, STATX_MTIME, &after) == 0 &&
               after.stx_mtime.tv_sec > before.stx_mtime.tv_sec;
      },
      5))
      << "mtime stays " << after.stx_mtime.tv_sec;
}

// While a passthrough handle may write through a shared mapping, stat asks
// tierfs each time (attribute timeout 0), which reads the object's mtime:
// before, stat and fstat showed the mtime from before the mapping's writes
// until the close, and for a moment after it (the release is sent
// asynchronously), where ext4 shows the new one at the first write fault.
TEST_F(PassthroughWriteTest, AMappedWriteIsSeenInTheMtimeWhileMapped) {
  const std::string f = P("mapped");
  // The first handle of the file, so it is passthrough.
  const int fd = open(f.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, PwriteAll(fd, std::string(4096, 'a').data(), 4096, 0));
  const struct timespec old_times[2] = {{978307200, 0}, {978307200, 0}};  // 2001
  ASSERT_EQ(0, futimens(fd, old_times));
  EXPECT_EQ("1", PassthroughWrites());
  void* map = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(MAP_FAILED, map);
  struct stat st;
  ASSERT_EQ(0, stat(f.c_str(), &st));  // after the mmap, which drops the cached atime
  EXPECT_EQ(978307200, st.st_mtime);
  static_cast<char*>(map)[0] = 'b';
  ASSERT_EQ(0, msync(map, 4096, MS_SYNC));
  const time_t now = time(nullptr);
  ASSERT_EQ(0, stat(f.c_str(), &st));
  EXPECT_GE(st.st_mtime, now - 60) << "stat while mapped";
  ASSERT_EQ(0, fstat(fd, &st));
  EXPECT_GE(st.st_mtime, now - 60) << "fstat while mapped";
  ASSERT_EQ(0, close(fd));
  static_cast<char*>(map)[1] = 'c';  // the mapping outlives the descriptor
  ASSERT_EQ(0, stat(f.c_str(), &st));
  EXPECT_GE(st.st_mtime, now - 60) << "stat after the close, still mapped";
  ASSERT_EQ(0, munmap(map, 4096));
  ASSERT_EQ(0, stat(f.c_str(), &st));
  EXPECT_GE(st.st_mtime, now - 60) << "stat right after the munmap";
  std::string got;
  ASSERT_EQ(0, ReadFile(f, &got));
  EXPECT_EQ("bc" + std::string(4094, 'a'), got);
}

// A shared mapping made through a passthrough handle holds the kernel's
// backing file, not the FUSE file: tierfs hears the release at close(2),
// and the mapping writes on. Before, the file was hashed at that close, so
// the mapping's writes made it look corrupt: a move refused it and marked
// it so, and every read then failed with EIO. Now the file counts as
// written while mapped (no hash, no move), and its next move verifies and
// keeps what the mapping wrote.
TEST_F(PassthroughWriteTest, AMappingThatOutlivesItsHandleKeepsTheFileWritten) {
  const std::string data = Pattern(kMiB, 32);
  ASSERT_EQ(0, WriteReadWrite(P("mapped"), data));
  int fd = open(P("mapped").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  void* map = mmap(nullptr, kMiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(MAP_FAILED, map);
  close(fd);
  EXPECT_EQ("2", PassthroughWrites()) << "the mapping is not the backing file's";
  // The release has come, and the hasher found the mapping.
  EXPECT_TRUE(WaitFor(
      [&] {
        return fs_.Log().find("still open for writing after its last close") != std::string::npos;
      },
      10));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::memset(map, 'Z', 4096);
  ASSERT_EQ(0, msync(map, kMiB, MS_SYNC));
  EXPECT_EQ(EBUSY, SetTier(P("mapped"), "hdd")) << "moved while the mapping could still write";
  ASSERT_EQ(0, munmap(map, kMiB));
  const std::string now = std::string(4096, 'Z') + data.substr(4096);
  std::string got;
  ASSERT_EQ(0, ReadFile(P("mapped"), &got));
  EXPECT_TRUE(got == now) << "the mapping's writes are not what tierfs reads";
  int err = 0;
  WaitFor([&] { return (err = SetTier(P("mapped"), "hdd")) != EBUSY; }, 10);
  ASSERT_EQ(0, err) << fs_.Log();
  Remount();
  ASSERT_EQ(0, ReadFile(P("mapped"), &got));
  EXPECT_TRUE(got == now) << "the archived copy lost the mapping's writes";
}

// An SSD tier with about 92-96 MiB free; eight writers of 16 MiB at once
// (128 MiB). On tmpfs, and on ext4, whose blocks a passthrough writer's
// kernel writes take directly (delayed allocation, extent and journal
// blocks): a promise that undercounted would show as ENOSPC there.
class PassthroughStormTest : public PassthroughWriteTest,
                             public ::testing::WithParamInterface<bool> {
 protected:
  PassthroughStormTest() : PassthroughWriteTest(GetParam() ? 104 : 96, GetParam()) {}
};

INSTANTIATE_TEST_SUITE_P(Tiers, PassthroughStormTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "ext4" : "tmpfs";
                         });

TEST_P(PassthroughStormTest, NoEnospcWhileTheHddTierHasRoomAndEveryByteKept) {
  constexpr int kWriters = 8;
  auto name = [](int round, int i) {
    return "step-" + std::to_string(round) + "/rank_" + std::to_string(i) + ".pt";
  };
  auto data = [](int round, int i) { return Pattern(16 * kMiB, 40 + round * kWriters + i); };
  // The first checkpoint, one rank after the other: nothing is known of the
  // first file (the default estimate, 1 GiB, fits no promise here), so it
  // goes through tierfs; the next ones have its shape (step-#/rank_#.pt) and
  // are promised its size, while the tier has room for that.
  ASSERT_EQ(0, mkdir(P("step-100").c_str(), 0755));
  ASSERT_EQ(0, WriteReadWrite(P(name(100, 0)), data(100, 0)));
  EXPECT_EQ("0", PassthroughWrites());
  for (int i = 1; i < kWriters; ++i) ASSERT_EQ(0, WriteReadWrite(P(name(100, i)), data(100, i)));
  const int before = std::stoi("0" + PassthroughWrites());
  EXPECT_GE(before, 1);
  for (int i = 0; i < kWriters; ++i) ASSERT_EQ(0, unlink(P(name(100, i)).c_str()));
  // The next one, all ranks at once: as many as the free space covers are
  // promised room and written through passthrough; the others spill.
  ASSERT_EQ(0, mkdir(P("step-200").c_str(), 0755));
  std::vector<int> errs(kWriters, -1);
  std::vector<std::thread> ranks;
  for (int i = 0; i < kWriters; ++i)
    ranks.emplace_back([&, i] { errs[i] = WriteReadWrite(P(name(200, i)), data(200, i)); });
  for (auto& t : ranks) t.join();
  int on_hdd = 0;
  for (int i = 0; i < kWriters; ++i) {
    EXPECT_EQ(0, errs[i]) << name(200, i) << ": " << strerror(errs[i]) << "\n" << fs_.Log();
    on_hdd += GetTier(P(name(200, i))) == "hdd";
  }
  const int passthrough = std::stoi("0" + PassthroughWrites()) - before;
  EXPECT_GE(passthrough, 1);
  EXPECT_LT(passthrough, kWriters);
  EXPECT_GE(on_hdd, 1);
  Remount();
  for (int i = 0; i < kWriters; ++i) {
    std::string got;
    ASSERT_EQ(0, ReadFile(P(name(200, i)), &got));
    EXPECT_TRUE(got == data(200, i)) << name(200, i);
  }
}

}  // namespace
}  // namespace tierfs_test

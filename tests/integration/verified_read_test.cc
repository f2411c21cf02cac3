// Block checksums recorded when the last writer closes, and verified reads
// of HDD-resident files (fs/block_hasher.h, fs/verified_read.h): a flipped
// byte on the HDD tier is EIO for reads of its block (never the wrong
// bytes), logged, audited, counted, shown by tierctl status, and every
// later open for reading fails until the file is rewritten.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "meta/block_sums.h"
#include "meta/store.h"
#include "tests/integration/tier_fault_util.h"
#include "tests/integration/tierctl_util.h"

namespace tierfs_test {
namespace {

using tierfs::kSumBlockBytes;

constexpr size_t kMiB = 1 << 20;

MountOptions WithMetrics(uint16_t port) {
  MountOptions o = TmpfsTiers();
  o.extra_args = {"--metrics", "127.0.0.1:" + std::to_string(port)};
  return o;
}

// xxh3 of each 1 MiB block of `data`.
std::vector<uint64_t> SumsOf(const std::string& data) {
  std::vector<uint64_t> out;
  for (size_t off = 0; off < data.size(); off += kSumBlockBytes)
    out.push_back(
        XXH3_64bits(data.data() + off, std::min<size_t>(kSumBlockBytes, data.size() - off)));
  return out;
}

// Flips the byte at `at` of file `path`, behind tierfs's back.
::testing::AssertionResult FlipByte(const std::string& path, uint64_t at) {
  const int fd = open(path.c_str(), O_RDWR);
  if (fd < 0) return ::testing::AssertionFailure() << "open " << path << ": " << strerror(errno);
  char b = 0;
  bool ok = pread(fd, &b, 1, off_t(at)) == 1;
  b = char(~b);
  ok = ok && pwrite(fd, &b, 1, off_t(at)) == 1;
  close(fd);
  if (!ok) return ::testing::AssertionFailure() << "flip byte " << at << " of " << path;
  return ::testing::AssertionSuccess();
}

class VerifiedReadTest : public TierFaultTest {
 protected:
  VerifiedReadTest() : port_(FreePort()) { fs_.options() = WithMetrics(port_); }

  // The block sums and checksum LMDB records for `rel` now (the state is
  // read from this process while the daemon runs: LMDB allows it); false
  // when there are none.
  bool Recorded(const std::string& rel, std::vector<uint64_t>* sums, uint64_t* whole) {
    std::unique_ptr<tierfs::Store> store;
    if (!tierfs::Store::Open(fs_.ssd() + "/state", &store).ok()) return false;
    tierfs::Inode n;
    if (!store->GetInode(Ino(P(rel)), &n).ok()) return false;
    *whole = n.checksum;
    return store->GetBlockSums(n.ino, sums).ok();
  }
  // Waits (10 s at most) until `rel`'s recorded sums are those of `data`.
  ::testing::AssertionResult SumsBecome(const std::string& rel, const std::string& data) {
    std::vector<uint64_t> sums;
    uint64_t whole = 0;
    const bool ok = WaitFor(
        [&] {
          return Recorded(rel, &sums, &whole) && sums == SumsOf(data) &&
                 whole == XXH3_64bits(data.data(), data.size());
        },
        10);
    if (ok) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << rel << ": " << sums.size() << " sums recorded, "
                                         << SumsOf(data).size() << " expected; whole " << whole;
  }
  std::string Scrape() {
    CommandResult r =
        RunCommand({"curl", "-s", "http://127.0.0.1:" + std::to_string(port_) + "/metrics"}, 10);
    return r.out;
  }

  uint16_t port_;
};

TEST_F(VerifiedReadTest, SumsRecordedAtCloseAndReplacedByARewrite) {
  std::string data = Pattern(2 * kMiB + 12345, 21);
  ASSERT_EQ(0, WriteFile(P("f"), data));
  EXPECT_TRUE(SumsBecome("f", data));
  // A write in the middle of block 1: new sums, recorded at its close.
  int fd = open(P("f").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const std::string patch = "rewritten in the middle";
  ASSERT_EQ(0, PwriteAll(fd, patch.data(), patch.size(), off_t(kMiB + 4000)));
  // While the writer is open, nothing vouches for the bytes.
  std::vector<uint64_t> sums;
  uint64_t whole = 0;
  EXPECT_FALSE(Recorded("f", &sums, &whole));
  EXPECT_EQ(0u, whole);
  close(fd);
  data.replace(kMiB + 4000, patch.size(), patch);
  EXPECT_TRUE(SumsBecome("f", data));
  // A move records the same sums (it computes them while it copies).
  int err = 0;
  WaitFor([&] { return (err = SetTier(P("f"), "hdd")) != EBUSY; }, 10);
  ASSERT_EQ(0, err);
  EXPECT_TRUE(SumsBecome("f", data));
  // Truncated (no writer's close): the sums are recorded for the new size.
  ASSERT_EQ(0, truncate(P("f").c_str(), 1000));
  EXPECT_TRUE(SumsBecome("f", data.substr(0, 1000)));
}

// The value of tierfs_checksums_recorded_total{how="`how`"} in `metrics`.
long RecordedHow(const std::string& metrics, const std::string& how) {
  const std::string key = "tierfs_checksums_recorded_total{how=\"" + how + "\"} ";
  const size_t at = metrics.find(key);
  return at == std::string::npos ? -1 : std::stol(metrics.substr(at + key.size()));
}

// A file written from start to end gets its sums from its writes, without
// being read back (fs/stream_sums.h); anything else is read back, and either
// way the sums are those of the bytes.
TEST_F(VerifiedReadTest, SumsOfAFileWrittenInOrderComeFromItsWrites) {
  // In pieces that do not line up with the 1 MiB blocks.
  const std::string data = Pattern(3 * kMiB + 4321, 23);
  int fd = open(P("in-order").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  for (size_t off = 0; off < data.size(); off += 100000) {
    const size_t n = std::min<size_t>(100000, data.size() - off);
    ASSERT_EQ(0, PwriteAll(fd, data.data() + off, n, off_t(off)));
  }
  close(fd);
  ASSERT_TRUE(SumsBecome("in-order", data));
  EXPECT_TRUE(WaitFor([&] { return RecordedHow(Scrape(), "streamed") == 1; }, 5)) << Scrape();
  EXPECT_EQ(0, RecordedHow(Scrape(), "read"));

  // The second half first: read back.
  fd = open(P("out-of-order").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  const size_t half = data.size() / 2;
  ASSERT_EQ(0, PwriteAll(fd, data.data() + half, data.size() - half, off_t(half)));
  ASSERT_EQ(0, PwriteAll(fd, data.data(), half, 0));
  close(fd);
  ASSERT_TRUE(SumsBecome("out-of-order", data));
  EXPECT_TRUE(WaitFor([&] { return RecordedHow(Scrape(), "read") == 1; }, 5)) << Scrape();

  // Appended to after its close: the finished stream cannot go on; read back.
  const std::string tail = Pattern(kMiB + 17, 24);
  fd = open(P("in-order").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ssize_t(tail.size()), write(fd, tail.data(), tail.size()));
  close(fd);
  ASSERT_TRUE(SumsBecome("in-order", data + tail));
  EXPECT_TRUE(WaitFor([&] { return RecordedHow(Scrape(), "read") == 2; }, 5)) << Scrape();

  // Cut short, then rewritten whole through O_TRUNC: streamed again, and a
  // move verifies the streamed checksum against the bytes it copies.
  ASSERT_EQ(0, truncate(P("in-order").c_str(), 5));
  ASSERT_EQ(0, WriteFile(P("in-order"), data));
  ASSERT_TRUE(SumsBecome("in-order", data));
  EXPECT_TRUE(WaitFor([&] { return RecordedHow(Scrape(), "streamed") == 2; }, 5)) << Scrape();
  int err = 0;
  WaitFor([&] { return (err = SetTier(P("in-order"), "hdd")) != EBUSY; }, 10);
  ASSERT_EQ(0, err);
  std::string got;
  ASSERT_EQ(0, ReadFile(P("in-order"), &got));
  EXPECT_TRUE(got == data);
}

// One mount for all the checks of a corrupt HDD object.
TEST_F(VerifiedReadTest, FlippedByteOnHddIsEioNeverWrongBytes) {
  const std::string data = Pattern(3 * kMiB + 777, 22);
  MakeHddResident("c", data);
  MakeHddResident("good", data);
  MakeHddResident("d", data);  // for tierctl verify, damaged in block 2
  ASSERT_TRUE(SumsBecome("c", data));
  ASSERT_TRUE(SumsBecome("d", data));
  const std::string d_obj = ObjectPath(fs_.hdd(), Ino(P("d")));
  // Damage block 1 behind tierfs's back; the remount drops the page cache.
  const std::string obj = ObjectPath(fs_.hdd(), Ino(P("c")));
  ASSERT_TRUE(FlipByte(obj, kMiB + 5000));
  ASSERT_TRUE(FlipByte(d_obj, 2 * kMiB + 1));
  Remount();

  // A clean HDD file reads back whole and exact, through tierfs.
  std::string got;
  ASSERT_EQ(0, ReadFile(P("good"), &got));
  EXPECT_TRUE(got == data);

  int fd = open(P("c").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  std::vector<char> buf(128 * 1024);
  // Block 0: fine.
  ASSERT_EQ(ssize_t(buf.size()), PreadAll(fd, buf.data(), buf.size(), 0));
  EXPECT_EQ(0, memcmp(buf.data(), data.data(), buf.size()));
  // Block 1, where the flipped byte is: EIO, not the bytes.
  EXPECT_EQ(-EIO, PreadAll(fd, buf.data(), buf.size(), off_t(kMiB)));
  EXPECT_EQ(-EIO, PreadAll(fd, buf.data(), 100, off_t(2 * kMiB - 100)));
  // Block 3 (the short last one): fine.
  ASSERT_EQ(ssize_t(777), PreadAll(fd, buf.data(), buf.size(), off_t(3 * kMiB)));
  EXPECT_EQ(0, memcmp(buf.data(), data.data() + 3 * kMiB, 777));
  close(fd);

  // Reported: audited, counted, shown by status, logged with the block.
  std::string audit;
  ReadFile(fs_.ssd() + "/state/audit.jsonl", &audit);
  EXPECT_NE(std::string::npos, audit.find("\"corrupt\"")) << audit;
  EXPECT_NE(std::string::npos, audit.find("block 1:")) << audit;
  const std::string metrics = Scrape();
  const size_t at = metrics.find("\ntierfs_corrupt_reads_total ");
  ASSERT_NE(std::string::npos, at) << metrics;
  EXPECT_GE(std::stoi(metrics.substr(at + 28)), 2) << metrics;
  const CommandResult status = Tierctl({"status", fs_.mnt()});
  EXPECT_NE(std::string::npos, status.out.find("corrupt files")) << status.out;
  EXPECT_NE(std::string::npos, fs_.Log().find("block 1")) << fs_.Log();

  // Every later open for reading is EIO, after a remount too; a whole-file
  // read never returns a byte of the damaged block.
  EXPECT_EQ(EIO, OpenErr(P("c"), O_RDONLY));
  Remount();
  EXPECT_EQ(EIO, OpenErr(P("c"), O_RDONLY));
  EXPECT_EQ(EIO, ReadFile(P("c"), &got));
  // Rewriting it clears the mark.
  ASSERT_EQ(0, WriteFile(P("c"), "fresh"));
  ASSERT_EQ(0, ReadFile(P("c"), &got));
  EXPECT_EQ("fresh", got);

  // tierctl verify re-reads every file: d is found (and marked) without a read.
  ASSERT_TRUE(SumsBecome("c", "fresh"));
  const CommandResult v = Tierctl({"verify", fs_.mnt()});
  EXPECT_EQ(1, v.exit_code) << v.out << v.err;
  EXPECT_NE(std::string::npos, v.out.find("/good: ok")) << v.out;
  EXPECT_NE(std::string::npos, v.out.find("/c: ok")) << v.out;
  EXPECT_NE(std::string::npos, v.out.find("/d: corrupt at block 2")) << v.out;
  EXPECT_EQ(EIO, OpenErr(P("d"), O_RDONLY));
}

// Readers that close the moment their read returns: the release may free
// the handle while the thread that replied still holds its lock (the daemon
// once aborted at unmount, "unaligned tcache chunk", after such reads).
TEST_F(VerifiedReadTest, ReadersClosingRightAfterTheirReadsLeaveTheDaemonWhole) {
  const std::string data = Pattern(5 * kMiB + 3, 24);
  MakeHddResident("r", data);
  ASSERT_TRUE(SumsBecome("r", data));
  Remount();
  std::vector<std::thread> readers;
  std::atomic<int> wrong{0};
  for (size_t bs : {size_t(4096), size_t(65536), size_t(131072), size_t(1000000), size_t(3000000)})
    readers.emplace_back([&, bs] {
      for (int round = 0; round < 4; ++round) {
        int fd = open(P("r").c_str(), O_RDONLY | O_DIRECT);
        if (fd < 0) {
          ++wrong;
          return;
        }
        std::vector<char> buf(bs);
        for (size_t off = 0; off < data.size(); off += bs) {
          const ssize_t n = pread(fd, buf.data(), bs, off_t(off));
          const size_t want = std::min(bs, data.size() - off);
          if (n != ssize_t(want) || memcmp(buf.data(), data.data() + off, want) != 0) ++wrong;
        }
        close(fd);
      }
    });
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(0, wrong.load());
  EXPECT_TRUE(fs_.Unmount()) << "daemon exit code " << fs_.last_exit_code();
  EXPECT_EQ(0, fs_.last_exit_code());
}

// One descriptor shared by threads whose reads load different blocks at
// once, wait for a block another is loading, and span two blocks: each
// gets the exact bytes, and only the reads that touch the damaged block
// get EIO.
TEST_F(VerifiedReadTest, ParallelReadsOfOneDescriptorAreExactAndOnlyTheBadBlockFails) {
  const std::string data = Pattern(9 * kMiB + 4321, 25);
  MakeHddResident("p", data);
  ASSERT_TRUE(SumsBecome("p", data));
  const std::string obj = ObjectPath(fs_.hdd(), Ino(P("p")));
  constexpr uint64_t kBad = 6;  // the damaged block
  ASSERT_TRUE(FlipByte(obj, kBad * kMiB + 99));
  Remount();
  const int fd = open(P("p").c_str(), O_RDONLY | O_DIRECT);
  ASSERT_GE(fd, 0) << strerror(errno);
  std::atomic<int> wrong{0}, eio{0}, unexpected_eio{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 6; ++t)
    readers.emplace_back([&, t] {
      // Unaligned reads of up to 1.5 MiB: most cross a block boundary.
      const size_t bs = 700000 + size_t(t) * 150000;
      std::vector<char> buf(bs);
      for (int round = 0; round < 3; ++round) {
        for (size_t off = size_t(t) * 333333; off < data.size(); off += bs) {
          const size_t want = std::min(bs, data.size() - off);
          const ssize_t n = pread(fd, buf.data(), bs, off_t(off));
          const bool touches_bad = off < (kBad + 1) * kMiB && off + want > kBad * kMiB;
          if (n < 0 && errno == EIO) {
            ++(touches_bad ? eio : unexpected_eio);
          } else if (n != ssize_t(want) || memcmp(buf.data(), data.data() + off, want) != 0) {
            ++wrong;
          }
        }
      }
    });
  for (std::thread& th : readers) th.join();
  close(fd);
  EXPECT_EQ(0, wrong.load());
  EXPECT_EQ(0, unexpected_eio.load());
  EXPECT_GT(eio.load(), 0);
  EXPECT_TRUE(fs_.Unmount()) << "daemon exit code " << fs_.last_exit_code();
  EXPECT_EQ(0, fs_.last_exit_code());
}

// Reads of whole blocks (1 MiB at a block's start; O_DIRECT, so each read
// is one READ) are read into their replies' ring buffers and never kept
// (fs/verified_read.cc): threads reading the same blocks at once each get
// the exact bytes, the damaged block is EIO for every one of them, and the
// short last block is exact.
TEST_F(VerifiedReadTest, WholeBlockReadsIntoTheRingAreExactAndTheBadBlockIsEio) {
  const std::string data = Pattern(5 * kMiB + 999, 31);
  MakeHddResident("w", data);
  ASSERT_TRUE(SumsBecome("w", data));
  const std::string obj = ObjectPath(fs_.hdd(), Ino(P("w")));
  constexpr uint64_t kBad = 2;
  ASSERT_TRUE(FlipByte(obj, kBad * kMiB + 7));
  Remount();
  // All open before any reads: the first read of the bad block marks the
  // file corrupt, and opens after that are refused.
  std::vector<int> fds;
  for (int t = 0; t < 4; ++t) {
    fds.push_back(open(P("w").c_str(), O_RDONLY | O_DIRECT));
    ASSERT_GE(fds.back(), 0) << strerror(errno);
  }
  std::atomic<int> wrong{0}, eio{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t)
    readers.emplace_back([&, fd = fds[t]] {
      void* mem = nullptr;
      if (posix_memalign(&mem, 4096, kMiB) != 0) {
        close(fd);
        ++wrong;
        return;
      }
      char* buf = static_cast<char*>(mem);
      for (uint64_t b = 0; b * kMiB < data.size(); ++b) {
        const size_t want = std::min<size_t>(kMiB, data.size() - b * kMiB);
        const ssize_t n = pread(fd, buf, kMiB, off_t(b * kMiB));
        if (b == kBad) {
          eio += n < 0 && errno == EIO;
        } else if (n != ssize_t(want) || memcmp(buf, data.data() + b * kMiB, want) != 0) {
          ++wrong;
        }
      }
      free(mem);
      close(fd);
    });
  for (std::thread& th : readers) th.join();
  EXPECT_EQ(0, wrong.load());
  EXPECT_EQ(4, eio.load());
  EXPECT_TRUE(fs_.Unmount()) << "daemon exit code " << fs_.last_exit_code();
  EXPECT_EQ(0, fs_.last_exit_code());
  // Where the kernel offers the ring, the last mount's count at unmount.
  const std::string log = fs_.Log(), key = "requests served through the ring, ";
  if (const size_t at = log.rfind(key); at != std::string::npos) {
    EXPECT_GE(std::strtol(log.c_str() + at + key.size(), nullptr, 10), 4) << log;
  }
}

// A reader's descriptor stays open while its file moves to the SSD tier
// and back: its reads stay verified and exact across the new objects.
TEST_F(VerifiedReadTest, ReaderKeepsExactBytesAcrossMovesOffAndBackOntoHdd) {
  const std::string data = Pattern(4 * kMiB + 17, 26);
  MakeHddResident("m", data);
  ASSERT_TRUE(SumsBecome("m", data));
  Remount();
  const int fd = open(P("m").c_str(), O_RDONLY | O_DIRECT);
  ASSERT_GE(fd, 0) << strerror(errno);
  std::vector<char> buf(kMiB);
  ASSERT_EQ(ssize_t(kMiB), PreadAll(fd, buf.data(), kMiB, 0));
  EXPECT_EQ(0, memcmp(buf.data(), data.data(), kMiB));
  for (const char* tier : {"ssd", "hdd"}) {
    int err = 0;
    WaitFor([&] { return (err = SetTier(P("m"), tier)) != EBUSY; }, 10);
    ASSERT_EQ(0, err) << tier;
  }
  for (size_t off = kMiB; off < data.size(); off += kMiB) {
    const size_t want = std::min(kMiB, data.size() - off);
    ASSERT_EQ(ssize_t(want), PreadAll(fd, buf.data(), kMiB, off_t(off))) << off;
    EXPECT_EQ(0, memcmp(buf.data(), data.data() + off, want)) << off;
  }
  close(fd);
}

// --no-verify-reads (-o verify_reads=0): the HDD tier's bytes as they are.
// The value of tierfs_fuse_requests_total{op="read"} in `metrics`.
long ReadRequests(const std::string& metrics) {
  const std::string key = "tierfs_fuse_requests_total{op=\"read\"} ";
  const size_t at = metrics.find(key);
  return at == std::string::npos ? -1 : std::stol(metrics.substr(at + key.size()));
}

// A sequential reader of an HDD file gets the mount's 4 MiB readahead, so
// the kernel asks for whole 1 MiB blocks, several at once. The FUSE bdi
// started at 128 KiB and INIT's max_readahead can only lower it: every
// verified block took eight 128 KiB READs, one after the other.
TEST_F(VerifiedReadTest, ASequentialReaderAsksForWholeBlocks) {
  const std::string data = Pattern(8 * kMiB, 29);
  MakeHddResident("seq", data);
  ASSERT_TRUE(SumsBecome("seq", data));
  const long before = ReadRequests(Scrape());
  ASSERT_GE(before, 0) << Scrape();
  std::string got;
  ASSERT_EQ(0, ReadFile(P("seq"), &got));
  EXPECT_TRUE(got == data);
  const long reads = ReadRequests(Scrape()) - before;
  EXPECT_GE(reads, 8);
  EXPECT_LE(reads, 16) << "READs of at most 128 KiB: the mount's readahead was not raised";
}

// A max_read given with -o (tierfs.8) replaces tierfs's 1 MiB: libfuse
// refused the mount ("init() and fuse_session_new() requested different
// maximum read size") while Init still set 1 MiB over it.
TEST_F(VerifiedReadTest, AUserMaxReadIsTheMountsReadSize) {
  const std::string data = Pattern(8 * kMiB, 30);
  MakeHddResident("mr", data);
  ASSERT_TRUE(SumsBecome("mr", data));
  ASSERT_TRUE(fs_.Unmount());
  fs_.options().extra_opts = {"max_read=131072"};
  ASSERT_TRUE(fs_.Mount()) << fs_.Log();
  const long before = ReadRequests(Scrape());
  std::string got;
  ASSERT_EQ(0, ReadFile(P("mr"), &got));
  EXPECT_TRUE(got == data);
  EXPECT_GE(ReadRequests(Scrape()) - before, 64) << "READs larger than max_read";
}

TEST_F(VerifiedReadTest, UnverifiedWhenTurnedOff) {
  const std::string data = Pattern(2 * kMiB, 23);
  MakeHddResident("u", data);
  ASSERT_TRUE(SumsBecome("u", data));
  const std::string obj = ObjectPath(fs_.hdd(), Ino(P("u")));
  ASSERT_TRUE(fs_.Unmount());
  fs_.options().extra_opts = {"verify_reads=0"};
  ASSERT_TRUE(fs_.Mount());
  int fd = open(obj.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(1, pwrite(fd, "!", 1, 10));
  close(fd);
  std::string got;
  ASSERT_EQ(0, ReadFile(P("u"), &got));
  EXPECT_EQ('!', got[10]);
}

}  // namespace
}  // namespace tierfs_test

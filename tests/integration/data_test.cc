// File data: random I/O, holes, fallocate, copy_file_range, mmap, append,
// truncating opens, a large file and concurrent writers.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

class DataTest : public MountTest {};

off_t FileSize(int fd) {
  struct stat st {};
  return fstat(fd, &st) == 0 ? st.st_size : -1;
}

TEST_F(DataTest, RandomPwritePread) {
  constexpr size_t kMax = 4 << 20;
  std::string model;
  int fd = open(P("rand").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  std::mt19937_64 rng(42);
  for (int i = 0; i < 400; i++) {
    SCOPED_TRACE("op " + std::to_string(i));
    size_t off = rng() % kMax;
    size_t len = 1 + rng() % 65536;
    std::string data = Pattern(len, rng());
    ASSERT_EQ(0, PwriteAll(fd, data.data(), len, off));
    if (model.size() < off + len) model.resize(off + len, '\0');
    model.replace(off, len, data);
    // Check a random range, possibly crossing EOF.
    size_t roff = rng() % (model.size() + 100);
    size_t rlen = 1 + rng() % 100000;
    std::string got(rlen, '\0');
    ssize_t n = PreadAll(fd, got.data(), rlen, roff);
    size_t want_n = roff >= model.size() ? 0 : std::min(rlen, model.size() - roff);
    ASSERT_EQ(static_cast<ssize_t>(want_n), n);
    ASSERT_TRUE(got.substr(0, want_n) == model.substr(roff, want_n)) << "at " << roff;
  }
  EXPECT_EQ(static_cast<off_t>(model.size()), FileSize(fd));
  close(fd);
  std::string all;
  ASSERT_EQ(0, ReadFile(P("rand"), &all));
  EXPECT_TRUE(all == model);
  Remount();
  ASSERT_EQ(0, ReadFile(P("rand"), &all));
  EXPECT_EQ(model.size(), all.size());
  EXPECT_TRUE(all == model) << "content differs after remount";
}

TEST_F(DataTest, SparseFileSeekDataHole) {
  int fd = open(P("sparse").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  std::string a = Pattern(4096, 1), b = Pattern(4096, 2);
  constexpr off_t kFar = 4 << 20;
  ASSERT_EQ(0, PwriteAll(fd, a.data(), a.size(), 0));
  ASSERT_EQ(0, PwriteAll(fd, b.data(), b.size(), kFar));
  ASSERT_EQ(0, fsync(fd));
  off_t size = kFar + 4096;
  EXPECT_EQ(size, FileSize(fd));
  EXPECT_EQ(0, lseek(fd, 0, SEEK_DATA));
  off_t hole = lseek(fd, 0, SEEK_HOLE);
  EXPECT_GE(hole, 4096);
  EXPECT_LE(hole, size);
  off_t data = lseek(fd, 8192, SEEK_DATA);
  EXPECT_GE(data, 8192);
  EXPECT_LE(data, kFar);
  EXPECT_EQ(size, lseek(fd, size - 1, SEEK_HOLE)) << "EOF is an implicit hole";
  EXPECT_EQ(-1, lseek(fd, size, SEEK_DATA));
  EXPECT_EQ(ENXIO, errno);
  EXPECT_EQ(-1, lseek(fd, size + 10, SEEK_HOLE));
  EXPECT_EQ(ENXIO, errno);
  // The hole reads as zeros; the data around it is intact.
  std::string mid(65536, 'x');
  ASSERT_EQ(65536, PreadAll(fd, mid.data(), mid.size(), 1 << 20));
  EXPECT_EQ(std::string(65536, '\0'), mid);
  std::string back(4096, '\0');
  ASSERT_EQ(4096, PreadAll(fd, back.data(), 4096, kFar));
  EXPECT_EQ(b, back);
  struct stat st {};
  ASSERT_EQ(0, fstat(fd, &st));
  EXPECT_LT(st.st_blocks * 512, size) << "holes should not be allocated";
  close(fd);
}

TEST_F(DataTest, OffsetsBeyondFourGiB) {
  int fd = open(P("huge").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  constexpr off_t kOff = (5LL << 30) + 12345;
  ASSERT_EQ(0, PwriteAll(fd, "far away", 8, kOff));
  EXPECT_EQ(kOff + 8, FileSize(fd));
  char buf[8];
  ASSERT_EQ(8, PreadAll(fd, buf, 8, kOff));
  EXPECT_EQ("far away", std::string(buf, 8));
  ASSERT_EQ(8, PreadAll(fd, buf, 8, 4LL << 30));
  EXPECT_EQ(std::string(8, '\0'), std::string(buf, 8));
  close(fd);
  Remount();
  struct stat st {};
  ASSERT_EQ(0, stat(P("huge").c_str(), &st));
  EXPECT_EQ(kOff + 8, st.st_size);
  fd = open(P("huge").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(8, PreadAll(fd, buf, 8, kOff));
  EXPECT_EQ("far away", std::string(buf, 8));
  close(fd);
}

TEST_F(DataTest, Fallocate) {
  int fd = open(P("fa").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, Err(fallocate(fd, 0, 0, 1 << 20)));
  EXPECT_EQ(1 << 20, FileSize(fd)) << "mode 0 extends the size";
  std::string z(1 << 20, 'x');
  ASSERT_EQ(1 << 20, PreadAll(fd, z.data(), z.size(), 0));
  EXPECT_EQ(std::string(1 << 20, '\0'), z);
  struct stat st {};
  ASSERT_EQ(0, fstat(fd, &st));
  EXPECT_GE(st.st_blocks * 512, 1 << 20) << "space is reserved";

  ASSERT_EQ(0, Err(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 2 << 20)));
  EXPECT_EQ(1 << 20, FileSize(fd)) << "KEEP_SIZE keeps the size";

  std::string pat = Pattern(1 << 20, 5);
  ASSERT_EQ(0, PwriteAll(fd, pat.data(), pat.size(), 0));
  ASSERT_EQ(0, Err(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192)));
  EXPECT_EQ(1 << 20, FileSize(fd));
  std::string got(1 << 20, '\0');
  ASSERT_EQ(1 << 20, PreadAll(fd, got.data(), got.size(), 0));
  std::string want = pat;
  std::fill(want.begin() + 4096, want.begin() + 4096 + 8192, '\0');
  EXPECT_TRUE(got == want) << "punched range must read as zeros, the rest unchanged";
  // Unaligned punch.
  ASSERT_EQ(0, Err(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100001, 3)));
  ASSERT_EQ(1 << 20, PreadAll(fd, got.data(), got.size(), 0));
  std::fill(want.begin() + 100001, want.begin() + 100004, '\0');
  EXPECT_TRUE(got == want);
  // Mode 0 beyond EOF on a file with data.
  ASSERT_EQ(0, Err(fallocate(fd, 0, (1 << 20) + 100, 900)));
  EXPECT_EQ((1 << 20) + 1000, FileSize(fd));
  close(fd);
  Remount();
  std::string after;
  ASSERT_EQ(0, ReadFile(P("fa"), &after));
  want.resize((1 << 20) + 1000, '\0');
  EXPECT_TRUE(after == want);
}

TEST_F(DataTest, CopyFileRange) {
  std::string src = Pattern(1 << 20, 11);
  ASSERT_EQ(0, WriteFile(P("src"), src));
  ASSERT_EQ(0, WriteFile(P("dst"), "0123456789"));
  int in = open(P("src").c_str(), O_RDONLY);
  int out = open(P("dst").c_str(), O_WRONLY);
  ASSERT_GE(in, 0);
  ASSERT_GE(out, 0);
  loff_t off_in = 4096, off_out = 5;
  size_t left = 512 * 1024;
  while (left > 0) {
    ssize_t n = copy_file_range(in, &off_in, out, &off_out, left, 0);
    ASSERT_GT(n, 0) << strerror(errno);
    left -= n;
  }
  EXPECT_EQ(4096 + 512 * 1024, off_in);
  EXPECT_EQ(5 + 512 * 1024, off_out);
  // Using and advancing the file offsets.
  ASSERT_EQ(100, lseek(in, 100, SEEK_SET));
  ASSERT_EQ(0, lseek(out, 0, SEEK_SET));
  ASSERT_EQ(3, copy_file_range(in, nullptr, out, nullptr, 3, 0));
  EXPECT_EQ(103, lseek(in, 0, SEEK_CUR));
  EXPECT_EQ(3, lseek(out, 0, SEEK_CUR));
  // Past the end of the source: nothing to copy.
  loff_t end = 1 << 20;
  EXPECT_EQ(0, copy_file_range(in, &end, out, nullptr, 10, 0));
  close(in);
  close(out);
  std::string want = src.substr(100, 3) + "34" + src.substr(4096, 512 * 1024);
  std::string got;
  ASSERT_EQ(0, ReadFile(P("dst"), &got));
  EXPECT_EQ(want.size(), got.size());
  EXPECT_TRUE(got == want);
  std::string src_after;
  ASSERT_EQ(0, ReadFile(P("src"), &src_after));
  EXPECT_TRUE(src_after == src) << "the source must not change";
}

TEST_F(DataTest, SharedWritableMmap) {
  constexpr size_t kLen = 256 * 1024;
  int fd = open(P("mm").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, ftruncate(fd, kLen));
  void* m = mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(MAP_FAILED, m) << strerror(errno);
  std::string pat = Pattern(kLen, 77);
  memcpy(m, pat.data(), kLen);
  ASSERT_EQ(0, msync(m, kLen, MS_SYNC));
  ASSERT_EQ(0, munmap(m, kLen));
  close(fd);
  std::string got;
  ASSERT_EQ(0, ReadFile(P("mm"), &got));
  EXPECT_TRUE(got == pat);
  // A read-only mapping sees what write() put there.
  fd = open(P("mm").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, PwriteAll(fd, "WRITTEN", 7, 1000));
  pat.replace(1000, 7, "WRITTEN");
  m = mmap(nullptr, kLen, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(MAP_FAILED, m);
  EXPECT_EQ(0, memcmp(m, pat.data(), kLen));
  munmap(m, kLen);
  close(fd);
  Remount();
  ASSERT_EQ(0, ReadFile(P("mm"), &got));
  EXPECT_TRUE(got == pat) << "mmap writes lost across remount";
}

TEST_F(DataTest, AppendAndTruncatingOpen) {
  ASSERT_EQ(0, WriteFile(P("f"), "abc"));
  int fd1 = open(P("f").c_str(), O_WRONLY | O_APPEND);
  int fd2 = open(P("f").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd1, 0);
  ASSERT_GE(fd2, 0);
  ASSERT_EQ(3, write(fd1, "def", 3));
  ASSERT_EQ(3, write(fd2, "ghi", 3));
  ASSERT_EQ(3, write(fd1, "jkl", 3));
  EXPECT_EQ(12, lseek(fd1, 0, SEEK_CUR));
  ASSERT_EQ(3, pwrite(fd2, "mno", 3, 0)) << "Linux appends even with pwrite";
  close(fd1);
  close(fd2);
  std::string got;
  ASSERT_EQ(0, ReadFile(P("f"), &got));
  EXPECT_EQ("abcdefghijklmno", got);

  struct timespec old[2] = {{1000, 0}, {1000, 0}};
  ASSERT_EQ(0, utimensat(AT_FDCWD, P("f").c_str(), old, 0));
  int fd = open(P("f").c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(0, FileSize(fd));
  ASSERT_EQ(1, write(fd, "x", 1));
  close(fd);
  ASSERT_EQ(0, ReadFile(P("f"), &got));
  EXPECT_EQ("x", got);
  struct stat st {};
  ASSERT_EQ(0, stat(P("f").c_str(), &st));
  EXPECT_GT(st.st_mtim.tv_sec, 1000) << "O_TRUNC updates mtime";
  // O_TRUNC with O_RDONLY on a non-empty file, and O_CREAT|O_TRUNC.
  ASSERT_EQ(0, WriteFile(P("g"), "longer content"));
  fd = open(P("g").c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(0, FileSize(fd));
  close(fd);
  ASSERT_EQ(0, ReadFile(P("g"), &got));
  EXPECT_EQ("", got);
}

uint64_t HashFile(const std::string& path, off_t* size) {
  XXH64_state_t* s = XXH64_createState();
  XXH64_reset(s, 0);
  int fd = open(path.c_str(), O_RDONLY);
  *size = 0;
  std::string buf(1 << 20, '\0');
  ssize_t n;
  while (fd >= 0 && (n = read(fd, buf.data(), buf.size())) > 0) {
    XXH64_update(s, buf.data(), n);
    *size += n;
  }
  if (fd >= 0) close(fd);
  uint64_t h = XXH64_digest(s);
  XXH64_freeState(s);
  return h;
}

TEST_F(DataTest, LargeFileChecksum) {
  constexpr int kMiB = 64;
  XXH64_state_t* s = XXH64_createState();
  XXH64_reset(s, 0);
  int fd = open(P("large").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < kMiB; i++) {
    std::string chunk = Pattern(1 << 20, 1000 + i);
    ASSERT_EQ(0, PwriteAll(fd, chunk.data(), chunk.size(), static_cast<off_t>(i) << 20));
    XXH64_update(s, chunk.data(), chunk.size());
  }
  ASSERT_EQ(0, close(fd));
  uint64_t want = XXH64_digest(s);
  XXH64_freeState(s);
  off_t size = 0;
  EXPECT_EQ(want, HashFile(P("large"), &size));
  EXPECT_EQ(static_cast<off_t>(kMiB) << 20, size);
  Remount();
  EXPECT_EQ(want, HashFile(P("large"), &size));
  EXPECT_EQ(static_cast<off_t>(kMiB) << 20, size);
}

// Whether the filesystem holding directory `dir` takes uncached writes
// (RWF_DONTCACHE, Linux 6.14+; not tmpfs): a probe through an unnamed file.
bool TakesUncachedWrites(const std::string& dir) {
  const int fd = open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  struct iovec v = {const_cast<char*>("x"), 1};
  const bool ok = pwritev2(fd, &v, 1, 0, 0x80 /* RWF_DONTCACHE */) == 1;
  close(fd);
  return ok;
}

// Pages of `path` in the page cache (mincore of a mapping), and how many it
// has in all; -1 when it cannot be mapped.
long ResidentPages(const std::string& path, long* total) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  const off_t size = FileSize(fd);
  void* map = size > 0 ? mmap(nullptr, size_t(size), PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
  close(fd);
  if (map == MAP_FAILED) return -1;
  const long page = sysconf(_SC_PAGESIZE);
  *total = long((size + page - 1) / page);
  std::vector<unsigned char> in_core(static_cast<size_t>(*total));
  long resident = -1;
  if (mincore(map, size_t(size), in_core.data()) == 0) {
    resident = 0;
    for (unsigned char c : in_core) resident += c & 1;
  }
  munmap(map, size_t(size));
  return resident;
}

// A checkpoint's large writes are uncached where the SSD tier's filesystem
// allows (fs/ops_write.cc WriteBytes): once it is synced its object's pages
// have left the page cache, so saving checkpoints does not push the job's
// dataset out of memory, and the bytes read back whole.
TEST_F(DataTest, LargeWritesLeaveTheObjectOutOfThePageCacheOnceSynced) {
  if (!TakesUncachedWrites(fs_.ssd())) GTEST_SKIP() << fs_.ssd() << " takes no RWF_DONTCACHE";
  constexpr int kMiB = 32;
  XXH64_state_t* s = XXH64_createState();
  XXH64_reset(s, 0);
  int fd = open(P("ckpt").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < kMiB; i++) {
    std::string chunk = Pattern(1 << 20, 2000 + i);
    ASSERT_EQ(0, PwriteAll(fd, chunk.data(), chunk.size(), static_cast<off_t>(i) << 20));
    XXH64_update(s, chunk.data(), chunk.size());
  }
  ASSERT_EQ(0, fsync(fd));
  ASSERT_EQ(0, close(fd));
  const uint64_t want = XXH64_digest(s);
  XXH64_freeState(s);
  long total = 0;
  const long resident = ResidentPages(ObjectPathOn(fs_.ssd(), Ino(P("ckpt"))), &total);
  ASSERT_GE(resident, 0);
  EXPECT_EQ(kMiB * (1L << 20) / sysconf(_SC_PAGESIZE), total);
  // The kernel may keep a folio it could not lock at writeback's end.
  EXPECT_LT(resident, total / 8) << resident << " of " << total << " pages still cached";
  off_t size = 0;
  EXPECT_EQ(want, HashFile(P("ckpt"), &size));
  EXPECT_EQ(off_t(kMiB) << 20, size);
}

TEST_F(DataTest, ConcurrentWriters) {
  constexpr int kThreads = 4;
  constexpr size_t kChunk = 256 * 1024;
  constexpr int kChunks = 16;
  // Each thread writes its own file and its own stripes of a shared file.
  int shared = open(P("shared").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(shared, 0);
  std::vector<int> errs(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      std::string path = P("own" + std::to_string(t));
      int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0644);
      if (fd < 0) {
        errs[t] = errno;
        return;
      }
      for (int c = 0; c < kChunks && errs[t] == 0; c++) {
        std::string d = Pattern(kChunk, t * 1000 + c);
        errs[t] = PwriteAll(fd, d.data(), d.size(), c * kChunk);
        if (errs[t] == 0) {
          off_t off = (static_cast<off_t>(c) * kThreads + t) * kChunk;
          errs[t] = PwriteAll(shared, d.data(), d.size(), off);
        }
      }
      if (fsync(fd) != 0 && errs[t] == 0) errs[t] = errno;
      close(fd);
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; t++) ASSERT_EQ(0, errs[t]) << "thread " << t;
  close(shared);
  for (int pass = 0; pass < 2; pass++) {
    std::string all;
    ASSERT_EQ(0, ReadFile(P("shared"), &all));
    ASSERT_EQ(kThreads * kChunks * kChunk, all.size());
    for (int t = 0; t < kThreads; t++) {
      std::string own;
      ASSERT_EQ(0, ReadFile(P("own" + std::to_string(t)), &own));
      ASSERT_EQ(kChunks * kChunk, own.size());
      for (int c = 0; c < kChunks; c++) {
        std::string d = Pattern(kChunk, t * 1000 + c);
        EXPECT_TRUE(own.compare(c * kChunk, kChunk, d) == 0) << "own" << t << " chunk " << c;
        size_t off = (static_cast<size_t>(c) * kThreads + t) * kChunk;
        EXPECT_TRUE(all.compare(off, kChunk, d) == 0) << "shared stripe " << t << "/" << c;
      }
    }
    if (pass == 0) Remount();
  }
}

// Linux truncates on O_TRUNC whatever the access mode (given write
// permission), and so must we; without write permission it is EACCES.
// Write-only descriptors bypass the mount's page cache (direct I/O): what
// they write must still show through descriptors and mappings that cached
// the old bytes, and appends and sizes must stay right.
TEST_F(DataTest, WriteOnlyDescriptorsStayCoherentWithCachedReadersAndMappings) {
  const std::string path = P("coherent");
  ASSERT_EQ(0, WriteFile(path, std::string(8192, 'A')));
  int reader = open(path.c_str(), O_RDONLY);
  ASSERT_GE(reader, 0);
  char buf[4];
  ASSERT_EQ(4, pread(reader, buf, 4, 0));  // now cached
  int rw = open(path.c_str(), O_RDWR);
  ASSERT_GE(rw, 0);
  void* map = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
  ASSERT_NE(MAP_FAILED, map);
  ASSERT_EQ('A', static_cast<char*>(map)[4096]);

  int writer = open(path.c_str(), O_WRONLY);
  ASSERT_GE(writer, 0);
  ASSERT_EQ(4, pwrite(writer, "BBBB", 4, 0));
  ASSERT_EQ(4, pwrite(writer, "CCCC", 4, 4096));
  ASSERT_EQ(4, pread(reader, buf, 4, 0));
  EXPECT_EQ("BBBB", std::string(buf, 4));
  EXPECT_EQ("CCCC", std::string(static_cast<char*>(map) + 4096, 4));
  ASSERT_EQ(0, close(writer));

  int appender = open(path.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(appender, 0);
  ASSERT_EQ(100, write(appender, std::string(100, 'D').data(), 100));
  ASSERT_EQ(0, close(appender));
  EXPECT_EQ(8292, FileSize(reader));
  ASSERT_EQ(1, pread(reader, buf, 1, 8291));
  EXPECT_EQ('D', buf[0]);
  // A write-only descriptor cannot be mapped (as on any filesystem).
  int wo = open(path.c_str(), O_WRONLY);
  ASSERT_GE(wo, 0);
  EXPECT_EQ(MAP_FAILED, mmap(nullptr, 4096, PROT_WRITE, MAP_SHARED, wo, 0));
  EXPECT_EQ(EACCES, errno);
  close(wo);
  munmap(map, 8192);
  close(rw);
  close(reader);
}

// Passthrough opens register the object with the kernel, which looks it up
// when each open completes: many opens, reads and closes racing each other
// and a writer must never fail.
TEST_F(DataTest, ManyConcurrentOpensReadsAndAWriterNeverFail) {
  const std::string a = Pattern(256 << 10, 1), b = Pattern(256 << 10, 2);
  ASSERT_EQ(0, WriteFile(P("shared"), a));
  std::atomic<int> open_failures{0}, read_failures{0}, write_failures{0}, first_errno{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::string buf(a.size(), '\0');
      for (int i = 0; i < 200; ++i) {
        int fd = open(P("shared").c_str(), O_RDONLY);
        if (fd < 0 && open_failures++ == 0) first_errno = errno;
        if (fd >= 0 && PreadAll(fd, buf.data(), buf.size(), 0) != ssize_t(buf.size()))
          read_failures++;
        if (fd >= 0) close(fd);
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 200; ++i) {
      int fd = open(P("shared").c_str(), i % 2 ? O_WRONLY : O_RDWR);
      const std::string& v = i % 2 ? a : b;
      if (fd < 0 && open_failures++ == 0) first_errno = errno;
      if (fd >= 0 && pwrite(fd, v.data(), v.size(), 0) != ssize_t(v.size())) write_failures++;
      if (fd >= 0) close(fd);
    }
  });
  for (auto& t : threads) t.join();
  EXPECT_EQ(0, open_failures.load()) << "first: " << std::strerror(first_errno);
  EXPECT_EQ(0, read_failures.load());
  EXPECT_EQ(0, write_failures.load());
  // Reads racing a write may see parts of both (as on ext4); once all is
  // closed, the last write is what a new reader sees.
  std::string s;
  ASSERT_EQ(0, ReadFile(P("shared"), &s));
  EXPECT_TRUE(s == a);
}

TEST_F(DataTest, ReadOnlyOpenWithTruncEmptiesTheFileAsOnExt4) {
  ASSERT_EQ(0, WriteFile(P("f"), "some bytes"));
  ASSERT_EQ(0, OpenErr(P("f"), O_RDONLY | O_TRUNC));
  struct stat st;
  ASSERT_EQ(0, stat(P("f").c_str(), &st));
  EXPECT_EQ(0, st.st_size);
  ASSERT_EQ(0, WriteFile(P("g"), "kept", 0444));
  EXPECT_EQ(EACCES, RunAs({65534, 65534, {}}, [&] { return OpenErr(P("g"), O_RDONLY | O_TRUNC); }));
  ASSERT_EQ(0, stat(P("g").c_str(), &st));
  EXPECT_EQ(4, st.st_size);
}

}  // namespace
}  // namespace tierfs_test

// Unit tests of tiering/crash_io: what SimulateCrash() keeps (synced
// content, entry changes of a synced directory) and what it drops.
#include "tiering/crash_io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <string>
#include <utility>

namespace tierfs {
namespace {

namespace fs = std::filesystem;

class CrashIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tierfs-crashio-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directory(dir_ + "/d");
    dir_fd_ = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dir_fd_, 0);
  }
  void TearDown() override {
    if (dir_fd_ >= 0) close(dir_fd_);
    fs::remove_all(dir_);
  }
  // Content of dir_/name, or "<none>".
  std::string Read(const std::string& name) {
    std::ifstream f(dir_ + "/" + name, std::ios::binary);
    if (!f) return "<none>";
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  // A file written outside the Io: durable as it is.
  void Put(const std::string& name, const std::string& content) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << content;
  }
  // Opens dir_/name through the Io, writes `content` at 0, optionally
  // fsyncs it, closes it.
  void Write(const std::string& name, const std::string& content, int flags, bool sync) {
    const int fd = io_.OpenAt(dir_fd_, name.c_str(), O_RDWR | O_CLOEXEC | flags, 0640);
    ASSERT_GE(fd, 0) << name;
    ASSERT_EQ(ssize_t(content.size()), io_.Pwrite(fd, content.data(), content.size(), 0));
    if (sync) {
      ASSERT_EQ(0, io_.Fsync(fd));
    }
    close(fd);
  }
  // fsync of a directory (relative to dir_) through the Io.
  void SyncDir(const char* name) {
    const int fd = io_.OpenAt(dir_fd_, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    ASSERT_GE(fd, 0) << name;
    ASSERT_EQ(0, io_.Fsync(fd));
    close(fd);
  }
  void Crash() {
    Status st = io_.SimulateCrash();
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(0u, io_.UnsyncedFiles());
    EXPECT_EQ(0u, io_.PendingEntries());
  }

  std::string dir_;
  int dir_fd_ = -1;
  CrashIo io_{std::make_shared<PosixIo>()};
};

TEST_F(CrashIoTest, NewFileNeverSyncedIsGone) {
  Write("d/f", "hello", O_CREAT, /*sync=*/false);
  EXPECT_EQ("hello", Read("d/f"));
  EXPECT_EQ(1u, io_.UnsyncedFiles());
  EXPECT_EQ(1u, io_.PendingEntries());
  Crash();
  EXPECT_EQ("<none>", Read("d/f"));
}

// fsync of the file alone does not make its name durable.
TEST_F(CrashIoTest, SyncedFileWithoutDirectorySyncIsGone) {
  Write("d/f", "hello", O_CREAT, /*sync=*/true);
  EXPECT_EQ(0u, io_.UnsyncedFiles());
  EXPECT_EQ(1u, io_.PendingEntries());
  Crash();
  EXPECT_EQ("<none>", Read("d/f"));
}

TEST_F(CrashIoTest, SyncedFileAndDirectoryAreKept) {
  Write("d/f", "hello", O_CREAT, /*sync=*/true);
  SyncDir("d");
  Crash();
  EXPECT_EQ("hello", Read("d/f"));
}

// The name is durable but the data never was: an empty file.
TEST_F(CrashIoTest, NameSyncedButDataNotLeavesAnEmptyFile) {
  Write("d/f", "hello", O_CREAT, /*sync=*/false);
  SyncDir("d");
  Crash();
  EXPECT_EQ("", Read("d/f"));
}

// Writes after the last sync, including an extension, are dropped.
TEST_F(CrashIoTest, WritesAfterTheLastSyncAreDropped) {
  Put("f", "old content");
  Write("f", "NEW", 0, /*sync=*/false);
  EXPECT_EQ("NEW content", Read("f"));
  Crash();
  EXPECT_EQ("old content", Read("f"));
  Write("f", "NEW", 0, /*sync=*/true);
  Write("f", "longer than before", 0, /*sync=*/false);
  Crash();
  EXPECT_EQ("NEW content", Read("f"));
}

// Writes with flags (the daemon's uncached writes) are writes: undone
// unless synced.
TEST_F(CrashIoTest, WritesWithFlagsAfterTheLastSyncAreDropped) {
  Put("f", "old content");
  const int fd = io_.OpenAt(dir_fd_, "f", O_RDWR | O_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(3, io_.Pwritev2(fd, "NEW", 3, 0, 0));
  EXPECT_EQ(1u, io_.UnsyncedFiles());
  close(fd);
  Crash();
  EXPECT_EQ("old content", Read("f"));
}

TEST_F(CrashIoTest, TruncationWithoutSyncIsUndone) {
  Put("f", "old content");
  Write("f", "x", O_TRUNC, /*sync=*/false);
  EXPECT_EQ("x", Read("f"));
  Crash();
  EXPECT_EQ("old content", Read("f"));
  const int fd = io_.OpenAt(dir_fd_, "f", O_RDWR | O_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, io_.Ftruncate(fd, 3));
  close(fd);
  EXPECT_EQ("old", Read("f"));
  Crash();
  EXPECT_EQ("old content", Read("f"));
}

TEST_F(CrashIoTest, RenameWithoutDirectorySyncIsUndone) {
  Put("d/a", "A");
  Put("d/b", "B");
  ASSERT_EQ(0, io_.RenameAt(dir_fd_, "d/a", dir_fd_, "d/b"));
  EXPECT_EQ("<none>", Read("d/a"));
  EXPECT_EQ("A", Read("d/b"));
  Crash();
  EXPECT_EQ("A", Read("d/a"));
  EXPECT_EQ("B", Read("d/b")) << "the file the rename replaced came back";
}

TEST_F(CrashIoTest, RenameWithDirectorySyncIsKept) {
  Put("d/a", "A");
  Put("d/b", "B");
  ASSERT_EQ(0, io_.RenameAt(dir_fd_, "d/a", dir_fd_, "d/b"));
  SyncDir("d");
  Crash();
  EXPECT_EQ("<none>", Read("d/a"));
  EXPECT_EQ("A", Read("d/b"));
}

// The pattern of Tier::CommitTemp: create, write, fsync, rename, fsync the
// directory. Everything survives; without the last fsync nothing does.
TEST_F(CrashIoTest, WriteSyncRenameSyncSurvivesOnlyWithTheDirectorySync) {
  Write("d/t", "data", O_CREAT | O_TRUNC, /*sync=*/true);
  ASSERT_EQ(0, io_.RenameAt(dir_fd_, "d/t", dir_fd_, "d/f"));
  Crash();
  EXPECT_EQ("<none>", Read("d/t"));
  EXPECT_EQ("<none>", Read("d/f"));
  Write("d/t", "data", O_CREAT | O_TRUNC, /*sync=*/true);
  ASSERT_EQ(0, io_.RenameAt(dir_fd_, "d/t", dir_fd_, "d/f"));
  SyncDir("d");
  Crash();
  EXPECT_EQ("<none>", Read("d/t"));
  EXPECT_EQ("data", Read("d/f"));
}

// A synced directory elsewhere makes nothing here durable.
TEST_F(CrashIoTest, OnlyTheSyncedDirectoryBecomesDurable) {
  Write("d/f", "in d", O_CREAT, /*sync=*/true);
  Write("g", "in top", O_CREAT, /*sync=*/true);
  SyncDir(".");
  Crash();
  EXPECT_EQ("<none>", Read("d/f"));
  EXPECT_EQ("in top", Read("g"));
}

TEST_F(CrashIoTest, UnlinkWithoutDirectorySyncReappearsWithItsDurableContent) {
  Put("d/f", "durable");
  ASSERT_EQ(0, chmod((dir_ + "/d/f").c_str(), 0604));
  Write("d/f", "NOT SYNCED", 0, /*sync=*/false);
  ASSERT_EQ(0, io_.UnlinkAt(dir_fd_, "d/f", 0));
  EXPECT_EQ("<none>", Read("d/f"));
  Crash();
  EXPECT_EQ("durable", Read("d/f"));
  struct stat sb;
  ASSERT_EQ(0, stat((dir_ + "/d/f").c_str(), &sb));
  EXPECT_EQ(0604u, sb.st_mode & 07777);
  ASSERT_EQ(0, io_.UnlinkAt(dir_fd_, "d/f", 0));
  SyncDir("d");
  Crash();
  EXPECT_EQ("<none>", Read("d/f"));
}

// Created and unlinked before any directory sync: nothing of it survives.
TEST_F(CrashIoTest, CreatedThenUnlinkedLeavesNothing) {
  Write("d/f", "x", O_CREAT, /*sync=*/true);
  ASSERT_EQ(0, io_.UnlinkAt(dir_fd_, "d/f", 0));
  Crash();
  EXPECT_EQ("<none>", Read("d/f"));
}

// Writes of a file opened O_DIRECT (as the mover's copy is) are tracked:
// the snapshot at fsync reads the file through a fresh descriptor.
TEST_F(CrashIoTest, DirectWritesAreTracked) {
  const int fd = io_.OpenAt(dir_fd_, "d/f", O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
  if (fd == -EINVAL) GTEST_SKIP() << "no O_DIRECT on " << dir_;
  ASSERT_GE(fd, 0);
  void* buf = nullptr;
  ASSERT_EQ(0, posix_memalign(&buf, 4096, 4096));
  memset(buf, 'z', 4096);
  EXPECT_EQ(4096, io_.Pwrite(fd, buf, 4096, 0));
  EXPECT_EQ(0, io_.Fsync(fd));
  memset(buf, 'y', 4096);
  EXPECT_EQ(4096, io_.Pwrite(fd, buf, 4096, 4096));
  free(buf);
  close(fd);
  SyncDir("d");
  Crash();
  EXPECT_EQ(std::string(4096, 'z'), Read("d/f"));
}

// Failed calls change nothing a crash would have to undo.
TEST_F(CrashIoTest, FailedCallsAreNotRecorded) {
  EXPECT_EQ(-ENOENT, io_.OpenAt(dir_fd_, "missing/f", O_RDWR | O_CREAT, 0600));
  EXPECT_EQ(-ENOENT, io_.RenameAt(dir_fd_, "d/none", dir_fd_, "d/other"));
  EXPECT_EQ(-ENOENT, io_.UnlinkAt(dir_fd_, "d/none", 0));
  EXPECT_EQ(0u, io_.PendingEntries());
  EXPECT_EQ(0u, io_.UnsyncedFiles());
  EXPECT_FALSE(io_.IsPlainPosix());
}

// A PosixIo whose Fsync first runs `during_fsync` (once).
class HookedFsyncIo : public PosixIo {
 public:
  std::function<void()> during_fsync;
  int Fsync(int fd) override {
    if (during_fsync) std::exchange(during_fsync, nullptr)();
    return PosixIo::Fsync(fd);
  }
};

// A write that races with an fsync is either synced by it or not durable:
// CrashIo holds its lock across the forwarded fsync and the record of
// what it synced, so a write landing in between cannot be taken as synced.
// (The write here is given 200 ms to land during the fsync; should it be
// slower, the test passes without proving anything, it never fails.)
TEST(CrashIoConcurrencyTest, AWriteDuringAnFsyncIsNotTakenAsSynced) {
  char tmpl[] = "/tmp/tierfs-crashio-test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto target = std::make_shared<HookedFsyncIo>();
  CrashIo io(target);
  const int dir_fd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dir_fd, 0);
  const int fd = io.OpenAt(dir_fd, "f", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(4, io.Pwrite(fd, "sync", 4, 0));
  std::future<ssize_t> late;
  target->during_fsync = [&] {
    late = std::async(std::launch::async, [&] { return io.Pwrite(fd, "LATE", 4, 0); });
    late.wait_for(std::chrono::milliseconds(200));
  };
  ASSERT_EQ(0, io.Fsync(fd));
  ASSERT_EQ(4, late.get());
  ASSERT_EQ(0, io.Fsync(dir_fd));  // the name is durable too
  Status st = io.SimulateCrash();
  ASSERT_TRUE(st.ok()) << st.message();
  std::ifstream in(dir + "/f", std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_EQ("sync", content.str());
  close(fd);
  close(dir_fd);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tierfs

// Unit tests of tiering/mover: moves between two directory tiers and
// recovery of interrupted moves, without a mount.
#include "tiering/mover.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/unit/tier_pair_fixture.h"
#include "tiering/relocate.h"

namespace tierfs {
namespace {

namespace fs = std::filesystem;

class MoverTest : public TierPairFixture {
 protected:
  // A file in the root whose object (unless `with_object` is false) on the
  // SSD tier holds `content`.
  uint64_t MakeFile(const std::string& name, const std::string& content, bool with_object = true) {
    NewNode node;
    node.mode = S_IFREG | 0644;
    Inode n;
    Status st = store_->Create(kRootIno, name, node, &n);
    EXPECT_TRUE(st.ok()) << st.message();
    if (with_object) WriteObject(*ssd_, n.ino, content);
    return n.ino;
  }
  void WriteObject(const Tier& t, uint64_t ino, const std::string& content) {
    Status st;
    int fd = t.OpenObject(ino, O_WRONLY | O_CREAT | O_TRUNC, &st);
    ASSERT_GE(fd, 0) << st.message();
    ASSERT_EQ(pwrite(fd, content.data(), content.size(), 0), ssize_t(content.size()));
    close(fd);
  }
  Inode Get(uint64_t ino) {
    Inode n;
    Status st = store_->GetInode(ino, &n);
    EXPECT_TRUE(st.ok()) << st.message();
    return n;
  }
  Status Move(uint64_t ino, const Tier& from, const Tier& to, const MoveOptions& opt = {},
              std::function<bool()> abort = nullptr, MoveResult* r = nullptr) {
    return MoveObject(*store_, from, to, ino, opt, abort, r);
  }
  // The invariant every move and recovery must leave: the object (if any)
  // sits on exactly the tier the inode names, with the file's bytes; no
  // temporary and no journal record remain.
  void ExpectSettled(uint64_t ino, TierId tier, const std::string& want, bool object = true) {
    EXPECT_EQ(tier, Get(ino).tier);
    const Tier& home = tier == TierId::kSsd ? *ssd_ : *hdd_;
    const Tier& other = tier == TierId::kSsd ? *hdd_ : *ssd_;
    bool exists = false;
    std::string got = Slurp(home.ObjectPath(ino), &exists);
    EXPECT_EQ(object, exists) << "object on " << home.name();
    EXPECT_TRUE(got == want) << "content differs on " << home.name() << " (" << got.size()
                             << " bytes, want " << want.size() << ")";
    Slurp(other.ObjectPath(ino), &exists);
    EXPECT_FALSE(exists) << "stale object left on " << other.name();
    EXPECT_EQ(0, Temps());
    EXPECT_EQ(0u, Records());
  }
};

TEST_F(MoverTest, MovePreservesContentAndSetsTierAndChecksum) {
  struct Case {
    size_t size;
    bool object;
  } cases[] = {{0, false}, {0, true}, {1, true}, {(1 << 20) + 7, true}, {20 << 20, true}};
  int i = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE("size " + std::to_string(c.size) + (c.object ? "" : " without object"));
    const std::string content = Pattern(c.size, ++i);
    uint64_t ino = MakeFile("f" + std::to_string(i), content, c.object);
    MoveResult r;
    Status st = Move(ino, *ssd_, *hdd_, {}, nullptr, &r);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(c.size, r.bytes);
    EXPECT_EQ(XXH3_64bits(content.data(), content.size()), r.checksum);
    EXPECT_EQ(r.checksum, Get(ino).checksum);
    ExpectSettled(ino, TierId::kHdd, content, c.object);
    // And back, which must work just the same.
    st = Move(ino, *hdd_, *ssd_);
    ASSERT_TRUE(st.ok()) << st.message();
    ExpectSettled(ino, TierId::kSsd, content, c.object);
  }
}

TEST_F(MoverTest, SmallChunksAndShallowQueueKeepOrder) {
  const std::string content = Pattern((3 << 20) + 4097, 7);
  uint64_t ino = MakeFile("f", content);
  MoveOptions opt;
  opt.chunk_bytes = 5000;  // rounded up to 8 KiB: many chunks, a short last one
  opt.queue_depth = 3;
  Status st = Move(ino, *ssd_, *hdd_, opt);
  ASSERT_TRUE(st.ok()) << st.message();
  ExpectSettled(ino, TierId::kHdd, content);
}

// A moved file is cold: its copy is written past the page cache (O_DIRECT),
// so the read-back check reads the target medium, not cached pages.
TEST_F(MoverTest, CopyIsWrittenPastThePageCache) {
  const std::string content = Pattern(4 << 20, 11);
  uint64_t ino = MakeFile("f", content);
  ASSERT_TRUE(Move(ino, *ssd_, *hdd_).ok());
  int fd = open(hdd_->ObjectPath(ino).c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* map = mmap(nullptr, content.size(), PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(MAP_FAILED, map);
  std::vector<unsigned char> resident(content.size() / 4096);
  ASSERT_EQ(0, mincore(map, content.size(), resident.data()));
  size_t cached = 0;
  for (unsigned char r : resident) cached += r & 1;
  munmap(map, content.size());
  close(fd);
  struct statfs sfs;
  ASSERT_EQ(0, statfs(dir_.c_str(), &sfs));
  if (sfs.f_type == TMPFS_MAGIC) GTEST_SKIP() << "tmpfs keeps every page in memory";
  EXPECT_EQ(0u, cached) << "pages of the moved object in the page cache";
}

TEST_F(MoverTest, KeepsObjectTimesAndInodeMetadata) {
  uint64_t ino = MakeFile("f", "hello");
  ASSERT_TRUE(store_->SetXattr(ino, "user.k", "v", 0).ok());
  struct timespec times[2] = {{1000000, 5}, {2000000, 7}};
  ASSERT_EQ(0, utimensat(AT_FDCWD, ssd_->ObjectPath(ino).c_str(), times, 0));
  Inode before = Get(ino);
  ASSERT_TRUE(Move(ino, *ssd_, *hdd_).ok());
  struct stat sb;
  ASSERT_TRUE(hdd_->StatObject(ino, &sb).ok());
  EXPECT_EQ(2000000, sb.st_mtim.tv_sec);
  EXPECT_EQ(7, sb.st_mtim.tv_nsec);
  Inode after = Get(ino);
  EXPECT_EQ(before.mode, after.mode);
  EXPECT_EQ(before.uid, after.uid);
  EXPECT_EQ(before.mtime_ns, after.mtime_ns);
  EXPECT_EQ(before.ctime_ns, after.ctime_ns);
  std::string v;
  ASSERT_TRUE(store_->GetXattr(ino, "user.k", &v).ok());
  EXPECT_EQ("v", v);
}

TEST_F(MoverTest, HardLinksMoveOnce) {
  const std::string content = Pattern(100000, 3);
  uint64_t ino = MakeFile("a", content);
  Inode linked;
  ASSERT_TRUE(store_->Link(ino, kRootIno, "b", &linked).ok());
  ASSERT_TRUE(Move(ino, *ssd_, *hdd_).ok());
  ExpectSettled(ino, TierId::kHdd, content);
  Inode a, b;
  ASSERT_TRUE(store_->Lookup(kRootIno, "a", &a).ok());
  ASSERT_TRUE(store_->Lookup(kRootIno, "b", &b).ok());
  EXPECT_EQ(a.ino, b.ino);
  EXPECT_EQ(TierId::kHdd, b.tier);
  EXPECT_EQ(2u, b.nlink);
  // Moving "the other name" is moving the same inode: it is not on SSD anymore.
  Status st = Move(b.ino, *ssd_, *hdd_);
  EXPECT_EQ(EINVAL, st.err()) << st.message();
  ExpectSettled(ino, TierId::kHdd, content);
}

TEST_F(MoverTest, AbortMidCopyLeavesFileOnSource) {
  const std::string content = Pattern(8 << 20, 4);
  uint64_t ino = MakeFile("f", content);
  int polls = 0;
  Status st = Move(ino, *ssd_, *hdd_, {}, [&] { return ++polls > 3; });
  EXPECT_EQ(ECANCELED, st.err()) << st.message();
  EXPECT_NE(std::string::npos, st.message().find("inode " + std::to_string(ino)));
  EXPECT_NE(std::string::npos, st.message().find("copy")) << st.message();
  ExpectSettled(ino, TierId::kSsd, content);
  // The move is retried later and then succeeds.
  st = Move(ino, *ssd_, *hdd_);
  ASSERT_TRUE(st.ok()) << st.message();
  ExpectSettled(ino, TierId::kHdd, content);
}

TEST_F(MoverTest, SourceChangedDuringCopyCancels) {
  std::string content = Pattern(4 << 20, 5);
  uint64_t ino = MakeFile("f", content);
  int polls = 0;
  // A write the daemon did not report: the stat guard must still catch it.
  auto sneaky_write = [&] {
    if (++polls == 2) {
      Status st;
      int fd = ssd_->OpenObject(ino, O_WRONLY, &st);
      EXPECT_GE(fd, 0);
      EXPECT_EQ(3, pwrite(fd, "new", 3, 0));
      close(fd);
      content.replace(0, 3, "new");
    }
    return false;
  };
  Status st = Move(ino, *ssd_, *hdd_, {}, sneaky_write);
  EXPECT_EQ(ECANCELED, st.err()) << st.message();
  EXPECT_NE(std::string::npos, st.message().find("changed")) << st.message();
  ExpectSettled(ino, TierId::kSsd, content);
}

TEST_F(MoverTest, ObjectCreatedDuringSwitchOfEmptyFileCancels) {
  uint64_t ino = MakeFile("f", "", /*with_object=*/false);
  int polls = 0;
  auto create = [&] {
    if (++polls == 1) WriteObject(*ssd_, ino, "data");
    return false;
  };
  Status st = Move(ino, *ssd_, *hdd_, {}, create);
  EXPECT_EQ(ECANCELED, st.err()) << st.message();
  ExpectSettled(ino, TierId::kSsd, "data");
}

TEST_F(MoverTest, ThrottleCapsBandwidth) {
  const std::string content = Pattern(16 << 20, 6);
  uint64_t ino = MakeFile("f", content);
  MoveOptions opt;
  opt.max_bytes_per_sec = 32 << 20;
  const auto t0 = std::chrono::steady_clock::now();
  Status st = Move(ino, *ssd_, *hdd_, opt);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_GE(secs, 0.4);
  ExpectSettled(ino, TierId::kHdd, content);
}

TEST_F(MoverTest, SharedThrottleLimitsConcurrentMoves) {
  MoveThrottle throttle(0, 1);
  std::vector<uint64_t> inos;
  std::vector<std::string> contents;
  for (int i = 0; i < 4; ++i) {
    contents.push_back(Pattern(2 << 20, 10 + i));
    inos.push_back(MakeFile("f" + std::to_string(i), contents.back()));
  }
  MoveOptions opt;
  opt.throttle = &throttle;
  std::atomic<unsigned> max_active{0};
  auto watch = [&] {
    unsigned a = throttle.active();
    unsigned m = max_active.load();
    while (a > m && !max_active.compare_exchange_weak(m, a)) {
    }
    return false;
  };
  std::vector<std::thread> threads;
  std::vector<Status> results(inos.size());
  for (size_t i = 0; i < inos.size(); ++i)
    threads.emplace_back([&, i] { results[i] = Move(inos[i], *ssd_, *hdd_, opt, watch); });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < inos.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].message();
    ExpectSettled(inos[i], TierId::kHdd, contents[i]);
  }
  EXPECT_EQ(1u, max_active.load());
  EXPECT_EQ(0u, throttle.active());

  // Waiting for a slot ends with ECANCELED when the file is written meanwhile.
  ASSERT_TRUE(throttle.Acquire(nullptr));
  uint64_t ino = MakeFile("waiting", "x");
  Status st = Move(ino, *ssd_, *hdd_, opt, [] { return true; });
  throttle.Release();
  EXPECT_EQ(ECANCELED, st.err()) << st.message();
  ExpectSettled(ino, TierId::kSsd, "x");
}

// MoveOptions::committed runs once the switch is durable and while the
// source and the journal record still exist: what the caller journals
// there, a crash cannot take back.
TEST_F(MoverTest, CommittedRunsAfterTheDurableSwitchBeforeTheSourceGoes) {
  const std::string content = Pattern(300000, 40);
  uint64_t ino = MakeFile("c", content);
  MoveOptions opt;
  int calls = 0;
  opt.committed = [&](const MoveResult& r) {
    ++calls;
    Inode n;
    ASSERT_TRUE(store_->GetInode(ino, &n).ok());
    EXPECT_EQ(TierId::kHdd, n.tier);
    EXPECT_EQ(r.checksum, n.checksum);
    EXPECT_EQ(content.size(), r.bytes);
    EXPECT_EQ(1u, Records());
    struct stat s;
    EXPECT_EQ(0, stat(ssd_->ObjectPath(ino).c_str(), &s)) << "source already gone";
  };
  Status st = Move(ino, *ssd_, *hdd_, opt);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(1, calls);
  ExpectSettled(ino, TierId::kHdd, content);
}

// A daemon killed after each step: a restart's RecoverMoves must settle the
// file on exactly one tier with its content, whichever step it died after.
TEST_F(MoverTest, RecoveryAfterCrashAtEveryStep) {
  const MoveStep steps[] = {MoveStep::kJournal, MoveStep::kCopy,   MoveStep::kFsync,
                            MoveStep::kVerify,  MoveStep::kRename, MoveStep::kCommit,
                            MoveStep::kRemove};
  int i = 0;
  for (MoveStep step : steps) {
    for (bool object : {true, false}) {
      SCOPED_TRACE(std::string("crash after ") + MoveStepName(step) +
                   (object ? "" : ", no object"));
      const std::string content = object ? Pattern((2 << 20) + 3, 20 + i) : "";
      uint64_t ino = MakeFile("f" + std::to_string(i++), content, object);
      MoveOptions opt;
      opt.crash_after = step;
      bool committed = false;
      opt.committed = [&](const MoveResult&) { committed = true; };
      Status st = Move(ino, *ssd_, *hdd_, opt);
      // The caller hears of the move once it is durable, before the source
      // goes (a move that finished, where the crash point never fired, too).
      EXPECT_EQ(step == MoveStep::kRemove || st.ok(), committed);
      // Without an object there is no copy: the crash points inside it never fire.
      if (!object && step != MoveStep::kJournal && step != MoveStep::kCommit &&
          step != MoveStep::kRemove) {
        ASSERT_TRUE(st.ok()) << st.message();
        ExpectSettled(ino, TierId::kHdd, content, false);
        continue;
      }
      ASSERT_EQ(EINTR, st.err()) << st.message();
      EXPECT_EQ(1u, Records());
      OpenAll();
      int handled = 0;
      std::vector<Store::MoveRecord> forward;
      st = RecoverMoves(*store_, *ssd_, *hdd_, &handled, &forward);
      ASSERT_TRUE(st.ok()) << st.message();
      EXPECT_EQ(1, handled);
      const bool switched = step == MoveStep::kCommit || step == MoveStep::kRemove;
      // A switched move is reported, so the daemon can journal it.
      ASSERT_EQ(switched ? 1u : 0u, forward.size());
      if (switched) {
        EXPECT_EQ(ino, forward[0].ino);
      }
      ExpectSettled(ino, switched ? TierId::kHdd : TierId::kSsd, content, object);
      // Settled means movable again.
      st = switched ? Move(ino, *hdd_, *ssd_) : Move(ino, *ssd_, *hdd_);
      ASSERT_TRUE(st.ok()) << st.message();
      ExpectSettled(ino, switched ? TierId::kSsd : TierId::kHdd, content, object);
    }
  }
}

TEST_F(MoverTest, RecoveryOfHandWrittenRecords) {
  // A record plus a partial temporary, as a crash mid-copy leaves them.
  const std::string a = Pattern(70000, 30);
  uint64_t ino_a = MakeFile("a", a);
  Store::MoveRecord rec;
  rec.ino = ino_a;
  rec.from = TierId::kSsd;
  rec.to = TierId::kHdd;
  ASSERT_TRUE(store_->BeginMove(rec).ok());
  { std::ofstream(hdd_->TempPath(ino_a)) << "partial"; }
  // A switched inode whose object somehow did not reach the target (a crash
  // on a filesystem that lost the rename): recovery points it back at the
  // copy that exists instead of leaving it on a missing object.
  const std::string b = Pattern(5000, 31);
  uint64_t ino_b = MakeFile("b", b);
  rec.ino = ino_b;
  ASSERT_TRUE(store_->BeginMove(rec).ok());
  ASSERT_TRUE(store_->CommitMove(ino_b, TierId::kHdd, 1).ok());
  // A record for an inode deleted since: both copies are garbage.
  uint64_t ino_c = MakeFile("c", "cc");
  WriteObject(*hdd_, ino_c, "cc");
  rec.ino = ino_c;
  ASSERT_TRUE(store_->BeginMove(rec).ok());
  Removed removed;
  ASSERT_TRUE(store_->Unlink(kRootIno, "c", &removed).ok());
  ASSERT_TRUE(store_->DeleteInode(ino_c).ok());

  OpenAll();
  int handled = 0;
  Status st = RecoverMoves(*store_, *ssd_, *hdd_, &handled);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(3, handled);
  ExpectSettled(ino_a, TierId::kSsd, a);
  ExpectSettled(ino_b, TierId::kSsd, b);
  struct stat sb;
  EXPECT_EQ(ENOENT, ssd_->StatObject(ino_c, &sb).err());
  EXPECT_EQ(ENOENT, hdd_->StatObject(ino_c, &sb).err());
  // Nothing left: a second recovery is a no-op.
  ASSERT_TRUE(RecoverMoves(*store_, *ssd_, *hdd_, &handled).ok());
  EXPECT_EQ(0, handled);
}

TEST_F(MoverTest, MissingTargetTierFailsClearlyAndLeavesFile) {
  const std::string content = Pattern(300000, 40);
  uint64_t ino = MakeFile("f", content);
  fs::remove_all(dir_ + "/hdd");  // the disk went away under an open tier
  Status st = Move(ino, *ssd_, *hdd_);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(ENOENT, st.err()) << st.message();
  for (const char* part : {"inode ", "ssd -> hdd", "copy", ".moving"})
    EXPECT_NE(std::string::npos, st.message().find(part)) << st.message();
  EXPECT_EQ(TierId::kSsd, Get(ino).tier);
  bool exists = false;
  EXPECT_TRUE(Slurp(ssd_->ObjectPath(ino), &exists) == content);
  EXPECT_EQ(0, Temps());
  EXPECT_EQ(0u, Records());
}

TEST_F(MoverTest, UnwritableTargetFailsClearlyAndLeavesFile) {
  const std::string content = Pattern(300000, 41);
  uint64_t ino = MakeFile("f", content);
  // Root ignores permission bits, so break the fan-out directory instead.
  const std::string fan = fs::path(hdd_->ObjectPath(ino)).parent_path();
  fs::remove_all(fan);
  std::ofstream(fan) << "not a directory";
  Status st = Move(ino, *ssd_, *hdd_);
  EXPECT_EQ(ENOTDIR, st.err()) << st.message();
  EXPECT_NE(std::string::npos, st.message().find("copy")) << st.message();
  ExpectSettled(ino, TierId::kSsd, content);
}

TEST_F(MoverTest, RejectsWrongSourceSameTierDirectoriesAndOverlap) {
  uint64_t ino = MakeFile("f", "abc");
  EXPECT_EQ(EINVAL, Move(ino, *hdd_, *ssd_).err());
  EXPECT_EQ(EINVAL, Move(ino, *ssd_, *ssd_).err());
  NewNode dir;
  dir.mode = S_IFDIR | 0755;
  Inode d;
  ASSERT_TRUE(store_->Create(kRootIno, "d", dir, &d).ok());
  EXPECT_EQ(EINVAL, Move(d.ino, *ssd_, *hdd_).err());
  EXPECT_EQ(ENOENT, Move(12345, *ssd_, *hdd_).err());
  // A journaled (running or unrecovered) move blocks a second one.
  Store::MoveRecord rec;
  rec.ino = ino;
  ASSERT_TRUE(store_->BeginMove(rec).ok());
  Status st = Move(ino, *ssd_, *hdd_);
  EXPECT_EQ(EBUSY, st.err()) << st.message();
  EXPECT_EQ(1u, Records());  // not the failed move's to remove
  ASSERT_TRUE(store_->EndMove(ino).ok());
  ExpectSettled(ino, TierId::kSsd, "abc");
}

TEST_F(MoverTest, RelocateObjectIsAPlainMove) {
  const std::string content = Pattern(123457, 50);
  uint64_t ino = MakeFile("f", content);
  Status st = RelocateObject(*store_, *ssd_, *hdd_, ino);
  ASSERT_TRUE(st.ok()) << st.message();
  ExpectSettled(ino, TierId::kHdd, content);
  EXPECT_EQ(XXH3_64bits(content.data(), content.size()), Get(ino).checksum);
}

}  // namespace
}  // namespace tierfs

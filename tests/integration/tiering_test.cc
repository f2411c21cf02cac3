// Moves between tiers through the mount: user.tierfs.tier read and set with
// the xattr calls getfattr/setfattr use, promotion on open for writing, and
// the rules that keep a move from losing a write.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/tierctl_util.h"

namespace tierfs_test {
namespace {

constexpr char kTier[] = "user.tierfs.tier";

class TieringTest : public MountTest {};

// ENODATA when `path` has no hold, else the user.tierfs.pin text.
std::string PinOf(const std::string& path) {
  char buf[256];
  const ssize_t n = getxattr(path.c_str(), "user.tierfs.pin", buf, sizeof buf);
  return n < 0 ? "errno " + std::to_string(errno) : std::string(buf, size_t(n));
}

TEST_F(TieringTest, SetfattrMovesAFileAndKeepsEverythingElse) {
  const std::string data = Pattern((8 << 20) + 123, 7);
  ASSERT_EQ(0, WriteFile(P("f"), data, 0640));
  ASSERT_EQ(0, Err(setxattr(P("f").c_str(), "user.note", "x", 1, 0)));
  struct stat before;
  ASSERT_EQ(0, stat(P("f").c_str(), &before));
  EXPECT_EQ("ssd", GetTier(P("f")));

  ASSERT_EQ(0, SetTierOfClosed(P("f"), "hdd"));
  EXPECT_EQ("hdd", GetTier(P("f")));
  EXPECT_TRUE(ObjectOn(fs_.hdd(), before.st_ino));
  EXPECT_FALSE(ObjectOn(fs_.ssd(), before.st_ino));
  std::string back;
  ASSERT_EQ(0, ReadFile(P("f"), &back));
  EXPECT_TRUE(back == data);
  struct stat after;
  ASSERT_EQ(0, stat(P("f").c_str(), &after));
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(before.st_size, after.st_size);
  EXPECT_EQ(before.st_mode, after.st_mode);
  EXPECT_EQ(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
  EXPECT_EQ(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
  char v[8];
  EXPECT_EQ(1, getxattr(P("f").c_str(), "user.note", v, sizeof v));

  // The stored attribute alone is listed (the tierfs ones are read by
  // name, pack_test.cc); the move left a manual placement hold, so the
  // policy does not move it back.
  char names[256];
  ssize_t n = listxattr(P("f").c_str(), names, sizeof names);
  ASSERT_GE(n, 0);
  EXPECT_EQ(std::string("user.note\0", 10), std::string(names, n));
  EXPECT_NE(std::string::npos, PinOf(P("f")).find("manual")) << PinOf(P("f"));

  Remount();
  EXPECT_EQ("hdd", GetTier(P("f")));
  ASSERT_EQ(0, ReadFile(P("f"), &back));
  EXPECT_TRUE(back == data);
  ASSERT_EQ(0, SetTierOfClosed(P("f"), "ssd"));
  EXPECT_EQ("ssd", GetTier(P("f")));
  EXPECT_TRUE(ObjectOn(fs_.ssd(), before.st_ino));
  EXPECT_FALSE(ObjectOn(fs_.hdd(), before.st_ino));
}

TEST_F(TieringTest, BadValuesAndNonFilesAreRefused) {
  ASSERT_EQ(0, WriteFile(P("f"), "abc"));
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0755));
  EXPECT_EQ(EINVAL, SetTier(P("f"), "tape"));
  EXPECT_EQ("ssd", GetTier(P("f")));
  EXPECT_EQ("empty", GetTier(P("d")));  // a directory tells the tiers below it
  EXPECT_EQ(EOPNOTSUPP, Err(removexattr(P("f").c_str(), kTier)));
  EXPECT_EQ(EOPNOTSUPP, Err(setxattr(P("f").c_str(), "user.tierfs.other", "1", 1, 0)));
  // A trailing newline, as `echo hdd | xargs setfattr -v` may leave, is fine.
  EXPECT_EQ(0, SetTierOfClosed(P("f"), "hdd\n"));
  EXPECT_EQ("hdd", GetTier(P("f")));
}

TEST_F(TieringTest, DirectoryMovesRecursivelyAndHardLinksMoveOnce) {
  ASSERT_EQ(0, mkdir(P("ckpt").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("ckpt/sub").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("ckpt/a"), Pattern(100000, 1)));
  ASSERT_EQ(0, WriteFile(P("ckpt/sub/b"), Pattern(3 << 20, 2)));
  ASSERT_EQ(0, WriteFile(P("ckpt/sub/empty"), ""));
  ASSERT_EQ(0, Err(link(P("ckpt/a").c_str(), P("ckpt/sub/a-link").c_str())));
  ASSERT_EQ(0, WriteFile(P("outside"), "stays"));

  ASSERT_EQ(0, SetTierOfClosed(P("ckpt"), "hdd"));
  for (const char* f : {"ckpt/a", "ckpt/sub/b", "ckpt/sub/empty", "ckpt/sub/a-link"})
    EXPECT_EQ("hdd", GetTier(P(f))) << f;
  EXPECT_EQ("ssd", GetTier(P("outside")));
  EXPECT_TRUE(ObjectOn(fs_.hdd(), Ino(P("ckpt/a"))));
  std::string s;
  ASSERT_EQ(0, ReadFile(P("ckpt/sub/a-link"), &s));
  EXPECT_TRUE(s == Pattern(100000, 1));
  ASSERT_EQ(0, ReadFile(P("ckpt/sub/b"), &s));
  EXPECT_TRUE(s == Pattern(3 << 20, 2));
}

// The kernel checks only that the caller may write the directory itself;
// the move (and its pin) reaches everything below, so it is refused unless
// the caller owns all of it, as `tierctl move` refuses it. And a directory's
// summary counts only below directories the caller may list.
TEST_F(TieringTest, AUserMovesAndCountsOnlyWhatIsTheirs) {
  ASSERT_EQ(0, chmod(P("").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("proj").c_str(), 0777));
  ASSERT_EQ(0, chmod(P("proj").c_str(), 0777));  // past the umask
  ASSERT_EQ(0, mkdir(P("proj/alice").c_str(), 0700));
  ASSERT_EQ(0, WriteFile(P("proj/alice/model"), "alice's bytes", 0600));
  ASSERT_EQ(0, chown(P("proj/alice").c_str(), 2001, 2001));
  ASSERT_EQ(0, chown(P("proj/alice/model").c_str(), 2001, 2001));
  ASSERT_EQ(0, RunAs(Creds{2002, 2002, {}}, [&] {
              return mkdir(P("proj/mine").c_str(), 0755) == 0 &&
                             WriteFile(P("proj/mine/f"), "mallory's") == 0
                         ? 0
                         : errno;
            }));
  const Creds mallory{2002, 2002, {}};
  // The directory's summary counts only what they may list: not alice's.
  std::string summary;
  EXPECT_EQ(0, RunAs(
                   mallory,
                   [&](std::string* out) {
                     *out = GetTier(P("proj"));
                     return 0;
                   },
                   &summary));
  EXPECT_EQ("ssd:1", summary);
  EXPECT_EQ("ssd:2", GetTier(P("proj")));  // root's
  EXPECT_EQ(EPERM, RunAs(mallory, [&] { return SetTierOfClosed(P("proj"), "hdd"); }));
  EXPECT_EQ("ssd", GetTier(P("proj/alice/model")));
  std::string pin(256, '\0');
  const ssize_t n =
      getxattr(P("proj/alice/model").c_str(), "user.tierfs.pin", pin.data(), pin.size());
  EXPECT_TRUE(n < 0 || std::string(pin.data(), size_t(n)).find("manual") == std::string::npos)
      << "alice's file was pinned: " << std::string(pin.data(), size_t(std::max<ssize_t>(n, 0)));
  // Their own tree moves; root moves anything.
  EXPECT_EQ(0, RunAs(mallory, [&] { return SetTierOfClosed(P("proj/mine"), "hdd"); }));
  EXPECT_EQ("hdd", GetTier(P("proj/mine/f")));
  EXPECT_EQ(0, SetTierOfClosed(P("proj"), "hdd"));
  EXPECT_EQ("hdd", GetTier(P("proj/alice/model")));
}

TEST_F(TieringTest, FileOpenForWritingIsNotMoved) {
  ASSERT_EQ(0, WriteFile(P("f"), Pattern(1 << 20, 3)));
  int fd = open(P("f").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(EBUSY, SetTier(P("f"), "hdd"));
  EXPECT_EQ("ssd", GetTier(P("f")));
  close(fd);
  // The kernel sends the release after close returns.
  EXPECT_TRUE(WaitFor([&] { return SetTier(P("f"), "hdd") == 0; }, 10));
}

// With passthrough (the default) the kernel reads the object itself, so a
// file being read is not moved (EBUSY, as for a file being written) until
// the last reader closes it.
TEST_F(TieringTest, PassthroughReaderHoldsOffMovesUntilItCloses) {
  const std::string data = Pattern(4 << 20, 4);
  ASSERT_EQ(0, WriteFile(P("f"), data));
  // The writer's release reaches tierfs after close returns, and a reader
  // opened before it would be served by tierfs: start from a fresh mount.
  Remount();
  int fd = open(P("f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string head(4096, '\0');
  EXPECT_EQ(4096, PreadAll(fd, head.data(), head.size(), 0));
  EXPECT_EQ(EBUSY, SetTier(P("f"), "hdd"));
  EXPECT_EQ("ssd", GetTier(P("f")));
  std::string all(data.size(), '\0');
  EXPECT_EQ(ssize_t(all.size()), PreadAll(fd, all.data(), all.size(), 0));
  EXPECT_TRUE(all == data);
  close(fd);
  // The kernel sends the release after close returns.
  ASSERT_TRUE(WaitFor([&] { return SetTier(P("f"), "hdd") == 0; }, 10));
  std::string s;
  ASSERT_EQ(0, ReadFile(P("f"), &s));
  EXPECT_TRUE(s == data);
}

// Without passthrough, tierfs serves reads itself and a reader keeps
// reading across a move.
class NoPassthroughTieringTest : public MountTest {
 protected:
  NoPassthroughTieringTest() : MountTest(Options()) {}
  static MountOptions Options() {
    MountOptions o;
    o.extra_args = {"--no-passthrough"};
    return o;
  }
};

TEST_F(NoPassthroughTieringTest, ReaderKeepsReadingAcrossAMove) {
  const std::string data = Pattern(4 << 20, 4);
  ASSERT_EQ(0, WriteFile(P("f"), data));
  int fd = open(P("f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string head(4096, '\0');
  ASSERT_EQ(4096, PreadAll(fd, head.data(), head.size(), 0));
  ASSERT_EQ(0, SetTierOfClosed(P("f"), "hdd"));
  // Bypass the page cache's copy of what was read before: the rest comes
  // from the daemon, through the descriptor opened before the move.
  std::string rest(data.size() - 4096, '\0');
  ASSERT_EQ(ssize_t(rest.size()), PreadAll(fd, rest.data(), rest.size(), 4096));
  EXPECT_TRUE(head + rest == data);
  close(fd);
  int fd2 = open(P("f").c_str(), O_RDONLY);
  ASSERT_GE(fd2, 0);
  std::string all(data.size(), '\0');
  ASSERT_EQ(ssize_t(all.size()), PreadAll(fd2, all.data(), all.size(), 0));
  EXPECT_TRUE(all == data);
  close(fd2);
}

TEST_F(TieringTest, OpeningAnHddFileForWritingBringsItToSsd) {
  const std::string data = Pattern(2 << 20, 5);
  ASSERT_EQ(0, WriteFile(P("f"), data));
  ASSERT_EQ(0, WriteFile(P("g"), data));
  ASSERT_EQ(0, SetTierOfClosed(P("f"), "hdd"));
  ASSERT_EQ(0, SetTierOfClosed(P("g"), "hdd"));

  // Reading does not promote.
  std::string s;
  ASSERT_EQ(0, ReadFile(P("f"), &s));
  EXPECT_EQ("hdd", GetTier(P("f")));

  int fd = open(P("f").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  EXPECT_EQ("ssd", GetTier(P("f")));
  ASSERT_EQ(0, PwriteAll(fd, "XY", 2, 10));
  close(fd);
  ASSERT_EQ(0, ReadFile(P("f"), &s));
  std::string expect = data;
  expect.replace(10, 2, "XY");
  EXPECT_TRUE(s == expect);
  EXPECT_TRUE(ObjectOn(fs_.ssd(), Ino(P("f"))));
  EXPECT_FALSE(ObjectOn(fs_.hdd(), Ino(P("f"))));

  // With O_TRUNC nothing is copied: a new, empty object starts on SSD.
  ASSERT_EQ(0, WriteFile(P("g"), "new"));
  EXPECT_EQ("ssd", GetTier(P("g")));
  ASSERT_EQ(0, ReadFile(P("g"), &s));
  EXPECT_EQ("new", s);
  EXPECT_FALSE(ObjectOn(fs_.hdd(), Ino(P("g"))));
}

// A pin on the HDD tier keeps the file's writes there: promoted, the pin
// (which keeps every rule off it) held it on the SSD tier for good, where
// it was lost with that tier. A manual placement ends when the file is
// promoted for writing, for the same reason.
TEST_F(TieringTest, APinOnHddKeepsWritesThereAndAPromotionEndsAPlacement) {
  ASSERT_EQ(0, WriteFile(P("pinned"), "kept "));
  ASSERT_EQ(0, WriteFile(P("placed"), "placed "));
  const CommandResult pin = Tierctl({"pin", "--tier", "hdd", P("pinned")});
  ASSERT_EQ(0, pin.exit_code) << pin.out << pin.err;
  ASSERT_TRUE(WaitFor([&] { return GetTier(P("pinned")) == "hdd"; }, 20));
  ASSERT_EQ(0, SetTierOfClosed(P("placed"), "hdd"));
  for (const char* name : {"pinned", "placed"}) {
    const int fd = open(P(name).c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0) << name;
    ASSERT_EQ(6, write(fd, "again\n", 6));
    ASSERT_EQ(0, close(fd));
  }
  EXPECT_EQ("hdd", GetTier(P("pinned")));
  EXPECT_TRUE(ObjectOn(fs_.hdd(), Ino(P("pinned"))));
  std::string got;
  ASSERT_EQ(0, ReadFile(P("pinned"), &got));
  EXPECT_EQ("kept again\n", got);
  EXPECT_EQ("ssd", GetTier(P("placed")));
  EXPECT_EQ("errno " + std::to_string(ENODATA), PinOf(P("placed")));
  ASSERT_EQ(0, ReadFile(P("placed"), &got));
  EXPECT_EQ("placed again\n", got);
}

// A move that fails leaves no hold behind: cp -a of a file that carries
// the tier attribute sets it while its copy is open for writing (refused),
// and a copy held "manual" for good would never be placed by the policy.
TEST_F(TieringTest, AMoveThatFailsLeavesNoHold) {
  const int fd = open(P("copy").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(EBUSY, SetTier(P("copy"), "hdd"));
  EXPECT_EQ(EBUSY, SetTier(P("copy"), "ssd"));
  close(fd);
  EXPECT_EQ("errno " + std::to_string(ENODATA), PinOf(P("copy")));
  // A copy made while an older tierfs listed the attribute carries it.
  const std::string src = fs_.root() + "/src";
  ASSERT_EQ(0, WriteFile(src, "x"));
  ASSERT_EQ(0, setxattr(src.c_str(), "user.tierfs.tier", "hdd", 3, 0));
  RunCommand({"cp", "-a", src, P("src-copy")}, 10);  // passes over the EBUSY
  std::string got;
  ASSERT_EQ(0, ReadFile(P("src-copy"), &got));
  EXPECT_EQ("x", got);
  EXPECT_EQ("errno " + std::to_string(ENODATA), PinOf(P("src-copy")));
}

class ThrottledTieringTest : public MountTest {
 protected:
  ThrottledTieringTest() : MountTest(Throttled()) {}
  static MountOptions Throttled() {
    MountOptions o;
    o.extra_args = {"--move-bandwidth", "8"};
    return o;
  }
};

// A write that lands while the copy runs must win: the move gives up, the
// file stays on SSD with the new bytes, and a later move succeeds.
TEST_F(ThrottledTieringTest, WriteDuringCopyAbortsTheMove) {
  const std::string data = Pattern(24 << 20, 6);  // 3 s at 8 MiB/s
  ASSERT_EQ(0, WriteFile(P("f"), data));
  int move_err = -1;
  // SetTierOfClosed: the writer's release is asynchronous, and a move
  // before it arrives is EBUSY (CI failed this test on it).
  std::thread mover([&] { move_err = SetTierOfClosed(P("f"), "hdd"); });
  EXPECT_TRUE(WaitFor([&] { return GetTier(P("f")) == "moving"; }, 10));
  int fd = open(P("f").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, PwriteAll(fd, "racing", 6, 1000));
  close(fd);
  mover.join();
  EXPECT_EQ(ECANCELED, move_err);
  EXPECT_EQ("ssd", GetTier(P("f")));
  std::string expect = data;
  expect.replace(1000, 6, "racing");
  std::string s;
  ASSERT_EQ(0, ReadFile(P("f"), &s));
  EXPECT_TRUE(s == expect);
  EXPECT_FALSE(ObjectOn(fs_.hdd(), Ino(P("f"))));
  Remount();
  ASSERT_EQ(0, ReadFile(P("f"), &s));
  EXPECT_TRUE(s == expect);
}

// A stop does not wait for a move: SIGTERM (or an unmount) cancels the
// copy under way, the file stays where it was, whole, and nothing of the
// copy is left on the other tier. Before, the daemon finished the move
// first (20 s here, at 8 MiB/s).
TEST_F(ThrottledTieringTest, StopCancelsAMoveUnderWay) {
  const std::string data = Pattern(160 << 20, 7);
  ASSERT_EQ(0, WriteFile(P("big"), data));
  const uint64_t ino = Ino(P("big"));
  ASSERT_TRUE(WaitFor([&] { return SetTierOfClosed(P("big"), "ssd") == 0; }, 10));
  const CommandResult queued = Tierctl({"move", "--no-wait", "--to", "hdd", P("big")});
  ASSERT_EQ(0, queued.exit_code) << queued.out << queued.err;
  ASSERT_TRUE(WaitFor([&] { return GetTier(P("big")) == "moving"; }, 10));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(0, fs_.SignalAndWait(SIGTERM, 60));
  const auto took = std::chrono::steady_clock::now() - start;
  // Not a speed figure: the move alone had 18 s or more to go.
  EXPECT_LT(took, std::chrono::seconds(10)) << fs_.Log();
  EXPECT_NE(std::string::npos, fs_.Log().find("stopping")) << fs_.Log();
  ForceUnmount(fs_.mnt());  // what the signal may have left
  ASSERT_TRUE(fs_.Mount());
  EXPECT_EQ("ssd", GetTier(P("big")));
  std::string got;
  ASSERT_EQ(0, ReadFile(P("big"), &got));
  EXPECT_TRUE(got == data) << "the file changed";
  EXPECT_FALSE(ObjectOn(fs_.hdd(), ino));
}

class SparseTieringTest : public MountTest {
 protected:
  SparseTieringTest() : MountTest(SmallSsd()) {}
  static MountOptions SmallSsd() {
    MountOptions o;
    o.ssd_ext4_mb = 40;  // about 33 MiB free
    return o;
  }
  static uint64_t Allocated(const std::string& path) {
    struct stat st;
    EXPECT_EQ(0, stat(path.c_str(), &st)) << path;
    return uint64_t(st.st_blocks) * 512;
  }
};

// A sparse file moves as what it holds: its holes stay holes on the other
// tier, so a 1 GiB file of 128 KiB data costs the HDD tier next to nothing
// and fits back on an SSD tier of 33 MiB. Before, the move wrote out every
// zero (1 GiB on the HDD tier) and the way back failed preallocating 1 GiB.
TEST_F(SparseTieringTest, ASparseFileStaysSparseOnBothTiers) {
  const std::string f = P("sparse.bin");
  const std::string head = Pattern(64 << 10, 1), mid = Pattern(64 << 10, 2);
  constexpr off_t kSize = off_t(1) << 30, kMid = off_t(512) << 20;
  int fd = open(f.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, Err(ftruncate(fd, kSize)));
  ASSERT_EQ(0, PwriteAll(fd, head.data(), head.size(), 0));
  ASSERT_EQ(0, PwriteAll(fd, mid.data(), mid.size(), kMid));
  ASSERT_EQ(0, Err(fsync(fd)));
  ASSERT_EQ(0, close(fd));
  const ino_t ino = Ino(f);
  ASSERT_LT(Allocated(ObjectPathOn(fs_.ssd(), ino)), uint64_t(8) << 20);

  ASSERT_EQ(0, SetTierOfClosed(f, "hdd")) << fs_.Log();
  EXPECT_LT(Allocated(ObjectPathOn(fs_.hdd(), ino)), uint64_t(8) << 20);
  ASSERT_EQ(0, SetTier(f, "ssd")) << fs_.Log();
  EXPECT_LT(Allocated(ObjectPathOn(fs_.ssd(), ino)), uint64_t(8) << 20);

  struct stat st;
  ASSERT_EQ(0, stat(f.c_str(), &st));
  EXPECT_EQ(kSize, st.st_size);
  fd = open(f.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string got(head.size(), '\0');
  EXPECT_EQ(ssize_t(got.size()), PreadAll(fd, got.data(), got.size(), 0));
  EXPECT_TRUE(got == head);
  EXPECT_EQ(ssize_t(got.size()), PreadAll(fd, got.data(), got.size(), kMid));
  EXPECT_TRUE(got == mid);
  for (off_t hole : {off_t(1) << 20, off_t(300) << 20, kSize - off_t(got.size())}) {
    EXPECT_EQ(ssize_t(got.size()), PreadAll(fd, got.data(), got.size(), hole));
    EXPECT_EQ(std::string::npos, got.find_first_not_of('\0')) << "at " << hole;
  }
  close(fd);
  // Both moves checked the bytes against the checksum the file had; the
  // recorded one still holds.
  const CommandResult verified = Tierctl({"verify", f});
  EXPECT_EQ(0, verified.exit_code) << verified.out << verified.err;
}

}  // namespace
}  // namespace tierfs_test

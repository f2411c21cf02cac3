// Faults on one tier (--inject-fault, tiering/fault_io.h) and an unusable
// tier, seen through the mount: the application gets the errno, the daemon
// log names the object, and nothing reports success it did not have.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/tierctl_util.h"

namespace tierfs_test {
namespace {

// How an object's file name ends: its inode number in hex.
std::string HexIno(ino_t ino) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "/%llx", static_cast<unsigned long long>(ino));
  return buf;
}

// Whether the log has a line with all of `parts` in it.
bool LogLineHas(const std::string& log, const std::vector<std::string>& parts) {
  size_t start = 0;
  while (start < log.size()) {
    size_t end = log.find('\n', start);
    if (end == std::string::npos) end = log.size();
    const std::string line = log.substr(start, end - start);
    bool all = true;
    for (const std::string& p : parts) all = all && line.find(p) != std::string::npos;
    if (all) return true;
    start = end + 1;
  }
  return false;
}

MountOptions WithFaults(const std::vector<std::string>& faults) {
  MountOptions o;
  for (const std::string& f : faults) {
    o.extra_args.push_back("--inject-fault");
    o.extra_args.push_back(f);
  }
  return o;
}

// File `name` is on the HDD tier and reads back as `data`.
void ExpectOnHddHolding(TierfsMount& fs, const std::string& name, const std::string& data) {
  EXPECT_EQ("hdd", GetTier(fs.path(name)));
  std::string got;
  EXPECT_EQ(0, ReadFile(fs.path(name), &got));
  EXPECT_TRUE(got == data) << name << ": " << got.size() << " bytes read, " << data.size()
                           << " written";
}

// A write-only open is served direct (each write(2) reaches tierfs).
int OpenNew(TierfsMount& fs, const std::string& name) {
  return open(fs.path(name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

// Writes four different 1 MiB chunks (patterns `seed`..`seed`+3) to a new
// file `name` through one descriptor, then fsyncs and closes it. Returns
// what was written: short after a failed write (a test failure then).
std::string WriteFourMiB(TierfsMount& fs, const std::string& name, uint64_t seed) {
  int fd = OpenNew(fs, name);
  EXPECT_GE(fd, 0) << strerror(errno);
  if (fd < 0) return "";
  std::string data;
  for (int i = 0; i < 4; ++i) {
    const std::string chunk = Pattern(1 << 20, seed + i);
    const int err = PwriteAll(fd, chunk.data(), chunk.size(), off_t(i) << 20);
    EXPECT_EQ(0, err) << "write " << i << ": " << strerror(err);
    if (err != 0) break;
    data += chunk;
  }
  EXPECT_EQ(0, fsync(fd)) << strerror(errno);
  EXPECT_EQ(0, close(fd)) << strerror(errno);
  return data;
}

// A write the SSD tier fails (EIO: a failing device; EROFS: its filesystem
// went read-only) is not the application's error while the HDD tier can
// take the file: it spills there, its bytes so far read back and verified,
// and the write goes on there. The log names the object and the error.
TEST(FaultTest, FailingWriteOnSsdSpillsTheFileToHddAndTheLogSaysWhy) {
  for (const char* err : {"EIO", "EROFS"}) {
    SCOPED_TRACE(err);
    TierfsMount fs(WithFaults({std::string("ssd:pwrite:2+:") + err}));
    ASSERT_TRUE(fs.Mount());
    const std::string data = WriteFourMiB(fs, "f", 60);
    ASSERT_EQ(size_t(4) << 20, data.size());
    const ino_t ino = Ino(fs.path("f"));
    ExpectOnHddHolding(fs, "f", data);
    const std::string why = std::string(err) == "EIO" ? "Input/output error" : "Read-only";
    EXPECT_TRUE(
        LogLineHas(fs.Log(), {"spill: ssd tier failed a write", fs.ssd() + "/", HexIno(ino), why}))
        << fs.Log();
  }
}

// When what the file has on the failing SSD tier cannot be read back, it
// cannot move: the write's error reaches the application, and the file
// stays where its bytes are.
TEST(FaultTest, FailingWriteOnAnSsdThatCannotBeReadReachesTheApplication) {
  TierfsMount fs(WithFaults({"ssd:pwrite:2+:EIO", "ssd:pread:1+:EIO"}));
  ASSERT_TRUE(fs.Mount());
  int fd = OpenNew(fs, "f");
  ASSERT_GE(fd, 0);
  const std::string data = Pattern(1 << 20, 70);
  ASSERT_EQ(0, PwriteAll(fd, data.data(), data.size(), 0));
  EXPECT_EQ(-1, pwrite(fd, data.data(), data.size(), off_t(data.size())));
  EXPECT_EQ(EIO, errno);
  const ino_t ino = Ino(fs.path("f"));
  ASSERT_EQ(0, close(fd));
  EXPECT_EQ("ssd", GetTier(fs.path("f")));
  EXPECT_TRUE(LogLineHas(fs.Log(), {"write", fs.ssd() + "/", HexIno(ino), "Input/output error"}))
      << fs.Log();
}

// ENOSPC on the SSD tier is not the application's error: the file spills to
// the HDD tier and the write succeeds there.
TEST(FaultTest, NoSpaceOnSsdWriteSpillsToHdd) {
  TierfsMount fs(WithFaults({"ssd:pwrite:1:ENOSPC"}));
  ASSERT_TRUE(fs.Mount());
  const std::string data = Pattern(100000, 2);
  ASSERT_EQ(0, WriteFile(fs.path("f"), data));
  ExpectOnHddHolding(fs, "f", data);
}

// A file spilled to the HDD tier whose write there fails: the HDD tier's
// errno reaches the application.
TEST(FaultTest, FailingWriteOnHddReachesTheApplicationAndTheLog) {
  TierfsMount fs(WithFaults({"ssd:pwrite:1:ENOSPC", "hdd:pwrite:1:EIO"}));
  ASSERT_TRUE(fs.Mount());
  int fd = OpenNew(fs, "f");
  ASSERT_GE(fd, 0);
  const std::string data = Pattern(4096, 3);
  EXPECT_EQ(-1, write(fd, data.data(), data.size()));
  EXPECT_EQ(EIO, errno);
  EXPECT_EQ(0, PwriteAll(fd, data.data(), data.size(), 0));
  const ino_t ino = Ino(fs.path("f"));
  ASSERT_EQ(0, close(fd));
  EXPECT_EQ("hdd", GetTier(fs.path("f")));
  EXPECT_TRUE(LogLineHas(fs.Log(), {"write", fs.hdd() + "/", HexIno(ino), "Input/output error"}))
      << fs.Log();
}

// The same for writes of 1 MiB (uncached where the tier's filesystem takes
// it, fs/ops_write.cc WriteBytes): the second fails with ENOSPC, the file
// spills with the first and the rest is written on the HDD tier.
TEST(FaultTest, NoSpaceOnSsdDuringLargeWritesSpillsToHdd) {
  TierfsMount fs(WithFaults({"ssd:pwrite:2:ENOSPC"}));
  ASSERT_TRUE(fs.Mount());
  const std::string data = WriteFourMiB(fs, "f", 20);
  ASSERT_EQ(size_t(4) << 20, data.size());
  ExpectOnHddHolding(fs, "f", data);
}

// The spill's switch is committed but the old object cannot be removed
// (the SSD tier fails the unlink): the writer must go on writing into the
// new object on the HDD tier, not into the old one, whose bytes nothing
// reads any more. The old object is removed at the next start.
TEST(FaultTest, ASpillWhoseOldObjectCannotBeRemovedKeepsEveryLaterWrite) {
  TierfsMount fs(WithFaults({"ssd:pwrite:2:ENOSPC", "ssd:unlink:1:EIO"}));
  ASSERT_TRUE(fs.Mount());
  const std::string data = WriteFourMiB(fs, "f", 40);
  ASSERT_EQ(size_t(4) << 20, data.size());
  const ino_t ino = Ino(fs.path("f"));
  ExpectOnHddHolding(fs, "f", data);
  EXPECT_TRUE(LogLineHas(fs.Log(), {"after the switch", HexIno(ino), "next start"})) << fs.Log();
  EXPECT_TRUE(ObjectOn(fs.ssd(), ino));
  // Over the same tiers again, without the fault: the start removes it.
  ASSERT_TRUE(fs.Unmount());
  fs.options().extra_args.clear();
  ASSERT_TRUE(fs.Mount());
  EXPECT_FALSE(ObjectOn(fs.ssd(), ino));
  ExpectOnHddHolding(fs, "f", data);
}

// fallocate and copy_file_range write too: on a full SSD tier the file
// spills to the HDD tier and the call succeeds there, as a write does.
TEST(FaultTest, FallocateOnAFullSsdSpillsToHdd) {
  TierfsMount fs(WithFaults({"ssd:fallocate:1:ENOSPC"}));
  ASSERT_TRUE(fs.Mount());
  int fd = OpenNew(fs, "f");
  ASSERT_GE(fd, 0);
  const std::string head = Pattern(100000, 5);
  ASSERT_EQ(0, PwriteAll(fd, head.data(), head.size(), 0));
  EXPECT_EQ(0, posix_fallocate(fd, 0, 1 << 20));
  ASSERT_EQ(0, close(fd));
  ExpectOnHddHolding(fs, "f", head + std::string((1 << 20) - head.size(), '\0'));
}

TEST(FaultTest, CopyFileRangeOntoAFullSsdSpillsToHdd) {
  TierfsMount fs(WithFaults({"ssd:pwrite:2:ENOSPC"}));
  ASSERT_TRUE(fs.Mount());
  const std::string data = Pattern(10000, 6);
  ASSERT_EQ(0, WriteFile(fs.path("a"), data));  // pwrite 1
  int in = open(fs.path("a").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(in, 0);
  int out = OpenNew(fs, "b");
  ASSERT_GE(out, 0);
  loff_t off_in = 0, off_out = 0;
  EXPECT_EQ(ssize_t(data.size()), copy_file_range(in, &off_in, out, &off_out, data.size(), 0))
      << strerror(errno);  // pwrite 2 fails: the SSD tier is full
  close(in);
  ASSERT_EQ(0, close(out));
  ExpectOnHddHolding(fs, "b", data);
}

TEST(FaultTest, FailingFsyncOnSsdReachesTheApplicationAndTheLog) {
  TierfsMount fs(WithFaults({"ssd:fsync:1:EIO"}));
  ASSERT_TRUE(fs.Mount());
  int fd = OpenNew(fs, "f");
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, PwriteAll(fd, "data", 4, 0));
  EXPECT_EQ(-1, fsync(fd));
  EXPECT_EQ(EIO, errno);
  EXPECT_EQ(0, fsync(fd)) << "only the first fsync was to fail";
  const ino_t ino = Ino(fs.path("f"));
  close(fd);
  EXPECT_TRUE(LogLineHas(fs.Log(), {"fsync", fs.ssd() + "/", HexIno(ino)})) << fs.Log();
}

// One place replies to a failed operation and logs it: the line names the
// operation, the inode, its path and its tier, whatever the error's own
// text says.
TEST(FaultTest, AFailedOperationIsLoggedWithItsInodePathAndTier) {
  // fdatasync: the mover's own syncs of the HDD tier are fsyncs. Without
  // passthrough, so the read-only descriptor's sync reaches tierfs.
  MountOptions o = WithFaults({"hdd:fdatasync:1:EIO"});
  o.extra_args.push_back("--no-passthrough");
  TierfsMount fs(o);
  ASSERT_TRUE(fs.Mount());
  ASSERT_EQ(0, Err(mkdir(fs.path("run").c_str(), 0755)));
  ASSERT_EQ(0, WriteFile(fs.path("run/f"), "data"));
  ASSERT_EQ(0, SetTierOfClosed(fs.path("run/f"), "hdd"));
  int fd = open(fs.path("run/f").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(-1, fdatasync(fd));
  EXPECT_EQ(EIO, errno);
  const ino_t ino = Ino(fs.path("run/f"));
  close(fd);
  const std::string want = "fsync of inode " + std::to_string(ino) + " (/run/f, hdd): fsync ";
  EXPECT_TRUE(LogLineHas(fs.Log(), {want, fs.hdd() + "/", HexIno(ino)})) << want << "\n"
                                                                         << fs.Log();
}

// The first fsync of a new file also syncs the directory that names its
// object (once): before, a power loss could keep the file's size in LMDB
// and lose the object. A failure of that second sync is the fsync's.
TEST(FaultTest, FirstFsyncOfANewFileSyncsTheObjectsDirectory) {
  TierfsMount fs(WithFaults({"ssd:fsync:2:EIO"}));
  ASSERT_TRUE(fs.Mount());
  int fd = OpenNew(fs, "f");
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, PwriteAll(fd, "data", 4, 0));
  EXPECT_EQ(-1, fsync(fd)) << "the object's directory was not synced";
  EXPECT_EQ(EIO, errno);
  EXPECT_EQ(0, fsync(fd)) << "the directory sync is retried";
  EXPECT_EQ(0, fsync(fd));
  close(fd);
  EXPECT_TRUE(LogLineHas(fs.Log(), {"fsync", fs.ssd() + "/"})) << fs.Log();
}

// fdatasync: the mover's own syncs of the HDD tier are fsyncs, so the
// application's call is the first of its kind there.
TEST(FaultTest, FailingFdatasyncOnHddReachesTheApplicationAndTheLog) {
  TierfsMount fs(WithFaults({"ssd:pwrite:1:ENOSPC", "hdd:fdatasync:1:EIO"}));
  ASSERT_TRUE(fs.Mount());
  int fd = OpenNew(fs, "f");
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, PwriteAll(fd, "data", 4, 0));
  EXPECT_EQ("hdd", GetTier(fs.path("f")));
  EXPECT_EQ(-1, fdatasync(fd));
  EXPECT_EQ(EIO, errno);
  EXPECT_EQ(0, fdatasync(fd));
  const ino_t ino = Ino(fs.path("f"));
  close(fd);
  EXPECT_TRUE(LogLineHas(fs.Log(), {"fsync", fs.hdd() + "/", HexIno(ino)})) << fs.Log();
}

// Bug: fsync replied success when the object could not be opened (the HDD
// tier gone); fallocate, copy_file_range and lseek replied errno without
// logging what failed.
TEST(FaultTest, UnusableHddTierFailsFsyncAndLseekWithEio) {
  MountOptions o;
  o.extra_args = {"--no-passthrough"};  // a read-only open then opens nothing yet
  TierfsMount fs(o);
  ASSERT_TRUE(fs.Mount());
  ASSERT_EQ(0, WriteFile(fs.path("f"), "archived bytes"));
  ASSERT_EQ(0, SetTierOfClosed(fs.path("f"), "hdd"));
  int fd = open(fs.path("f").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const std::string away = fs.hdd() + ".away";
  ASSERT_EQ(0, Err(rename(fs.hdd().c_str(), away.c_str())));
  const int fsync_rc = fsync(fd);
  const int fsync_err = errno;
  const off_t seek_rc = lseek(fd, 0, SEEK_DATA);
  const int seek_err = errno;
  close(fd);
  ASSERT_EQ(0, Err(rename(away.c_str(), fs.hdd().c_str())));
  EXPECT_EQ(-1, fsync_rc) << "fsync claimed success with the tier gone";
  EXPECT_EQ(EIO, fsync_err);
  EXPECT_EQ(-1, seek_rc);
  EXPECT_EQ(EIO, seek_err);
  const std::string log = fs.Log();
  EXPECT_TRUE(LogLineHas(log, {"fsync", fs.hdd()})) << log;
  EXPECT_TRUE(LogLineHas(log, {"lseek", fs.hdd()})) << log;
}

// A capacity tier on a network filesystem that drops fails with its
// transport's errors (GlusterFS: ENOTCONN). The application gets EIO, not
// the errno of a dead FUSE mount (before, `md5sum` said "Transport
// endpoint is not connected" of a file in a live tierfs); the log keeps
// the tier's own error.
TEST(FaultTest, TransportErrorsOfTheHddTierReachTheApplicationAsEio) {
  // The move's read-back is the HDD tier's first pread; reads after it fail.
  TierfsMount fs(WithFaults({"hdd:pread:2+:ENOTCONN"}));
  ASSERT_TRUE(fs.Mount());
  const std::string data = Pattern(5000, 11);
  ASSERT_EQ(0, WriteFile(fs.path("f"), data));
  ASSERT_EQ(0, SetTierOfClosed(fs.path("f"), "hdd")) << fs.Log();
  std::string got;
  EXPECT_EQ(EIO, ReadFile(fs.path("f"), &got));
  EXPECT_TRUE(LogLineHas(fs.Log(), {"Transport endpoint is not connected"})) << fs.Log();
}

// tierctl status answers about a mount whose HDD tier cannot say its space
// (statfs fails, as on a network filesystem that dropped): the tier is
// unhealthy, its space "-". Before, tierctl aborted on an assertion in the
// JSON library, reading fields the reply left out.
TEST(FaultTest, StatusAnswersWhenTheHddTierCannotSayItsSpace) {
  TierfsMount fs(WithFaults({"hdd:statfs:1+:ENOTCONN"}));
  ASSERT_TRUE(fs.Mount());
  CommandResult r = Tierctl({"status", fs.mnt()});
  EXPECT_EQ(0, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.out.find("hdd (unhealthy: ")) << r.out;
  r = Tierctl({"--json", "status", fs.mnt()});
  ASSERT_EQ(0, r.exit_code) << r.out << r.err;
  const nlohmann::json hdd = nlohmann::json::parse(r.out)[0]["tiers"][1];
  EXPECT_EQ("hdd", hdd["name"]) << r.out;
  EXPECT_TRUE(hdd["capacity"].is_null()) << r.out;
  EXPECT_EQ(false, hdd["healthy"]) << r.out;
}

// Both tiers fail fallocate and writes: "b" spills (it has no bytes yet),
// and the HDD tier's error reaches the application; each failure is logged
// with the object's path.
TEST(FaultTest, FailingFallocateAndCopyFileRangeAreLoggedWithThePath) {
  TierfsMount fs(WithFaults(
      {"ssd:fallocate:1+:EIO", "hdd:fallocate:1+:EIO", "ssd:pwrite:2+:EIO", "hdd:pwrite:1+:EIO"}));
  ASSERT_TRUE(fs.Mount());
  ASSERT_EQ(0, WriteFile(fs.path("a"), Pattern(10000, 4)));  // ssd pwrite 1
  int fd = open(fs.path("b").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(EIO, posix_fallocate(fd, 0, 65536));
  int in = open(fs.path("a").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(in, 0);
  loff_t off_in = 0, off_out = 0;
  EXPECT_EQ(-1, copy_file_range(in, &off_in, fd, &off_out, 10000, 0));
  EXPECT_EQ(EIO, errno);
  const ino_t b = Ino(fs.path("b"));
  close(in);
  close(fd);
  const std::string log = fs.Log();
  EXPECT_TRUE(LogLineHas(log, {"fallocate", fs.ssd() + "/", HexIno(b), "Input/output error"}))
      << log;
  EXPECT_TRUE(LogLineHas(log, {"fallocate", fs.hdd() + "/", HexIno(b), "Input/output error"}))
      << log;
  EXPECT_TRUE(LogLineHas(log, {"copy_file_range", HexIno(b), "Input/output error"})) << log;
}

}  // namespace
}  // namespace tierfs_test

// What a move says about the file it moved: the log line ("moved inode N
// ('/path')") and the audit record name the file's path whatever asked for
// the move: a policy rule, a setxattr on the file or a directory above it,
// the evictor, a promotion on open for writing, a spill of a file being
// written (fs/placement.h). Callers that know only the inode get the name
// the kernel last looked the file up by, renames included.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

uint64_t InoOf(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? uint64_t(st.st_ino) : 0;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The audit line of the move of inode `ino`, or "".
std::string AuditOfMove(const std::string& audit, uint64_t ino) {
  std::istringstream lines(audit);
  for (std::string line; std::getline(lines, line);)
    if (line.find("\"action\":\"move\"") != std::string::npos &&
        line.find("\"ino\":" + std::to_string(ino) + ",") != std::string::npos)
      return line;
  return "";
}

// The audit line of a move of inode `ino` by rule `rule`, or "".
std::string AuditOfMoveBy(const std::string& audit, uint64_t ino, const std::string& rule) {
  std::istringstream lines(audit);
  for (std::string line; std::getline(lines, line);)
    if (line.find("\"action\":\"move\"") != std::string::npos &&
        line.find("\"ino\":" + std::to_string(ino) + ",") != std::string::npos &&
        line.find("\"rule\":\"" + rule + "\"") != std::string::npos)
      return line;
  return "";
}

// Unmounts `fs` and expects its audit journal to hold a move of inode `ino`
// by `rule` naming `path`.
void ExpectMoveAudited(TierfsMount& fs, uint64_t ino, const std::string& rule,
                       const std::string& path) {
  // Read after the unmount: a move's new tier is visible before its record
  // is appended.
  EXPECT_TRUE(fs.Unmount());
  const std::string audit = Slurp(fs.ssd() + "/state/audit.jsonl");
  const std::string rec = AuditOfMoveBy(audit, ino, rule);
  EXPECT_NE(std::string::npos, rec.find("\"path\":\"" + path + "\"")) << audit;
}

// Small tmpfs tiers: 64 MiB SSD that evicts above half full, or a 32 MiB
// SSD a 48 MiB file spills from.
MountOptions SmallTiers(int ssd_mb, std::vector<std::string> args = {}) {
  MountOptions o;
  o.ssd_tmpfs_mb = ssd_mb;
  o.hdd_tmpfs_mb = 256;
  o.extra_args = std::move(args);
  return o;
}

TEST(MoveLogTest, DirectoryMoveNamesEachFileByItsPath) {
  TierfsMount fs;
  ASSERT_TRUE(fs.Mount());
  ASSERT_EQ(0, mkdir(fs.path("d").c_str(), 0755));
  ASSERT_EQ(0, mkdir(fs.path("d/sub").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(fs.path("d/sub/f"), Pattern(10000, 1)));
  const uint64_t dir = InoOf(fs.path("d")), file = InoOf(fs.path("d/sub/f"));
  ASSERT_NE(0u, dir);
  ASSERT_NE(0u, file);
  ASSERT_TRUE(WaitFor([&] { return SetTier(fs.path("d"), "hdd") == 0; }, 10)) << fs.Log();
  const std::string audit = Slurp(fs.ssd() + "/state/audit.jsonl");
  EXPECT_TRUE(fs.Unmount());
  const std::string want = "moved inode " + std::to_string(file) + " ('/d/sub/f')";
  EXPECT_NE(std::string::npos, fs.Log().find(want)) << want << "\n" << fs.Log();
  const std::string rec = AuditOfMove(audit, file);
  EXPECT_NE(std::string::npos, rec.find("\"path\":\"/d/sub/f\"")) << audit;
}

TEST(MoveLogTest, ManualMoveOfARenamedFileNamesItsNewPath) {
  TierfsMount fs;
  ASSERT_TRUE(fs.Mount());
  ASSERT_EQ(0, mkdir(fs.path("a").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(fs.path("a/old"), Pattern(5000, 3)));
  ASSERT_EQ(0, rename(fs.path("a/old").c_str(), fs.path("new").c_str()));
  const uint64_t file = InoOf(fs.path("new"));
  ASSERT_EQ(0, SetTierOfClosed(fs.path("new"), "hdd")) << fs.Log();
  ExpectMoveAudited(fs, file, "manual", "/new");
}

TEST(MoveLogTest, PromotionOnOpenForWritingNamesThePath) {
  TierfsMount fs;
  ASSERT_TRUE(fs.Mount());
  ASSERT_EQ(0, WriteFile(fs.path("p"), Pattern(5000, 4)));
  const uint64_t file = InoOf(fs.path("p"));
  ASSERT_EQ(0, SetTierOfClosed(fs.path("p"), "hdd")) << fs.Log();
  const int fd = open(fs.path("p").c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << strerror(errno);
  close(fd);
  ASSERT_EQ("ssd", GetTier(fs.path("p")));
  ExpectMoveAudited(fs, file, "promote", "/p");
}

TEST(MoveLogTest, EvictionNamesThePath) {
  TierfsMount fs(SmallTiers(64, {"--ssd-high-watermark", "50%", "--ssd-low-watermark", "30%"}));
  ASSERT_TRUE(fs.Mount());
  ASSERT_EQ(0, mkdir(fs.path("e").c_str(), 0755));
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(0, WriteFile(fs.path("e/f" + std::to_string(i)), Pattern(4 << 20, 10 + i)));
  ASSERT_TRUE(WaitFor([&] { return GetTier(fs.path("e/f0")) == "hdd"; }, 20)) << fs.Log();
  const uint64_t file = InoOf(fs.path("e/f0"));
  ExpectMoveAudited(fs, file, "evict", "/e/f0");
}

TEST(MoveLogTest, SpillNamesThePath) {
  TierfsMount fs(SmallTiers(32));
  ASSERT_TRUE(fs.Mount());
  const int fd = open(fs.path("big").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  const std::string piece = Pattern(1 << 20, 6);
  for (int i = 0; i < 48; ++i)
    ASSERT_EQ(ssize_t(piece.size()), write(fd, piece.data(), piece.size())) << strerror(errno);
  ASSERT_EQ(0, close(fd));
  ASSERT_EQ("hdd", GetTier(fs.path("big"))) << fs.Log();
  const uint64_t file = InoOf(fs.path("big"));
  ExpectMoveAudited(fs, file, "spill", "/big");
}

TEST(MoveLogTest, PolicyMoveNamesThePathAndTheRule) {
  TierfsMount fs;
  const std::string policy = fs.root() + "/policy.toml";
  std::ofstream(policy) << R"(# cold files to HDD
[[rule]]
name = "cold-to-hdd"
in_series = false
path = "/cold/**"
older_than = "1s"
action = "migrate"
to = "hdd"
)";
  fs.options().extra_args = {"--policy", policy, "--scan-interval", "1"};
  ASSERT_TRUE(fs.Mount());
  ASSERT_EQ(0, mkdir(fs.path("cold").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(fs.path("cold/f"), Pattern(10000, 2)));
  const uint64_t file = InoOf(fs.path("cold/f"));
  ASSERT_TRUE(WaitFor([&] { return GetTier(fs.path("cold/f")) == "hdd"; }, 30)) << fs.Log();
  // The journal after the unmount: the new tier is visible before the move
  // has appended its record (an ASan run read the journal in between).
  EXPECT_TRUE(fs.Unmount());
  const std::string audit = Slurp(fs.ssd() + "/state/audit.jsonl");
  const std::string log = fs.Log();
  const size_t at = log.find("moved inode " + std::to_string(file));
  ASSERT_NE(std::string::npos, at) << log;
  const std::string line = log.substr(at, log.find('\n', at) - at);
  EXPECT_NE(std::string::npos, line.find("cold/f")) << line;
  EXPECT_NE(std::string::npos, line.find("cold-to-hdd")) << line;
  EXPECT_NE(std::string::npos, AuditOfMove(audit, file).find("cold/f")) << audit;
}

}  // namespace
}  // namespace tierfs_test

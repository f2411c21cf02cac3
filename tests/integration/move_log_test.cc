// What a move says about the file it moved: the log line ("moved inode N")
// and the audit record name the path whenever the mover's caller knows it.
// A policy action knows the whole path; a setxattr on a directory knows the
// directory's inode only, so the files are named by their path below it.
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>

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

TEST(MoveLogTest, DirectoryMoveNamesEachFileBelowTheDirectory) {
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
  const std::string want = "moved inode " + std::to_string(file) +
                           " ('sub/f' below directory inode " + std::to_string(dir) + ")";
  EXPECT_NE(std::string::npos, fs.Log().find(want)) << want << "\n" << fs.Log();
  const std::string rec = AuditOfMove(audit, file);
  EXPECT_NE(std::string::npos, rec.find("\"path\":\"sub/f\"")) << audit;
  EXPECT_NE(std::string::npos, rec.find("below directory inode " + std::to_string(dir))) << audit;
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
  const std::string audit = Slurp(fs.ssd() + "/state/audit.jsonl");
  EXPECT_TRUE(fs.Unmount());
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

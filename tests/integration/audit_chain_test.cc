// tierctl audit verify / export against a real mount (meta/audit_verify.h):
// the journal of some moves verifies through the daemon (root only), an
// exported copy verifies, and after the unmount a record edited with sed
// makes `audit verify --journal --head` exit 1 naming the line after it.
#include <glob.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/tierctl_util.h"

namespace tierfs_test {
namespace {

class AuditChainMountTest : public MountTest {};

size_t LineCount(const std::string& path) {
  const std::string text = SlurpFile(path);
  return size_t(std::count(text.begin(), text.end(), '\n'));
}

// The head file in the one namespace directory of the HDD tier.
std::string HeadOn(const std::string& hdd) {
  glob_t g;
  std::string out;
  if (glob((hdd + "/ns/*/audit.head").c_str(), 0, nullptr, &g) == 0 && g.gl_pathc == 1)
    out = g.gl_pathv[0];
  globfree(&g);
  return out;
}

TEST_F(AuditChainMountTest, VerifyExportAndAnEditedRecord) {
  const std::string journal = fs_.ssd() + "/state/audit.jsonl";
  for (const char* name : {"a", "b", "c"}) {
    ASSERT_EQ(0, WriteFile(P(name), Pattern(4096, 7)));
    ASSERT_EQ(0, SetTierOfClosed(P(name), "hdd")) << name;
  }
  ASSERT_TRUE(WaitFor([&] { return LineCount(journal) >= 3; }, 20)) << SlurpFile(journal);

  CommandResult r = Tierctl({"audit", "verify", fs_.mnt()});
  EXPECT_EQ(0, r.exit_code) << r.out << r.err;
  EXPECT_EQ(0u, r.out.rfind("ok: ", 0)) << r.out;
  EXPECT_NE(std::string::npos, r.out.find("chain intact, head matches")) << r.out;

  // The journal names every user's files: the paths are root's, even for
  // a user of the socket (in its group).
  char sock[4096];
  const ssize_t n = getxattr(fs_.mnt().c_str(), "user.tierfs.control", sock, sizeof sock);
  ASSERT_GT(n, 0);
  struct stat sock_st;
  ASSERT_EQ(0, stat(std::string(sock, size_t(n)).c_str(), &sock_st));
  std::string out;
  EXPECT_EQ(1, TierctlAs(Creds{12345, 12345, {gid_t(sock_st.st_gid)}}, TierctlForOthers(fs_.root()),
                         "audit verify " + fs_.mnt(), &out))
      << out;
  EXPECT_NE(std::string::npos, out.find("root only")) << out;

  const std::string dest = fs_.root() + "/export";
  std::filesystem::create_directory(dest);
  r = Tierctl({"audit", "export", dest, fs_.mnt()});
  EXPECT_EQ(0, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.out.find("ok: ")) << r.out;
  EXPECT_EQ(SlurpFile(dest + "/audit.jsonl").substr(0, 40), SlurpFile(journal).substr(0, 40));

  ASSERT_TRUE(fs_.Unmount());
  const std::string head = HeadOn(fs_.hdd());
  ASSERT_FALSE(head.empty()) << "no " << fs_.hdd() << "/ns/*/audit.head";
  r = Tierctl({"audit", "verify", "--journal", journal, "--head", head});
  EXPECT_EQ(0, r.exit_code) << r.out << r.err;
  // The head names the last record, not an earlier one.
  EXPECT_EQ("ok: " + std::to_string(LineCount(journal)) + " records, chain intact, head matches\n",
            r.out);

  // Record 2 says it moved other bytes: record 3's prev no longer matches.
  r = RunCommand({"sed", "-i", "2s/\"bytes\":/\"bytes\":1/", journal}, 10);
  ASSERT_EQ(0, r.exit_code) << r.err;
  r = Tierctl({"--json", "audit", "verify", "--journal", journal, "--head", head});
  EXPECT_EQ(1, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.out.find("\"bad_line\":3")) << r.out;
  EXPECT_NE(std::string::npos, r.out.find("prev does not match the hash of line 2")) << r.out;
}

}  // namespace
}  // namespace tierfs_test

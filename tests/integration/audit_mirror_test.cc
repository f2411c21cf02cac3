// The audit journal's copy on the HDD tier (meta/audit_mirror.h) on a real
// mount: after audited work that rotates the journal, every file of the
// copy equals the local one byte for byte, and `tierctl audit verify
// --journal COPY --head HEAD` proves the copy's chain with the head.
#include <glob.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "meta/audit_verify.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/tierctl_util.h"

namespace tierfs_test {
namespace {

namespace fs = std::filesystem;

TEST(AuditMirrorMountTest, TheHddCopyEqualsTheJournalAndVerifies) {
  MountOptions opts;
  opts.extra_args = {"--audit-max-bytes", "1024"};
  TierfsMount m(opts);
  ASSERT_TRUE(m.Mount());
  const std::string journal = m.ssd() + "/state/audit.jsonl";
  for (const char* name : {"a", "b", "c", "d", "e"}) {
    ASSERT_EQ(0, WriteFile(m.path(name), Pattern(4096, 3)));
    ASSERT_EQ(0, SetTierOfClosed(m.path(name), "hdd")) << name;
  }
  ASSERT_TRUE(m.Unmount());
  const std::vector<std::string> local = tierfs::AuditJournalFiles(journal);
  ASSERT_GE(local.size(), 2u) << "the journal did not rotate";

  glob_t g;
  std::string ns_dir;
  if (glob((m.hdd() + "/ns/*").c_str(), 0, nullptr, &g) == 0 && g.gl_pathc == 1)
    ns_dir = g.gl_pathv[0];
  globfree(&g);
  ASSERT_FALSE(ns_dir.empty());
  const std::string copy = ns_dir + "/audit/audit.jsonl";
  const std::vector<std::string> copies = tierfs::AuditJournalFiles(copy);
  ASSERT_EQ(local.size(), copies.size());
  for (size_t i = 0; i < local.size(); ++i) {
    EXPECT_EQ(fs::path(local[i]).filename(), fs::path(copies[i]).filename());
    EXPECT_TRUE(SlurpFile(local[i]) == SlurpFile(copies[i]))
        << copies[i] << " differs from " << local[i];
  }
  CommandResult r =
      Tierctl({"audit", "verify", "--journal", copy, "--head", ns_dir + "/audit.head"});
  EXPECT_EQ(0, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.out.find("chain intact, head matches")) << r.out;
}

}  // namespace
}  // namespace tierfs_test

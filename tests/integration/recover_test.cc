// The archive survives the loss of the SSD tier and of the state: snapshots
// of LMDB on the HDD tier (fs/snapshot.h), the identity on each HDD object
// (tiering/identity.h) and `tierfs recover` (fs/recover.h), on real mounts.
#include <glob.h>
#include <sys/stat.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "meta/store.h"
#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

namespace fs = std::filesystem;

// The snapshot directory of the one namespace on the HDD tier.
std::string SnapDir(const std::string& hdd) {
  glob_t g;
  std::string out;
  if (glob((hdd + "/ns/*").c_str(), 0, nullptr, &g) == 0 && g.gl_pathc == 1)
    out = std::string(g.gl_pathv[0]) + "/meta";
  globfree(&g);
  return out;
}

// Snapshot file names, oldest first.
std::vector<std::string> Snapshots(const std::string& hdd) {
  std::vector<std::string> out;
  const std::string dir = SnapDir(hdd);
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename();
    if (name.rfind("snap-", 0) == 0 && e.path().extension() == ".mdb") out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(RecoverTest, SnapshotsAppearArePrunedAndAreStates) {
  MountOptions opts;
  opts.extra_args = {"--snapshot-interval", "1", "--snapshot-keep", "2"};
  TierfsMount m(opts);
  ASSERT_TRUE(m.Mount());
  ASSERT_EQ(0, WriteFile(m.path("before-snapshot"), "x"));
  // Four snapshots after the write: the newest holds the file, and two of
  // them must have been pruned.
  std::set<std::string> seen;
  const bool enough = WaitFor(
      [&] {
        for (const auto& s : Snapshots(m.hdd())) seen.insert(s);
        return seen.size() >= 5;
      },
      30);
  ASSERT_TRUE(enough) << "snapshots seen: " << seen.size() << "\n" << m.Log();
  std::vector<std::string> now = Snapshots(m.hdd());
  EXPECT_EQ(2u, now.size()) << "not pruned to --snapshot-keep 2";
  ASSERT_FALSE(now.empty());
  // A valid LMDB environment: opened as a state, it knows the file.
  const std::string copy = m.root() + "/opened";
  fs::create_directory(copy);
  fs::copy_file(SnapDir(m.hdd()) + "/" + now.back(), copy + "/data.mdb");
  std::unique_ptr<tierfs::Store> store;
  tierfs::Status st = tierfs::Store::Open(copy, &store);
  ASSERT_TRUE(st.ok()) << st.message();
  tierfs::Inode n;
  st = store->Lookup(tierfs::kRootIno, "before-snapshot", &n);
  EXPECT_TRUE(st.ok()) << st.message();
  EXPECT_TRUE(m.Unmount());
}

}  // namespace
}  // namespace tierfs_test

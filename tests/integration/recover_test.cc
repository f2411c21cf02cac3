// The archive survives the loss of the SSD tier and of the state: snapshots
// of LMDB on the HDD tier (fs/snapshot.h), the identity on each HDD object
// (tiering/identity.h) and `tierfs recover` (fs/recover.h), on real mounts.
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <xxhash.h>

#include "meta/store.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/tierctl_util.h"

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

std::string Xattr(const std::string& path, const char* name) {
  char buf[4096];
  const ssize_t n = getxattr(path.c_str(), name, buf, sizeof buf);
  return n < 0 ? "" : std::string(buf, size_t(n));
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
  // A new snapshot is renamed in before the oldest goes, so for a moment
  // there are three: pruned means back to two.
  std::vector<std::string> now;
  EXPECT_TRUE(WaitFor(
      [&] {
        now = Snapshots(m.hdd());
        return now.size() == 2;
      },
      10))
      << "not pruned to --snapshot-keep 2: " << now.size();
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

// A snapshot that cannot be written is an error tierctl status shows; the
// mount goes on serving.
TEST(RecoverTest, AFailedSnapshotIsARecentErrorAndNotFatal) {
  MountOptions opts;
  opts.extra_args = {"--namespace", "snapfail", "--snapshot-interval", "1"};
  TierfsMount m(opts);
  // A file where the snapshot directory belongs.
  fs::create_directories(m.hdd() + "/ns/snapfail");
  ASSERT_EQ(0, WriteFile(m.hdd() + "/ns/snapfail/meta", "not a directory"));
  ASSERT_TRUE(m.Mount());
  std::string status;
  const bool shown = WaitFor(
      [&] {
        status = Tierctl({"status", m.mnt()}).out;
        return status.find("snapshot of the state to") != std::string::npos;
      },
      20);
  EXPECT_TRUE(shown) << status;
  EXPECT_EQ(0, WriteFile(m.path("still-serving"), "yes"));
  EXPECT_TRUE(m.Unmount());
}

TEST(RecoverTest, FromTheHddTierAlone) {
  TierfsMount m;
  ASSERT_TRUE(m.Mount());
  // The snapshot taken when the policy is loaded at start.
  ASSERT_TRUE(WaitFor([&] { return Snapshots(m.hdd()).size() == 1; }, 20)) << m.Log();
  const std::string a = Pattern(300000, 1), b = Pattern(70000, 2), c = Pattern(123457, 3),
                    s = Pattern(5000, 4);
  ASSERT_EQ(0, mkdir(m.path("d").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(m.path("d/a"), a));
  ASSERT_EQ(0, WriteFile(m.path("d/b"), b));
  ASSERT_EQ(0, WriteFile(m.path("ssd-only"), s));
  ASSERT_EQ(0, WriteFile(m.path("empty"), ""));
  ASSERT_EQ(0, SetTierOfClosed(m.path("d/a"), "hdd"));
  const std::string a_object = ObjectPathOn(m.hdd(), Ino(m.path("d/a")));
  EXPECT_NE(std::string::npos, Xattr(a_object, "user.tierfs.identity").find("\"path\":\"/d/a\""))
      << "identity of " << a_object << ": " << Xattr(a_object, "user.tierfs.identity");
  // Renamed after its move: the identity keeps the old name, the snapshot the new one.
  ASSERT_EQ(0, rename(m.path("d/a").c_str(), m.path("d/a-renamed").c_str()));
  // Being written when the snapshot is taken: its size there is 0, and
  // its bytes are on the SSD tier, to be reported lost with it (before,
  // recover made it an empty file and reported nothing).
  const int writing = open(m.path("writing").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(writing, 0);
  ASSERT_EQ(0, PwriteAll(writing, s.data(), s.size(), 0));
  // A policy reload takes a snapshot: it knows a on HDD, b on SSD.
  ASSERT_EQ(0, kill(m.pid(), SIGHUP));
  ASSERT_TRUE(WaitFor([&] { return Snapshots(m.hdd()).size() == 2; }, 20)) << m.Log();
  // After the snapshot: a, on HDD, is made private (its identity says so
  // now, the snapshot does not); b moves, c is made and moves (the snapshot
  // knows neither there).
  ASSERT_EQ(0, chmod(m.path("d/a-renamed").c_str(), 0600));
  ASSERT_EQ(0, SetTierOfClosed(m.path("d/b"), "hdd"));
  ASSERT_EQ(0, mkdir(m.path("later").c_str(), 0750));
  ASSERT_EQ(0, WriteFile(m.path("later/c"), c, 0600));
  // Its ACL travels in its identity (recreated with it).
  ASSERT_EQ(0, RunCommand({"setfacl", "-m", "u:23458:---", m.path("later/c")}, 10).exit_code);
  ASSERT_EQ(0, SetTierOfClosed(m.path("later/c"), "hdd"));
  // The SSD dies: no clean unmount (which would take one more snapshot).
  m.Kill9();
  close(writing);

  // The SSD tier and the state (inside it) are gone; an empty SSD replaces them.
  fs::remove_all(m.ssd());
  fs::create_directory(m.ssd());
  const std::string state = m.root() + "/new-state";
  CommandResult r =
      RunTierfs({"recover", "--hdd", m.hdd(), "--state", state, "--ssd", m.ssd()}, 60);
  EXPECT_EQ(0, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.out.find("\"status\":\"lost\",\"path\":\"/ssd-only\"")) << r.out;
  EXPECT_NE(std::string::npos, r.out.find("\"status\":\"placed\",\"path\":\"/d/b\"")) << r.out;
  EXPECT_NE(std::string::npos, r.out.find("\"status\":\"recreated\",\"path\":\"/later/c\""))
      << r.out;
  EXPECT_NE(std::string::npos, r.out.find("\"status\":\"lost\",\"path\":\"/writing\"")) << r.out;
  EXPECT_NE(std::string::npos, r.out.find("\"kept\":1,\"placed\":1,\"recreated\":1,\"lost\":2"))
      << r.out;

  {
    // The identities' checksums, which vouch for the objects as moved.
    std::unique_ptr<tierfs::Store> store;
    tierfs::Status st = tierfs::Store::Open(state, &store);
    ASSERT_TRUE(st.ok()) << st.message();
    tierfs::Inode d, n;
    ASSERT_TRUE(store->Lookup(tierfs::kRootIno, "d", &d).ok());
    ASSERT_TRUE(store->Lookup(d.ino, "b", &n).ok());
    EXPECT_EQ(XXH3_64bits(b.data(), b.size()), n.checksum);
    EXPECT_EQ(tierfs::TierId::kHdd, n.tier);
    ASSERT_TRUE(store->Lookup(tierfs::kRootIno, "later", &d).ok());
    ASSERT_TRUE(store->Lookup(d.ino, "c", &n).ok());
    EXPECT_EQ(XXH3_64bits(c.data(), c.size()), n.checksum);
  }
  m.options().state_dir = state;
  ASSERT_TRUE(m.Mount());
  std::string got;
  EXPECT_EQ(0, ReadFile(m.path("d/a-renamed"), &got));
  EXPECT_TRUE(got == a) << "d/a-renamed differs";
  EXPECT_EQ(0, ReadFile(m.path("d/b"), &got));
  EXPECT_TRUE(got == b) << "d/b differs";
  EXPECT_EQ(0, ReadFile(m.path("later/c"), &got));
  EXPECT_TRUE(got == c) << "later/c differs";
  struct stat sb;
  ASSERT_EQ(0, stat(m.path("later/c").c_str(), &sb));
  EXPECT_EQ(mode_t(S_IFREG | 0600), sb.st_mode);
  EXPECT_EQ(off_t(c.size()), sb.st_size);
  ASSERT_EQ(0, stat(m.path("d/a-renamed").c_str(), &sb));
  EXPECT_EQ(mode_t(S_IFREG | 0600), sb.st_mode) << "the chmod after the snapshot is lost";
  EXPECT_EQ("hdd", GetTier(m.path("later/c")));
  const CommandResult acl = RunCommand({"getfacl", "-cn", m.path("later/c")}, 10);
  EXPECT_NE(std::string::npos, acl.out.find("user:23458:---")) << acl.out << acl.err;
  EXPECT_EQ(ENOENT, Err(stat(m.path("ssd-only").c_str(), &sb)));
  EXPECT_EQ(0, ReadFile(m.path("empty"), &got));
  EXPECT_EQ("", got);
  // The rebuilt mount writes like any other.
  EXPECT_EQ(0, WriteFile(m.path("after"), "new"));
  const std::string b_object = ObjectPathOn(m.hdd(), Ino(m.path("d/b")));
  EXPECT_TRUE(m.Unmount());

  // An archived file whose object is gone is missing: recovery is not complete.
  ASSERT_EQ(0, unlink(b_object.c_str()));
  r = RunTierfs({"recover", "--hdd", m.hdd(), "--state", m.root() + "/state3"}, 60);
  EXPECT_EQ(1, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.out.find("\"status\":\"missing\",\"path\":\"/d/b\"")) << r.out;
}

// Extended attributes set or removed after the newest snapshot on a file
// of the HDD tier travel in its identity (fs/archived_access.h), and
// recover prefers them to the snapshot's as it does its mode: before,
// user.note was lost and user.old came back from the snapshot.
TEST(RecoverTest, XattrsChangedAfterTheSnapshotSurvive) {
  TierfsMount m;
  ASSERT_TRUE(m.Mount());
  ASSERT_TRUE(WaitFor([&] { return Snapshots(m.hdd()).size() == 1; }, 20)) << m.Log();
  const std::string x = Pattern(40000, 5), y = Pattern(30000, 6);
  ASSERT_EQ(0, WriteFile(m.path("x"), x));
  ASSERT_EQ(0, setxattr(m.path("x").c_str(), "user.keep", "1", 1, 0));
  ASSERT_EQ(0, setxattr(m.path("x").c_str(), "user.old", "gone", 4, 0));
  const CommandResult moved = Tierctl({"move", "--to", "hdd", m.path("x")});
  ASSERT_EQ(0, moved.exit_code) << moved.out << moved.err;
  ASSERT_EQ("hdd", GetTier(m.path("x")));
  // A policy reload takes a snapshot: it knows x with user.keep and user.old.
  ASSERT_EQ(0, kill(m.pid(), SIGHUP));
  ASSERT_TRUE(WaitFor([&] { return Snapshots(m.hdd()).size() == 2; }, 20)) << m.Log();
  ASSERT_EQ(0,
            RunCommand({"setfattr", "-n", "user.note", "-v", "late", m.path("x")}, 10).exit_code);
  ASSERT_EQ(0, RunCommand({"setfattr", "-x", "user.old", m.path("x")}, 10).exit_code);
  // y is made and archived after the snapshot: recreated from its identity alone.
  ASSERT_EQ(0, WriteFile(m.path("y"), y));
  ASSERT_EQ(0, setxattr(m.path("y").c_str(), "user.run_id", "r-42", 4, 0));
  ASSERT_EQ(0, SetTierOfClosed(m.path("y"), "hdd"));
  m.Kill9();

  fs::remove_all(m.ssd());
  fs::create_directory(m.ssd());
  const std::string state = m.root() + "/new-state";
  CommandResult r =
      RunTierfs({"recover", "--hdd", m.hdd(), "--state", state, "--ssd", m.ssd()}, 60);
  EXPECT_EQ(0, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.out.find("\"status\":\"recreated\",\"path\":\"/y\"")) << r.out;
  EXPECT_NE(std::string::npos, r.out.find("\"kept\":1,\"placed\":0,\"recreated\":1")) << r.out;
  m.options().state_dir = state;
  ASSERT_TRUE(m.Mount());
  EXPECT_EQ("late", Xattr(m.path("x"), "user.note"));
  EXPECT_EQ("1", Xattr(m.path("x"), "user.keep"));
  char buf[64];
  EXPECT_EQ(ENODATA, Err(getxattr(m.path("x").c_str(), "user.old", buf, sizeof buf)))
      << "user.old, removed after the snapshot, is back";
  EXPECT_EQ("r-42", Xattr(m.path("y"), "user.run_id"));
  std::string got;
  EXPECT_EQ(0, ReadFile(m.path("x"), &got));
  EXPECT_TRUE(got == x) << "x differs";
  EXPECT_TRUE(m.Unmount());
}

// A snapshot records the attributes a file's object had when it was taken
// (meta/inode.h, object_attrs_recorded). An archived file changed since (a
// utimensat here: same size and bytes, so nothing else in its record is
// stale) must be stat'ed from its object after a recovery, not from the
// snapshot's record of it: recover forgets every such record (before, stat
// would have kept the snapshot's mtime while the object had the new one).
TEST(RecoverTest, ASnapshotsRecordOfAnObjectIsNotTrustedAfterARecovery) {
  TierfsMount m;
  ASSERT_TRUE(m.Mount());
  ASSERT_TRUE(WaitFor([&] { return Snapshots(m.hdd()).size() == 1; }, 20)) << m.Log();
  const std::string data = Pattern(200000, 7);
  ASSERT_EQ(0, WriteFile(m.path("kept"), data));
  ASSERT_EQ(0, SetTierOfClosed(m.path("kept"), "hdd"));
  ASSERT_EQ(0, kill(m.pid(), SIGHUP));  // the snapshot: kept on HDD, attributes recorded
  ASSERT_TRUE(WaitFor([&] { return Snapshots(m.hdd()).size() == 2; }, 20)) << m.Log();
  // After the snapshot, the object's mtime changes (tierfs sets it on both).
  const timespec times[2] = {{0, UTIME_OMIT}, {978307200, 0}};  // 2001-01-01
  ASSERT_EQ(0, utimensat(AT_FDCWD, m.path("kept").c_str(), times, 0));
  const std::string object = ObjectPathOn(m.hdd(), Ino(m.path("kept")));
  struct stat obj;
  ASSERT_EQ(0, stat(object.c_str(), &obj));
  ASSERT_EQ(978307200, obj.st_mtim.tv_sec);
  m.Kill9();

  fs::remove_all(m.ssd());
  fs::create_directory(m.ssd());
  const std::string state = m.root() + "/new-state";
  const CommandResult r = RunTierfs({"recover", "--hdd", m.hdd(), "--state", state}, 60);
  ASSERT_EQ(0, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.out.find("\"kept\":1,")) << r.out;
  m.options().state_dir = state;
  ASSERT_TRUE(m.Mount());
  struct stat sb;
  ASSERT_EQ(0, stat(m.path("kept").c_str(), &sb));
  EXPECT_EQ(978307200, sb.st_mtim.tv_sec) << "stat answered from the snapshot's record";
  EXPECT_EQ(obj.st_blocks, sb.st_blocks);
  std::string got;
  EXPECT_EQ(0, ReadFile(m.path("kept"), &got));
  EXPECT_TRUE(got == data) << "kept differs";
  EXPECT_TRUE(m.Unmount());
}

// Writes file `name` into the mount and moves it to the HDD tier: its bytes.
std::string ArchiveNew(TierfsMount& m, const std::string& name, uint64_t seed) {
  const std::string data = Pattern(100000 + seed * 1000, seed);
  EXPECT_EQ(0, WriteFile(m.path(name), data));
  EXPECT_EQ(0, SetTierOfClosed(m.path(name), "hdd")) << m.Log();
  return data;
}

// A node whose daemon died comes back after the job restarted on another
// node from the shared HDD tier (`tierfs recover`). Its state and SSD tier
// survived, but the recovered state owns the namespace now: the old state
// is refused, naming the takeover, rather than writing objects under names
// the new state also uses (before, it mounted beside the new one, and its
// archived file read as EIO, its object renumbered by the recovery).
TEST(RecoverTest, TheStateARecoveryReplacedMayNotMountAgain) {
  TierfsMount m;
  ASSERT_TRUE(m.Mount());
  const std::string a = ArchiveNew(m, "a", 5);
  m.Kill9();

  // The other node: its own (empty) SSD tier and a new state.
  const std::string ssd2 = m.root() + "/ssd2", state2 = m.root() + "/state2";
  ASSERT_EQ(0, mkdir(ssd2.c_str(), 0700));
  CommandResult r = RunTierfs({"recover", "--hdd", m.hdd(), "--state", state2, "--ssd", ssd2}, 60);
  ASSERT_EQ(0, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.out.find("\"previous_owner\":\"")) << r.out;
  EXPECT_EQ(std::string::npos, r.out.find("\"previous_owner\":\"\"")) << r.out;

  // The first node boots again with its old state.
  r = RunTierfs({"--ssd", m.ssd(), "--hdd", m.hdd(), "-f", m.mnt()}, 20);
  EXPECT_NE(0, r.exit_code) << r.out << r.err;
  EXPECT_FALSE(IsMountPoint(m.mnt()));
  EXPECT_NE(std::string::npos, r.err.find("taken over by tierfs recover")) << r.err;
  EXPECT_NE(std::string::npos, r.err.find("is superseded")) << r.err;

  // The new state mounts, with the SSD tier it was recovered for (moved to
  // where the fixture mounts its SSD tier from).
  fs::remove_all(m.ssd());
  ASSERT_EQ(0, rename(ssd2.c_str(), m.ssd().c_str()));
  m.options().state_dir = state2;
  ASSERT_TRUE(m.Mount());
  std::string got;
  EXPECT_EQ(0, ReadFile(m.path("a"), &got));
  EXPECT_TRUE(got == a) << "a differs";
  // The audit journal records the takeover.
  EXPECT_NE(std::string::npos,
            SlurpFile(state2 + "/audit.jsonl").find("namespace taken over from"));
}

// A namespace that is mounted is not lost: recover refuses it, touching
// nothing, while the mount holds the namespace's lock (which a mount on
// another node sharing the tier holds just the same), and proceeds once it
// is unmounted.
TEST(RecoverTest, ANamespaceStillMountedIsNotRecovered) {
  TierfsMount m;
  ASSERT_TRUE(m.Mount());
  const std::string a = ArchiveNew(m, "a", 6);
  const std::string object = ObjectPathOn(m.hdd(), Ino(m.path("a")));
  const std::string state2 = m.root() + "/state2";
  CommandResult r = RunTierfs({"recover", "--hdd", m.hdd(), "--state", state2}, 60);
  EXPECT_EQ(1, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.err.find("is in use by tierfs pid " + std::to_string(m.pid())))
      << r.err;
  EXPECT_NE(std::string::npos, r.err.find("mount " + m.mnt())) << r.err;
  // A mount of another state over the same tiers, refused, leaves the
  // lock naming the mount that holds it (it once wrote itself in there).
  const std::string other_mnt = m.root() + "/mnt-other";
  ASSERT_EQ(0, mkdir(other_mnt.c_str(), 0755));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(m.hdd() + "/ns"))
    names.push_back(e.path().filename());
  ASSERT_EQ(1u, names.size());
  r = RunTierfs({"--ssd", m.ssd(), "--hdd", m.hdd(), "--state", m.root() + "/state-other",
                 "--namespace", names[0], "-f", other_mnt});
  EXPECT_NE(0, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.err.find("belongs to")) << r.err;
  r = RunTierfs({"recover", "--hdd", m.hdd(), "--state", state2}, 60);
  EXPECT_EQ(1, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.err.find("is in use by tierfs pid " + std::to_string(m.pid())))
      << r.err;
  struct stat sb;
  EXPECT_NE(0, stat(state2.c_str(), &sb)) << "recover made a state";
  EXPECT_EQ(0, stat(object.c_str(), &sb)) << object;
  std::string got;
  EXPECT_EQ(0, ReadFile(m.path("a"), &got));
  EXPECT_TRUE(got == a);

  ASSERT_TRUE(m.Unmount());
  r = RunTierfs({"recover", "--hdd", m.hdd(), "--state", state2}, 60);
  EXPECT_EQ(0, r.exit_code) << r.out << r.err;
}

// A node cut off from the shared tier long enough for its filesystem to
// drop its lock may find, once back, that a recover elsewhere took its
// namespace over (the owner file names another state). From the next
// health check on it writes nothing more there: no moves, no reads of
// archived files through it, no snapshots (a later recover would take its
// stale one for the newest), no journal head. Its SSD files keep working.
// Before, it went on moving files into the namespace the new state owns.
TEST(RecoverTest, AMountWhoseNamespaceWasTakenOverStopsWritingThere) {
  TierfsMount m;
  ASSERT_TRUE(m.Mount());
  ASSERT_TRUE(WaitFor([&] { return Snapshots(m.hdd()).size() == 1; }, 20)) << m.Log();
  ArchiveNew(m, "a", 7);
  const std::string b = Pattern(50000, 8);
  ASSERT_EQ(0, WriteFile(m.path("b"), b));
  const std::string ns_dir = fs::path(SnapDir(m.hdd())).parent_path();
  const std::string head = SlurpFile(ns_dir + "/audit.head");
  ASSERT_FALSE(head.empty());
  // What a recover on another node writes (fs/namespace_setup.cc).
  {
    const std::string tmp = ns_dir + "/owner.tmp";
    ASSERT_EQ(0, WriteFile(tmp,
                           "0123456789abcdef0123456789abcdef\ntaken over by tierfs recover "
                           "from state x on node-b at 2026-12-07T00:00:00Z\n"));
    ASSERT_EQ(0, rename(tmp.c_str(), (ns_dir + "/owner").c_str()));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the owner is read once a second
  EXPECT_EQ(EIO, SetTierOfClosed(m.path("b"), "hdd"));
  std::string got;
  EXPECT_EQ(EIO, ReadFile(m.path("a"), &got));
  EXPECT_EQ(0, ReadFile(m.path("b"), &got));
  EXPECT_TRUE(got == b);
  EXPECT_FALSE(ObjectOn(m.hdd(), Ino(m.path("b"))));
  ASSERT_EQ(0, kill(m.pid(), SIGHUP));  // a reload takes a snapshot, or would
  EXPECT_TRUE(
      WaitFor([&] { return m.Log().find("snapshot of the state to") != std::string::npos; }, 10))
      << m.Log();
  EXPECT_TRUE(m.Unmount());  // and so would the unmount
  EXPECT_EQ(1u, Snapshots(m.hdd()).size()) << m.Log();
  EXPECT_EQ(head, SlurpFile(ns_dir + "/audit.head"));
  EXPECT_NE(std::string::npos,
            m.Log().find("now belongs to state 0123456789abcdef0123456789abcdef, taken over by "
                         "tierfs recover from state x on node-b"))
      << m.Log();
}

// Flips one byte of the file at `path` (an object on the HDD tier).
void FlipByte(const std::string& path, off_t at) {
  const int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << path;
  char c = 0;
  ASSERT_EQ(1, pread(fd, &c, 1, at));
  c = char(c ^ 0x5a);
  ASSERT_EQ(1, pwrite(fd, &c, 1, at));
  close(fd);
}

// The whole SSD tier and the state are lost; an empty SSD replaces them.
CommandResult LoseSsdAndRecover(TierfsMount& m, const std::string& state) {
  fs::remove_all(m.ssd());
  fs::create_directory(m.ssd());
  return RunTierfs({"recover", "--hdd", m.hdd(), "--state", state, "--ssd", m.ssd()}, 60);
}

// The journal's copy on the HDD tier replays a deletion made after the
// snapshot, continues its chain in the new state, and a recreated file
// gets block sums: its read is verified.
TEST(RecoverTest, TheJournalReplaysDeletionsAndTheChainContinues) {
  TierfsMount m;
  ASSERT_TRUE(m.Mount());
  ASSERT_TRUE(WaitFor([&] { return Snapshots(m.hdd()).size() == 1; }, 20)) << m.Log();
  const std::string kept = Pattern(90000, 5), later = Pattern(1500000, 6);
  ASSERT_EQ(0, WriteFile(m.path("kept"), kept));
  ASSERT_EQ(0, SetTierOfClosed(m.path("kept"), "hdd"));
  CommandResult r = Tierctl({"pin", "--for", "1d", m.path("kept")});
  ASSERT_EQ(0, r.exit_code) << r.out << r.err;
  ASSERT_EQ(0, kill(m.pid(), SIGHUP));  // a snapshot that places "kept" on HDD
  ASSERT_TRUE(WaitFor([&] { return Snapshots(m.hdd()).size() == 2; }, 20)) << m.Log();
  // After the snapshot: the kept file is deleted (journaled), another archived.
  ASSERT_EQ(0, unlink(m.path("kept").c_str()));
  ASSERT_EQ(0, WriteFile(m.path("later"), later));
  ASSERT_EQ(0, SetTierOfClosed(m.path("later"), "hdd"));
  m.Kill9();

  const std::string state = m.root() + "/new-state";
  r = LoseSsdAndRecover(m, state);
  EXPECT_EQ(0, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.out.find("\"status\":\"deleted\",\"path\":\"/kept\"")) << r.out;
  EXPECT_NE(std::string::npos, r.out.find("\"rule\":\"manual\",\"uid\":0")) << r.out;
  EXPECT_NE(std::string::npos, r.out.find("\"deleted\":1,\"missing\":0")) << r.out;
  EXPECT_NE(std::string::npos, r.out.find("\"status\":\"recreated\",\"path\":\"/later\"")) << r.out;
  EXPECT_NE(std::string::npos, r.out.find("\"complete\":true")) << r.out;

  // The new state's journal is the old chain plus the recover record, and
  // verifies against the head on the HDD tier.
  const std::string journal = state + "/audit.jsonl";
  const std::string text = SlurpFile(journal);
  EXPECT_NE(std::string::npos, text.find("\"action\":\"delete\",\"rule\":\"manual\",\"uid\":0"))
      << text;
  const size_t last = text.rfind('\n', text.size() - 2);
  EXPECT_NE(std::string::npos, text.find("\"action\":\"recover\"", last)) << text;
  const std::string ns_dir = fs::path(SnapDir(m.hdd())).parent_path();
  r = Tierctl({"audit", "verify", "--journal", journal, "--head", ns_dir + "/audit.head"});
  EXPECT_EQ(0, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.out.find("chain intact, head matches")) << r.out;
  EXPECT_TRUE(text == SlurpFile(ns_dir + "/audit/audit.jsonl")) << "the HDD copy differs";

  m.options().state_dir = state;
  ASSERT_TRUE(m.Mount());
  struct stat sb;
  EXPECT_EQ(ENOENT, Err(stat(m.path("kept").c_str(), &sb)));
  // Never read before: the flipped byte reaches the daemon, which checks it.
  FlipByte(ObjectPathOn(m.hdd(), Ino(m.path("later"))), 1200000);
  std::string got;
  EXPECT_EQ(EIO, ReadFile(m.path("later"), &got));
  EXPECT_TRUE(m.Unmount());
}

// An archived object whose bytes do not match its identity's checksum is
// recovered as corrupt: recovery is incomplete and the file reads EIO.
TEST(RecoverTest, AnObjectThatDoesNotMatchItsIdentityIsCorrupt) {
  TierfsMount m;
  ASSERT_TRUE(m.Mount());
  ASSERT_TRUE(WaitFor([&] { return Snapshots(m.hdd()).size() == 1; }, 20)) << m.Log();
  ASSERT_EQ(0, WriteFile(m.path("bad"), Pattern(70000, 7)));
  ASSERT_EQ(0, WriteFile(m.path("good"), Pattern(70000, 8)));
  for (const char* name : {"bad", "good"}) ASSERT_EQ(0, SetTierOfClosed(m.path(name), "hdd"));
  const std::string object = ObjectPathOn(m.hdd(), Ino(m.path("bad")));
  m.Kill9();
  FlipByte(object, 100);

  const std::string state = m.root() + "/new-state";
  CommandResult r = LoseSsdAndRecover(m, state);
  EXPECT_EQ(1, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.out.find("\"status\":\"corrupt\",\"path\":\"/bad\"")) << r.out;
  EXPECT_NE(std::string::npos, r.out.find("\"status\":\"recreated\",\"path\":\"/good\"")) << r.out;
  EXPECT_NE(std::string::npos, r.out.find("\"corrupt\":1,\"complete\":false")) << r.out;

  m.options().state_dir = state;
  ASSERT_TRUE(m.Mount());
  std::string got;
  EXPECT_EQ(EIO, ReadFile(m.path("bad"), &got));
  EXPECT_EQ(0, ReadFile(m.path("good"), &got));
  EXPECT_TRUE(got == Pattern(70000, 8)) << "good differs";
  EXPECT_TRUE(m.Unmount());
}

// Files written on the HDD tier itself have no move to write their
// identity: one created while the SSD tier was full, and one pinned there
// and appended to after its move. Their identities are written once their
// sums are recorded, so a recovery names them and vouches for their bytes.
// Before, the first was "unplaced" (no identity: recovery incomplete) and
// the second "corrupt" (its identity described the bytes before the
// append), and both files were lost to the namespace.
TEST(RecoverTest, FilesWrittenOnTheHddTierAreRecovered) {
  MountOptions o;
  o.ssd_tmpfs_mb = 32;
  TierfsMount m(o);
  m.options().state_dir = m.root() + "/state";  // not on the SSD tier, which fills up
  ASSERT_TRUE(m.Mount());
  ASSERT_TRUE(WaitFor([&] { return Snapshots(m.hdd()).size() == 1; }, 20)) << m.Log();
  const std::string first = Pattern(70000, 11), appended = Pattern(30000, 12);
  ASSERT_EQ(0, WriteFile(m.path("inplace"), first));
  CommandResult r = Tierctl({"pin", "--tier", "hdd", m.path("inplace")});
  ASSERT_EQ(0, r.exit_code) << r.out << r.err;
  ASSERT_EQ("hdd", GetTier(m.path("inplace")));
  {
    const int fd = open(m.path("inplace").c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ssize_t(appended.size()), write(fd, appended.data(), appended.size()));
    close(fd);
  }
  ASSERT_EQ("hdd", GetTier(m.path("inplace"))) << "written in place";
  // The SSD tier full: a new file is made on the HDD tier.
  {
    const int fd = open((m.ssd() + "/junk").c_str(), O_WRONLY | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    const std::string block(1 << 20, 'j');
    while (write(fd, block.data(), block.size()) > 0) {
    }
    close(fd);
  }
  const std::string created = Pattern(50000, 13);
  ASSERT_EQ(0, WriteFile(m.path("created"), created));
  ASSERT_EQ("hdd", GetTier(m.path("created")));
  // Their sums recorded (the hasher runs after the close), and so their
  // identities: the objects say so in their xattr.
  for (const char* name : {"inplace", "created"}) {
    const std::string object = ObjectPathOn(m.hdd(), Ino(m.path(name)));
    const uint64_t size = std::string(name) == "inplace" ? 100000 : 50000;
    EXPECT_TRUE(WaitFor(
        [&] {
          char buf[4096];
          const ssize_t n = getxattr(object.c_str(), "user.tierfs.identity", buf, sizeof buf);
          return n > 0 && std::string(buf, size_t(n)).find("\"size\":" + std::to_string(size)) !=
                              std::string::npos;
        },
        20))
        << name;
  }
  m.Kill9();

  // The SSD tier lost (a tmpfs here: emptied rather than removed).
  for (const auto& e : fs::directory_iterator(m.ssd())) fs::remove_all(e.path());
  const std::string state = m.root() + "/new-state";
  r = RunTierfs({"recover", "--hdd", m.hdd(), "--state", state, "--ssd", m.ssd()}, 60);
  EXPECT_EQ(0, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.out.find("\"path\":\"/created\"")) << r.out;
  EXPECT_NE(std::string::npos, r.out.find("\"complete\":true")) << r.out;
  m.options().state_dir = state;
  ASSERT_TRUE(m.Mount());
  std::string got;
  EXPECT_EQ(0, ReadFile(m.path("inplace"), &got));
  EXPECT_TRUE(got == first + appended) << "inplace differs";
  EXPECT_EQ(0, ReadFile(m.path("created"), &got));
  EXPECT_TRUE(got == created) << "created differs";
  EXPECT_TRUE(m.Unmount());
}

}  // namespace
}  // namespace tierfs_test

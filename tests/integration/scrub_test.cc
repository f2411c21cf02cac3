// The background scrub of the HDD tier (fs/scrub.h): a byte flipped in an
// HDD object is found by the scrub without any read, and then reported
// everywhere (audit, metrics, tierctl status, log), every read is EIO and
// tierctl verify agrees; a clean tier's pass counts every file; a reload
// changes the schedule; an unmount never waits for a throttled pass; a
// file open for writing is skipped, not read, until it is closed.
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "meta/store.h"
#include "tests/integration/tier_fault_util.h"
#include "tests/integration/tierctl_util.h"

namespace tierfs_test {
namespace {

using nlohmann::json;

constexpr size_t kMiB = 1 << 20;

std::string PolicyPath() {
  return TmpPolicyPath("scrub-test");
}

// A mount whose policy is `policy` (a [scrub] section), with --metrics.
class ScrubTest : public MountTest {
 protected:
  // `tier_tmpfs_mb`: when non-zero, each tier a tmpfs of that size.
  explicit ScrubTest(const std::string& policy = "[scrub]\ninterval = \"1s\"\n",
                     int tier_tmpfs_mb = 0)
      : MountTest(Options(policy, tier_tmpfs_mb)) {}
  ~ScrubTest() override { unlink(PolicyPath().c_str()); }
  static MountOptions Options(const std::string& policy, int tier_tmpfs_mb) {
    std::ofstream(PolicyPath()) << policy;
    port_ = FreePort();
    MountOptions o;
    o.ssd_tmpfs_mb = o.hdd_tmpfs_mb = tier_tmpfs_mb;
    o.extra_args = {"--policy", PolicyPath(), "--metrics", "127.0.0.1:" + std::to_string(port_)};
    return o;
  }

  // Writes `rel` and moves it to the HDD tier; waits until its block sums
  // are recorded (the scrub checks nothing else).
  void MakeHddResident(const std::string& rel, const std::string& data) {
    ASSERT_EQ(0, WriteFile(P(rel), data));
    ASSERT_EQ(0, SetTierOfClosed(P(rel), "hdd"));
    ASSERT_EQ("hdd", GetTier(P(rel)));
    ASSERT_TRUE(WaitFor([&] { return HasSums(rel); }, 10)) << rel << ": no block sums recorded";
  }
  bool HasSums(const std::string& rel) {
    std::unique_ptr<tierfs::Store> store;
    if (!tierfs::Store::Open(fs_.ssd() + "/state", &store).ok()) return false;
    std::vector<uint64_t> sums;
    return store->GetBlockSums(Ino(P(rel)), &sums).ok() && !sums.empty();
  }
  // The audit journal's records with `action`, oldest first.
  std::vector<json> Records(const std::string& action) {
    std::vector<json> out;
    std::istringstream in(SlurpFile(fs_.ssd() + "/state/audit.jsonl"));
    for (std::string line; std::getline(in, line);) {
      const json j = json::parse(line, nullptr, false);
      if (j.is_object() && j.value("action", "") == action) out.push_back(j);
    }
    return out;
  }
  // Waits (30 s at most) for a scrub pass record whose detail has `what`
  // ("files=2 ") and `also`; the newest such record, or null.
  json PassWith(const std::string& what, const std::string& also = "") {
    json found;
    WaitFor(
        [&] {
          for (const json& r : Records("scrub")) {
            const std::string detail = r.value("detail", "");
            if (detail.find(what) != std::string::npos && detail.find(also) != std::string::npos)
              found = r;
          }
          return !found.is_null();
        },
        30);
    return found;
  }
  std::string Scrape() {
    return RunCommand({"curl", "-s", "http://127.0.0.1:" + std::to_string(port_) + "/metrics"}, 10)
        .out;
  }
  // The value of unlabelled `series` in `text`, -1 if absent.
  static double Value(const std::string& text, const std::string& series) {
    const size_t at = text.find("\n" + series + " ");
    return at == std::string::npos ? -1 : strtod(text.c_str() + at + series.size() + 2, nullptr);
  }
  json StatusJson() {
    const CommandResult r = Tierctl({"--json", "status", fs_.mnt()});
    const json j = json::parse(r.out, nullptr, false);
    return j.is_array() && !j.empty() ? j[0] : json();
  }

  static uint16_t port_;
};
uint16_t ScrubTest::port_ = 0;

// The Done-when check of issue 14 for the scrub, on one mount.
TEST_F(ScrubTest, FlippedByteOnHddIsFoundReportedAndEveryReadIsEio) {
  const std::string data = Pattern(3 * kMiB + 555, 41);
  MakeHddResident("f", data);
  MakeHddResident("good", Pattern(kMiB + 1, 42));
  const std::string obj = ObjectPath(fs_.hdd(), Ino(P("f")));
  // Damage block 1 behind tierfs's back; nothing reads the file through
  // the mount before the scrub finds it.
  {
    int fd = open(obj.c_str(), O_RDWR);
    ASSERT_GE(fd, 0) << obj;
    char b = 0;
    ASSERT_EQ(1, pread(fd, &b, 1, off_t(kMiB + 4321)));
    b = char(~b);
    ASSERT_EQ(1, pwrite(fd, &b, 1, off_t(kMiB + 4321)));
    close(fd);
  }

  // The pass reports it: one corrupt record by the scrub, naming the
  // block, and the pass's own record counting it. Both files: a pass that
  // listed the tier before "good" arrived may be the one that found f
  // (under TSan, CI 2026-12-07), and the passes after it count f again.
  const json pass = PassWith("files=2 ", "corrupt=1 ");
  ASSERT_FALSE(pass.is_null()) << SlurpFile(fs_.ssd() + "/state/audit.jsonl") << fs_.Log();
  EXPECT_NE(std::string::npos, pass["detail"].get<std::string>().find("files=2 ")) << pass;
  EXPECT_EQ("corrupt", pass.value("result", "")) << pass;
  std::vector<json> corrupt = Records("corrupt");
  ASSERT_EQ(1u, corrupt.size()) << SlurpFile(fs_.ssd() + "/state/audit.jsonl");
  EXPECT_EQ("scrub", corrupt[0].value("rule", "")) << corrupt[0];
  EXPECT_EQ("/f", corrupt[0].value("path", "")) << corrupt[0];
  EXPECT_EQ(0u, corrupt[0].value("detail", "").rfind("block 1:", 0)) << corrupt[0];
  const std::string log = fs_.Log();
  EXPECT_NE(std::string::npos, log.find("scrub: corrupt data: /f")) << log;
  EXPECT_NE(std::string::npos, log.find(obj)) << log;

  // Metrics.
  const std::string m = Scrape();
  EXPECT_EQ(1, Value(m, "tierfs_scrub_corrupt_files_total")) << m;
  EXPECT_GE(Value(m, "tierfs_scrub_passes_total"), 1) << m;
  EXPECT_GE(Value(m, "tierfs_scrub_read_bytes_total"), double(kMiB)) << m;
  EXPECT_GT(Value(m, "tierfs_scrub_last_pass_timestamp_seconds"), 1.7e9) << m;

  // tierctl status: the last pass and the next.
  const CommandResult status = Tierctl({"status", fs_.mnt()});
  EXPECT_NE(std::string::npos, status.out.find("corrupt files")) << status.out;
  EXPECT_NE(std::string::npos, status.out.find("2 files")) << status.out;
  // (A pass may be under way: passes run every second here.)
  EXPECT_TRUE(status.out.find("next due") != std::string::npos ||
              status.out.find("a pass running since") != std::string::npos)
      << status.out;
  const json s = StatusJson();
  ASSERT_TRUE(s.contains("scrub")) << s;
  EXPECT_EQ(2u, s["scrub"]["last"].value("files", uint64_t(0))) << s;
  EXPECT_EQ(1u, s["scrub"]["last"].value("corrupt", uint64_t(0))) << s;

  // No wrong byte reaches a reader: the open fails.
  std::string got;
  EXPECT_EQ(EIO, ReadFile(P("f"), &got));
  EXPECT_EQ(EIO, OpenErr(P("f"), O_RDONLY));
  ASSERT_EQ(0, ReadFile(P("good"), &got));

  // A later pass counts the marked file without reporting it again.
  const size_t passes = Records("scrub").size();
  ASSERT_TRUE(WaitFor([&] { return Records("scrub").size() > passes; }, 30));
  EXPECT_NE(std::string::npos,
            Records("scrub").back()["detail"].get<std::string>().find("corrupt=1 "));
  EXPECT_EQ(1u, Records("corrupt").size());

  // tierctl verify agrees.
  const CommandResult v = Tierctl({"verify", fs_.mnt()});
  EXPECT_EQ(1, v.exit_code) << v.out << v.err;
  EXPECT_NE(std::string::npos, v.out.find("/f: corrupt at block 1")) << v.out;
  EXPECT_NE(std::string::npos, v.out.find("/good: ok")) << v.out;
  EXPECT_TRUE(fs_.Unmount()) << "daemon exit code " << fs_.last_exit_code();
}

// A clean tier: each pass checks every HDD file with sums once (a second
// name is not a second file; SSD files are not the scrub's), finds
// nothing; a reload that turns the scrub off takes effect.
TEST_F(ScrubTest, CleanTierPassCountsEveryHddFileAndAReloadTurnsItOff) {
  MakeHddResident("a", Pattern(2 * kMiB, 43));
  MakeHddResident("b", Pattern(100, 44));
  ASSERT_EQ(0, link(P("a").c_str(), P("a2").c_str()));
  ASSERT_EQ(0, WriteFile(P("on-ssd"), Pattern(5000, 45)));
  const json pass = PassWith("files=2 bytes=" + std::to_string(2 * kMiB + 100) + " ");
  ASSERT_FALSE(pass.is_null()) << SlurpFile(fs_.ssd() + "/state/audit.jsonl");
  EXPECT_NE(std::string::npos, pass["detail"].get<std::string>().find(" corrupt=0 ")) << pass;
  EXPECT_EQ("ok", pass.value("result", "")) << pass;
  EXPECT_TRUE(Records("corrupt").empty());
  const json before = StatusJson()["scrub"];
  EXPECT_TRUE(before["next"].is_string() || before["running_since"].is_string()) << before;

  std::ofstream(PolicyPath()) << "[scrub]\ninterval = \"off\"\n";
  const CommandResult r = Tierctl({"policy", "reload", fs_.mnt()});
  ASSERT_EQ(0, r.exit_code) << r.out << r.err;
  // The scrub asks for its limits once a second.
  ASSERT_TRUE(WaitFor(
      [&] {
        const json s = StatusJson();
        return s.contains("scrub") && s["scrub"]["next"].is_null() &&
               s["scrub"]["running_since"].is_null();
      },
      10))
      << StatusJson();
  const size_t passes = Records("scrub").size();
  const CommandResult st = Tierctl({"status", fs_.mnt()});
  EXPECT_NE(std::string::npos, st.out.find("off (interval 0")) << st.out;
  // tierctl scrub still runs one on demand.
  const CommandResult now = Tierctl({"scrub", fs_.mnt()});
  EXPECT_EQ(0, now.exit_code) << now.out << now.err;
  EXPECT_TRUE(WaitFor([&] { return Records("scrub").size() > passes; }, 10));
  EXPECT_TRUE(fs_.Unmount()) << "daemon exit code " << fs_.last_exit_code();
}

class ThrottledScrubTest : public ScrubTest {
 protected:
  ThrottledScrubTest() : ScrubTest("[scrub]\ninterval = \"1s\"\nbandwidth = \"1KiB/s\"\n") {}
};

// At 1 KiB/s, the second block of a 3 MiB file is a quarter of an hour
// away: the unmount must not wait for it, and the pass is not recorded; a
// reload that raises the bandwidth must not wait for it either.
TEST_F(ThrottledScrubTest, NeitherUnmountNorAFasterBandwidthWaitsForASlowPass) {
  MakeHddResident("big", Pattern(3 * kMiB, 46));
  // The pass has read the first block of the file (the scrub counts a
  // block as its read starts) and waits for the second.
  ASSERT_TRUE(
      WaitFor([&] { return Value(Scrape(), "tierfs_scrub_read_bytes_total") >= double(kMiB); }, 30))
      << Scrape();
  EXPECT_TRUE(StatusJson()["scrub"]["running_since"].is_string()) << StatusJson();
  const size_t passes = Records("scrub").size();
  EXPECT_TRUE(fs_.Unmount()) << "daemon exit code " << fs_.last_exit_code() << "\n" << fs_.Log();
  EXPECT_EQ(0, fs_.last_exit_code());
  EXPECT_NE(std::string::npos, fs_.Log().find("scrub: pass stopped unfinished")) << fs_.Log();
  EXPECT_EQ(passes, Records("scrub").size());

  // Mounted again, the pass crawls again; a reload raising the bandwidth
  // applies to it at once: it ends in seconds, not in a quarter of an hour.
  ASSERT_TRUE(fs_.Mount());
  ASSERT_TRUE(
      WaitFor([&] { return Value(Scrape(), "tierfs_scrub_read_bytes_total") >= double(kMiB); }, 30))
      << Scrape();
  std::ofstream(PolicyPath()) << "[scrub]\ninterval = \"1h\"\nbandwidth = \"64MiB/s\"\n";
  const CommandResult r = Tierctl({"policy", "reload", fs_.mnt()});
  ASSERT_EQ(0, r.exit_code) << r.out << r.err;
  EXPECT_FALSE(PassWith("files=1 bytes=" + std::to_string(3 * kMiB) + " ").is_null())
      << SlurpFile(fs_.ssd() + "/state/audit.jsonl") << fs_.Log();
}

// Each tier a small tmpfs of its own (16 MiB), and scrub passes only on
// demand.
class HeldOpenScrubTest : public ScrubTest {
 protected:
  HeldOpenScrubTest() : ScrubTest("[scrub]\ninterval = \"off\"\n", 16) {}
  // Fills the SSD tier from outside tierfs (as other data on the same disk
  // would) until less than its reserve (1% of it, at least 4 MiB:
  // fs/space.cc) and more than 1 MiB (room for LMDB's writes) is free.
  void FillSsdNearly() {
    struct statvfs v;
    ASSERT_EQ(0, statvfs(fs_.ssd().c_str(), &v));
    // Never a real disk: the tier's own small tmpfs.
    ASSERT_LE(uint64_t(v.f_blocks) * v.f_frsize, 16 * kMiB) << fs_.ssd() << " is not the tmpfs";
    const uint64_t free_bytes = uint64_t(v.f_bavail) * v.f_frsize;
    ASSERT_GT(free_bytes, 2 * kMiB);
    ASSERT_EQ(0, WriteFile(fs_.ssd() + "/filler", std::string(free_bytes - 2 * kMiB, 'f'), 0600));
    ASSERT_EQ(0, statvfs(fs_.ssd().c_str(), &v));
    const uint64_t left = uint64_t(v.f_bavail) * v.f_frsize;
    ASSERT_LT(left, 4 * kMiB);
    ASSERT_GT(left, kMiB);
  }
  // A pass asked for now (tierctl scrub): its record, or null after 30 s.
  json PassNow() {
    const size_t before = Records("scrub").size();
    const CommandResult r = Tierctl({"scrub", fs_.mnt()});
    EXPECT_EQ(0, r.exit_code) << r.out << r.err;
    if (!WaitFor([&] { return Records("scrub").size() > before; }, 30)) return json();
    return Records("scrub").back();
  }
  // Inode::checksum of `rel` now (0: none recorded, or open for writing).
  uint64_t Checksum(const std::string& rel) {
    std::unique_ptr<tierfs::Store> store;
    tierfs::Inode n;
    if (!tierfs::Store::Open(fs_.ssd() + "/state", &store).ok() ||
        !store->GetInode(Ino(P(rel)), &n).ok())
      return 0;
    return n.checksum;
  }
};

// A file open for writing is the writer's: a pass neither reads it nor
// reports it, whatever its bytes are against the sums recorded before; it
// counts it as skipped. Once the writer closes and the new sums are
// recorded, the next pass checks it. Two guards make it so: the open
// drops the file's sums (nothing to check against) and CheckObject skips a
// file with a writer before reading it (fs/verify_object.cc); the test
// fails only when both are gone (checked by hand). An HDD-resident file
// opened for writing comes back to the SSD tier, except when that tier is
// nearly full (fs/ops_file.cc Open): so it is here.
TEST_F(HeldOpenScrubTest, FileOpenForWritingIsSkippedUntilClosed) {
  const std::string old_data = Pattern(2 * kMiB + 100, 47);
  const std::string new_data = Pattern(2 * kMiB + 100, 48);
  MakeHddResident("held", old_data);
  ASSERT_NO_FATAL_FAILURE(FillSsdNearly());
  int fd = open(P("held").c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << strerror(errno);
  std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) {
    if (*f >= 0) close(*f);
  });
  ASSERT_EQ("hdd", GetTier(P("held"))) << fs_.Log();
  // Held open, as it is and then with new bytes written (a pass that read
  // them would find every block differing from the old sums): each pass
  // skips it without a read.
  for (const bool written : {false, true}) {
    if (written) {
      ASSERT_EQ(0, PwriteAll(fd, new_data.data(), new_data.size(), 0));
      ASSERT_EQ(0, fsync(fd)) << strerror(errno);
    }
    const json held = PassNow();
    ASSERT_FALSE(held.is_null()) << SlurpFile(fs_.ssd() + "/state/audit.jsonl") << fs_.Log();
    EXPECT_NE(std::string::npos,
              held.value("detail", "").find("files=0 bytes=0 corrupt=0 errors=0 skipped=1 "))
        << (written ? "written: " : "unchanged: ") << held;
    EXPECT_EQ("ok", held.value("result", "")) << held;
    EXPECT_EQ(0, Value(Scrape(), "tierfs_scrub_read_bytes_total")) << Scrape();
    EXPECT_TRUE(Records("corrupt").empty()) << SlurpFile(fs_.ssd() + "/state/audit.jsonl");
    ASSERT_EQ("hdd", GetTier(P("held")));
  }

  // Closed: the block hasher records the new bytes' sums, and a pass reads
  // and checks the whole file.
  ASSERT_EQ(0, close(fd));
  fd = -1;
  const uint64_t want = XXH3_64bits(new_data.data(), new_data.size());
  ASSERT_TRUE(WaitFor([&] { return Checksum("held") == want; }, 10)) << fs_.Log();
  ASSERT_EQ("hdd", GetTier(P("held")));
  const json closed = PassNow();
  ASSERT_FALSE(closed.is_null()) << SlurpFile(fs_.ssd() + "/state/audit.jsonl") << fs_.Log();
  EXPECT_NE(std::string::npos, closed.value("detail", "")
                                   .find("files=1 bytes=" + std::to_string(new_data.size()) +
                                         " corrupt=0 errors=0 skipped=0 "))
      << closed;
  EXPECT_EQ("ok", closed.value("result", "")) << closed;
  EXPECT_TRUE(Records("corrupt").empty()) << SlurpFile(fs_.ssd() + "/state/audit.jsonl");
  std::string got;
  ASSERT_EQ(0, ReadFile(P("held"), &got));
  EXPECT_TRUE(got == new_data) << "the file does not read back as written";
}

}  // namespace
}  // namespace tierfs_test

// --metrics on a live mount: scraped with curl while files are written,
// moved and thinned; what the endpoint refuses; hostile clients; a port
// already in use. One mount for all of it; the request count of unaligned writes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

// Connects to the endpoint, sends `bytes` and closes without reading.
void SendRaw(uint16_t port, const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0)
    if (send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) < 0) {
    }
  close(fd);
}

class MetricsTest : public MountTest {
 protected:
  static std::string PolicyPath() { return TmpPolicyPath("metrics-test"); }
  MetricsTest() : MountTest(WithMetrics()) {}
  static MountOptions WithMetrics() {
    port_ = FreePort();
    std::ofstream(PolicyPath()) << "[[rule]]\nname = \"keep\"\npath = \"/keep/**\"\n"
                                   "action = \"pin\"\nfor = \"1d\"\n"
                                   "[[rule]]\nname = \"wipe\"\npath = \"/scratch/**\"\n"
                                   "action = \"thin\"\n"
                                   "[[rule]]\nname = \"cold\"\npath = \"/cold/**\"\n"
                                   "action = \"migrate\"\nto = \"hdd\"\n";
    MountOptions o;
    o.extra_args = {"--policy", PolicyPath(), "--scan-interval",
                    "1",        "--metrics",  "127.0.0.1:" + std::to_string(port_)};
    return o;
  }
  ~MetricsTest() override { unlink(PolicyPath().c_str()); }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  // curl's body, then the status code on the last line.
  CommandResult Curl(const std::string& path, const std::vector<std::string>& more = {}) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}"};
    argv.insert(argv.end(), more.begin(), more.end());
    argv.push_back(Url(path));
    return RunCommand(argv, 20);
  }
  std::string Scrape() {
    CommandResult r = Curl("/metrics");
    EXPECT_EQ(0, r.exit_code) << r.err;
    EXPECT_EQ("200", r.out.substr(r.out.rfind('\n') + 1)) << r.out;
    return r.out;
  }
  // The value of `series` (name and labels exactly as rendered), -1 if absent.
  static double Value(const std::string& text, const std::string& series) {
    const size_t at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return strtod(text.c_str() + at + 1 + series.size() + 1, nullptr);
  }
  double Now(const std::string& series) { return Value(Scrape(), series); }

  static uint16_t port_;
};
uint16_t MetricsTest::port_ = 0;

TEST_F(MetricsTest, ValuesFollowWritesMovesAndThinningAndBadClientsDoNoHarm) {
  std::string t = Scrape();
  EXPECT_NE(std::string::npos, t.find("# TYPE tierfs_fuse_request_duration_seconds histogram"));
  EXPECT_NE(std::string::npos, t.find("\ntierfs_build_info{version=\"")) << t;
  EXPECT_GT(Value(t, "tierfs_tier_capacity_bytes{tier=\"ssd\"}"), 0) << t;
  EXPECT_GT(Value(t, "tierfs_tier_free_bytes{tier=\"hdd\"}"), 0) << t;
  EXPECT_EQ(0, Value(t, "tierfs_tier_files{tier=\"ssd\"}")) << t;
  const double creates = Value(t, "tierfs_fuse_requests_total{op=\"create\"}");
  const double direct_writes = Value(t, "tierfs_opens_total{access=\"write\",mode=\"direct\"}");

  // A write: a file and its bytes on the SSD tier, a create, a direct write open.
  ASSERT_EQ(0, WriteFile(P("a"), Pattern(4096, 1)));
  t = Scrape();
  EXPECT_EQ(1, Value(t, "tierfs_tier_files{tier=\"ssd\"}")) << t;
  // The size is recorded when the kernel's (asynchronous) release arrives.
  EXPECT_TRUE(WaitFor([&] { return Now("tierfs_tier_file_bytes{tier=\"ssd\"}") == 4096; }, 10))
      << Scrape();
  EXPECT_EQ(creates + 1, Value(t, "tierfs_fuse_requests_total{op=\"create\"}")) << t;
  EXPECT_EQ(direct_writes + 1, Value(t, "tierfs_opens_total{access=\"write\",mode=\"direct\"}"))
      << t;
  EXPECT_GE(Value(t, "tierfs_fuse_request_duration_seconds_count{op=\"create\"}"), 1) << t;
  // A manual move.
  ASSERT_EQ(0, SetTierOfClosed(P("a"), "hdd"));
  t = Scrape();
  EXPECT_EQ(1, Value(t, "tierfs_moves_total{direction=\"ssd_to_hdd\",reason=\"manual\",rule=\"\"}"))
      << t;
  EXPECT_EQ(
      4096,
      Value(t, "tierfs_moved_bytes_total{direction=\"ssd_to_hdd\",reason=\"manual\",rule=\"\"}"))
      << t;
  EXPECT_EQ(0, Value(t, "tierfs_tier_files{tier=\"ssd\"}")) << t;
  EXPECT_EQ(1, Value(t, "tierfs_tier_files{tier=\"hdd\"}")) << t;
  EXPECT_EQ(0, Value(t, "tierfs_moves_running")) << t;

  // A failed op is counted with its errno.
  ASSERT_EQ(0, Err(mkdir(P("d").c_str(), 0755)));
  ASSERT_EQ(0, WriteFile(P("d/f"), "f"));
  EXPECT_EQ(ENOTEMPTY, Err(rmdir(P("d").c_str())));
  EXPECT_EQ(1, Now("tierfs_fuse_request_errors_total{op=\"rmdir\",errno=\"ENOTEMPTY\"}"));

  // The policy pins one file, thins another and moves a third.
  ASSERT_EQ(0, Err(mkdir(P("keep").c_str(), 0755)));
  ASSERT_EQ(0, WriteFile(P("keep/k"), "k"));
  ASSERT_EQ(0, Err(mkdir(P("scratch").c_str(), 0755)));
  ASSERT_EQ(0, WriteFile(P("scratch/s"), Pattern(1000, 2)));
  EXPECT_TRUE(
      WaitFor([&] { return Now("tierfs_policy_thinned_files_total{rule=\"wipe\"}") == 1; }, 30))
      << Scrape() << fs_.Log();
  EXPECT_EQ(1000, Now("tierfs_policy_thinned_bytes_total{rule=\"wipe\"}"));
  EXPECT_TRUE(WaitFor([&] { return Now("tierfs_policy_pins_total{rule=\"keep\"}") >= 1; }, 30))
      << Scrape();
  ASSERT_EQ(0, Err(mkdir(P("cold").c_str(), 0755)));
  ASSERT_EQ(0, WriteFile(P("cold/c"), Pattern(3000, 3)));
  EXPECT_TRUE(WaitFor(
      [&] {
        return Now("tierfs_moved_bytes_total{direction=\"ssd_to_hdd\",reason=\"policy\","
                   "rule=\"cold\"}") == 3000;
      },
      30))
      << Scrape() << fs_.Log();

  // A reload (SIGHUP), then a refused one (the file made invalid).
  ASSERT_EQ(0, kill(fs_.pid(), SIGHUP));
  EXPECT_TRUE(WaitFor([&] { return Now("tierfs_policy_reloads_total") == 1; }, 30)) << Scrape();
  std::ofstream(PolicyPath()) << "[[rule]]\nname = \n";
  ASSERT_EQ(0, kill(fs_.pid(), SIGHUP));
  EXPECT_TRUE(WaitFor([&] { return Now("tierfs_policy_reload_errors_total") == 1; }, 30))
      << Scrape();

  // What the endpoint refuses, and clients that misbehave.
  CommandResult r = Curl("/other");
  EXPECT_EQ("404", r.out.substr(r.out.rfind('\n') + 1)) << r.out;
  r = Curl("/metrics", {"-X", "POST"});
  EXPECT_EQ("405", r.out.substr(r.out.rfind('\n') + 1)) << r.out;
  SendRaw(port_, "garbage\r\n\r\n");
  SendRaw(port_, std::string(1 << 20, '\x7f'));
  SendRaw(port_, "GET /metrics HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n");
  EXPECT_GE(Now("tierfs_tier_files{tier=\"hdd\"}"), 1);
  std::string got;
  ASSERT_EQ(0, ReadFile(P("a"), &got));  // the mount serves on
  EXPECT_EQ(Pattern(4096, 1), got);

  // A second daemon on the same port: a clear error naming it, exit 1.
  const std::string other = fs_.root() + "/other";
  for (const char* d : {"", "/ssd", "/hdd", "/mnt"})
    ASSERT_EQ(0, Err(mkdir((other + d).c_str(), 0755)));
  CommandResult second = RunTierfs({"--ssd", other + "/ssd", "--hdd", other + "/hdd", "--metrics",
                                    "127.0.0.1:" + std::to_string(port_), "-f", other + "/mnt"});
  EXPECT_EQ(1, second.exit_code) << second.err;
  EXPECT_NE(std::string::npos, second.err.find("metrics address 127.0.0.1:" +
                                               std::to_string(port_) + ": Address already in use"))
      << second.err;
  EXPECT_FALSE(IsMountPoint(other + "/mnt"));
  EXPECT_TRUE(fs_.Unmount()) << fs_.Log();
}

// A 1 MiB write from a buffer that does not start on a page boundary (as
// malloc and Python hand them out) spans 257 pages. Under the kernel's
// default cap of 256 pages a request it reached tierfs as two WRITEs, a
// 16-byte one among them; the daemon asks for one page more.
TEST_F(MetricsTest, AMebibyteWriteFromAnUnalignedBufferIsOneRequest) {
  if (access("/proc/sys/fs/fuse/max_pages_limit", W_OK) != 0)
    GTEST_SKIP() << "no writable fs.fuse.max_pages_limit (kernel before 6.13, or not root)";
  constexpr size_t kMiB = 1 << 20;
  constexpr int kWrites = 8;
  std::vector<char> page_aligned(kMiB + 8192);
  char* unaligned = reinterpret_cast<char*>(
      (reinterpret_cast<uintptr_t>(page_aligned.data()) + 4095) / 4096 * 4096 + 16);
  for (size_t i = 0; i < kMiB; ++i) unaligned[i] = char(i * 31 + 7);
  const double before = Now("tierfs_fuse_requests_total{op=\"write\"}");
  const int fd = open(P("unaligned").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  for (int i = 0; i < kWrites; ++i) ASSERT_EQ(ssize_t(kMiB), write(fd, unaligned, kMiB));
  ASSERT_EQ(0, close(fd));
  EXPECT_EQ(before + kWrites, Now("tierfs_fuse_requests_total{op=\"write\"}")) << fs_.Log();
  std::string back;
  ASSERT_EQ(0, ReadFile(P("unaligned"), &back));
  ASSERT_EQ(kMiB * kWrites, back.size());
  for (int i = 0; i < kWrites; ++i)
    EXPECT_EQ(0, memcmp(back.data() + size_t(i) * kMiB, unaligned, kMiB)) << "MiB " << i;
}

TEST(MetricsCliTest, ABadMetricsAddressIsABadOption) {
  for (const char* bad : {"nope", "70000", "[::1", "1.2.3.4.5:80"}) {
    CommandResult r = RunTierfs({"--ssd", "/tmp", "--hdd", "/tmp", "--metrics", bad, "/tmp"});
    EXPECT_EQ(2, r.exit_code) << bad << ": " << r.err;
    EXPECT_NE(std::string::npos, r.err.find(std::string("--metrics '") + bad + "'")) << r.err;
  }
}

}  // namespace
}  // namespace tierfs_test

// The metrics registry, its text format, --metrics parsing and the HTTP
// endpoint (fs/metrics.h, fs/metrics_http.h).
#include "fs/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "fs/metrics_http.h"

namespace tierfs {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  Histogram h;
  h.Observe(5'000);           // 5 us: the first bucket (10 us)
  h.Observe(300'000);         // 300 us: le 0.0005
  h.Observe(20'000'000'000);  // 20 s: only +Inf
  Exposition out;
  h.Render(out, "x_seconds", {{"op", "read"}});
  const std::string& t = out.text();
  EXPECT_TRUE(Has(t, "x_seconds_bucket{op=\"read\",le=\"1e-05\"} 1")) << t;
  EXPECT_TRUE(Has(t, "x_seconds_bucket{op=\"read\",le=\"0.00025\"} 1")) << t;
  EXPECT_TRUE(Has(t, "x_seconds_bucket{op=\"read\",le=\"0.0005\"} 2")) << t;
  EXPECT_TRUE(Has(t, "x_seconds_bucket{op=\"read\",le=\"10\"} 2")) << t;
  EXPECT_TRUE(Has(t, "x_seconds_bucket{op=\"read\",le=\"+Inf\"} 3")) << t;
  EXPECT_TRUE(Has(t, "x_seconds_sum{op=\"read\"} 20.000305")) << t;
  EXPECT_TRUE(Has(t, "x_seconds_count{op=\"read\"} 3")) << t;
  EXPECT_EQ(3u, h.count());
}

TEST(MetricsTest, HistogramCountsEveryObservationFromManyThreads) {
  Histogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) h.Observe(i * 1000);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(40000u, h.count());
  Exposition out;
  h.Render(out, "h", {});
  EXPECT_TRUE(Has(out.text(), "h_bucket{le=\"+Inf\"} 40000")) << out.text();
}

TEST(MetricsTest, FamiliesHaveHelpAndTypeAndLabelValuesAreEscaped) {
  LabeledCounter c("tierfs_x_total", "What x counts.", {"rule"});
  c.Add({"a \"quoted\" \\ rule\nname"}, 2);
  c.Add({"plain"});
  c.Add({"plain"}, 3);
  Exposition out;
  c.Render(out);
  const std::string& t = out.text();
  EXPECT_EQ(0u, t.find("# HELP tierfs_x_total What x counts.\n# TYPE tierfs_x_total counter\n"))
      << t;
  EXPECT_TRUE(Has(t, "tierfs_x_total{rule=\"a \\\"quoted\\\" \\\\ rule\\nname\"} 2")) << t;
  EXPECT_TRUE(Has(t, "tierfs_x_total{rule=\"plain\"} 4")) << t;
  EXPECT_EQ(4u, c.Get({"plain"}));
  EXPECT_EQ(0u, c.Get({"other"}));
}

TEST(MetricsTest, MovesAreCountedByDirectionReasonAndRule) {
  Metrics m(0);
  m.CountMove(true, "manual", 100, 0);
  m.CountMove(true, "manual", 50, 0);
  m.CountMove(false, "promote", 10, 0);
  m.CountMove(true, "to-hdd-after-a-day", 7, 0);
  m.CountMove(true, "spill", 1, EBUSY);  // routine: retried, not a failure
  m.CountMove(true, "evict", 0, EIO);
  EXPECT_EQ(2u, m.moves("ssd_to_hdd", "manual", ""));
  EXPECT_EQ(1u, m.moves("hdd_to_ssd", "promote", ""));
  EXPECT_EQ(1u, m.moves("ssd_to_hdd", "policy", "to-hdd-after-a-day"));
  EXPECT_EQ(0u, m.moves("ssd_to_hdd", "spill", ""));
  const std::string t = m.Render(Exposition());
  EXPECT_TRUE(Has(t,
                  "tierfs_moved_bytes_total{direction=\"ssd_to_hdd\",reason=\"manual\","
                  "rule=\"\"} 150"))
      << t;
  EXPECT_TRUE(Has(t,
                  "tierfs_move_failures_total{direction=\"ssd_to_hdd\",reason=\"evict\","
                  "rule=\"\"} 1"))
      << t;
  EXPECT_EQ(std::string::npos, t.find("reason=\"spill\"")) << t;
}

TEST(MetricsTest, OpsOpensPolicyAndReloadsRender) {
  static_assert(OpIndex("lookup") == 0);
  static_assert(OpIndex("getattr") == 1);
  static_assert(OpIndex("no-such-op") == kOpCount);
  Metrics m(0);
  OpStats& getattr = m.op(OpIndex("getattr"));
  getattr.latency.Observe(1000);
  getattr.latency.Observe(1000);
  getattr.Failed(ENOENT);
  getattr.Failed(9999);  // beyond the table: "other"
  m.CountOpen(true, OpenMode::kDirect);
  m.CountOpen(false, OpenMode::kPassthrough);
  m.CountThin("wipe", 3, 300);
  m.CountPin("keep");
  m.CountRefusal("wipe");
  m.CountReload(true);
  m.CountReload(false);
  m.CountReload(false);
  Exposition gauges;
  gauges.Family("tierfs_g", "A gauge.", "gauge");
  gauges.Sample("tierfs_g", {{"tier", "ssd"}}, 1.5);
  const std::string t = m.Render(gauges);
  EXPECT_EQ(0u,
            t.find("# HELP tierfs_g A gauge.\n# TYPE tierfs_g gauge\ntierfs_g{tier=\"ssd\"} 1.5\n"))
      << t;
  EXPECT_TRUE(Has(t, "tierfs_fuse_requests_total{op=\"getattr\"} 2")) << t;
  EXPECT_TRUE(Has(t, "tierfs_fuse_requests_total{op=\"read\"} 0")) << t;
  EXPECT_TRUE(Has(t, "# TYPE tierfs_fuse_request_duration_seconds histogram")) << t;
  EXPECT_TRUE(Has(t, "tierfs_fuse_request_errors_total{op=\"getattr\",errno=\"ENOENT\"} 1")) << t;
  EXPECT_TRUE(Has(t, "tierfs_fuse_request_errors_total{op=\"getattr\",errno=\"other\"} 1")) << t;
  EXPECT_TRUE(Has(t, "tierfs_opens_total{access=\"write\",mode=\"direct\"} 1")) << t;
  EXPECT_TRUE(Has(t, "tierfs_opens_total{access=\"read\",mode=\"passthrough\"} 1")) << t;
  EXPECT_TRUE(Has(t, "tierfs_policy_thinned_files_total{rule=\"wipe\"} 3")) << t;
  EXPECT_TRUE(Has(t, "tierfs_policy_thinned_bytes_total{rule=\"wipe\"} 300")) << t;
  EXPECT_TRUE(Has(t, "tierfs_policy_pins_total{rule=\"keep\"} 1")) << t;
  EXPECT_TRUE(Has(t, "tierfs_policy_refusals_total{rule=\"wipe\"} 1")) << t;
  EXPECT_TRUE(Has(t, "tierfs_policy_reloads_total 1")) << t;
  EXPECT_TRUE(Has(t, "tierfs_policy_reload_errors_total 2")) << t;
  // Every sample line belongs to a family declared before it.
  std::string family;
  for (size_t pos = 0, end; pos < t.size(); pos = end + 1) {
    end = t.find('\n', pos);
    const std::string line = t.substr(pos, end - pos);
    if (line.rfind("# TYPE ", 0) == 0) family = line.substr(7, line.find(' ', 7) - 7);
    if (line.empty() || line[0] == '#') continue;
    EXPECT_EQ(0u, line.rfind(family, 0)) << line << " outside " << family;
  }
}

TEST(MetricsTest, ParseMetricsAddressDefaultsToLoopback) {
  std::string addr;
  uint16_t port = 0;
  ASSERT_TRUE(ParseMetricsAddress("9108", &addr, &port).ok());
  EXPECT_EQ("127.0.0.1", addr);
  EXPECT_EQ(9108, port);
  ASSERT_TRUE(ParseMetricsAddress(":9109", &addr, &port).ok());
  EXPECT_EQ("127.0.0.1", addr);
  EXPECT_EQ(9109, port);
  ASSERT_TRUE(ParseMetricsAddress("localhost:80", &addr, &port).ok());
  EXPECT_EQ("127.0.0.1", addr);
  ASSERT_TRUE(ParseMetricsAddress("0.0.0.0:9108", &addr, &port).ok());
  EXPECT_EQ("0.0.0.0", addr);
  ASSERT_TRUE(ParseMetricsAddress("[::1]:9108", &addr, &port).ok());
  EXPECT_EQ("::1", addr);
  for (const char* bad : {"", "abc", "0", "65536", "99999999", "::1:9108", "1.2.3:5", "host:1",
                          "9108x", "127.0.0.1:"}) {
    Status st = ParseMetricsAddress(bad, &addr, &port);
    EXPECT_EQ(EINVAL, st.err()) << bad;
    EXPECT_NE(std::string::npos, st.message().find(std::string("'") + bad + "'")) << st.message();
  }
}

// Sends `request` to 127.0.0.1:`port` and reads until the server closes.
std::string Exchange(uint16_t port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0) {
    }
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) got.append(buf, size_t(n));
  }
  close(fd);
  return got;
}

TEST(MetricsServerTest, ServesGetMetricsOnlyAndRefusesThePortInUse) {
  std::unique_ptr<MetricsServer> server;
  ASSERT_TRUE(MetricsServer::Start(
                  "127.0.0.1", 0, [] { return std::string("tierfs_up 1\n"); }, &server)
                  .ok());
  const uint16_t port = server->port();
  ASSERT_NE(0, port);
  std::string r = Exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(0u, r.find("HTTP/1.1 200")) << r;
  EXPECT_NE(std::string::npos, r.find("text/plain; version=0.0.4")) << r;
  EXPECT_NE(std::string::npos, r.find("\r\n\r\ntierfs_up 1\n")) << r;
  r = Exchange(port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
  EXPECT_EQ(0u, r.find("HTTP/1.1 200")) << r;
  EXPECT_EQ(0u, Exchange(port, "GET / HTTP/1.1\r\n\r\n").find("HTTP/1.1 404"));
  EXPECT_EQ(0u, Exchange(port, "POST /metrics HTTP/1.1\r\n\r\n").find("HTTP/1.1 405"));
  EXPECT_EQ(0u, Exchange(port, "garbage\r\n\r\n").find("HTTP/1.1 400"));
  // A body, or a header beyond the limit: refused, never read on.
  EXPECT_EQ(0u, Exchange(port, "GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
                    .find("HTTP/1.1 400"));
  EXPECT_EQ(0u,
            Exchange(port, "GET /metrics HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n")
                .find("HTTP/1.1 400"));
  // A client that connects and says nothing does not hold up the next one.
  int stalled = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(0, connect(stalled, reinterpret_cast<sockaddr*>(&sa), sizeof sa));
  EXPECT_EQ(0u, Exchange(port, "GET /metrics HTTP/1.1\r\n\r\n").find("HTTP/1.1 200"));
  close(stalled);

  std::unique_ptr<MetricsServer> second;
  Status st = MetricsServer::Start(
      "127.0.0.1", port, [] { return std::string(); }, &second);
  EXPECT_EQ(EADDRINUSE, st.err());
  EXPECT_NE(std::string::npos, st.message().find("127.0.0.1:" + std::to_string(port)))
      << st.message();
  server->Stop();
  server->Stop();  // twice is harmless
}

}  // namespace
}  // namespace tierfs

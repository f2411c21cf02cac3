// ControlServer (fs/control.h) with a stand-in handler: framing, peer
// credentials, the bounds on hostile clients, and Stop with clients still
// connected or mid-request (run under ASan by `make test-asan`).
#include "fs/control.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include <gtest/gtest.h>

namespace tierfs {
namespace {

using nlohmann::json;

class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tierfs-control-unit.XXXXXX";
    ASSERT_NE(nullptr, mkdtemp(tmpl));
    dir_ = tmpl;
    path_ = dir_ + "/c.sock";
  }
  void TearDown() override {
    if (server_) server_->Stop();
    std::filesystem::remove_all(dir_);
  }
  void Start(ControlServer::Handler h, ControlLimits limits = {}) {
    Status st = ControlServer::Start(path_, std::move(h), limits, &server_);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  int Connect() {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      return -1;
    }
    timeval tv{30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
  }
  static void Send(int fd, const std::string& s) {
    ASSERT_EQ(ssize_t(s.size()), send(fd, s.data(), s.size(), MSG_NOSIGNAL));
  }
  static std::string ReadLine(int fd) {
    std::string line;
    char c;
    while (read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
    return line;
  }

  std::string dir_, path_;
  std::unique_ptr<ControlServer> server_;
};

json Echo(const json& req, const ControlPeer& peer) {
  return {{"ok", true}, {"echo", req}, {"uid", peer.uid}, {"gid", peer.gid}, {"pid", peer.pid}};
}

TEST_F(ControlServerTest, AnswersEveryLineWithThePeersCredentials) {
  Start(Echo);
  struct stat st;
  ASSERT_EQ(0, stat(path_.c_str(), &st));
  EXPECT_EQ(0660u, st.st_mode & 07777);
  const int fd = Connect();
  ASSERT_GE(fd, 0);
  Send(fd, "{\"n\":1}\n{\"n\":2}\n{\"n\":");  // two and a half requests
  for (int n : {1, 2}) {
    const json r = json::parse(ReadLine(fd));
    EXPECT_EQ(n, r["echo"]["n"]);
    EXPECT_EQ(getuid(), r["uid"].get<uid_t>());
    EXPECT_EQ(getgid(), r["gid"].get<gid_t>());
    EXPECT_EQ(getpid(), r["pid"].get<pid_t>());
  }
  Send(fd, "3}\n");
  EXPECT_EQ(3, json::parse(ReadLine(fd))["echo"]["n"]);
  close(fd);
}

TEST_F(ControlServerTest, BadLinesAndThrowingHandlersGetErrorReplies) {
  Start([](const json& req, const ControlPeer& peer) -> json {
    if (req.contains("throw")) throw std::runtime_error("boom");
    return Echo(req, peer);
  });
  const int fd = Connect();
  ASSERT_GE(fd, 0);
  Send(fd, "not json\n\"a string\"\n{\"throw\":1}\n{\"fine\":1}\n");
  EXPECT_EQ(EINVAL, json::parse(ReadLine(fd))["errno"]);
  EXPECT_EQ(EINVAL, json::parse(ReadLine(fd))["errno"]);
  const json thrown = json::parse(ReadLine(fd));
  EXPECT_EQ(EIO, thrown["errno"]);
  EXPECT_NE(std::string::npos, thrown["error"].get<std::string>().find("boom"));
  EXPECT_EQ(true, json::parse(ReadLine(fd))["ok"]);
  close(fd);
}

// An error a request causes is logged with a short excerpt of the request,
// at most ten a second; the next logged one counts those left out.
TEST_F(ControlServerTest, ErrorsOfRequestsAreLoggedShortAndRateLimited) {
  std::ostringstream captured;
  const auto before = spdlog::default_logger();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  Start([](const json&, const ControlPeer&) -> json {
    throw std::runtime_error("boom " + std::string(2000, 'B'));
  });
  const int fd = Connect();
  ASSERT_GE(fd, 0);
  const std::string line = "{\"pad\":\"" + std::string(60000, 'A') + "\"}\n";
  for (int i = 0; i < 100; ++i) {
    Send(fd, line);
    ASSERT_EQ(EIO, json::parse(ReadLine(fd))["errno"]);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  Send(fd, line);
  ASSERT_EQ(EIO, json::parse(ReadLine(fd))["errno"]);
  close(fd);
  server_->Stop();
  spdlog::set_default_logger(before);
  const std::string log = captured.str();
  EXPECT_LT(log.size(), 20000u) << log.substr(0, 1000);
  EXPECT_EQ(std::string::npos, log.find(std::string(1000, 'A')));
  EXPECT_NE(std::string::npos, log.find("(60010 bytes)")) << log.substr(0, 1000);
  EXPECT_NE(std::string::npos, log.find(" more not logged)")) << log.substr(0, 3000);
}

TEST_F(ControlServerTest, LongLineIsRefusedAndClosed) {
  ControlLimits limits;
  limits.max_line = 100;
  Start(Echo, limits);
  const int fd = Connect();
  ASSERT_GE(fd, 0);
  Send(fd, "{\"pad\":\"" + std::string(200, 'x') + "\"}\n");
  EXPECT_EQ(EMSGSIZE, json::parse(ReadLine(fd))["errno"]);
  EXPECT_EQ("", ReadLine(fd));  // closed
  close(fd);
}

TEST_F(ControlServerTest, IdleClientsAreDroppedAndExtraClientsTurnedAway) {
  ControlLimits limits;
  limits.idle_timeout = std::chrono::milliseconds(200);
  limits.max_clients = 2;
  Start(Echo, limits);
  const int a = Connect(), b = Connect();
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  Send(a, "{}\n");
  EXPECT_EQ(true, json::parse(ReadLine(a))["ok"]);  // a is surely accepted
  Send(b, "{}\n");
  EXPECT_EQ(true, json::parse(ReadLine(b))["ok"]);
  const int c = Connect();
  ASSERT_GE(c, 0);
  EXPECT_EQ(EBUSY, json::parse(ReadLine(c))["errno"]);
  close(c);
  // Silent, a and b are closed by the server (read sees the end).
  EXPECT_EQ("", ReadLine(a));
  EXPECT_EQ("", ReadLine(b));
  close(a);
  close(b);
  // Room again once the server has let go of them.
  bool served = false;
  for (int i = 0; i < 500 && !served; ++i) {
    const int d = Connect();
    ASSERT_GE(d, 0);
    Send(d, "{}\n");
    served = json::parse(ReadLine(d))["ok"] == true;
    close(d);
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(served);
}

TEST_F(ControlServerTest, StopWithClientsConnectedAndMidRequest) {
  std::atomic<bool> entered{false};
  Start([&](const json& req, const ControlPeer& peer) {
    entered = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return Echo(req, peer);
  });
  const int idle = Connect(), busy = Connect();
  ASSERT_GE(idle, 0);
  ASSERT_GE(busy, 0);
  Send(busy, "{}\n");
  while (!entered) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server_->Stop();  // waits for the request, closes both
  struct stat st;
  EXPECT_NE(0, lstat(path_.c_str(), &st)) << "the socket is removed";
  char c;
  EXPECT_EQ(0, read(idle, &c, 1));
  while (read(busy, &c, 1) > 0) {
  }
  close(idle);
  close(busy);
  EXPECT_LT(Connect(), 0);
}

TEST_F(ControlServerTest, StaleSocketIsReplacedAnythingElseRefused) {
  {
    // A socket left by a killed daemon.
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    ASSERT_EQ(0, bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
    close(fd);
  }
  Start(Echo);
  const int fd = Connect();
  ASSERT_GE(fd, 0);
  close(fd);
  server_->Stop();
  server_.reset();
  ASSERT_EQ(0, symlink("/etc/passwd", path_.c_str()));
  std::unique_ptr<ControlServer> s;
  const Status st = ControlServer::Start(path_, Echo, {}, &s);
  EXPECT_EQ(EEXIST, st.err()) << st.message();
  EXPECT_NE(std::string::npos, st.message().find(path_));
}

}  // namespace
}  // namespace tierfs

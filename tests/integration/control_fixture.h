// The control socket's test fixture: a mount with a short idle timeout,
// its socket's path, raw clients of it, and a group member to ask as
// (tests/integration/control_test.cc, control_clients_test.cc).
#pragma once

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
using json = nlohmann::json;

// A connected client of the control socket; -1 on failure.
inline int Connect(const std::string& sock) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{60, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Sends all of `data`, ignoring a peer that closed (it may have answered).
inline void SendAll(int fd, const std::string& data) {
  for (size_t off = 0; off < data.size();) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += size_t(n);
  }
}

// One line from `fd` (without the newline); "" at end of stream.
inline std::string ReadLine(int fd) {
  std::string line;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
  return line;
}

inline json Ask(int fd, const std::string& request_line) {
  SendAll(fd, request_line + "\n");
  return json::parse(ReadLine(fd), nullptr, false);
}

class ControlTest : public MountTest {
 protected:
  explicit ControlTest(MountOptions opts = {}) : MountTest(WithIdleTimeout(std::move(opts))) {}
  // Stalled clients are dropped after 3 s instead of 10: long enough for
  // the others' requests in between, and CI's time is short.
  static MountOptions WithIdleTimeout(MountOptions o) {
    o.extra_args.insert(o.extra_args.end(), {"--control-idle-timeout", "3"});
    return o;
  }
  void SetUp() override {
    MountTest::SetUp();
    char buf[4096];
    const ssize_t n = getxattr(fs_.mnt().c_str(), "user.tierfs.control", buf, sizeof buf);
    ASSERT_GT(n, 0) << "user.tierfs.control on the root: " << strerror(errno);
    sock_.assign(buf, size_t(n));
  }

  // The daemon lives, answers on its socket and serves files.
  void ExpectHealthy() {
    ASSERT_EQ(0, kill(fs_.pid(), 0)) << "the daemon died";
    const std::string p = P("health-" + std::to_string(++checks_));
    ASSERT_EQ(0, WriteFile(p, "still serving"));
    std::string back;
    ASSERT_EQ(0, ReadFile(p, &back));
    EXPECT_EQ("still serving", back);
    const int fd = Connect(sock_);
    ASSERT_GE(fd, 0);
    const json reply = Ask(fd, R"({"cmd":"status"})");
    close(fd);
    ASSERT_TRUE(reply.is_object());
    EXPECT_EQ(true, reply["ok"]) << reply.dump();
  }

  // A member of the socket's group (not root), and its answer to one line.
  Creds Member() {
    struct stat st {};
    EXPECT_EQ(0, stat(sock_.c_str(), &st));
    return Creds{12345, 12345, {gid_t(st.st_gid)}};
  }
  json AskAs(const Creds& who, const std::string& line) {
    std::string out;
    const int rc = RunAs(
        who,
        [&](std::string* o) {
          const int c = Connect(sock_);
          if (c < 0) return errno;
          *o = Ask(c, line).dump();
          close(c);
          return 0;
        },
        &out);
    EXPECT_EQ(0, rc) << line;
    return json::parse(out, nullptr, false);
  }

  std::string sock_;
  int checks_ = 0;
};

}  // namespace tierfs_test

// Hostile and careless clients of the control socket (fs/control.h):
// malformed, mistyped, oversized and random requests, stalled and silent
// clients, crowds and one user holding many connections, and the bounded
// log; after each the daemon is alive and the mount still serves files.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fs/version.h"
#include "tests/integration/control_fixture.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/tierctl_util.h"

namespace tierfs_test {
namespace {

TEST_F(ControlTest, MalformedRequestsGetAnErrorReply) {
  ASSERT_EQ(0, WriteFile(P("f"), "x"));
  const int fd = Connect(sock_);
  ASSERT_GE(fd, 0);
  const std::pair<std::string, int> cases[] = {
      {"this is not json", EINVAL},
      {"[1,2,3]", EINVAL},
      {R"({"cmd":42})", EINVAL},
      {R"({"cmd":"frobnicate"})", EOPNOTSUPP},
      {R"({"cmd":"where"})", EINVAL},
      {R"({"cmd":"where","path":"../../etc/passwd"})", EACCES},
      {R"({"cmd":"where","path":"/a/../../f"})", EACCES},
      {"{\"cmd\":\"where\",\"path\":\"\xff\xfe\"}", EINVAL},  // not UTF-8
  };
  for (const auto& [line, err] : cases) {
    const json reply = Ask(fd, line);
    ASSERT_TRUE(reply.is_object()) << line;
    EXPECT_EQ(false, reply["ok"]) << line;
    EXPECT_EQ(err, reply["errno"].get<int>()) << line << " -> " << reply.dump();
    EXPECT_TRUE(reply["error"].is_string()) << line;
  }
  // `..` that stays inside is fine; the same connection still answers.
  const json ok = Ask(fd, R"({"cmd":"where","path":"a/../f"})");
  EXPECT_EQ(true, ok["ok"]) << ok.dump();
  EXPECT_EQ("/f", ok["path"]);
  close(fd);
  ExpectHealthy();
}

// A field of the wrong type is the client's error, named with the type it
// must have; and whatever a client sends, the log quotes little of it (a
// 65000-byte field once went to the log in full with each request, and
// filled the state filesystem).
TEST_F(ControlTest, WronglyTypedFieldsAreEinvalAndNotLoggedInFull) {
  ASSERT_EQ(0, WriteFile(P("f"), "x"));
  const std::string huge(65000, 'A');
  const std::pair<std::string, std::string> cases[] = {
      // request, what the error names
      {R"({"cmd":"audit","offset":")" + huge + R"("})", "\"offset\" must be an unsigned integer"},
      {R"({"cmd":"audit","limit":-1})", "\"limit\" must be an unsigned integer"},
      {R"({"cmd":"audit","since":5})", "\"since\" must be a string"},
      {R"({"cmd":"pin","path":"f","immutable":"yes"})", "\"immutable\" must be true or false"},
      {R"({"cmd":"pin","path":"f","for_s":1.5})", "\"for_s\" must be a 64-bit signed integer"},
      {R"({"cmd":"gens","path":"/","offset":"x"})", "\"offset\" must be an unsigned integer"},
      {R"({"cmd":"ls","path":"/","limit":{}})", "\"limit\" must be an unsigned integer"},
      {R"({"cmd":"policy-dry-run","text":"","name":5})", "\"name\" must be a string"},
      {R"({"cmd":"verify","path":7})", "\"path\" must be a string"},
      {R"({"cmd":"move_status","job":"1"})", "\"job\" must be an unsigned integer"},
  };
  const int fd = Connect(sock_);
  ASSERT_GE(fd, 0);
  for (const auto& [line, names] : cases) {
    const json reply = Ask(fd, line);
    const std::string shown = line.substr(0, 80);
    ASSERT_TRUE(reply.is_object()) << shown;
    EXPECT_EQ(EINVAL, reply.value("errno", 0)) << shown << " -> " << reply.dump().substr(0, 300);
    EXPECT_NE(std::string::npos, reply.value("error", "").find(names))
        << shown << " -> " << reply.dump().substr(0, 300);
  }
  // Many at once: the log stays small.
  const std::string bad = R"({"cmd":"audit","offset":")" + huge + "\"}\n";
  for (int i = 0; i < 200; ++i) {
    SendAll(fd, bad);
    ASSERT_EQ(EINVAL, json::parse(ReadLine(fd), nullptr, false).value("errno", 0));
  }
  close(fd);
  ExpectHealthy();
  const std::string log = fs_.Log();
  EXPECT_EQ(std::string::npos, log.find(std::string(1000, 'A'))) << "the request is quoted in full";
  EXPECT_LT(log.size(), 64u << 10) << log.substr(0, 2000);
}

// File names are bytes: tierctl once aborted (nlohmann type_error 316) on
// a PATH that is not valid UTF-8, and showed two names that differ only in
// such bytes alike.
TEST_F(ControlTest, OversizedLineIsRefusedAndClosed) {
  const int fd = Connect(sock_);
  ASSERT_GE(fd, 0);
  SendAll(fd, std::string(1 << 20, 'x') + "\n");  // 1 MiB: the server stops reading
  const json reply = json::parse(ReadLine(fd), nullptr, false);
  ASSERT_TRUE(reply.is_object());
  EXPECT_EQ(EMSGSIZE, reply["errno"].get<int>()) << reply.dump();
  EXPECT_EQ("", ReadLine(fd)) << "the connection is closed";
  close(fd);
  ExpectHealthy();
}

TEST_F(ControlTest, StalledClientsDoNotBlockOthers) {
  const int silent = Connect(sock_);
  const int partial = Connect(sock_);
  ASSERT_GE(silent, 0);
  ASSERT_GE(partial, 0);
  SendAll(partial, R"({"cmd":"sta)");  // never finished
  // Others are served meanwhile, and so are files.
  for (int i = 0; i < 5; ++i) {
    const CommandResult r = Tierctl({"status", fs_.mnt()});
    EXPECT_EQ(0, r.exit_code) << r.err;
  }
  ExpectHealthy();
  // The stalled ones are dropped once idle (the server's idle timeout).
  for (int fd : {silent, partial}) {
    pollfd p{fd, POLLIN, 0};
    EXPECT_EQ(1, poll(&p, 1, 60000));
    EXPECT_EQ("", ReadLine(fd)) << "closed without a reply";
    close(fd);
  }
  ExpectHealthy();
}

TEST_F(ControlTest, ClientThatNeverReadsIsDropped) {
  const int greedy = Connect(sock_);
  ASSERT_GE(greedy, 0);
  // Far more replies than the socket buffers hold, none of them read: the
  // server's write waits, on that connection alone, until the idle timeout.
  std::string many;
  for (int i = 0; i < 20000; ++i)
    many += R"({"cmd":"status"})"
            "\n";
  std::thread sender([&] { SendAll(greedy, many); });
  for (int i = 0; i < 5; ++i) {
    const CommandResult r = Tierctl({"status", fs_.mnt()});
    EXPECT_EQ(0, r.exit_code) << r.err;
  }
  ExpectHealthy();
  // Dropped at last: reading drains what was sent, then the end of stream.
  char buf[65536];
  ssize_t n;
  while ((n = read(greedy, buf, sizeof buf)) > 0) {
  }
  EXPECT_EQ(0, n) << "the server closed the connection";
  shutdown(greedy, SHUT_RDWR);
  sender.join();
  close(greedy);
  ExpectHealthy();
}

TEST_F(ControlTest, TwoHundredClientsAtOnce) {
  constexpr int kClients = 200;
  std::atomic<int> served{0}, busy{0}, other{0};
  std::vector<int> fds(kClients, -1);
  // All connected before any asks: at most max_clients are served at once,
  // the rest are told to try again.
  for (int i = 0; i < kClients; ++i) fds[i] = Connect(sock_);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      if (fds[i] < 0) return (void)++other;
      const json r = Ask(fds[i], R"({"cmd":"status"})");
      if (r.is_object() && r["ok"] == true)
        ++served;
      else if (r.is_object() && r["errno"] == EBUSY)
        ++busy;
      else
        ++other;
      close(fds[i]);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(0, other.load()) << "every client gets an answer";
  EXPECT_GT(served.load(), 0);
  EXPECT_EQ(kClients, served + busy);
  ExpectHealthy();
}

// Connections of another user, held open by a child process until
// Release: as many of `tries` as the daemon serves, each asked an unknown
// command every second as a client that means to hold them would; the
// rest refused.
class HeldConnections {
 public:
  HeldConnections(const Creds& who, const std::string& sock, int tries) {
    int ready[2], hold[2];
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(hold, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      close(ready[0]);
      close(hold[1]);
      std::string summary = "switch failed";
      std::vector<int> fds;
      if (setgroups(who.groups.size(), who.groups.data()) == 0 &&
          setresgid(who.gid, who.gid, who.gid) == 0 && setresuid(who.uid, who.uid, who.uid) == 0) {
        int served = 0, busy = 0;
        std::string busy_error;
        for (int i = 0; i < tries; ++i) {
          const int fd = Connect(sock);
          if (fd < 0) continue;
          const json r = Ask(fd, R"({"cmd":"nope"})");
          if (r.is_object() && r.value("errno", 0) == EOPNOTSUPP) {
            ++served;
            fds.push_back(fd);
            continue;
          }
          if (r.is_object() && r.value("errno", 0) == EBUSY) ++busy, busy_error = r["error"];
          close(fd);
        }
        summary = std::to_string(served) + " " + std::to_string(busy) + " " + busy_error;
      }
      if (write(ready[1], summary.data(), summary.size()) < 0) _exit(1);
      close(ready[1]);
      // Until released: a request on each every second, so that the idle
      // timeout (3 s here) never frees them.
      for (pollfd p{hold[0], POLLIN, 0}; poll(&p, 1, 1000) == 0;)
        for (const int fd : fds) Ask(fd, R"({"cmd":"nope"})");
      _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    hold_ = hold[1];
    char buf[1024];
    for (ssize_t n; (n = read(ready[0], buf, sizeof buf)) > 0;) summary_.append(buf, size_t(n));
    close(ready[0]);
    sscanf(summary_.c_str(), "%d %d", &served_, &busy_);
  }
  ~HeldConnections() { Release(); }
  void Release() {
    if (hold_ >= 0) close(hold_);
    hold_ = -1;
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  int served() const { return served_; }
  int busy() const { return busy_; }
  const std::string& summary() const { return summary_; }

 private:
  pid_t pid_ = -1;
  int hold_ = -1;
  int served_ = -1, busy_ = -1;
  std::string summary_;
};

// One user holding every connection it can get locked everyone out, root
// included: now a user not root gets at most 8, all users not root
// together at most 56 of the 64, and root always has room.
TEST_F(ControlTest, OneUserCannotLockOutOthersOrRoot) {
  const Creds member = Member();
  HeldConnections held(member, sock_, 70);
  EXPECT_EQ(8, held.served()) << held.summary();
  EXPECT_EQ(62, held.busy()) << held.summary();
  EXPECT_NE(std::string::npos, held.summary().find("uid 12345")) << held.summary();
  // Another user still gets in, and root does.
  const Creds other{12346, 12346, member.groups};
  EXPECT_EQ(true, AskAs(other, R"({"cmd":"status"})").value("ok", false));
  const int fd = Connect(sock_);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(true, Ask(fd, R"({"cmd":"status"})").value("ok", false));
  close(fd);
  // tierctl reports the daemon's refusal, not a broken pipe of its request
  // (its write raced with the daemon's reply-and-close).
  const std::string bin = TierctlForOthers(fs_.root());
  for (int i = 0; i < 20; ++i) {
    std::string out;
    EXPECT_EQ(1, TierctlAs(member, bin, "status " + fs_.mnt(), &out)) << out;
    EXPECT_NE(std::string::npos, out.find("too many control clients of uid 12345")) << out;
  }
  // Seven users with eight each: the eighth user finds no room, root does.
  std::vector<std::unique_ptr<HeldConnections>> crowd;
  for (uid_t u = 20001; u <= 20007; ++u)
    crowd.push_back(std::make_unique<HeldConnections>(Creds{u, u, member.groups}, sock_, 8));
  int crowd_served = 0;
  for (const auto& h : crowd) crowd_served += h->served();
  EXPECT_EQ(48, crowd_served) << "56 places for users not root, 8 held by uid 12345";
  const json refused = AskAs(Creds{20010, 20010, member.groups}, R"({"cmd":"status"})");
  EXPECT_EQ(EBUSY, refused.value("errno", 0)) << refused.dump();
  const int root_fd = Connect(sock_);
  ASSERT_GE(root_fd, 0);
  EXPECT_EQ(true, Ask(root_fd, R"({"cmd":"status"})").value("ok", false));
  close(root_fd);
  // Newest first: a child holds the write ends of the older ones' pipes.
  while (!crowd.empty()) crowd.pop_back();
  held.Release();
  ExpectHealthy();
}

TEST_F(ControlTest, RandomBytesNeverHurt) {
  std::mt19937_64 rng(20261205);
  for (int round = 0; round < 300; ++round) {
    const int fd = Connect(sock_);
    ASSERT_GE(fd, 0);
    std::string junk(rng() % 2048, '\0');
    for (char& c : junk) c = char(rng());
    // Some rounds look like JSON with random bytes inside.
    if (round % 3 == 1) junk = R"({"cmd":"where","path":")" + junk + "\"}";
    if (round % 3 == 2) junk = R"({"cmd":)" + junk;
    SendAll(fd, junk + "\n");
    // Each line gets a JSON reply until the server is done with the client.
    shutdown(fd, SHUT_WR);
    for (std::string line; !(line = ReadLine(fd)).empty();)
      ASSERT_TRUE(json::parse(line, nullptr, false).is_object()) << line;
    close(fd);
  }
  ExpectHealthy();
}

TEST_F(ControlTest, SocketIsRemovedAtUnmount) {
  struct stat st;
  ASSERT_EQ(0, stat(sock_.c_str(), &st));
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  ASSERT_TRUE(fs_.Unmount());
  EXPECT_NE(0, lstat(sock_.c_str(), &st)) << sock_ << " is left behind";
}

TEST(ControlLogTest, BackgroundLogIsRotatedAndBounded) {
  TierfsMount fs;
  const std::string state = fs.root() + "/state";
  ASSERT_EQ(0, mkdir(state.c_str(), 0700));
  constexpr size_t kFile = 2048;
  const CommandResult r =
      RunTierfs({"--ssd", fs.ssd(), "--hdd", fs.hdd(), "--state", state, "--log-file-size",
                 std::to_string(kFile), "-o", "allow_other", fs.mnt()});
  ASSERT_EQ(0, r.exit_code) << r.err;
  ASSERT_EQ(0, WriteFile(fs.path("f"), "moved back and forth"));
  // Each move logs a line of about 100 bytes: far more than four files hold.
  for (int i = 0; i < 60; ++i)
    ASSERT_EQ(0, SetTierOfClosed(fs.path("f"), i % 2 ? "ssd" : "hdd")) << i;
  UnmountAndWait(fs.mnt());
  for (const char* name : {"tierfs.log", "tierfs.1.log", "tierfs.2.log", "tierfs.3.log"}) {
    struct stat st {};
    ASSERT_EQ(0, stat((state + "/" + name).c_str(), &st)) << name;
    EXPECT_EQ(0600u, st.st_mode & 07777) << name;
    EXPECT_LE(size_t(st.st_size), kFile + 512) << name;
  }
  struct stat st {};
  EXPECT_NE(0, stat((state + "/tierfs.4.log").c_str(), &st)) << "more than three old files kept";
  EXPECT_NE(std::string::npos, SlurpFile(state + "/tierfs.log").find("unmounted " + fs.mnt()));
}

}  // namespace
}  // namespace tierfs_test

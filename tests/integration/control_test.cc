// The control socket (fs/control.h) and tierctl (tools/tierctl.cc) on a live
// mount: status and where as root and as another user, table and JSON, and
// hostile clients on the raw socket, after each of which the daemon is alive
// and the mount still serves files.
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
#include "tests/integration/mount_fixture.h"
#include "tests/integration/tierctl_util.h"

namespace tierfs_test {
namespace {

using nlohmann::json;

// A connected client of the control socket; -1 on failure.
int Connect(const std::string& sock) {
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
void SendAll(int fd, const std::string& data) {
  for (size_t off = 0; off < data.size();) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += size_t(n);
  }
}

// One line from `fd` (without the newline); "" at end of stream.
std::string ReadLine(int fd) {
  std::string line;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
  return line;
}

json Ask(int fd, const std::string& request_line) {
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

TEST_F(ControlTest, VersionIsTheSameForBoth) {
  const CommandResult fs = RunTierfs({"--version"});
  EXPECT_EQ(0, fs.exit_code);
  EXPECT_EQ(std::string("tierfs ") + tierfs::kVersion + "\n", fs.out);
  const CommandResult ctl = Tierctl({"--version"});
  EXPECT_EQ(0, ctl.exit_code);
  EXPECT_EQ(std::string("tierctl ") + tierfs::kVersion + "\n", ctl.out);
}

TEST_F(ControlTest, StatusAsRootTableAndJson) {
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("d/a"), std::string(3000, 'a')));
  ASSERT_EQ(0, WriteFile(P("d/b"), std::string(5000, 'b')));
  ASSERT_EQ(0, SetTierOfClosed(P("d/b"), "hdd"));

  const CommandResult table = Tierctl({"status", P("d")});
  ASSERT_EQ(0, table.exit_code) << table.err;
  EXPECT_NE(std::string::npos, table.out.find(fs_.mnt() + ": tierfs " + tierfs::kVersion))
      << table.out;
  EXPECT_NE(std::string::npos, table.out.find("pid " + std::to_string(fs_.pid()))) << table.out;
  EXPECT_NE(std::string::npos, table.out.find("ssd high 90%, low 75%")) << table.out;
  EXPECT_NE(std::string::npos, table.out.find(fs_.ssd())) << table.out;
  EXPECT_NE(std::string::npos, table.out.find(fs_.hdd())) << table.out;
  EXPECT_NE(std::string::npos, table.out.find("2.9 KiB")) << table.out;  // d/a, human
  EXPECT_NE(std::string::npos, table.out.find("4.9 KiB")) << table.out;  // d/b

  const CommandResult js = Tierctl({"--json", "-b", "status", P("d/a")});
  ASSERT_EQ(0, js.exit_code) << js.err;
  const json all = json::parse(js.out, nullptr, false);
  ASSERT_TRUE(all.is_array()) << js.out;
  ASSERT_EQ(1u, all.size());
  const json& s = all[0];
  EXPECT_EQ(tierfs::kVersion, s["version"]);
  EXPECT_EQ(fs_.pid(), s["pid"].get<int>());
  EXPECT_EQ(fs_.mnt(), s["mountpoint"]);
  EXPECT_EQ(0.9, s["watermarks"]["high"].get<double>());
  ASSERT_EQ(2u, s["tiers"].size());
  const json& ssd = s["tiers"][0];
  const json& hdd = s["tiers"][1];
  EXPECT_EQ("ssd", ssd["name"]);
  EXPECT_EQ(fs_.ssd(), ssd["path"]);
  EXPECT_EQ(1u, ssd["files"].get<uint64_t>());
  EXPECT_EQ(3000u, ssd["bytes"].get<uint64_t>());
  EXPECT_EQ("hdd", hdd["name"]);
  EXPECT_EQ(fs_.hdd(), hdd["path"]);
  EXPECT_EQ(1u, hdd["files"].get<uint64_t>());
  EXPECT_EQ(5000u, hdd["bytes"].get<uint64_t>());
  EXPECT_GT(ssd["capacity"].get<uint64_t>(), 0u);
  EXPECT_EQ(ssd["capacity"].get<uint64_t>(),
            ssd["used"].get<uint64_t>() + ssd["free"].get<uint64_t>());
  EXPECT_EQ(true, ssd["healthy"]);
}

TEST_F(ControlTest, WhereAsRootTableAndJson) {
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("d/on-ssd"), "ssd bytes"));
  ASSERT_EQ(0, WriteFile(P("d/on-hdd"), std::string(2048, 'h')));
  ASSERT_EQ(0, SetTierOfClosed(P("d/on-hdd"), "hdd"));
  ASSERT_EQ(0, symlink("/etc/passwd", P("d/link").c_str()));

  const CommandResult table = Tierctl({"where", P("d/on-ssd"), P("d/on-hdd"), P("d/link"), P("d")});
  ASSERT_EQ(0, table.exit_code) << table.err;
  EXPECT_NE(std::string::npos, table.out.find(ObjectPathOn(fs_.ssd(), Ino(P("d/on-ssd")))))
      << table.out;
  EXPECT_NE(std::string::npos, table.out.find(ObjectPathOn(fs_.hdd(), Ino(P("d/on-hdd")))))
      << table.out;
  EXPECT_NE(std::string::npos, table.out.find("symlink")) << table.out;
  EXPECT_NE(std::string::npos, table.out.find("directory")) << table.out;

  const CommandResult js = Tierctl({"where", "--json", "-b", P("d/on-ssd"), P("d/on-hdd")});
  ASSERT_EQ(0, js.exit_code) << js.err;
  const json all = json::parse(js.out, nullptr, false);
  ASSERT_TRUE(all.is_array()) << js.out;
  ASSERT_EQ(2u, all.size());
  EXPECT_EQ("ssd", all[0]["tier"]);
  EXPECT_EQ(9u, all[0]["size"].get<uint64_t>());
  EXPECT_EQ(false, all[0]["moving"]);
  EXPECT_TRUE(all[0]["hold"].is_null());
  EXPECT_EQ(ObjectPathOn(fs_.ssd(), Ino(P("d/on-ssd"))), all[0]["object"]);
  EXPECT_EQ("hdd", all[1]["tier"]);
  EXPECT_EQ(2048u, all[1]["size"].get<uint64_t>());
  EXPECT_EQ(ObjectPathOn(fs_.hdd(), Ino(P("d/on-hdd"))), all[1]["object"]);

  // A missing file, a path outside any mount: exit 1, naming the path.
  const CommandResult missing = Tierctl({"where", P("d/on-ssd"), P("d/nope")});
  EXPECT_EQ(1, missing.exit_code);
  EXPECT_NE(std::string::npos, missing.err.find(P("d/nope"))) << missing.err;
  EXPECT_NE(std::string::npos, missing.err.find("No such file")) << missing.err;
  EXPECT_NE(std::string::npos, missing.out.find("ssd")) << "the good path is still listed";
  const CommandResult outside = Tierctl({"where", "/etc/passwd"});
  EXPECT_EQ(1, outside.exit_code);
  EXPECT_NE(std::string::npos, outside.err.find("/etc/passwd: not inside a tierfs mount"))
      << outside.err;
  // Bad usage: exit 2.
  EXPECT_EQ(2, Tierctl({}).exit_code);
  EXPECT_EQ(2, Tierctl({"where"}).exit_code);
  EXPECT_EQ(2, Tierctl({"frobnicate"}).exit_code);
  EXPECT_EQ(2, Tierctl({"--no-such-option", "status"}).exit_code);
}

TEST_F(ControlTest, WhereAsAnotherUserOnlyWhatTheyCanStat) {
  // tierctl where another user can run it (the build tree may not be).
  const std::string bin = TierctlForOthers(fs_.root());
  ASSERT_EQ(0, mkdir(P("open").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("open/f"), "readable", 0600));  // stat needs no read permission
  ASSERT_EQ(0, mkdir(P("closed").c_str(), 0700));
  ASSERT_EQ(0, WriteFile(P("closed/f"), "hidden"));
  struct stat sock_st;
  ASSERT_EQ(0, stat(sock_.c_str(), &sock_st));
  EXPECT_EQ(0660u, sock_st.st_mode & 07777);
  const Creds member{12345, 12345, {gid_t(sock_st.st_gid)}};  // in the socket's group
  const Creds stranger{23456, 23456, {}};

  std::string out;
  EXPECT_EQ(0, TierctlAs(member, bin, "where " + P("open/f"), &out)) << out;
  EXPECT_NE(std::string::npos, out.find(ObjectPathOn(fs_.ssd(), Ino(P("open/f"))))) << out;
  EXPECT_EQ(0, TierctlAs(member, bin, "--json status " + P("open"), &out)) << out;

  // As stat(2) would refuse: a directory on the way without search permission.
  EXPECT_EQ(1, TierctlAs(member, bin, "where " + P("closed/f"), &out)) << out;
  EXPECT_NE(std::string::npos, out.find("permission denied")) << out;
  EXPECT_NE(std::string::npos, out.find(P("closed/f"))) << out;
  // The daemon checks by itself, whatever path the client sends.
  const int fd = RunAs(
      member,
      [&](std::string* o) {
        const int c = Connect(sock_);
        if (c < 0) return errno;
        *o = Ask(c, R"({"cmd":"where","path":"closed/f"})").dump();
        close(c);
        return 0;
      },
      &out);
  EXPECT_EQ(0, fd);
  EXPECT_NE(std::string::npos, out.find("\"errno\":13")) << out;

  // Not in the socket's group: the socket refuses the connection.
  EXPECT_EQ(1, TierctlAs(stranger, bin, "where " + P("open/f"), &out)) << out;
  EXPECT_NE(std::string::npos, out.find("cannot reach the daemon")) << out;
  ExpectHealthy();
}

// The kernel enforces POSIX ACLs on this mount, so `where` follows them
// too: a named entry can deny what the mode grants, and grant what it
// denies.
TEST_F(ControlTest, WhereFollowsTheAclsTheKernelEnforces) {
  const std::string bin = TierctlForOthers(fs_.root());
  struct stat sock_st;
  ASSERT_EQ(0, stat(sock_.c_str(), &sock_st));
  const Creds member{12345, 12345, {gid_t(sock_st.st_gid)}};
  ASSERT_EQ(0, mkdir(P("denied").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("granted").c_str(), 0700));
  ASSERT_EQ(0, WriteFile(P("denied/f"), "x"));
  ASSERT_EQ(0, WriteFile(P("granted/f"), "x"));
  ASSERT_EQ(0, RunCommand({"setfacl", "-m", "u:12345:---", P("denied")}, 10).exit_code);
  ASSERT_EQ(0, RunCommand({"setfacl", "-m", "u:12345:x", P("granted")}, 10).exit_code);
  // What stat(2) says, as that user.
  EXPECT_EQ(EACCES, RunAs(member, [&] {
              struct stat st;
              return Err(stat(P("denied/f").c_str(), &st));
            }));
  EXPECT_EQ(0, RunAs(member, [&] {
              struct stat st;
              return Err(stat(P("granted/f").c_str(), &st));
            }));
  std::string out;
  EXPECT_EQ(1, TierctlAs(member, bin, "where " + P("denied/f"), &out)) << out;
  EXPECT_NE(std::string::npos, out.find("permission denied")) << out;
  EXPECT_EQ(0, TierctlAs(member, bin, "where " + P("granted/f"), &out)) << out;
  ExpectHealthy();
}

// A recorded checksum is shown only to one who may read the file: a
// 4-digit secret in a 0600 file was once brute-forced from `where`.
TEST_F(ControlTest, ChecksumsOnlyToThoseWhoMayRead) {
  const Creds member = Member();
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("d/secret"), "4711", 0600));
  ASSERT_EQ(0, WriteFile(P("d/public"), "1234", 0644));
  ASSERT_EQ(0, WriteFile(P("d/granted"), "5678", 0600));
  ASSERT_EQ(0, RunCommand({"setfacl", "-m", "u:12345:r", P("d/granted")}, 10).exit_code);
  for (const char* f : {"d/secret", "d/public", "d/granted"})
    ASSERT_EQ(0, SetTierOfClosed(P(f), "hdd")) << f;  // a move records the checksum
  const int fd = Connect(sock_);
  ASSERT_GE(fd, 0);
  for (const char* f : {"d/secret", "d/public", "d/granted"}) {
    const json w = Ask(fd, std::string(R"({"cmd":"where","path":")") + f + "\"}");
    EXPECT_TRUE(w.contains("checksum")) << "root sees it: " << w.dump();
  }
  close(fd);
  const json secret = AskAs(member, R"({"cmd":"where","path":"d/secret"})");
  EXPECT_EQ(true, secret.value("ok", false)) << secret.dump();  // stat-able: where answers
  EXPECT_FALSE(secret.contains("checksum")) << secret.dump();
  EXPECT_TRUE(AskAs(member, R"({"cmd":"where","path":"d/public"})").contains("checksum"));
  EXPECT_TRUE(AskAs(member, R"({"cmd":"where","path":"d/granted"})").contains("checksum"));
  // The move's audit record: there for the member, without its xxh3.
  const json audit = AskAs(member, R"({"cmd":"audit","path":"/d","action":"move"})");
  ASSERT_TRUE(audit["records"].is_array()) << audit.dump();
  int seen = 0;
  for (const json& r : audit["records"]) {
    const std::string path = r.value("path", "");
    ++seen;
    EXPECT_EQ(path != "/d/secret", r.contains("xxh3")) << r.dump();
  }
  EXPECT_EQ(3, seen) << audit.dump();
  ExpectHealthy();
}

// A removed file's records stay root's, even once another user makes a
// file under its name (the records carry the inode; it must match).
TEST_F(ControlTest, AuditRecordsOfARemovedFileStayRootsUnderANewFileOfItsName) {
  const Creds member = Member();
  ASSERT_EQ(0, mkdir(P("shared").c_str(), 0777));
  ASSERT_EQ(0, chmod(P("shared").c_str(), 01777));
  ASSERT_EQ(0, WriteFile(P("shared/x"), "root's bytes", 0644));
  ASSERT_EQ(0, SetTierOfClosed(P("shared/x"), "hdd"));  // a record with bytes and xxh3
  const std::string line = R"({"cmd":"audit","path":"/shared/x"})";
  EXPECT_EQ(1u, AskAs(member, line)["records"].size()) << "the file is there: its record shows";
  ASSERT_EQ(0, unlink(P("shared/x").c_str()));
  EXPECT_EQ(0u, AskAs(member, line)["records"].size());
  ASSERT_EQ(0, RunAs(member, [&] { return WriteFile(P("shared/x"), "member's", 0644); }));
  const json after = AskAs(member, line);
  ASSERT_TRUE(after["records"].is_array()) << after.dump();
  EXPECT_EQ(0u, after["records"].size()) << after.dump();
  // Its own file's records, it sees.
  ASSERT_EQ(0, SetTierOfClosed(P("shared/x"), "hdd"));
  const json own = AskAs(member, line);
  ASSERT_EQ(1u, own["records"].size()) << own.dump();
  EXPECT_EQ(Ino(P("shared/x")), own["records"][0]["ino"].get<ino_t>()) << own.dump();
  // Root sees both.
  const int fd = Connect(sock_);
  ASSERT_GE(fd, 0);
  EXPECT_GE(Ask(fd, line)["records"].size(), 2u);
  close(fd);
  ExpectHealthy();
}

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
TEST_F(ControlTest, NamesThatAreNotUtf8ReachTheDaemonExactlyAndStayApart) {
  ASSERT_EQ(0, mkdir(P("dir").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("dir/z\xff"), "z"));
  ASSERT_EQ(0, WriteFile(P("dir/bad\xff"), "ff"));
  ASSERT_EQ(0, WriteFile(P("dir/bad\xfe"), "fe"));
  const CommandResult where = Tierctl({"where", P("dir/z\xff")});
  EXPECT_EQ(0, where.exit_code) << where.out << where.err;
  EXPECT_NE(std::string::npos, where.out.find(ObjectPathOn(fs_.ssd(), Ino(P("dir/z\xff")))))
      << where.out << where.err;
  // JSON output keeps the exact bytes in NAME_hex.
  // --json with such a PATH argument (its dump aborted tierctl too).
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--json", "where", P("dir/z\xff")},
        std::vector<std::string>{"--json", "where", "-r", P("dir")}}) {
    const CommandResult j = Tierctl(args);
    EXPECT_EQ(0, j.exit_code) << args[1] << ": " << j.out << j.err;
  }
  const CommandResult js = Tierctl({"--json", "ls", P("dir")});
  EXPECT_EQ(0, js.exit_code) << js.err;
  EXPECT_NE(std::string::npos, js.out.find("\"name_hex\": \"626164fe\"")) << js.out;
  // A missing one is refused by the daemon, not by an abort.
  const CommandResult missing = Tierctl({"where", P("dir/none\xff")});
  EXPECT_EQ(1, missing.exit_code) << missing.err;
  EXPECT_NE(std::string::npos, missing.err.find("No such file")) << missing.err;
  // Tables show the bytes that are not UTF-8 as \xNN.
  const CommandResult ls = Tierctl({"ls", "-l", P("dir")});
  EXPECT_EQ(0, ls.exit_code) << ls.err;
  EXPECT_NE(std::string::npos, ls.out.find("bad\\xff")) << ls.out;
  EXPECT_NE(std::string::npos, ls.out.find("bad\\xfe")) << ls.out;
  const CommandResult tree = Tierctl({"where", "-r", P("dir")});
  EXPECT_EQ(0, tree.exit_code) << tree.err;
  EXPECT_NE(std::string::npos, tree.out.find("dir/bad\\xff")) << tree.out;
  EXPECT_NE(std::string::npos, tree.out.find("dir/bad\\xfe")) << tree.out;
  // On the socket: "path_hex" names the bytes, and replies carry the exact
  // bytes of a name that is not UTF-8 in NAME_hex.
  const int fd = Connect(sock_);
  ASSERT_GE(fd, 0);
  const json w = Ask(fd, R"({"cmd":"where","path_hex":"2f6469722f626164fe"})");
  EXPECT_EQ(true, w.value("ok", false)) << w.dump();
  EXPECT_EQ(Ino(P("dir/bad\xfe")), w.value("ino", ino_t(0))) << w.dump();
  EXPECT_EQ("2f6469722f626164fe", w.value("path_hex", "")) << w.dump();
  const json l = Ask(fd, R"({"cmd":"ls","path":"/dir"})");
  std::set<std::string> hex;
  for (const json& e : l["entries"]) hex.insert(e.value("name_hex", ""));
  EXPECT_EQ((std::set<std::string>{"626164fe", "626164ff", "7aff"}), hex) << l.dump();
  const json bad = Ask(fd, R"({"cmd":"where","path_hex":"2f7"})");
  EXPECT_EQ(EINVAL, bad.value("errno", 0)) << bad.dump();
  close(fd);
  ExpectHealthy();
}

TEST_F(ControlTest, SymlinksAreNotFollowed) {
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("d/f"), "x"));
  ASSERT_EQ(0, symlink("/etc", P("out").c_str()));
  ASSERT_EQ(0, symlink("d", P("in").c_str()));
  const int fd = Connect(sock_);
  ASSERT_GE(fd, 0);
  for (const char* path : {"out/passwd", "in/f"}) {
    const json r = Ask(fd, std::string(R"({"cmd":"where","path":")") + path + "\"}");
    EXPECT_EQ(false, r["ok"]) << path;
    EXPECT_EQ(ELOOP, r["errno"].get<int>()) << r.dump();
  }
  const json link = Ask(fd, R"({"cmd":"where","path":"out"})");
  EXPECT_EQ("symlink", link["type"]) << link.dump();
  close(fd);
  ExpectHealthy();
}

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

class ControlPinTest : public ControlTest {
 protected:
  static std::string PolicyPath() { return TmpPolicyPath("control-pin-test"); }
  static MountOptions WithPolicy() {
    std::ofstream(PolicyPath()) << "[[rule]]\nname = \"legal-hold\"\npath = \"/kept/**\"\n"
                                   "action = \"pin\"\nfor = \"30d\"\nimmutable = true\n";
    MountOptions o;
    o.extra_args = {"--policy", PolicyPath(), "--scan-interval", "1"};
    return o;
  }
  ControlPinTest() : ControlTest(WithPolicy()) {}
  ~ControlPinTest() override { unlink(PolicyPath().c_str()); }
};

TEST_F(ControlPinTest, WhereShowsTheHoldAndStatusThePolicy) {
  ASSERT_EQ(0, mkdir(P("kept").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("kept/model.pt"), "weights"));
  ASSERT_TRUE(WaitFor(
      [&] { return getxattr(P("kept/model.pt").c_str(), "user.tierfs.pin", nullptr, 0) > 0; }, 20))
      << fs_.Log();
  const CommandResult js = Tierctl({"--json", "where", P("kept/model.pt")});
  ASSERT_EQ(0, js.exit_code) << js.err;
  const json w = json::parse(js.out, nullptr, false);
  ASSERT_TRUE(w.is_array()) << js.out;
  const json& hold = w[0]["hold"];
  ASSERT_TRUE(hold.is_object()) << js.out;
  EXPECT_EQ("legal-hold", hold["rule"]);
  EXPECT_EQ(true, hold["immutable"]);
  EXPECT_EQ(true, hold["active"]);
  // Until 30 days after it was set: an RFC 3339 date, not epoch seconds.
  struct tm since = {}, until = {};
  ASSERT_TRUE(strptime(hold["since"].get<std::string>().c_str(), "%Y-%m-%dT%H:%M:%SZ", &since));
  ASSERT_TRUE(strptime(hold["until"].get<std::string>().c_str(), "%Y-%m-%dT%H:%M:%SZ", &until));
  // (each rounded down to the second)
  EXPECT_NEAR(30 * 86400, double(timegm(&until) - timegm(&since)), 1) << js.out;

  const CommandResult table = Tierctl({"where", P("kept/model.pt")});
  ASSERT_EQ(0, table.exit_code) << table.err;
  EXPECT_NE(std::string::npos, table.out.find("(legal-hold, immutable)")) << table.out;
  EXPECT_NE(std::string::npos, table.out.find("until 20")) << table.out;

  const CommandResult status = Tierctl({"status", fs_.mnt()});
  EXPECT_NE(std::string::npos, status.out.find("policy      " + PolicyPath())) << status.out;
}

TEST_F(ControlPinTest, StatusShowsTheReloadErrorRecentErrorsAndMoves) {
  ASSERT_EQ(0, WriteFile(P("f"), std::string(1 << 20, 'x')));
  ASSERT_EQ(0, SetTierOfClosed(P("f"), "hdd"));
  std::ofstream(PolicyPath()) << "[[rule]]\nname = \"broken\"\nacton = \"pin\"\n";
  const CommandResult reload = Tierctl({"policy", "reload", fs_.mnt()});
  EXPECT_EQ(1, reload.exit_code) << reload.out << reload.err;

  const CommandResult js = Tierctl({"--json", "status", fs_.mnt()});
  ASSERT_EQ(0, js.exit_code) << js.err;
  const json all = json::parse(js.out, nullptr, false);
  ASSERT_TRUE(all.is_array() && all.size() == 1) << js.out;
  const json& s = all[0];
  EXPECT_EQ(PolicyPath(), s["policy"]["file"]) << js.out;
  EXPECT_TRUE(s["policy"]["loaded"].is_string()) << js.out;
  ASSERT_TRUE(s["policy"]["last_reload_error"].is_object()) << js.out;
  EXPECT_NE(std::string::npos,
            s["policy"]["last_reload_error"]["error"].get<std::string>().find("acton"))
      << js.out;
  EXPECT_GE(s["moves"]["bytes_last_minute"].get<uint64_t>(), uint64_t(1) << 20) << js.out;
  EXPECT_EQ(0u, s["moves"]["running"].get<unsigned>()) << js.out;
  bool logged = false;
  for (const json& e : s["recent_errors"])
    logged |= e.get<std::string>().find("reload refused") != std::string::npos;
  EXPECT_TRUE(logged) << js.out;

  const CommandResult table = Tierctl({"status", fs_.mnt()});
  ASSERT_EQ(0, table.exit_code) << table.err;
  EXPECT_NE(std::string::npos, table.out.find("reload refused")) << table.out;
  EXPECT_NE(std::string::npos, table.out.find("in the last minute")) << table.out;
  EXPECT_NE(std::string::npos, table.out.find("recent warnings and errors")) << table.out;
}

// In the background the daemon logs to STATE/tierfs.log, which rotates:
// tierfs.log and at most three older files (tierfs.1.log ...), each of at
// most --log-file-size bytes (a line more), all mode 0600.
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

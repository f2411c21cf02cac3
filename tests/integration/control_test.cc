// The control socket (fs/control.h) and tierctl (tools/tierctl.cc) on a live
// mount: status, where, pins and audit as root and as another user, table
// and JSON. Hostile clients of the raw socket: control_clients_test.cc.
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

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fs/version.h"
#include "meta/text_format.h"
#include "tests/integration/control_fixture.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/tierctl_util.h"

namespace tierfs_test {
namespace {

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

// A user's file names with a newline followed by what looks like an audit
// row, terminal escapes, DEL and a C1 control, pinned: root's tables
// (audit, where -r, ls, ls -l) show each entry on one line with those
// bytes escaped (ShownBytes), never raw; --json keeps the exact names.
TEST_F(ControlTest, HostileNamesNeitherForgeRowsNorReachTheTerminalRaw) {
  ASSERT_EQ(0, mkdir(P("h").c_str(), 0755));
  const std::string forged = "2026-01-01 00:00:00 UTC  delete  forged  1 B  manual  ok";
  const std::vector<std::string> names = {"esc\x1b[2J\x1b[31mRED\x1b[0m",
                                          "x\n" + forged,
                                          "tab\there\rcr",
                                          "del\x7f",
                                          "c1\xc2\x9b"
                                          "31m",
                                          "back\\x1b"};
  for (const std::string& name : names) {
    ASSERT_EQ(0, WriteFile(P("h/" + name), "data")) << name;
    const CommandResult pin = Tierctl({"pin", P("h/" + name)});
    ASSERT_EQ(0, pin.exit_code) << pin.out << pin.err;
  }
  auto lines = [](const std::string& out) {
    return size_t(std::count(out.begin(), out.end(), '\n'));
  };
  auto expect_escaped = [&](const std::vector<std::string>& args, size_t want_lines) {
    const CommandResult r = Tierctl(args);
    ASSERT_EQ(0, r.exit_code) << args[0] << ": " << r.out << r.err;
    EXPECT_EQ(std::string::npos, r.out.find('\x1b')) << args[0] << ": " << r.out;
    EXPECT_EQ(std::string::npos, r.out.find('\x7f')) << args[0] << ": " << r.out;
    EXPECT_EQ(std::string::npos, r.out.find('\r')) << args[0] << ": " << r.out;
    EXPECT_EQ(std::string::npos, r.out.find('\t')) << args[0] << ": " << r.out;
    EXPECT_EQ(std::string::npos, r.out.find("\xc2\x9b")) << args[0] << ": " << r.out;
    EXPECT_EQ(std::string::npos, r.out.find("\n" + forged)) << args[0] << ": " << r.out;
    EXPECT_EQ(want_lines, lines(r.out)) << args[0] << ": " << r.out;
    for (const char* shown : {"esc\\x1b[2J\\x1b[31mRED\\x1b[0m", "x\\n2026-01-01 00:00:00 UTC",
                              "tab\\there\\rcr", "del\\x7f", "c1\\xc2\\x9b31m", "back\\\\x1b"})
      EXPECT_NE(std::string::npos, r.out.find(shown)) << args[0] << ": " << shown << "\n" << r.out;
  };
  // A header and one line per pin record (every record names one file).
  expect_escaped({"audit", "--action", "pin", fs_.mnt()}, 1 + names.size());
  expect_escaped({"where", "-r", P("h")}, 1 + 1 + names.size());  // h itself too
  expect_escaped({"ls", "-l", P("h")}, 1 + names.size());
  expect_escaped({"ls", P("h")}, names.size());
  // JSON is exact.
  const CommandResult js = Tierctl({"--json", "audit", "--action", "pin", fs_.mnt()});
  ASSERT_EQ(0, js.exit_code) << js.err;
  std::set<std::string> paths;
  std::istringstream in(js.out);
  for (std::string line; std::getline(in, line);) paths.insert(json::parse(line)["path"]);
  std::set<std::string> want;
  for (const std::string& name : names) want.insert("/h/" + name);
  EXPECT_EQ(want, paths) << js.out;
  ExpectHealthy();
}

// Names that are not UTF-8 are journaled exactly ("path_hex" beside the
// U+FFFD form): two of them are two paths in the journal, `tierctl audit
// --path` finds each one's record, and their owner (not root) sees them.
TEST_F(ControlTest, TheJournalKeepsNamesThatAreNotUtf8Exactly) {
  const Creds member = Member();
  ASSERT_EQ(0, mkdir(P("u").c_str(), 0755));
  ASSERT_EQ(0, chown(P("u").c_str(), member.uid, member.gid));
  for (const char* name : {"u/bad\xff", "u/bad\xfe"}) {
    ASSERT_EQ(0, WriteFile(P(name), name));
    ASSERT_EQ(0, chown(P(name).c_str(), member.uid, member.gid));
    const CommandResult pin = Tierctl({"pin", P(name)});
    ASSERT_EQ(0, pin.exit_code) << pin.out << pin.err;
  }
  std::set<std::string> hex;
  std::istringstream journal(SlurpFile(fs_.ssd() + "/state/audit.jsonl"));
  for (std::string line; std::getline(journal, line);) {
    const json rec = json::parse(line);
    if (rec.value("action", "") == "pin") hex.insert(rec.value("path_hex", ""));
  }
  EXPECT_EQ((std::set<std::string>{"2f752f626164ff", "2f752f626164fe"}), hex);
  for (const char* name : {"u/bad\xff", "u/bad\xfe"}) {
    const CommandResult r = Tierctl({"--json", "audit", "--path", P(name), fs_.mnt()});
    ASSERT_EQ(0, r.exit_code) << r.err;
    ASSERT_EQ(1, std::count(r.out.begin(), r.out.end(), '\n')) << name << ": " << r.out;
    EXPECT_EQ(tierfs::HexBytes(std::string("/") + name), json::parse(r.out).value("path_hex", ""))
        << r.out;
  }
  const CommandResult table = Tierctl({"audit", "--action", "pin", fs_.mnt()});
  EXPECT_NE(std::string::npos, table.out.find("/u/bad\\xff")) << table.out;
  EXPECT_NE(std::string::npos, table.out.find("/u/bad\\xfe")) << table.out;
  // Their owner sees the records of its files.
  const json own = AskAs(member, R"({"cmd":"audit","action":"pin"})");
  ASSERT_TRUE(own["records"].is_array()) << own.dump();
  EXPECT_EQ(2u, own["records"].size()) << own.dump();
  ExpectHealthy();
}

// A user looping pin/unpin of their own file gets the burst (100) and then
// 10 a second: the rest are EAGAIN naming the uid, with no journal record;
// a setfattr user.tierfs.tier (a move) by them draws on the same bucket
// (EBUSY there: the kernel turns a setxattr's EAGAIN into EOPNOTSUPP).
// Root is not limited.
TEST_F(ControlTest, UsersPinsUnpinsAndMovesAreRateLimited) {
  const Creds member = Member();
  ASSERT_EQ(0, mkdir(P("u").c_str(), 0755));
  ASSERT_EQ(0, chown(P("u").c_str(), member.uid, member.gid));
  ASSERT_EQ(0, WriteFile(P("u/f"), "mine"));
  ASSERT_EQ(0, chown(P("u/f").c_str(), member.uid, member.gid));
  const std::string journal = fs_.ssd() + "/state/audit.jsonl";
  auto records = [&] {
    size_t n = 0;
    std::istringstream in(SlurpFile(journal));
    for (std::string line; std::getline(in, line);) {
      const std::string action = json::parse(line).value("action", "");
      n += action == "pin" || action == "unpin" || action == "move";
    }
    return n;
  };
  const size_t before = records();
  constexpr int kTries = 300;
  std::string out;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(0, RunAs(
                   member,
                   [&](std::string* o) {
                     const int c = Connect(sock_);
                     if (c < 0) return errno;
                     json tally = {{"ok", 0}, {"again", 0}, {"error", ""}};
                     for (int i = 0; i < kTries; ++i) {
                       const json r = Ask(c, i % 2 ? R"({"cmd":"unpin","path":"/u/f"})"
                                                   : R"({"cmd":"pin","path":"/u/f"})");
                       if (r.value("ok", false)) {
                         tally["ok"] = tally["ok"].get<int>() + 1;
                       } else if (r.value("errno", 0) == EAGAIN) {
                         tally["again"] = tally["again"].get<int>() + 1;
                         tally["error"] = r.value("error", "");
                       }
                     }
                     close(c);
                     // Its bucket is empty now: a move by setfattr too is refused.
                     tally["setfattr"] =
                         setxattr(P("u/f").c_str(), "user.tierfs.tier", "hdd", 3, 0) == 0 ? 0
                                                                                          : errno;
                     *o = tally.dump();
                     return 0;
                   },
                   &out));
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const json tally = json::parse(out);
  const int ok = tally["ok"], again = tally["again"];
  EXPECT_EQ(kTries, ok + again) << out;
  EXPECT_GE(ok, 100) << out;
  EXPECT_LE(ok, 100 + int(10 * secs) + 2) << out << " in " << secs << " s";
  EXPECT_GT(again, 0) << out;
  EXPECT_NE(std::string::npos,
            tally["error"].get<std::string>().find("too many requests from uid " +
                                                   std::to_string(member.uid) + "; retry later"))
      << out;
  EXPECT_EQ(EBUSY, tally["setfattr"]) << out;
  EXPECT_EQ(before + size_t(ok), records()) << "a refused request wrote a record";
  // Root is not limited.
  const int fd = Connect(sock_);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 150; ++i) {
    const json r =
        Ask(fd, i % 2 ? R"({"cmd":"unpin","path":"/u/f"})" : R"({"cmd":"pin","path":"/u/f"})");
    ASSERT_EQ(true, r.value("ok", false)) << i << ": " << r.dump();
  }
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

}  // namespace
}  // namespace tierfs_test

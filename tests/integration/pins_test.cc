// Manual placement and holds on a live mount: a manual move (setxattr
// user.tierfs.tier, tierctl move) stays where it was put, scan after scan;
// tierctl pin/unpin as root, as an owner and as a stranger; immutable pins.
// One mount per fixture; the policy scans every second, and a canary file a
// rule moves proves that a scan has run since (no sleeps).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/tierctl_util.h"

namespace tierfs_test {
namespace {

using nlohmann::json;

// /hot goes to the SSD tier, /cold to the HDD tier, /junk is thinned.
class PinsTest : public MountTest {
 protected:
  static std::string PolicyPath() { return TmpPolicyPath("pins-test"); }
  PinsTest() : MountTest(WithPolicy()) {}
  static constexpr char kRules[] =
      "[[rule]]\nname = \"hot-to-ssd\"\npath = \"/hot/**\"\n"
      "action = \"migrate\"\nto = \"ssd\"\n"
      "[[rule]]\nname = \"cold-to-hdd\"\npath = \"/cold/**\"\n"
      "action = \"migrate\"\nto = \"hdd\"\n"
      "[[rule]]\nname = \"wipe-junk\"\npath = \"/junk/*\"\n"
      "action = \"thin\"\n";
  static MountOptions WithPolicy() {
    std::ofstream(PolicyPath()) << kRules;
    MountOptions o;
    o.extra_args = {"--policy", PolicyPath(), "--scan-interval", "1"};
    return o;
  }
  ~PinsTest() override { unlink(PolicyPath().c_str()); }
  void SetUp() override {
    MountTest::SetUp();
    for (const char* d : {"hot", "cold", "junk"}) ASSERT_EQ(0, Err(mkdir(P(d).c_str(), 0777)));
  }

  // Waits until a policy scan has run from start to end after this call:
  // a new canary under /cold reaches the HDD tier in the scan that sees it,
  // which is also a scan that judged everything else.
  void WaitForScan() {
    const std::string canary = P("cold/canary-" + std::to_string(++canaries_));
    ASSERT_EQ(0, WriteFile(canary, "c"));
    ASSERT_TRUE(WaitFor([&] { return GetTier(canary) == "hdd"; }, 30)) << fs_.Log();
  }

  // User `uid` (group `uid`) in the control socket's group, so that they
  // may ask the daemon.
  Creds SocketUser(uid_t uid) {
    char sock[4096];
    const ssize_t n = getxattr(P("").c_str(), "user.tierfs.control", sock, sizeof sock);
    struct stat sock_st;
    EXPECT_GT(n, 0);
    EXPECT_EQ(0, n > 0 ? stat(std::string(sock, size_t(n)).c_str(), &sock_st) : -1);
    return Creds{uid, gid_t(uid), {gid_t(sock_st.st_gid)}};
  }

  // tierctl run as `creds` (a copy another user may execute).
  int TierctlAs(const Creds& creds, const std::string& args, std::string* out) {
    return tierfs_test::TierctlAs(creds, TierctlForOthers(fs_.root()), args, out);
  }

  std::string Plan() {
    char plan[65536];
    const ssize_t n = getxattr(P("").c_str(), "user.tierfs.plan", plan, sizeof plan);
    return n > 0 ? std::string(plan, size_t(n)) : "";
  }

  bool Exists(const std::string& p) {
    struct stat st;
    return lstat(p.c_str(), &st) == 0;
  }

  int canaries_ = 0;
};

TEST_F(PinsTest, SetxattrMoveSurvivesAPolicyScan) {
  const std::string f = P("hot/model.bin");
  ASSERT_EQ(0, WriteFile(f, Pattern(100000, 1)));
  ASSERT_EQ(0, SetTierOfClosed(f, "hdd")) << fs_.Log();
  ASSERT_EQ("hdd", GetTier(f));
  WaitForScan();
  WaitForScan();
  EXPECT_EQ("hdd", GetTier(f)) << fs_.Log();
}

// The test that failed before manual moves were sticky: tierctl move --to
// hdd, two scans of a rule sending it to the SSD tier, still on the HDD
// tier; the dry run says why; unpin lets the rule act again.
TEST_F(PinsTest, TierctlMoveSurvivesScansAndUnpinLetsThePolicyActAgain) {
  const std::string f = P("hot/model.bin");
  ASSERT_EQ(0, WriteFile(f, Pattern(3 << 20, 2)));
  const CommandResult moved = Tierctl({"move", "--to", "hdd", f});
  ASSERT_EQ(0, moved.exit_code) << moved.out << moved.err << fs_.Log();
  EXPECT_NE(std::string::npos, moved.out.find("moved " + f + " to hdd: 1 files")) << moved.out;
  EXPECT_EQ("hdd", GetTier(f));
  WaitForScan();
  WaitForScan();
  EXPECT_EQ("hdd", GetTier(f)) << fs_.Log();
  EXPECT_NE(std::string::npos, Plan().find("manually placed on hdd by uid 0")) << Plan();
  const CommandResult where = Tierctl({"--json", "where", f});
  ASSERT_EQ(0, where.exit_code) << where.err;
  const json hold = json::parse(where.out)[0]["hold"];
  EXPECT_EQ("manual", hold["rule"]) << where.out;
  EXPECT_EQ(true, hold["manual"]) << where.out;
  EXPECT_EQ("hdd", hold["tier"]) << where.out;
  EXPECT_EQ(0, hold["uid"]) << where.out;
  const std::string audit = SlurpFile(fs_.ssd() + "/state/audit.jsonl");
  EXPECT_NE(std::string::npos, audit.find("\"action\":\"move\",\"rule\":\"manual\"")) << audit;

  const CommandResult unpinned = Tierctl({"unpin", f});
  ASSERT_EQ(0, unpinned.exit_code) << unpinned.err;
  EXPECT_TRUE(WaitFor([&] { return GetTier(f) == "ssd"; }, 30)) << fs_.Log();
  // --no-wait queues and returns; the file gets there all the same.
  const CommandResult queued = Tierctl({"--json", "move", "--no-wait", "--to", "hdd", f});
  ASSERT_EQ(0, queued.exit_code) << queued.err;
  EXPECT_TRUE(json::parse(queued.out)[0]["job"].is_number()) << queued.out;
  EXPECT_TRUE(WaitFor([&] { return GetTier(f) == "hdd"; }, 30)) << fs_.Log();
}

// A pinned file is not thinned by a rule that thins its neighbour; the dry
// run names the pin; after unpin the rule thins it.
TEST_F(PinsTest, PinnedFileIsNotThinnedUntilUnpinned) {
  ASSERT_EQ(0, WriteFile(P("junk/keep"), "k"));
  const CommandResult pinned = Tierctl({"--json", "pin", "--for", "1d", P("junk/keep")});
  ASSERT_EQ(0, pinned.exit_code) << pinned.out << pinned.err;
  const json reply = json::parse(pinned.out);
  ASSERT_EQ(1u, reply.size()) << pinned.out;
  EXPECT_TRUE(reply[0]["until"].is_string()) << pinned.out;
  EXPECT_EQ(false, reply[0]["immutable"]);
  ASSERT_EQ(0, WriteFile(P("junk/go"), "g"));
  ASSERT_TRUE(WaitFor([&] { return !Exists(P("junk/go")); }, 30)) << fs_.Log();
  EXPECT_TRUE(Exists(P("junk/keep")));
  EXPECT_NE(std::string::npos, Plan().find("/junk/keep is manually pinned by uid 0 until"))
      << Plan();
  ASSERT_EQ(0, Tierctl({"unpin", P("junk/keep")}).exit_code);
  EXPECT_TRUE(WaitFor([&] { return !Exists(P("junk/keep")); }, 30)) << fs_.Log();
}

// As root, as the owner and as a stranger; an immutable pin that nobody may
// shorten or remove and only root may extend.
TEST_F(PinsTest, OwnersPinTheirOwnStrangersAreRefusedImmutableHoldsOnlyGrow) {
  const std::string f = P("hot/mine");
  ASSERT_EQ(0, WriteFile(f, "data"));
  ASSERT_EQ(0, chown(f.c_str(), 12345, 12345));
  const Creds owner = SocketUser(12345);
  const Creds stranger = SocketUser(23456);
  std::string out;
  EXPECT_EQ(1, TierctlAs(stranger, "pin --for 1h " + f, &out)) << out;
  EXPECT_NE(std::string::npos, out.find("/hot/mine: owned by uid 12345, not by uid 23456")) << out;
  EXPECT_EQ(1, TierctlAs(stranger, "move --to hdd " + f, &out)) << out;
  EXPECT_EQ("ssd", GetTier(f));
  // A quoted glob is expanded by tierctl.
  EXPECT_EQ(0, TierctlAs(owner, "pin --immutable --for 1d '" + P("hot/m*") + "'", &out)) << out;
  EXPECT_NE(std::string::npos, out.find("pinned " + f)) << out;
  EXPECT_EQ(EPERM, OpenErr(f, O_WRONLY));
  // Nobody shortens or removes it, root included.
  EXPECT_EQ(1, TierctlAs(owner, "unpin " + f, &out)) << out;
  EXPECT_NE(std::string::npos, out.find("held immutable until")) << out;
  const CommandResult root_unpin = Tierctl({"unpin", f});
  EXPECT_EQ(1, root_unpin.exit_code);
  EXPECT_NE(std::string::npos, root_unpin.err.find("nobody may shorten or remove it"))
      << root_unpin.err;
  EXPECT_EQ(1, Tierctl({"pin", "--immutable", "--for", "1h", f}).exit_code);
  EXPECT_EQ(1, Tierctl({"pin", "--for", "2d", f}).exit_code);  // dropping immutable shortens
  // Only root extends it.
  EXPECT_EQ(1, TierctlAs(owner, "pin --immutable --for 2d " + f, &out)) << out;
  EXPECT_NE(std::string::npos, out.find("only root may extend it")) << out;
  const CommandResult extended = Tierctl({"pin", "--immutable", "--for", "2d", f});
  EXPECT_EQ(0, extended.exit_code) << extended.err;
  EXPECT_EQ(EPERM, OpenErr(f, O_WRONLY));
  // A plain pin of their own file, and its removal.
  const std::string g = P("hot/other");
  ASSERT_EQ(0, WriteFile(g, "x"));
  ASSERT_EQ(0, chown(g.c_str(), 12345, 12345));
  EXPECT_EQ(0, TierctlAs(owner, "pin --tier hdd --until 2099-01-31 " + g, &out)) << out;
  EXPECT_EQ("hdd", GetTier(g));
  EXPECT_EQ(0, TierctlAs(owner, "unpin " + g, &out)) << out;
  const std::string audit = SlurpFile(fs_.ssd() + "/state/audit.jsonl");
  EXPECT_NE(std::string::npos, audit.find("by uid 12345, until 2099-01-3")) << audit;
}

// The test that failed before users' immutable pins were bounded: an
// immutable hold is removed by nobody before its end, root included, so a
// user's `pin --immutable` without an end kept their files, and the tiers'
// space, for ever. Now a user other than root pins immutable only with an
// end within the policy's [pins] max_user_immutable (30d when the policy
// does not say; "0": not at all); root is not bound; a reload applies.
TEST_F(PinsTest, UsersImmutablePinsEndWithinThePolicysLimit) {
  const std::string f = P("hot/theirs"), g = P("hot/then"), h = P("hot/never"), r = P("hot/root");
  for (const std::string& p : {f, g, h, r}) ASSERT_EQ(0, WriteFile(p, "data"));
  for (const std::string& p : {f, g, h}) ASSERT_EQ(0, chown(p.c_str(), 12345, 12345));
  const Creds owner = SocketUser(12345);
  std::string out;
  EXPECT_EQ(1, TierctlAs(owner, "pin --immutable " + f, &out)) << out;
  EXPECT_NE(std::string::npos, out.find("tierctl pin " + f)) << out;
  EXPECT_NE(std::string::npos, out.find("refused for uid 12345: an immutable pin needs an end"))
      << out;
  EXPECT_NE(std::string::npos, out.find("at most 30d ([pins] max_user_immutable")) << out;
  EXPECT_EQ(1, TierctlAs(owner, "pin --immutable --for 31d " + f, &out)) << out;
  EXPECT_NE(std::string::npos, out.find(", later than ")) << out;
  EXPECT_NE(std::string::npos, out.find("max_user_immutable")) << out;
  EXPECT_EQ(1, TierctlAs(owner, "pin --immutable --until 2099-01-01 " + f, &out)) << out;
  EXPECT_NE(std::string::npos, out.find("it would end 2099-01-0")) << out;
  EXPECT_EQ(0, OpenErr(f, O_WRONLY)) << "a refused pin left a hold";
  // Right at the limit, and within it.
  EXPECT_EQ(0, TierctlAs(owner, "pin --immutable --for 30d " + f, &out)) << out;
  EXPECT_EQ(EPERM, OpenErr(f, O_WRONLY));
  // Root's immutable pins are not bound: no end at all.
  const CommandResult root_pin = Tierctl({"--json", "pin", "--immutable", r});
  ASSERT_EQ(0, root_pin.exit_code) << root_pin.err;
  EXPECT_TRUE(json::parse(root_pin.out)[0]["until"].is_null()) << root_pin.out;
  EXPECT_EQ(EPERM, OpenErr(r, O_WRONLY));

  // The limit the admin writes, applied by a reload.
  std::ofstream(PolicyPath()) << "[pins]\nmax_user_immutable = \"2h\"\n" << kRules;
  const CommandResult reload = Tierctl({"policy", "reload", fs_.mnt()});
  ASSERT_EQ(0, reload.exit_code) << reload.out << reload.err;
  EXPECT_EQ(1, TierctlAs(owner, "pin --immutable --for 3h " + g, &out)) << out;
  EXPECT_NE(std::string::npos, out.find("at most 2h ([pins] max_user_immutable")) << out;
  EXPECT_EQ(0, TierctlAs(owner, "pin --immutable --for 1h " + g, &out)) << out;
  EXPECT_EQ(EPERM, OpenErr(g, O_WRONLY));
  // "0": none at all; a plain pin is still theirs to set.
  std::ofstream(PolicyPath()) << "[pins]\nmax_user_immutable = \"0\"\n" << kRules;
  ASSERT_EQ(0, Tierctl({"policy", "reload", fs_.mnt()}).exit_code);
  EXPECT_EQ(1, TierctlAs(owner, "pin --immutable --for 1m " + h, &out)) << out;
  EXPECT_NE(std::string::npos, out.find("forbids immutable pins by users other than root ([pins] "
                                        "max_user_immutable = \"0\")"))
      << out;
  EXPECT_EQ(0, TierctlAs(owner, "pin --for 1m " + h, &out)) << out;
  EXPECT_EQ(0, OpenErr(h, O_WRONLY));
  const CommandResult root_again = Tierctl({"pin", "--immutable", "--for", "1h", h});
  EXPECT_EQ(0, root_again.exit_code) << root_again.err;
}

// Only files and directories have a tier. tierctl move of a symbolic link
// printed "moved 0 files", exited 0 and left a "forever (manual)" hold on
// the link; now it is refused (EINVAL, exit 1) as setfattr user.tierfs.tier
// refuses it, and nothing is pinned. So is pin --tier; a plain pin is not.
TEST_F(PinsTest, MoveOfASymlinkOrFifoIsRefusedAndPinsNothing) {
  const std::string f = P("hot/model.bin"), link = P("hot/link"), fifo = P("hot/fifo");
  ASSERT_EQ(0, WriteFile(f, "x"));
  ASSERT_EQ(0, Err(symlink("model.bin", link.c_str())));
  ASSERT_EQ(0, Err(mkfifo(fifo.c_str(), 0644)));
  for (const std::string& p : {link, fifo}) {
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"move", "--to", "hdd", p}, {"pin", "--tier", "hdd", p}}) {
      const CommandResult r = Tierctl(args);
      EXPECT_EQ(1, r.exit_code) << args[0] << " " << p << ": " << r.out << r.err;
      EXPECT_NE(std::string::npos, r.err.find("not a regular file or a directory"))
          << args[0] << " " << p << ": " << r.err;
      EXPECT_EQ(std::string::npos, r.out.find("moved")) << r.out;
    }
    const CommandResult where = Tierctl({"--json", "where", p});
    ASSERT_EQ(0, where.exit_code) << where.err;
    EXPECT_TRUE(json::parse(where.out)[0]["hold"].is_null()) << where.out;
  }
  // The file the link names is where it was, and not held either.
  EXPECT_EQ("ssd", GetTier(f));
  const CommandResult where = Tierctl({"--json", "where", f});
  ASSERT_EQ(0, where.exit_code) << where.err;
  EXPECT_TRUE(json::parse(where.out)[0]["hold"].is_null()) << where.out;
  // A plain pin of a link still holds it.
  EXPECT_EQ(0, Tierctl({"pin", link}).exit_code);
}

// `where`'s hold of `path` as JSON (null when none).
json HoldOf(const std::string& path) {
  const CommandResult where = Tierctl({"--json", "where", path});
  EXPECT_EQ(0, where.exit_code) << where.err;
  return where.exit_code == 0 ? json::parse(where.out)[0]["hold"] : json();
}

std::string TierOf(const std::string& path) {
  const CommandResult where = Tierctl({"--json", "where", path});
  EXPECT_EQ(0, where.exit_code) << where.err;
  return where.exit_code == 0 ? json::parse(where.out)[0]["tier"].get<std::string>() : "";
}

// A manual move that fails gives the file the hold it had back. Before,
// tierctl move --to ssd of a 95 MiB file on the HDD tier failed (ENOSPC on
// a 64 MiB SSD tier, exit 1) and left "hold":{"manual":true,"tier":"ssd"}
// on a file on the HDD tier, which no rule moved again until an unpin.
TEST(ManualMoveTest, AFailedMoveGivesTheHoldFromBeforeBack) {
  MountOptions o;
  o.ssd_tmpfs_mb = 64;
  o.hdd_tmpfs_mb = 256;
  TierfsMount fs(o);
  ASSERT_TRUE(fs.Mount());
  const std::string f = fs.path("big"), g = fs.path("pinned");
  ASSERT_EQ(0, WriteFile(f, Pattern(95 << 20, 1))) << fs.Log();
  ASSERT_EQ(0, SetTierOfClosed(f, "hdd")) << fs.Log();
  ASSERT_EQ(0, WriteFile(g, Pattern(95 << 20, 2))) << fs.Log();
  ASSERT_EQ(0, SetTierOfClosed(g, "hdd")) << fs.Log();
  ASSERT_EQ(0, Tierctl({"unpin", f}).exit_code);
  ASSERT_EQ(0, Tierctl({"unpin", g}).exit_code);
  ASSERT_TRUE(HoldOf(f).is_null());
  // g has a pin of its own (no tier), which must stay as it was.
  ASSERT_EQ(0, Tierctl({"pin", "--for", "1d", g}).exit_code);
  const json g_before = HoldOf(g);
  ASSERT_FALSE(g_before.is_null());

  for (const std::string& p : {f, g}) {
    const CommandResult r = Tierctl({"move", "--to", "ssd", p});
    EXPECT_EQ(1, r.exit_code) << r.out << r.err << fs.Log();
    EXPECT_EQ("hdd", TierOf(p));
  }
  EXPECT_TRUE(HoldOf(f).is_null()) << HoldOf(f);
  EXPECT_EQ(g_before, HoldOf(g));
  const std::string audit = SlurpFile(fs.ssd() + "/state/audit.jsonl");
  EXPECT_NE(std::string::npos, audit.find("\"action\":\"unpin\",\"rule\":\"manual\"")) << audit;
}

// kill -9 of the daemon while tierctl move --to hdd waits its turn: the
// next mount finds a manual placement on hdd of a file on ssd, whose move
// never completed, and removes it. Before, the hold named hdd for good.
TEST(ManualMoveTest, AMoveTheDaemonDiedInLeavesNoHoldAfterRemount) {
  MountOptions o;
  o.extra_args = {"--move-bandwidth", "1"};  // 1 MiB/s: the move is still running at the kill
  TierfsMount fs(o);
  ASSERT_TRUE(fs.Mount());
  const std::string f = fs.path("f");
  ASSERT_EQ(0, WriteFile(f, Pattern(32 << 20, 3)));
  const CommandResult r = Tierctl({"move", "--no-wait", "--to", "hdd", f});
  ASSERT_EQ(0, r.exit_code) << r.err << fs.Log();
  ASSERT_EQ("hdd", HoldOf(f).value("tier", "")) << HoldOf(f);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  fs.Kill9();
  ASSERT_TRUE(fs.Mount());
  EXPECT_EQ("ssd", TierOf(f));
  EXPECT_TRUE(HoldOf(f).is_null()) << HoldOf(f) << fs.Log();
  const std::string audit = SlurpFile(fs.ssd() + "/state/audit.jsonl");
  EXPECT_NE(std::string::npos, audit.find("never took effect")) << audit;
}

TEST_F(PinsTest, BadArgumentsExitTwo) {
  const std::string f = P("hot/x");
  ASSERT_EQ(0, WriteFile(f, "x"));
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"pin", "--for", "3x", f},
                                             {"pin", "--until", "tomorrow", f},
                                             {"pin", "--until", "2099-01-01", "--for", "1d", f},
                                             {"pin", "--tier", "tape", f},
                                             {"pin", "--frobnicate", f},
                                             {"pin"},
                                             {"unpin"},
                                             {"move", f},
                                             {"move", "--to", "floppy", f}}) {
    const CommandResult r = Tierctl(args);
    EXPECT_EQ(2, r.exit_code) << args[0] << " " << (args.size() > 1 ? args[1] : "") << r.err;
  }
  // Ends tierfs cannot hold, or that have passed, name the option and why
  // (they were \"until_ns\" must be a time in the future, 3000 included).
  for (const auto& [args, why] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"pin", "--until", "3000-01-01", f}, "--until '3000-01-01': after 2262-04-11"},
           {{"pin", "--until", "1960-01-01", f}, "--until '1960-01-01': in the past"},
           {{"pin", "--for", "999999w", f}, "--for '999999w': would end after 2262-04-11"}}) {
    const CommandResult r = Tierctl(args);
    EXPECT_EQ(2, r.exit_code) << args[2] << r.err;
    EXPECT_NE(std::string::npos, r.err.find(why)) << r.err;
  }
  const CommandResult help = Tierctl({"move", "--help"});
  EXPECT_EQ(0, help.exit_code);
  EXPECT_NE(std::string::npos, help.out.find("move --to ssd|hdd")) << help.out;
  // A missing file is a failure, not bad usage.
  EXPECT_EQ(1, Tierctl({"pin", P("hot/none")}).exit_code);
}

}  // namespace
}  // namespace tierfs_test

// tierctl policy check|show|dry-run|reload and tierctl audit on a live
// mount: table and JSON, as root and as another user, the refusals (reload
// by non-root, a broken policy file), exit statuses 0, 1 and 2.
// The mount scans once an hour, so the plan the dry runs see stays undone.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/tierctl_util.h"

namespace tierfs_test {
namespace {

using nlohmann::json;

bool Has(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

// Needs no mount: the file is parsed by tierctl itself.
TEST(TierctlPolicyCheck, EveryErrorOfTheFileWithItsPlaceAndTheExitStatus) {
  char dir[] = "/tmp/tierfs-policy-check.XXXXXX";
  ASSERT_NE(nullptr, mkdtemp(dir));
  const std::string bad = std::string(dir) + "/bad.toml", good = std::string(dir) + "/good.toml";
  std::ofstream(bad) << "[tiers]\nssd_hihg_watermark = 0.9\n"
                        "[[rule]]\nname = \"a\"\naction = \"thinn\"\n"
                        "[[rule]]\nname = \"b\"\naction = \"migrate\"\nto = \"hddd\"\n";
  std::ofstream(good) << "[[rule]]\nname = \"a\"\npath = \"/x/**\"\naction = \"migrate\"\n"
                         "to = \"hdd\"\n";
  const CommandResult r = Tierctl({"policy", "check", bad});
  EXPECT_EQ(1, r.exit_code);
  EXPECT_TRUE(Has(r.err, bad + ":2:1: unknown key \"ssd_hihg_watermark\"")) << r.err;
  EXPECT_TRUE(Has(r.err, "did you mean \"ssd_high_watermark\"")) << r.err;
  EXPECT_TRUE(Has(r.err, bad + ":5:10: action must be")) << r.err;
  EXPECT_TRUE(Has(r.err, bad + ":9:6: unknown tier \"hddd\"")) << r.err;
  EXPECT_TRUE(Has(r.err, "3 errors")) << r.err;
  const CommandResult js = Tierctl({"--json", "policy", "check", bad});
  EXPECT_EQ(1, js.exit_code);
  const json j = json::parse(js.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << js.out;
  EXPECT_EQ(false, j["valid"]);
  EXPECT_EQ(3u, j["errors"].size());
  const CommandResult ok = Tierctl({"policy", "check", good});
  EXPECT_EQ(0, ok.exit_code) << ok.err;
  EXPECT_TRUE(Has(ok.out, "ok (0 series, 1 rules)")) << ok.out;
  const CommandResult missing = Tierctl({"policy", "check", std::string(dir) + "/nope.toml"});
  EXPECT_EQ(1, missing.exit_code);
  EXPECT_TRUE(Has(missing.err, "nope.toml")) << missing.err;
  EXPECT_EQ(2, Tierctl({"policy", "check"}).exit_code);
  EXPECT_EQ(2, Tierctl({"policy", "check", good, good}).exit_code);
  EXPECT_EQ(2, Tierctl({"policy", "frobnicate"}).exit_code);
  EXPECT_EQ(2, Tierctl({"policy", "check", "--no-such", good}).exit_code);
  EXPECT_EQ(2, Tierctl({"audit", "--since", "yesterdayish"}).exit_code);
  // An action no record has is a mistyped one, not an empty journal.
  const CommandResult action = Tierctl({"audit", "--action", "nope"});
  EXPECT_EQ(2, action.exit_code);
  EXPECT_TRUE(Has(action.err, "--action nope: not an action (corrupt, delete,")) << action.err;
  EXPECT_EQ(2, Tierctl({"status", "--since", "1h"}).exit_code);  // not its option
  unlink(bad.c_str());
  unlink(good.c_str());
  rmdir(dir);
}

class TierctlPolicyTest : public MountTest {
 protected:
  static std::string PolicyPath() { return TmpPolicyPath("policy-cli-test"); }
  static constexpr char kPolicy[] =
      "[[rule]]\nname = \"cold-to-hdd\"\npath = \"/cold/**\"\naction = \"migrate\"\n"
      "to = \"hdd\"\n";
  TierctlPolicyTest() : MountTest(WithPolicy()) {}
  static MountOptions WithPolicy() {
    std::ofstream(PolicyPath()) << kPolicy;
    MountOptions o;
    o.extra_args = {"--policy", PolicyPath(), "--scan-interval", "3600"};
    return o;
  }
  ~TierctlPolicyTest() override { unlink(PolicyPath().c_str()); }

  // cold/open/f (anyone may stat it) and cold/closed/f (root only), 4 KiB each.
  void MakeTree() {
    ASSERT_EQ(0, Err(mkdir(P("cold").c_str(), 0755)));
    ASSERT_EQ(0, Err(mkdir(P("cold/open").c_str(), 0755)));
    ASSERT_EQ(0, Err(mkdir(P("cold/closed").c_str(), 0700)));
    ASSERT_EQ(0, WriteFile(P("cold/open/f"), Pattern(4096, 1)));
    ASSERT_EQ(0, WriteFile(P("cold/closed/f"), Pattern(4096, 2)));
  }
};

TEST_F(TierctlPolicyTest, ShowDryRunAndReloadAsRoot) {
  MakeTree();
  const CommandResult show = Tierctl({"policy", "show", fs_.mnt()});
  ASSERT_EQ(0, show.exit_code) << show.err;
  EXPECT_TRUE(Has(show.out, "policy: " + PolicyPath())) << show.out;
  EXPECT_TRUE(Has(show.out, "loaded: 20")) << show.out;  // a date, not epoch seconds
  EXPECT_TRUE(Has(show.out, kPolicy)) << show.out;
  EXPECT_FALSE(Has(show.out, "refused")) << show.out;

  // The running policy, over the tree: both files, 8 KiB.
  const CommandResult dry = Tierctl({"policy", "dry-run", P("cold")});
  ASSERT_EQ(0, dry.exit_code) << dry.err;
  EXPECT_TRUE(Has(dry.out, "rule \"cold-to-hdd\": 2 migrate (8.0 KiB)")) << dry.out;
  EXPECT_TRUE(Has(dry.out, "/cold/open/f")) << dry.out;
  EXPECT_TRUE(Has(dry.out, "-> hdd")) << dry.out;
  const CommandResult dry_js = Tierctl({"--json", "policy", "dry-run", fs_.mnt()});
  ASSERT_EQ(0, dry_js.exit_code) << dry_js.err;
  json plan = json::parse(dry_js.out, nullptr, false);
  ASSERT_TRUE(plan.is_object()) << dry_js.out;
  EXPECT_EQ("running", plan["policy"]);
  ASSERT_EQ(1u, plan["rules"].size()) << plan.dump();
  EXPECT_EQ(2u, plan["rules"][0]["totals"]["migrate"]["files"]);
  EXPECT_EQ(8192u, plan["rules"][0]["totals"]["migrate"]["bytes"]);
  EXPECT_EQ(0u, plan["hidden"]);
  // Nothing was done: a dry run.
  EXPECT_EQ("ssd", GetTier(P("cold/open/f")));

  // Another file's policy, sent as text: only what it says.
  const std::string other = fs_.root() + "/other.toml";
  std::ofstream(other) << "[[rule]]\nname = \"open-only\"\npath = \"/cold/open/**\"\n"
                          "action = \"migrate\"\nto = \"hdd\"\n";
  const CommandResult dry_file = Tierctl({"-b", "policy", "dry-run", other, fs_.mnt()});
  ASSERT_EQ(0, dry_file.exit_code) << dry_file.err;
  EXPECT_TRUE(Has(dry_file.out, "rule \"open-only\": 1 migrate (4096)")) << dry_file.out;
  EXPECT_FALSE(Has(dry_file.out, "closed")) << dry_file.out;
  std::ofstream(other) << "[[rule]]\nname = \"x\"\naction = \"teleport\"\n";
  const CommandResult dry_bad = Tierctl({"policy", "dry-run", other, fs_.mnt()});
  EXPECT_EQ(1, dry_bad.exit_code);
  EXPECT_TRUE(Has(dry_bad.err, other + ":3:10: action must be")) << dry_bad.err;

  // Reload: fine, then refused with the parser's words; show says so.
  const CommandResult reload = Tierctl({"policy", "reload", fs_.mnt()});
  EXPECT_EQ(0, reload.exit_code) << reload.err;
  EXPECT_TRUE(Has(reload.out, "policy reloaded from " + PolicyPath())) << reload.out;
  std::ofstream(PolicyPath()) << "[[rule]]\nname = \"x\"\naction = \"teleport\"\n";
  const CommandResult refused = Tierctl({"policy", "reload", fs_.mnt()});
  EXPECT_EQ(1, refused.exit_code);
  EXPECT_TRUE(Has(refused.err, PolicyPath() + ":3:10: action must be")) << refused.err;
  const CommandResult after = Tierctl({"--json", "policy", "show", fs_.mnt()});
  ASSERT_EQ(0, after.exit_code) << after.err;
  const json info = json::parse(after.out, nullptr, false);
  ASSERT_TRUE(info.is_object()) << after.out;
  EXPECT_EQ(PolicyPath(), info["file"]);
  EXPECT_EQ(kPolicy, info["text"]);  // the running one, not the broken file
  ASSERT_TRUE(info["last_error"].is_string()) << info.dump();
  EXPECT_TRUE(Has(info["last_error"], ":3:10: action must be")) << info.dump();
  const CommandResult table = Tierctl({"policy", "show", fs_.mnt()});
  EXPECT_TRUE(Has(table.out, "last reload refused")) << table.out;

  EXPECT_EQ(1, Tierctl({"policy", "show", "/etc"}).exit_code);  // not a tierfs mount
  EXPECT_EQ(2, Tierctl({"policy", "reload", fs_.mnt(), fs_.mnt()}).exit_code);
}

TEST_F(TierctlPolicyTest, AnotherUserSeesWhatTheyMayStatAndMayNotReload) {
  MakeTree();
  const std::string bin = TierctlForOthers(fs_.root());
  ASSERT_EQ(0, chmod(fs_.root().c_str(), 0755));
  char sock[4096];
  const ssize_t n = getxattr(fs_.mnt().c_str(), "user.tierfs.control", sock, sizeof sock - 1);
  ASSERT_GT(n, 0);
  sock[n] = '\0';
  struct stat sock_st;
  ASSERT_EQ(0, stat(sock, &sock_st));
  const Creds member{12345, 12345, {gid_t(sock_st.st_gid)}};
  std::string out;
  EXPECT_EQ(0, TierctlAs(member, bin, "policy show " + fs_.mnt(), &out)) << out;
  EXPECT_TRUE(Has(out, kPolicy)) << out;
  EXPECT_EQ(0, TierctlAs(member, bin, "--json policy dry-run " + fs_.mnt(), &out)) << out;
  const json plan = json::parse(out, nullptr, false);
  ASSERT_TRUE(plan.is_object()) << out;
  EXPECT_EQ(1u, plan["hidden"]) << out;
  EXPECT_EQ(1u, plan["rules"][0]["totals"]["migrate"]["files"]) << out;
  EXPECT_FALSE(Has(out, "closed")) << out;
  EXPECT_EQ(0, TierctlAs(member, bin, "policy dry-run " + fs_.mnt(), &out)) << out;
  EXPECT_TRUE(Has(out, "1 actions on paths you may not stat are not shown")) << out;

  EXPECT_EQ(1, TierctlAs(member, bin, "policy reload " + fs_.mnt(), &out)) << out;
  EXPECT_TRUE(Has(out, "only root may reload the policy")) << out;
  // The journal: only records of paths the user may stat (not the reload
  // of root's policy file, not the file in a directory closed to them).
  ASSERT_EQ(0, SetTierOfClosed(P("cold/open/f"), "hdd"));
  ASSERT_EQ(0, SetTierOfClosed(P("cold/closed/f"), "hdd"));
  ASSERT_EQ(0, Tierctl({"policy", "reload", fs_.mnt()}).exit_code);
  const CommandResult root_view = Tierctl({"--json", "audit", fs_.mnt()});
  EXPECT_TRUE(Has(root_view.out, "/cold/closed/f")) << root_view.out;
  EXPECT_TRUE(Has(root_view.out, "\"reload\"")) << root_view.out;
  EXPECT_EQ(0, TierctlAs(member, bin, "--json audit " + fs_.mnt(), &out)) << out;
  EXPECT_TRUE(Has(out, "/cold/open/f")) << out;
  EXPECT_FALSE(Has(out, "closed")) << out;
  EXPECT_FALSE(Has(out, "\"reload\"")) << out;
  EXPECT_EQ(0, kill(fs_.pid(), 0)) << "the daemon died";
}

// The journal through the daemon: filters, table and JSON lines, and pages
// (asked for on the raw socket one record each: they join up in order).
TEST_F(TierctlPolicyTest, AuditFiltersAndPages) {
  MakeTree();
  ASSERT_EQ(0, SetTierOfClosed(P("cold/open/f"), "hdd"));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(0, Tierctl({"policy", "reload", fs_.mnt()}).exit_code);

  const CommandResult table = Tierctl({"audit", fs_.mnt()});
  ASSERT_EQ(0, table.exit_code) << table.err;
  EXPECT_TRUE(Has(table.out, "TIME")) << table.out;
  EXPECT_TRUE(Has(table.out, "/cold/open/f")) << table.out;
  EXPECT_TRUE(Has(table.out, PolicyPath())) << table.out;

  const CommandResult reloads = Tierctl({"--json", "audit", "--action", "reload", fs_.mnt()});
  ASSERT_EQ(0, reloads.exit_code) << reloads.err;
  std::vector<json> lines;
  std::string line;
  for (std::istringstream in(reloads.out); std::getline(in, line);)
    lines.push_back(json::parse(line, nullptr, false));
  ASSERT_EQ(3u, lines.size()) << reloads.out;
  for (const json& l : lines) EXPECT_EQ("reload", l["action"]) << l.dump();
  EXPECT_LE(lines[0]["time"].get<std::string>(), lines[2]["time"].get<std::string>());

  const CommandResult under = Tierctl({"--json", "audit", "--path", P("cold"), fs_.mnt()});
  ASSERT_EQ(0, under.exit_code) << under.err;
  EXPECT_TRUE(Has(under.out, "/cold/open/f")) << under.out;
  EXPECT_FALSE(Has(under.out, "\"reload\"")) << under.out;
  const CommandResult recent = Tierctl({"--json", "audit", "--since", "1h", fs_.mnt()});
  EXPECT_TRUE(Has(recent.out, "\"reload\"")) << recent.out;
  const CommandResult future = Tierctl({"--json", "audit", "--since", "2999-01-01", fs_.mnt()});
  ASSERT_EQ(0, future.exit_code) << future.err;
  EXPECT_EQ("", future.out);

  // Pages of one record: every record once, in the order of the whole.
  char sock[4096];
  const ssize_t n = getxattr(fs_.mnt().c_str(), "user.tierfs.control", sock, sizeof sock - 1);
  ASSERT_GT(n, 0);
  sock[n] = '\0';
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(size_t(n), sizeof addr.sun_path);
  memcpy(addr.sun_path, sock, size_t(n));
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(0, connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
  std::vector<std::string> paged;
  json next = 0;
  for (int pages = 0; !next.is_null() && pages < 100; ++pages) {
    const std::string req = json{{"cmd", "audit"}, {"limit", 1}, {"offset", next}}.dump() + "\n";
    ASSERT_EQ(ssize_t(req.size()), write(fd, req.data(), req.size()));
    std::string reply;
    char c;
    while (read(fd, &c, 1) == 1 && c != '\n') reply.push_back(c);
    const json j = json::parse(reply, nullptr, false);
    ASSERT_TRUE(j.is_object() && j["ok"] == true) << reply;
    ASSERT_LE(j["records"].size(), 1u);
    for (const json& r : j["records"]) paged.push_back(r.dump());
    next = j["next"];
  }
  close(fd);
  const CommandResult all = Tierctl({"--json", "audit", fs_.mnt()});
  std::vector<std::string> whole;
  for (std::istringstream in(all.out); std::getline(in, line);)
    whole.push_back(json::parse(line).dump());
  EXPECT_GE(whole.size(), 4u);
  EXPECT_EQ(whole, paged);
}

// `-o ro`: no rule changes anything (before, a read-only mount thinned
// checkpoints on its first scan), nor does the evictor, nor tierctl pin,
// unpin or move (they pinned and moved files on a read-only mount).
TEST(ReadOnlyMountTest, TheMountRunsNoRule) {
  const std::string policy = TmpPolicyPath("ro-test");
  std::ofstream(policy) << "[[rule]]\nname = \"all-to-hdd\"\npath = \"/cold/**\"\n"
                           "action = \"migrate\"\nto = \"hdd\"\n";
  TierfsMount m;
  ASSERT_TRUE(m.Mount());
  ASSERT_EQ(0, Err(mkdir(m.path("cold").c_str(), 0755)));
  ASSERT_EQ(0, WriteFile(m.path("cold/a"), Pattern(100000, 1)));
  ASSERT_TRUE(m.Unmount());
  m.options().extra_opts = {"ro"};
  // Every SSD tier is above a 1% watermark: the evictor would move cold/a.
  m.options().extra_args = {"--policy",
                            policy,
                            "--scan-interval",
                            "1",
                            "--ssd-high-watermark",
                            "1%",
                            "--ssd-low-watermark",
                            "0.5%"};
  ASSERT_TRUE(m.Mount()) << m.Log();
  EXPECT_FALSE(WaitFor([&] { return GetTier(m.path("cold/a")) == "hdd"; }, 4));
  EXPECT_NE(std::string::npos, m.Log().find("read-only mount")) << m.Log();
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"pin", m.path("cold/a")},
                                             {"unpin", m.path("cold/a")},
                                             {"move", "--to", "hdd", m.path("cold/a")}}) {
    const CommandResult r = Tierctl(args);
    EXPECT_EQ(1, r.exit_code) << args[0] << r.out;
    EXPECT_NE(std::string::npos, r.err.find("is mounted read-only (-o ro)")) << r.err;
  }
  EXPECT_EQ("ssd", GetTier(m.path("cold/a")));
  const CommandResult where = Tierctl({"where", m.path("cold/a")});
  EXPECT_EQ(std::string::npos, where.out.find("manual")) << where.out;
  std::string got;
  EXPECT_EQ(0, ReadFile(m.path("cold/a"), &got));
  EXPECT_TRUE(m.Unmount());
  unlink(policy.c_str());
}

}  // namespace
}  // namespace tierfs_test

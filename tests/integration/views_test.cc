// tierctl's read-only listings (tools/tierctl_views.cc, fs/control_views.cc,
// fs/control_gens.cc) on a live mount with two checkpoint series: where -r,
// ls [-l], du and gens, tables and JSON, as root and as another user, the
// daemon's paging, and bad usage. One mount for all the checks.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

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

constexpr char kPolicy[] = R"([[series]]
name = "hf"
pattern = "**/checkpoint-{gen}"
kind = "dir"
complete = "rename"

[[series]]
name = "ds"
pattern = "**/global_step{gen}"
kind = "dir"
complete = "marker:done"

[[rule]]
name = "keep-newest"
series = "hf"
keep_last = 1
action = "migrate"
to = "ssd"

[[rule]]
name = "thin-old"
series = "hf"
older_than_newest = 2
older_than = "1d"
action = "thin"

[[rule]]
name = "old-to-hdd"
series = "hf"
older_than_newest = 1
action = "migrate"
to = "hdd"
)";

// One request on the raw control socket, its reply.
json AskSocket(const std::string& sock, const json& request) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) close(fd);
    return nullptr;
  }
  const std::string line = request.dump() + "\n";
  std::string reply;
  if (write(fd, line.data(), line.size()) == ssize_t(line.size())) {
    char c;
    while (read(fd, &c, 1) == 1 && c != '\n') reply.push_back(c);
  }
  close(fd);
  return json::parse(reply, nullptr, false);
}

class ViewsTest : public MountTest {
 protected:
  static std::string PolicyPath() { return TmpPolicyPath("views-test"); }
  static MountOptions WithPolicy() {
    std::ofstream(PolicyPath()) << kPolicy;
    MountOptions o;
    o.extra_args = {"--policy", PolicyPath(), "--scan-interval", "1"};
    return o;
  }
  ViewsTest() : MountTest(WithPolicy()) {}
  ~ViewsTest() override { unlink(PolicyPath().c_str()); }

  json TierctlJson(const std::vector<std::string>& args) {
    const CommandResult r = Tierctl(args);
    EXPECT_EQ(0, r.exit_code) << r.err;
    return json::parse(r.out, nullptr, false);
  }
  static bool Has(const std::string& text, const std::string& what) {
    return text.find(what) != std::string::npos;
  }
};

TEST_F(ViewsTest, ListingsAsRootAndAsAnotherUser) {
  for (const char* d : {"runs", "runs/a", "runs/b", "runs/a/checkpoint-100",
                        "runs/a/checkpoint-200", "runs/a/checkpoint-300", "runs/b/global_step5"})
    ASSERT_EQ(0, mkdir(P(d).c_str(), 0755)) << d;
  ASSERT_EQ(0, WriteFile(P("runs/a/checkpoint-100/model.bin"), std::string(1000, 'a')));
  ASSERT_EQ(0, WriteFile(P("runs/a/checkpoint-200/model.bin"), std::string(2000, 'b')));
  ASSERT_EQ(0, WriteFile(P("runs/a/checkpoint-300/model.bin"), std::string(3000, 'c')));
  ASSERT_EQ(0, WriteFile(P("runs/a/notes.txt"), "hello"));
  ASSERT_EQ(0, symlink("checkpoint-300", P("runs/a/latest").c_str()));
  ASSERT_EQ(0, WriteFile(P("runs/b/global_step5/w.bin"), std::string(50, 'w')));
  ASSERT_EQ(0, mkdir(P("private").c_str(), 0700));
  ASSERT_EQ(0, WriteFile(P("private/secret"), "hidden"));
  // The policy moves the two older generations to hdd.
  ASSERT_TRUE(WaitFor(
      [&] {
        return GetTier(P("runs/a/checkpoint-100/model.bin")) == "hdd" &&
               GetTier(P("runs/a/checkpoint-200/model.bin")) == "hdd";
      },
      30))
      << fs_.Log();

  // where -r: every entry below, with its tier.
  const CommandResult tree = Tierctl({"where", "-r", P("runs")});
  ASSERT_EQ(0, tree.exit_code) << tree.err;
  EXPECT_TRUE(Has(tree.out, P("runs/a/checkpoint-100/model.bin") + "  hdd")) << tree.out;
  EXPECT_TRUE(Has(tree.out, P("runs/a/checkpoint-300/model.bin") + "  ssd")) << tree.out;
  // In path order: a directory right before what is in it.
  EXPECT_LT(tree.out.find(P("runs/a/checkpoint-100/model.bin")),
            tree.out.find(P("runs/a/checkpoint-200") + " "))
      << tree.out;
  EXPECT_LT(tree.out.find(P("runs/a/notes.txt")), tree.out.find(P("runs/b") + " ")) << tree.out;
  json j = TierctlJson({"--json", "where", "-r", P("runs")});
  ASSERT_TRUE(j.is_array()) << j;
  EXPECT_EQ(13u, j.size()) << j.dump(1);  // runs, a, b, 3 dirs + 3 files, notes, latest, step5, w
  bool found = false;
  for (const json& e : j) {
    if (e["path"] != P("runs/a/checkpoint-200/model.bin")) continue;
    found = true;
    EXPECT_EQ("hdd", e["tier"]);
    EXPECT_EQ(2000, e["size"]);
    EXPECT_EQ(fs_.mnt(), e["mountpoint"]);
    // The series and generation the policy engine found it in.
    EXPECT_EQ(200, e["generation"]) << e;
    EXPECT_EQ("hf", e["series"]) << e;
  }
  EXPECT_TRUE(found) << j.dump(1);
  j = TierctlJson({"--json", "where", P("runs/a/checkpoint-300/model.bin")});
  ASSERT_TRUE(j.is_array() && j.size() == 1) << j;
  EXPECT_EQ(300, j[0]["generation"]) << j;
  j = TierctlJson({"--json", "where", P("runs/a/notes.txt")});
  EXPECT_TRUE(j[0]["generation"].is_null()) << j;

  // The daemon pages: 5 entries, then the rest from offset 5.
  char sock[4096];
  const ssize_t n = getxattr(fs_.mnt().c_str(), "user.tierfs.control", sock, sizeof sock);
  ASSERT_GT(n, 0);
  const std::string sock_path(sock, size_t(n));
  json page = AskSocket(sock_path, {{"cmd", "tree"}, {"path", "/runs"}, {"limit", 5}});
  ASSERT_TRUE(page.is_object()) << page;
  EXPECT_EQ(5u, page["entries"].size()) << page;
  EXPECT_EQ(5, page["next"]) << page;
  page = AskSocket(sock_path, {{"cmd", "tree"}, {"path", "/runs"}, {"offset", 5}});
  EXPECT_EQ(8u, page["entries"].size()) << page;
  EXPECT_TRUE(page["next"].is_null()) << page;

  // ls and ls -l.
  const CommandResult ls = Tierctl({"ls", P("runs/a")});
  ASSERT_EQ(0, ls.exit_code) << ls.err;
  EXPECT_EQ("checkpoint-100\ncheckpoint-200\ncheckpoint-300\nlatest\nnotes.txt\n", ls.out);
  const CommandResult ll = Tierctl({"ls", "-l", "-b", P("runs/a/checkpoint-200")});
  ASSERT_EQ(0, ll.exit_code) << ll.err;
  EXPECT_TRUE(Has(ll.out, "-rw-r--r--")) << ll.out;
  EXPECT_TRUE(Has(ll.out, "root")) << ll.out;
  EXPECT_TRUE(Has(ll.out, "2000")) << ll.out;
  EXPECT_TRUE(Has(ll.out, " hdd ")) << ll.out;
  EXPECT_TRUE(Has(ll.out, "model.bin")) << ll.out;
  EXPECT_TRUE(Has(Tierctl({"ls", "-l", P("runs/a")}).out, "latest -> checkpoint-300"));
  j = TierctlJson({"--json", "ls", P("runs/a/checkpoint-300")});
  ASSERT_EQ(1u, j.size()) << j;
  EXPECT_EQ("model.bin", j[0]["name"]);
  EXPECT_EQ("ssd", j[0]["tier"]);
  EXPECT_EQ(0644, j[0]["mode"]);

  // du: bytes per tier, per series, per generation.
  j = TierctlJson({"--json", "du", P("runs")});
  ASSERT_EQ(1u, j.size()) << j;
  EXPECT_EQ(3000 + 5 + 50, j[0]["tiers"]["ssd"]["bytes"]) << j;
  EXPECT_EQ(3, j[0]["tiers"]["ssd"]["files"]) << j;
  EXPECT_EQ(3000, j[0]["tiers"]["hdd"]["bytes"]) << j;
  ASSERT_EQ(2u, j[0]["series"].size()) << j;
  EXPECT_EQ("ds", j[0]["series"][0]["series"]);
  EXPECT_EQ("hf", j[0]["series"][1]["series"]);
  EXPECT_EQ("/runs/a", j[0]["series"][1]["dir"]);
  EXPECT_EQ(3, j[0]["series"][1]["generations"]);
  EXPECT_EQ(3000, j[0]["series"][1]["tiers"]["hdd"]);
  EXPECT_EQ(4u, j[0]["generations"].size()) << j;
  const CommandResult du = Tierctl({"du", "-b", P("runs")});
  ASSERT_EQ(0, du.exit_code) << du.err;
  EXPECT_TRUE(Has(du.out, "  hdd       2   3000\n")) << du.out;

  // gens: newest first, what the policy does next.
  const CommandResult gens = Tierctl({"gens", P("runs")});
  ASSERT_EQ(0, gens.exit_code) << gens.err;
  const size_t g300 = gens.out.find("keep on ssd (rule keep-newest)");
  const size_t g200 = gens.out.find("keep on hdd (rule old-to-hdd)");
  const size_t g100 = gens.out.find("thin within 1d by rule thin-old");
  EXPECT_TRUE(g300 != std::string::npos && g200 != std::string::npos && g100 != std::string::npos &&
              g300 < g200 && g200 < g100)
      << gens.out;
  EXPECT_TRUE(Has(gens.out, "series hf in /runs/a:")) << gens.out;
  EXPECT_TRUE(Has(gens.out, "no (")) << "ds generation 5 has no marker: " << gens.out;
  j = TierctlJson({"--json", "gens", P("runs/a")});
  ASSERT_EQ(3u, j.size()) << j;
  EXPECT_EQ(300, j[0]["generation"]);
  EXPECT_EQ(true, j[0]["complete"]);
  EXPECT_EQ("hdd", j[2]["on"][0]);
  EXPECT_EQ("thin", j[2]["next"]["action"]);
  EXPECT_EQ(86400, j[2]["next"]["within_s"]);

  // Bad usage.
  EXPECT_EQ(2, Tierctl({"where", "-x", P("runs")}).exit_code);
  EXPECT_EQ(2, Tierctl({"ls", "-r", P("runs")}).exit_code);
  EXPECT_EQ(2, Tierctl({"du", "--bogus", P("runs")}).exit_code);
  EXPECT_EQ(2, Tierctl({"where", "-r"}).exit_code);
  const CommandResult notdir = Tierctl({"gens", P("runs/a/notes.txt")});
  EXPECT_EQ(1, notdir.exit_code);
  EXPECT_TRUE(Has(notdir.err, P("runs/a/notes.txt"))) << notdir.err;

  // Another user (in the socket's group): only what they may stat and list.
  const std::string bin = TierctlForOthers(fs_.root());
  struct stat sock_st;
  ASSERT_EQ(0, stat(sock_path.c_str(), &sock_st));
  const Creds member{12345, 12345, {gid_t(sock_st.st_gid)}};
  std::string out;
  EXPECT_EQ(0, TierctlAs(member, bin, "where -r " + fs_.mnt(), &out)) << out;
  EXPECT_TRUE(Has(out, P("private"))) << out;
  EXPECT_TRUE(Has(out, "unlistable")) << out;
  EXPECT_FALSE(Has(out, "secret")) << out;
  EXPECT_TRUE(Has(out, P("runs/a/checkpoint-200/model.bin"))) << out;
  EXPECT_EQ(1, TierctlAs(member, bin, "ls " + P("private"), &out)) << out;
  EXPECT_TRUE(Has(out, P("private")) && Has(out, "permission denied")) << out;
  EXPECT_EQ(1, TierctlAs(member, bin, "where -r " + P("private"), &out)) << out;
  EXPECT_TRUE(Has(out, P("private")) && Has(out, "permission denied")) << out;
  EXPECT_EQ(1, TierctlAs(member, bin, "--json where -r " + P("private"), &out));
  j = json::parse(out.substr(std::min(out.size(), out.find('['))), nullptr, false);  // after stderr
  ASSERT_TRUE(j.is_array()) << out;
  EXPECT_EQ(false, j[0]["ok"]) << out;
  EXPECT_EQ(P("private"), j[0]["path"]) << out;
  EXPECT_EQ(1, TierctlAs(member, bin, "gens " + P("private"), &out)) << out;
  EXPECT_TRUE(Has(out, P("private")) && Has(out, "permission denied")) << out;
  EXPECT_EQ(0, TierctlAs(member, bin, "--json du " + fs_.mnt(), &out)) << out;
  j = json::parse(out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << out;
  EXPECT_EQ(1, j[0]["unlistable"]) << out;
  EXPECT_EQ(3000 + 5 + 50, j[0]["tiers"]["ssd"]["bytes"]) << "private/secret is not counted";
  EXPECT_EQ(0, TierctlAs(member, bin, "gens " + P("runs/a"), &out)) << out;
  EXPECT_TRUE(Has(out, "thin within 1d by rule thin-old")) << out;
  EXPECT_EQ(0, TierctlAs(member, bin, "ls -l " + P("runs/a"), &out)) << out;
  EXPECT_TRUE(Has(out, "notes.txt")) << out;
}

}  // namespace
}  // namespace tierfs_test

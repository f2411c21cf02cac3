// Deletions of kept data are audited (fs/delete_audit.h): a user's rm, a
// rename over a kept file, the unlink of one of two links and the rmdir of
// a held empty directory each write one record naming the uid, path, bytes
// and checksum; an ordinary rm writes nothing. An immutable hold's
// refusals are audited, repeats coalesced (fs/refusal_audit.h). The
// journal rotates at 1 KiB here, so the records span several files.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/tierctl_util.h"

namespace tierfs_test {
namespace {

using nlohmann::json;

// A small rotation size: the journal rotates several times in a test, and
// the records are read across the files (meta/audit.h).
MountOptions Rotating() {
  MountOptions o;
  o.extra_args = {"--audit-max-bytes", "1024"};
  return o;
}

class DeleteAuditTest : public MountTest {
 protected:
  DeleteAuditTest() : MountTest(Rotating()) {}
  std::string Journal() const { return fs_.ssd() + "/state/audit.jsonl"; }
  // The rotated files and the journal, oldest first.
  std::string AllText() const {
    std::string text;
    for (int n = 1;; ++n) {
      const std::string part = SlurpFile(Journal() + "." + std::to_string(n));
      if (part.empty()) break;
      text += part;
    }
    return text + SlurpFile(Journal());
  }
  std::vector<json> Records() const {
    std::vector<json> out;
    std::istringstream in(AllText());
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
    return out;
  }
  // The records with `action` naming `path`.
  std::vector<json> Find(const std::string& action, const std::string& path) const {
    std::vector<json> out;
    for (const json& r : Records())
      if (r.value("action", "") == action && r.value("path", "") == path) out.push_back(r);
    return out;
  }
};

constexpr uid_t kUser = 12345;

std::string Xxh3Hex(const std::string& data) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016" PRIx64, uint64_t(XXH3_64bits(data.data(), data.size())));
  return hex;
}

TEST_F(DeleteAuditTest, KeptFilesDeletionsAreRecordedOrdinaryOnesAreNot) {
  const Creds user{kUser, kUser, {}};
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0755));
  ASSERT_EQ(0, chown(P("d").c_str(), kUser, kUser));
  const std::string kept = Pattern(10000, 1), target = Pattern(5000, 2);
  struct {
    const char* name;
    std::string data;
  } files[] = {
      {"d/kept", kept}, {"d/target", target}, {"d/src", "new"}, {"d/plain", "p"}, {"d/two", "2"}};
  for (const auto& f : files) {
    ASSERT_EQ(0, WriteFile(P(f.name), f.data)) << f.name;
    ASSERT_EQ(0, chown(P(f.name).c_str(), kUser, kUser));
  }
  ASSERT_EQ(0, link(P("d/two").c_str(), P("d/two.link").c_str()));
  ASSERT_EQ(0, mkdir(P("d/empty").c_str(), 0755));
  ASSERT_EQ(0, chown(P("d/empty").c_str(), kUser, kUser));
  // On the HDD the inode carries the checksum the move verified.
  ASSERT_EQ(0, SetTierOfClosed(P("d/kept"), "hdd"));
  for (const char* name : {"d/kept", "d/target", "d/two", "d/empty"}) {
    const CommandResult r = Tierctl({"pin", "--for", "1d", P(name)});
    ASSERT_EQ(0, r.exit_code) << name << r.out << r.err;
  }

  // An ordinary delete does not grow the journal.
  const std::string before = AllText();
  EXPECT_EQ(0, RunAs(user, [&] { return Err(unlink(P("d/plain").c_str())); }));
  EXPECT_EQ(before, AllText());

  EXPECT_EQ(0, RunAs(user, [&] { return Err(unlink(P("d/kept").c_str())); }));
  EXPECT_EQ(0, RunAs(user, [&] { return Err(rename(P("d/src").c_str(), P("d/target").c_str())); }));
  EXPECT_EQ(0, RunAs(user, [&] { return Err(unlink(P("d/two").c_str())); }));
  EXPECT_EQ(0, RunAs(user, [&] { return Err(rmdir(P("d/empty").c_str())); }));
  EXPECT_EQ("new", SlurpFile(P("d/target")));

  const std::vector<json> moves = Find("move", "/d/kept");
  ASSERT_EQ(1u, moves.size()) << AllText();
  std::vector<json> r = Find("delete", "/d/kept");
  ASSERT_EQ(1u, r.size()) << AllText();
  EXPECT_EQ(kUser, r[0]["uid"]);
  EXPECT_GT(r[0]["pid"].get<int64_t>(), 0);
  EXPECT_EQ(10000u, r[0]["bytes"]);
  EXPECT_EQ(Xxh3Hex(kept), r[0]["xxh3"]);
  EXPECT_EQ(moves[0]["xxh3"], r[0]["xxh3"]);
  EXPECT_EQ("manual", r[0]["rule"]);
  EXPECT_EQ("ok", r[0]["result"]);

  r = Find("delete", "/d/target");  // hashed before it went
  ASSERT_EQ(1u, r.size()) << AllText();
  EXPECT_EQ(kUser, r[0]["uid"]);
  EXPECT_EQ(5000u, r[0]["bytes"]);
  EXPECT_EQ(Xxh3Hex(target), r[0]["xxh3"]);
  EXPECT_NE(std::string::npos, r[0]["detail"].get<std::string>().find("rename over"));

  EXPECT_TRUE(Find("delete", "/d/two").empty());
  r = Find("unlink", "/d/two");  // its bytes stay under d/two.link
  ASSERT_EQ(1u, r.size()) << AllText();
  EXPECT_EQ(0u, r[0]["bytes"]);
  EXPECT_NE(std::string::npos, r[0]["detail"].get<std::string>().find("1 other link remains"));

  r = Find("delete", "/d/empty");
  ASSERT_EQ(1u, r.size()) << AllText();
  EXPECT_EQ(kUser, r[0]["uid"]);
  EXPECT_TRUE(Find("delete", "/d/plain").empty());

  // Rotated meanwhile; verify and the listing through the daemon read
  // every file as one chain.
  EXPECT_FALSE(SlurpFile(Journal() + ".2").empty());
  CommandResult v = Tierctl({"audit", "verify", fs_.mnt()});
  EXPECT_EQ(0, v.exit_code) << v.out << v.err;
  EXPECT_NE(std::string::npos, v.out.find("chain intact, head matches")) << v.out;
  v = Tierctl({"--json", "audit", "--action", "delete", fs_.mnt()});
  EXPECT_EQ(0, v.exit_code) << v.err;
  EXPECT_EQ(3, std::count(v.out.begin(), v.out.end(), '\n')) << v.out;
}

// Truncating a kept file (O_TRUNC, truncate(2) to a smaller size) is
// journaled before the bytes go: action "truncate" with the uid, the bytes
// and xxh3 of what was there and the new size; `tierctl audit --action
// truncate` lists them. Truncating a file nothing holds, or growing a kept
// one, writes nothing.
TEST_F(DeleteAuditTest, TruncatingAKeptFileIsRecordedFirst) {
  const Creds user{kUser, kUser, {}};
  ASSERT_EQ(0, mkdir(P("t").c_str(), 0755));
  ASSERT_EQ(0, chown(P("t").c_str(), kUser, kUser));
  const std::string kept = Pattern(10000, 3), cut = Pattern(5000, 4);
  for (const auto& [name, data] : std::vector<std::pair<std::string, std::string>>{
           {"t/kept", kept}, {"t/cut", cut}, {"t/plain", "plain bytes"}}) {
    ASSERT_EQ(0, WriteFile(P(name), data)) << name;
    ASSERT_EQ(0, chown(P(name).c_str(), kUser, kUser));
  }
  ASSERT_EQ(0, SetTierOfClosed(P("t/kept"), "hdd"));  // its checksum is recorded
  for (const char* name : {"t/kept", "t/cut"}) {
    const CommandResult r = Tierctl({"pin", "--for", "1d", P(name)});
    ASSERT_EQ(0, r.exit_code) << name << r.out << r.err;
  }

  // A file nothing holds: nothing new in the journal.
  const std::string before = AllText();
  EXPECT_EQ(0, RunAs(user, [&] { return OpenErr(P("t/plain"), O_WRONLY | O_TRUNC); }));
  EXPECT_EQ(0, RunAs(user, [&] { return Err(truncate(P("t/plain").c_str(), 0)); }));
  EXPECT_EQ(before, AllText());

  EXPECT_EQ(0, RunAs(user, [&] { return OpenErr(P("t/kept"), O_WRONLY | O_TRUNC); }));
  EXPECT_EQ(0, RunAs(user, [&] { return Err(truncate(P("t/cut").c_str(), 100)); }));
  EXPECT_EQ(0, RunAs(user, [&] { return Err(truncate(P("t/cut").c_str(), 200)); }));  // grows
  EXPECT_EQ("", SlurpFile(P("t/kept")));
  EXPECT_EQ(200u, SlurpFile(P("t/cut")).size());

  std::vector<json> r = Find("truncate", "/t/kept");
  ASSERT_EQ(1u, r.size()) << AllText();
  EXPECT_EQ(kUser, r[0]["uid"]);
  EXPECT_GT(r[0]["pid"].get<int64_t>(), 0);
  EXPECT_EQ(10000u, r[0]["bytes"]);
  EXPECT_EQ(Xxh3Hex(kept), r[0]["xxh3"]);
  EXPECT_EQ(0, r[0]["new_size"]);
  EXPECT_EQ("manual", r[0]["rule"]);
  EXPECT_EQ("ok", r[0]["result"]);
  r = Find("truncate", "/t/cut");  // hashed before it was cut; the growth is not a record
  ASSERT_EQ(1u, r.size()) << AllText();
  EXPECT_EQ(kUser, r[0]["uid"]);
  EXPECT_EQ(5000u, r[0]["bytes"]);
  EXPECT_EQ(Xxh3Hex(cut), r[0]["xxh3"]);
  EXPECT_EQ(100, r[0]["new_size"]);
  EXPECT_TRUE(Find("truncate", "/t/plain").empty());

  const CommandResult v = Tierctl({"--json", "audit", "--action", "truncate", fs_.mnt()});
  EXPECT_EQ(0, v.exit_code) << v.err;
  EXPECT_EQ(2, std::count(v.out.begin(), v.out.end(), '\n')) << v.out;
  const CommandResult chain = Tierctl({"audit", "verify", fs_.mnt()});
  EXPECT_EQ(0, chain.exit_code) << chain.out << chain.err;
}

// rm and write of an immutable file, as root and as its owner: EPERM, one
// record for each (uid, op), and a user's repeated rm one more record with
// the count (its window is closed at the unmount at the latest).
TEST_F(DeleteAuditTest, ImmutableRefusalsAreAuditedAndCoalesced) {
  const Creds user{kUser, kUser, {}};
  ASSERT_EQ(0, mkdir(P("u").c_str(), 0755));  // the user may remove entries here
  ASSERT_EQ(0, chown(P("u").c_str(), kUser, kUser));
  ASSERT_EQ(0, WriteFile(P("u/frozen"), "keep"));
  ASSERT_EQ(0, chown(P("u/frozen").c_str(), kUser, kUser));
  const CommandResult pin = Tierctl({"pin", "--immutable", "--for", "1h", P("u/frozen")});
  ASSERT_EQ(0, pin.exit_code) << pin.out << pin.err;

  EXPECT_EQ(EPERM, Err(unlink(P("u/frozen").c_str())));
  EXPECT_EQ(EPERM, OpenErr(P("u/frozen"), O_WRONLY));
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(EPERM, RunAs(user, [&] { return Err(unlink(P("u/frozen").c_str())); }));
  EXPECT_EQ(EPERM, RunAs(user, [&] { return OpenErr(P("u/frozen"), O_WRONLY); }));
  EXPECT_EQ("keep", SlurpFile(P("u/frozen")));
  ASSERT_TRUE(fs_.Unmount());

  // (uid, op) -> the records of that pair.
  std::map<std::pair<int64_t, std::string>, std::vector<json>> refusals;
  for (const json& r : Find("refuse", "/u/frozen")) {
    const std::string detail = r["detail"];
    refusals[{r["uid"].get<int64_t>(), detail.substr(0, detail.find(" refused"))}].push_back(r);
    EXPECT_EQ("manual", r["rule"]) << r;
    EXPECT_EQ("EPERM", r["result"]) << r;
    EXPECT_NE(std::string::npos, detail.find("held immutable until 20")) << r;
  }
  const std::string journal = AllText();
  EXPECT_EQ(4u, refusals.size()) << journal;
  for (const auto& key : std::vector<std::pair<int64_t, std::string>>{
           {0, "unlink"}, {0, "open for writing"}, {kUser, "open for writing"}}) {
    ASSERT_EQ(1u, refusals[key].size()) << key.first << " " << key.second << journal;
    EXPECT_FALSE(refusals[key][0].contains("count")) << journal;
  }
  const std::vector<json>& rms = refusals[{kUser, "unlink"}];
  ASSERT_EQ(2u, rms.size()) << journal;
  EXPECT_FALSE(rms[0].contains("count")) << journal;
  EXPECT_EQ(4u, rms[1]["count"]) << journal;
}

}  // namespace
}  // namespace tierfs_test

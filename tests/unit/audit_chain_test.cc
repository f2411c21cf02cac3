// The audit journal's hash chain (meta/audit.h, meta/audit_verify.h):
// records appended through AuditLog verify; an edited, deleted, swapped or
// cut record is named by its line and reason; a torn last line is not
// tampering; an older journal without "prev" is continued.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fs/recover_journal.h"
#include "meta/audit.h"
#include "meta/audit_verify.h"

namespace tierfs {
namespace {

class AuditChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/audit_chain_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    journal_ = dir_ + "/audit.jsonl";
    head_ = dir_ + "/audit.head";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static AuditRecord Rec(int i) {
    AuditRecord r;
    r.action = "move";
    r.rule = "r" + std::to_string(i);
    r.path = "/runs/f" + std::to_string(i);
    r.bytes = uint64_t(i) * 100;
    return r;
  }
  // Appends records 1..n: one alone, then batches of two (a batch chains
  // record to record too).
  void Write(int n) {
    std::unique_ptr<AuditLog> log;
    ASSERT_TRUE(AuditLog::Open(journal_, &log, head_).ok());
    int i = 1;
    if (n >= 1) {
      ASSERT_TRUE(log->Append(Rec(i++)).ok());
    }
    while (i <= n) {
      std::vector<AuditRecord> batch = {Rec(i++)};
      if (i <= n) batch.push_back(Rec(i++));
      ASSERT_TRUE(log->Append(batch).ok());
    }
  }
  std::vector<std::string> Lines() {
    std::ifstream in(journal_);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  void SetLines(const std::vector<std::string>& lines, const std::string& tail = "") {
    std::ofstream out(journal_, std::ios::trunc);
    for (const std::string& l : lines) out << l << "\n";
    out << tail;
  }
  AuditVerifyResult Verify(bool with_head = true) {
    AuditVerifyResult r;
    Status st = VerifyAuditJournal(journal_, with_head ? head_ : "", &r);
    EXPECT_TRUE(st.ok()) << st.message();
    return r;
  }

  std::string dir_, journal_, head_;
};

TEST_F(AuditChainTest, AppendedRecordsVerify) {
  Write(5);
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 5u);
  // The first names the genesis hash; each next one the hash of its line.
  EXPECT_EQ(nlohmann::json::parse(lines[0])["prev"], Sha256Hex(kAuditGenesis));
  for (size_t i = 1; i < lines.size(); ++i)
    EXPECT_EQ(nlohmann::json::parse(lines[i])["prev"], Sha256Hex(lines[i - 1])) << i;
  const AuditVerifyResult r = Verify();
  EXPECT_TRUE(r.ok) << AuditVerifySummary(r);
  EXPECT_EQ(r.records, 5u);
  EXPECT_EQ(r.head_record, 5u);
  EXPECT_EQ(r.last_hash, Sha256Hex(lines[4]));
  EXPECT_EQ(AuditVerifySummary(r), "ok: 5 records, chain intact, head matches");
}

// Two names that differ only in bytes that are not UTF-8 are two records:
// "path_hex" keeps the exact bytes, and AuditRecordPath reads them back (and
// "path" alone from a record without it, as older tierfs wrote).
TEST_F(AuditChainTest, APathThatIsNotUtf8KeepsItsExactBytes) {
  AuditRecord a = Rec(1), b = Rec(2);
  a.path = "/runs/bad\xff";
  b.path = "/runs/bad\xfe";
  const nlohmann::json ja = nlohmann::json::parse(AuditLog::Format(a, 1));
  const nlohmann::json jb = nlohmann::json::parse(AuditLog::Format(b, 1));
  EXPECT_EQ(ja["path"], jb["path"]);  // both with U+FFFD
  EXPECT_EQ("2f72756e732f626164ff", ja.value("path_hex", "")) << ja.dump();
  EXPECT_EQ(a.path, AuditRecordPath(ja));
  EXPECT_EQ(b.path, AuditRecordPath(jb));
  const nlohmann::json plain = nlohmann::json::parse(AuditLog::Format(Rec(3), 1));
  EXPECT_FALSE(plain.contains("path_hex")) << plain.dump();
  EXPECT_EQ("/runs/f3", AuditRecordPath(plain));
  EXPECT_EQ("", AuditRecordPath(nlohmann::json::object()));
}

// Recover's replay of the journal (fs/recover_journal.h) takes only thin
// and delete records as removals: a truncate of a kept file leaves the
// file (with its new bytes), and the path of a name that is not UTF-8 is
// its exact bytes.
TEST_F(AuditChainTest, RecoverReplaysRemovalsNotTruncates) {
  std::unique_ptr<AuditLog> log;
  ASSERT_TRUE(AuditLog::Open(journal_, &log).ok());
  AuditRecord cut = Rec(1), gone = Rec(2);
  cut.action = "truncate";
  cut.ino = 5;
  cut.new_size = 0;
  gone.action = "delete";
  gone.ino = 6;
  gone.path = "/runs/bad\xff";
  ASSERT_TRUE(log->Append(std::vector<AuditRecord>{cut, gone}).ok());
  std::map<uint64_t, JournalRemoval> removals;
  ASSERT_TRUE(ReadJournalRemovals(journal_, 0, &removals).ok());
  ASSERT_EQ(1u, removals.size());
  EXPECT_EQ("delete", removals[6].action);
  EXPECT_EQ("/runs/bad\xff", removals[6].path);
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(2u, lines.size());
  EXPECT_EQ(0, nlohmann::json::parse(lines[0]).value("new_size", -1)) << lines[0];
}

TEST_F(AuditChainTest, ReopenContinuesTheChain) {
  Write(2);
  Write(3);  // a second Open: the daemon restarted
  const AuditVerifyResult r = Verify();
  EXPECT_TRUE(r.ok) << AuditVerifySummary(r);
  EXPECT_EQ(r.records, 5u);
}

TEST_F(AuditChainTest, EditedByteNamesTheNextLine) {
  Write(5);
  auto lines = Lines();
  const size_t at = lines[2].find("\"bytes\":300");
  ASSERT_NE(at, std::string::npos);
  lines[2][at + 8] = '9';  // 300 -> 900
  SetLines(lines);
  const AuditVerifyResult r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 4u);
  EXPECT_NE(r.reason.find("prev does not match the hash of line 3"), std::string::npos) << r.reason;
}

TEST_F(AuditChainTest, DeletedRecordIsNamed) {
  Write(5);
  auto lines = Lines();
  lines.erase(lines.begin() + 1);  // record 2
  SetLines(lines);
  const AuditVerifyResult r = Verify(false);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 2u);
  EXPECT_NE(r.reason.find("hash of line 1"), std::string::npos) << r.reason;
}

TEST_F(AuditChainTest, DeletedFirstRecordIsNamed) {
  Write(3);
  auto lines = Lines();
  lines.erase(lines.begin());
  SetLines(lines);
  const AuditVerifyResult r = Verify(false);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 1u);
  EXPECT_NE(r.reason.find("genesis"), std::string::npos) << r.reason;
}

TEST_F(AuditChainTest, SwappedRecordsAreNamed) {
  Write(5);
  auto lines = Lines();
  std::swap(lines[2], lines[3]);
  SetLines(lines);
  const AuditVerifyResult r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 3u);
  EXPECT_NE(r.reason.find("hash of line 2"), std::string::npos) << r.reason;
}

TEST_F(AuditChainTest, CutTailShowsAgainstTheHead) {
  Write(5);
  auto lines = Lines();
  lines.resize(3);
  SetLines(lines);
  // The chain alone cannot see a cut end.
  EXPECT_TRUE(Verify(false).ok);
  const AuditVerifyResult r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason,
            "journal ends at record 3, the head on the HDD tier names record 5 (records cut from "
            "the end)");
}

TEST_F(AuditChainTest, NotJsonIsNamed) {
  Write(3);
  auto lines = Lines();
  lines[1] = "garbage";
  SetLines(lines);
  const AuditVerifyResult r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 2u);
  EXPECT_EQ(r.reason, "not JSON");
}

TEST_F(AuditChainTest, TornTailIsNotTampering) {
  Write(3);
  const auto lines = Lines();
  SetLines(lines, "{\"prev\":\"ab");  // a crash mid-append
  AuditVerifyResult r = Verify();
  EXPECT_TRUE(r.ok) << AuditVerifySummary(r);
  EXPECT_EQ(r.records, 3u);
  EXPECT_EQ(r.torn_line, 4u);
  EXPECT_NE(AuditVerifySummary(r).find("torn tail at line 4"), std::string::npos);
  // The next Open cuts the torn bytes, records that, and the chain goes on
  // from record 3.
  Write(1);
  const auto after = Lines();
  ASSERT_EQ(after.size(), 5u);
  EXPECT_EQ(nlohmann::json::parse(after[3])["action"], "journal");
  r = Verify();
  EXPECT_TRUE(r.ok) << AuditVerifySummary(r);
  EXPECT_EQ(r.records, 5u);
  EXPECT_EQ(r.torn_line, 0u);
}

TEST_F(AuditChainTest, OlderJournalIsContinued) {
  // Two records of an older tierfs, without "prev".
  SetLines({AuditLog::Format(Rec(1), 1), AuditLog::Format(Rec(2), 2)});
  Write(2);
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(nlohmann::json::parse(lines[2])["prev"], Sha256Hex(lines[1]));
  AuditVerifyResult r = Verify();
  EXPECT_TRUE(r.ok) << AuditVerifySummary(r);
  EXPECT_EQ(r.unchained, 2u);
  EXPECT_NE(AuditVerifySummary(r).find("older tierfs"), std::string::npos);
  // A record without "prev" after the chain began is an insertion.
  auto edited = lines;
  edited.insert(edited.begin() + 3, AuditLog::Format(Rec(9), 9));
  SetLines(edited);
  r = Verify(false);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 4u);
}

TEST_F(AuditChainTest, FailedAppendLeavesNoPartialLine) {
  std::unique_ptr<AuditLog> log;
  ASSERT_TRUE(AuditLog::Open(journal_, &log, head_).ok());
  ASSERT_TRUE(log->Append(Rec(1)).ok());
  const off_t size = off_t(std::filesystem::file_size(journal_));
  // A file size limit just past the journal: the next batch's write stops
  // short (40 bytes), then fails with EFBIG, as a full disk would.
  struct rlimit old;
  ASSERT_EQ(0, getrlimit(RLIMIT_FSIZE, &old));
  sighandler_t old_handler = signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old;
  lim.rlim_cur = rlim_t(size + 40);
  ASSERT_EQ(0, setrlimit(RLIMIT_FSIZE, &lim));
  const Status st = log->Append({Rec(2), Rec(3)});
  ASSERT_EQ(0, setrlimit(RLIMIT_FSIZE, &old));
  signal(SIGXFSZ, old_handler);
  EXPECT_FALSE(st.ok());
  // The next append starts a line of its own and chains to record 1.
  ASSERT_TRUE(log->Append(Rec(4)).ok());
  const AuditVerifyResult r = Verify();
  EXPECT_TRUE(r.ok) << AuditVerifySummary(r);
  EXPECT_EQ(r.records, 2u);
}

TEST_F(AuditChainTest, UnwritableHeadKeepsTheRecord) {
  head_ = dir_ + "/no/such/dir/audit.head";
  Write(2);
  EXPECT_EQ(Lines().size(), 2u);
  EXPECT_TRUE(Verify(false).ok);
}

}  // namespace
}  // namespace tierfs

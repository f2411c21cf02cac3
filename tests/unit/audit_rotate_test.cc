// Rotation of the audit journal by size (meta/audit.h) keeps one hash chain
// across the files: several rotations verify as one chain with the head;
// an edited record in a rotated file and a deleted middle file are named
// by file and line; numbers are never reused; a crash between the rename
// and the rotate record is finished at the next Open.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "meta/audit.h"
#include "meta/audit_verify.h"

namespace tierfs {
namespace {

using nlohmann::json;

class AuditRotateTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kMaxBytes = 1000;
  void SetUp() override {
    char tmpl[] = "/tmp/audit_rotate_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    journal_ = dir_ + "/audit.jsonl";
    head_ = dir_ + "/audit.head";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Appends records `from`..`to` (about 200 bytes each) through a new log.
  void Write(int from, int to) {
    std::unique_ptr<AuditLog> log;
    Status st = AuditLog::Open(journal_, &log, head_, kMaxBytes);
    ASSERT_TRUE(st.ok()) << st.message();
    for (int i = from; i <= to; ++i) {
      AuditRecord r;
      r.action = "move";
      r.rule = "r" + std::to_string(i);
      r.path = "/runs/f" + std::to_string(i);
      r.bytes = uint64_t(i);
      ASSERT_TRUE(log->Append(r).ok());
    }
  }
  static std::vector<std::string> Lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  AuditVerifyResult Verify() {
    AuditVerifyResult r;
    Status st = VerifyAuditChain(journal_, head_, &r);
    EXPECT_TRUE(st.ok()) << st.message();
    return r;
  }
  std::string dir_, journal_, head_;
};

TEST_F(AuditRotateTest, SeveralRotationsVerifyAsOneChain) {
  Write(1, 30);
  const std::vector<std::string> files = AuditJournalFiles(journal_);
  ASSERT_GE(files.size(), 4u);  // three rotations at least
  uint64_t lines = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    EXPECT_EQ(i + 1 < files.size() ? journal_ + "." + std::to_string(i + 1) : journal_, files[i]);
    const std::vector<std::string> l = Lines(files[i]);
    ASSERT_FALSE(l.empty()) << files[i];
    lines += l.size();
    const json first = json::parse(l[0]);
    if (i == 0) {
      EXPECT_NE("rotate", first["action"]) << l[0];
      continue;
    }
    EXPECT_EQ("rotate", first["action"]) << l[0];
    EXPECT_EQ("audit.jsonl." + std::to_string(i), first["continues"]) << l[0];
    EXPECT_EQ(Sha256Hex(Lines(files[i - 1]).back()), first["prev"]) << l[0];
  }
  AuditVerifyResult r = Verify();
  ASSERT_TRUE(r.ok) << AuditVerifySummary(r);
  EXPECT_EQ(files.size(), r.files);
  EXPECT_EQ(lines, r.chain_records);
  EXPECT_TRUE(r.head_checked);
  EXPECT_EQ(Lines(journal_).size(), r.head_record);  // the head of the whole chain
  EXPECT_NE(std::string::npos, AuditVerifySummary(r).find("head matches")) << AuditVerifySummary(r);

  // A new log continues the chain and the numbering.
  Write(31, 45);
  const std::vector<std::string> more = AuditJournalFiles(journal_);
  EXPECT_GT(more.size(), files.size());
  r = Verify();
  EXPECT_TRUE(r.ok) << AuditVerifySummary(r);
}

TEST_F(AuditRotateTest, AnEditedRecordInARotatedFileIsNamed) {
  Write(1, 30);
  const std::string second = journal_ + ".2";
  std::vector<std::string> l = Lines(second);
  ASSERT_GE(l.size(), 3u);
  const size_t at = l[1].find("\"bytes\":");
  ASSERT_NE(std::string::npos, at) << l[1];
  l[1].replace(at, 8, "\"bytes\":9");
  {
    std::ofstream out(second, std::ios::trunc);
    for (const std::string& s : l) out << s << "\n";
  }
  const AuditVerifyResult r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(second, r.bad_file);
  EXPECT_EQ(3u, r.bad_line);
  EXPECT_EQ(0u, AuditVerifySummary(r).rfind(second + " line 3: prev does not match", 0))
      << AuditVerifySummary(r);
}

TEST_F(AuditRotateTest, ADeletedMiddleFileIsNamed) {
  Write(1, 30);
  ASSERT_TRUE(std::filesystem::exists(journal_ + ".3"));
  std::filesystem::remove(journal_ + ".2");
  const AuditVerifyResult r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(journal_ + ".3", r.bad_file);
  EXPECT_EQ(1u, r.bad_line);
  EXPECT_NE(std::string::npos, r.reason.find("audit.jsonl.2, which is missing")) << r.reason;
  // The oldest gone: the first file left continues it.
  std::filesystem::remove(journal_ + ".1");
  const AuditVerifyResult first = Verify();
  EXPECT_FALSE(first.ok);
  EXPECT_EQ(journal_ + ".3", first.bad_file);
  EXPECT_NE(std::string::npos, first.reason.find("audit.jsonl.2, which is missing"))
      << first.reason;
}

// A crash after the rename, before the new journal's first record: the
// next Open begins it with the rotate record. A rotated file deleted by
// hand does not give its number to the next rotation.
TEST_F(AuditRotateTest, ACrashMidRotationIsFinishedAndNumbersAreNotReused) {
  Write(1, 3);
  std::filesystem::rename(journal_, journal_ + ".1");
  Write(4, 4);
  std::vector<std::string> l = Lines(journal_);
  ASSERT_EQ(2u, l.size());
  EXPECT_EQ("audit.jsonl.1", json::parse(l[0])["continues"]) << l[0];
  AuditVerifyResult r = Verify();
  EXPECT_TRUE(r.ok) << AuditVerifySummary(r);

  Write(5, 30);
  const size_t n = AuditJournalFiles(journal_).size() - 1;  // rotated files
  ASSERT_GE(n, 3u);
  const std::string last = journal_ + "." + std::to_string(n);
  std::filesystem::remove(last);
  Write(31, 40);
  EXPECT_FALSE(std::filesystem::exists(last));
  EXPECT_TRUE(std::filesystem::exists(journal_ + "." + std::to_string(n + 1)));
  r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(std::string::npos, r.reason.find(std::to_string(n) + ", which is missing")) << r.reason;
}

}  // namespace
}  // namespace tierfs

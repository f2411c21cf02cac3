// The audit journal's copy on the capacity tier (meta/audit_mirror.h): it
// equals the local journal file for file through rotations and verifies
// with the head; a copy that cannot be written never fails an append and
// catches up once it can; a journal from before the copy is copied at
// Open; a copy of another chain is kept aside, not overwritten.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "meta/audit.h"
#include "meta/audit_verify.h"

namespace tierfs {
namespace {

namespace fs = std::filesystem;

class AuditMirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/audit_mirror_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    journal_ = dir_ + "/audit.jsonl";
    head_ = dir_ + "/audit.head";
    copy_dir_ = dir_ + "/hdd/audit";
    copy_ = copy_dir_ + "/audit.jsonl";
    fs::create_directory(dir_ + "/hdd");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Appends `n` records (about 200 bytes each) through a new log.
  void Write(int n, uint64_t max_bytes, bool mirror = true) {
    std::unique_ptr<AuditLog> log;
    Status st = AuditLog::Open(journal_, &log, head_, max_bytes, mirror ? copy_ : "");
    ASSERT_TRUE(st.ok()) << st.message();
    for (int i = 0; i < n; ++i) ASSERT_TRUE(log->Append(Record(i)).ok());
  }
  static AuditRecord Record(int i) {
    AuditRecord r;
    r.action = "move";
    r.rule = "r" + std::to_string(i);
    r.path = "/runs/f" + std::to_string(i);
    r.bytes = uint64_t(i);
    return r;
  }
  static std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // Every local file has its copy, byte for byte, and nothing else is there.
  void ExpectSameFiles() {
    const std::vector<std::string> local = AuditJournalFiles(journal_);
    const std::vector<std::string> copy = AuditJournalFiles(copy_);
    ASSERT_EQ(local.size(), copy.size());
    for (size_t i = 0; i < local.size(); ++i) {
      EXPECT_EQ(fs::path(local[i]).filename(), fs::path(copy[i]).filename());
      EXPECT_TRUE(Slurp(local[i]) == Slurp(copy[i])) << copy[i] << " differs from " << local[i];
    }
    AuditVerifyResult r;
    Status st = VerifyAuditChain(copy_, head_, &r);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_TRUE(r.ok) << AuditVerifySummary(r);
    EXPECT_TRUE(r.head_checked && r.head_record == r.records) << AuditVerifySummary(r);
  }

  std::string dir_, journal_, head_, copy_dir_, copy_;
};

TEST_F(AuditMirrorTest, EqualsTheJournalThroughRotations) {
  Write(20, 1500);
  ASSERT_GE(AuditJournalFiles(journal_).size(), 3u) << "no rotation happened";
  ExpectSameFiles();
}

TEST_F(AuditMirrorTest, AFailingCopyNeverFailsAnAppendAndCatchesUp) {
  std::unique_ptr<AuditLog> log;
  Status st = AuditLog::Open(journal_, &log, head_, 1500, copy_);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_TRUE(log->Append(Record(0)).ok());
  // The copy's directory becomes a file: the copy cannot be written, even by root.
  fs::rename(copy_dir_, dir_ + "/away");
  { std::ofstream(copy_dir_) << "not a directory"; }
  for (int i = 1; i < 12; ++i) ASSERT_TRUE(log->Append(Record(i)).ok()) << i;
  ASSERT_GE(AuditJournalFiles(journal_).size(), 2u) << "no rotation while the copy was away";
  // Back: the next append brings every file up to date, the rotated ones too.
  fs::remove(copy_dir_);
  fs::rename(dir_ + "/away", copy_dir_);
  ASSERT_TRUE(log->Append(Record(12)).ok());
  ExpectSameFiles();
}

TEST_F(AuditMirrorTest, AJournalFromBeforeTheCopyIsCopiedAtOpen) {
  Write(12, 1500, /*mirror=*/false);
  ASSERT_FALSE(fs::exists(copy_));
  Write(0, 1500);
  ExpectSameFiles();
}

TEST_F(AuditMirrorTest, ACopyOfAnotherChainIsKeptAside) {
  fs::create_directories(copy_dir_);
  const std::string other = "{\"prev\":\"x\",\"action\":\"move\"}\n";
  { std::ofstream(copy_) << other; }
  Write(3, 0);
  ExpectSameFiles();
  int aside = 0;
  for (const auto& e : fs::directory_iterator(copy_dir_)) {
    const std::string name = e.path().filename();
    if (name.rfind("audit.jsonl.diverged-", 0) != 0) continue;
    ++aside;
    EXPECT_EQ(other, Slurp(e.path()));
  }
  EXPECT_EQ(1, aside);
}

}  // namespace
}  // namespace tierfs

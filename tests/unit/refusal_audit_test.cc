// RefusalAudit (fs/refusal_audit.h): the first refusal of a (uid, inode,
// op) is recorded at once, repeats within the window become one record
// with their count when the window ends, other triples keep their own
// windows, and unmount (Flush(INT64_MAX)) loses no count.
#include <gtest/gtest.h>

#include <climits>

#include "fs/refusal_audit.h"

namespace tierfs {
namespace {

constexpr int64_t kSec = 1'000'000'000;

AuditRecord Refusal(int64_t uid, uint64_t ino) {
  Store::Hold h;
  h.rule = "keep";
  h.immutable = true;
  h.until_ns = 4102444800 * kSec;  // 2100-01-01
  return RefusalAudit::RecordOf(uid, 77, ino, "/f" + std::to_string(ino), "unlink", h);
}

TEST(RefusalAuditTest, RepeatsWithinTheWindowBecomeOneCountedRecord) {
  std::vector<AuditRecord> got;
  RefusalAudit audit(
      [&](const std::vector<AuditRecord>& r) { got.insert(got.end(), r.begin(), r.end()); });
  const int64_t t0 = 1000 * kSec;
  audit.Note(Refusal(5, 1), "unlink", t0);
  ASSERT_EQ(1u, got.size());
  EXPECT_EQ("refuse", got[0].action);
  EXPECT_EQ(5, got[0].uid);
  EXPECT_EQ(77, got[0].pid);
  EXPECT_EQ("keep", got[0].rule);
  EXPECT_EQ("unlink refused: held immutable until 2100-01-01T00:00:00Z", got[0].detail);
  EXPECT_EQ(0u, got[0].count);
  for (int i = 1; i <= 3; ++i) audit.Note(Refusal(5, 1), "unlink", t0 + i * kSec);
  EXPECT_EQ(1u, got.size());
  audit.Note(Refusal(6, 1), "unlink", t0 + 4 * kSec);  // another uid: its own window
  audit.Note(Refusal(5, 2), "unlink", t0 + 5 * kSec);  // another inode
  audit.Note(Refusal(5, 1), "write", t0 + 6 * kSec);   // another op
  EXPECT_EQ(4u, got.size());
  audit.Flush(t0 + 59 * kSec);
  EXPECT_EQ(4u, got.size());
  audit.Flush(t0 + 60 * kSec);  // the first window ended
  ASSERT_EQ(5u, got.size());
  EXPECT_EQ(3u, got[4].count);
  EXPECT_EQ(5, got[4].uid);
  EXPECT_EQ(1u, got[4].ino);
  EXPECT_NE(std::string::npos, got[4].detail.find("repeated 3 times")) << got[4].detail;
  // A new window begins with a record of its own.
  audit.Note(Refusal(5, 1), "unlink", t0 + 61 * kSec);
  audit.Note(Refusal(5, 1), "unlink", t0 + 62 * kSec);
  ASSERT_EQ(6u, got.size());
  EXPECT_EQ(0u, got[5].count);
  audit.Flush(INT64_MAX);  // unmount: the open window's count is written
  ASSERT_EQ(7u, got.size());
  EXPECT_EQ(1u, got[6].count);
}

}  // namespace
}  // namespace tierfs

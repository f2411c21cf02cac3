// RequestRate (fs/request_rate.h): a uid other than root gets the burst at
// once and then the rate, refusals are EAGAIN naming the uid, uids do not
// share a bucket, and root is never limited.
#include <gtest/gtest.h>

#include <cerrno>

#include "fs/request_rate.h"

namespace tierfs {
namespace {

constexpr int64_t kSec = 1'000'000'000;

TEST(RequestRateTest, ABurstThenTheRatePerUidAndRootUnlimited) {
  RequestRate rate;  // 10 a second, 100 at once
  const int64_t t0 = 1000 * kSec;
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(rate.Take(1000, t0, "pin").ok()) << i;
  const Status refused = rate.Take(1000, t0, "pin");
  EXPECT_EQ(EAGAIN, refused.err());
  EXPECT_NE(std::string::npos,
            refused.message().find("pin: too many requests from uid 1000; retry later"))
      << refused.message();
  // Another uid has its own bucket; root none.
  EXPECT_TRUE(rate.Take(1001, t0, "pin").ok());
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(rate.Take(0, t0, "pin").ok()) << i;
  // A second later: ten more, not eleven.
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(rate.Take(1000, t0 + kSec, "unpin").ok()) << i;
  EXPECT_EQ(EAGAIN, rate.Take(1000, t0 + kSec, "unpin").err());
  // A long pause refills the burst, no more.
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(rate.Take(1000, t0 + 3600 * kSec, "move").ok()) << i;
  EXPECT_EQ(EAGAIN, rate.Take(1000, t0 + 3600 * kSec, "move").err());
}

TEST(RequestRateTest, FullBucketsAreDroppedWhenThereAreMany) {
  RequestRate rate(10, 2);
  const int64_t t0 = 1000 * kSec;
  for (uint32_t uid = 1; uid <= RequestRate::kMaxBuckets + 10; ++uid)
    ASSERT_TRUE(rate.Take(uid, t0, "pin").ok()) << uid;
  // uid 1 spent one of two; a later new uid drops the refilled buckets,
  // and a dropped one starts full again: still limited to the burst.
  const int64_t t1 = t0 + 10 * kSec;
  EXPECT_TRUE(rate.Take(RequestRate::kMaxBuckets + 100, t1, "pin").ok());
  EXPECT_TRUE(rate.Take(1, t1, "pin").ok());
  EXPECT_TRUE(rate.Take(1, t1, "pin").ok());
  EXPECT_EQ(EAGAIN, rate.Take(1, t1, "pin").err());
}

}  // namespace
}  // namespace tierfs

// RequestRate: a token bucket per uid for the requests of users other than
// root that change placement and write an audit record each: pin, unpin and
// move over the control socket (fs/control_pins.cc) and setfattr
// user.tierfs.tier (fs/ops_xattr.cc). Without it one user looping pin/unpin
// of their own file grew root's journal (and its HDD copy) by megabytes a
// second, for good: tierfs never deletes a rotated journal.
//
// Each uid other than root gets `burst` requests at once and `per_second`
// more each second (kPerSecond, kBurst); a request beyond that is refused
// with EAGAIN ("too many requests from uid N; retry later") before it does
// anything, so it writes no record. Root is never limited. A bucket that
// has refilled is the same as none, so the map stays small: once it holds
// kMaxBuckets uids, full buckets are dropped.
//
// Thread-safety: Take may be called from any thread (the control server's
// and FUSE's).
#pragma once

#include <cstdint>
#include <unordered_map>

#include "meta/mutex.h"
#include "meta/status.h"

namespace tierfs {

class RequestRate {
 public:
  static constexpr double kPerSecond = 10;
  static constexpr double kBurst = 100;
  static constexpr size_t kMaxBuckets = 4096;
  explicit RequestRate(double per_second = kPerSecond, double burst = kBurst)
      : per_second_(per_second), burst_(burst) {}

  // One request of `uid` (`what`: "pin", "move", ...) at `now_ns`: Ok, or
  // EAGAIN when its bucket is empty. Always Ok for root.
  Status Take(uint32_t uid, int64_t now_ns, const char* what) EXCLUDES(mu_);

 private:
  struct Bucket {
    double tokens = 0;
    int64_t last_ns = 0;
  };
  // Tokens of `b` at `now_ns` (refilled, at most burst_).
  double Refilled(const Bucket& b, int64_t now_ns) const;

  const double per_second_, burst_;
  Mutex mu_;
  std::unordered_map<uint32_t, Bucket> buckets_ GUARDED_BY(mu_);
};

}  // namespace tierfs

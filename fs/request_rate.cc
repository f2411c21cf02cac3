#include "fs/request_rate.h"

#include <algorithm>
#include <cerrno>
#include <string>

namespace tierfs {

double RequestRate::Refilled(const Bucket& b, int64_t now_ns) const {
  const double elapsed = double(std::max<int64_t>(now_ns - b.last_ns, 0)) / 1e9;
  return std::min(burst_, b.tokens + elapsed * per_second_);
}

Status RequestRate::Take(uint32_t uid, int64_t now_ns, const char* what) {
  if (uid == 0) return Status::Ok();
  MutexLock lock(&mu_);
  auto it = buckets_.find(uid);
  if (it == buckets_.end()) {
    if (buckets_.size() >= kMaxBuckets)
      for (auto b = buckets_.begin(); b != buckets_.end();)
        b = Refilled(b->second, now_ns) >= burst_ ? buckets_.erase(b) : std::next(b);
    it = buckets_.emplace(uid, Bucket{burst_, now_ns}).first;
  }
  Bucket& b = it->second;
  b.tokens = Refilled(b, now_ns);
  b.last_ns = std::max(b.last_ns, now_ns);
  if (b.tokens < 1)
    return Status::Error(EAGAIN, std::string(what) + ": too many requests from uid " +
                                     std::to_string(uid) + "; retry later (at most " +
                                     std::to_string(int(per_second_)) + " a second, " +
                                     std::to_string(int(burst_)) + " at once)");
  b.tokens -= 1;
  return Status::Ok();
}

}  // namespace tierfs

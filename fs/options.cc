#include "fs/options.h"

namespace tierfs {

// Out of line: inlined into a caller, g++ 12 at -O1 takes the optionals'
// storage for uninitialized (-Wmaybe-uninitialized, a false positive).
TierLimits EffectiveLimits(const Options& options, const TierLimits& policy) {
  TierLimits limits = policy;
  limits.watermarks = options.watermarks.value_or(limits.watermarks);
  limits.move_bytes_per_sec = options.move_bytes_per_sec.value_or(limits.move_bytes_per_sec);
  limits.max_moves = options.max_moves.value_or(limits.max_moves);
  return limits;
}

}  // namespace tierfs

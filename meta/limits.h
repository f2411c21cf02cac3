// TierLimits: how full the SSD tier may get and how hard moves between the
// tiers may run; ScrubLimits: how often and how fast the HDD tier is
// scrubbed. The policy file sets them ([tiers], [throttle] and [scrub], tierfs.policy(5));
// options given on the command line win (fs/options.h). The defaults below
// are the only ones: the policy, the command line and --help start from
// them.
#pragma once

#include <cstdint>

namespace tierfs {

// Of the SSD tier, as fractions of its capacity used.
struct Watermarks {
  double high = 0.90;  // the evictor starts moving files to the HDD tier above this
  double low = 0.75;   // and stops once below this
};

struct TierLimits {
  Watermarks watermarks;
  // Shared by all moves, so foreground writes keep their bandwidth while
  // files migrate; 0 is unlimited.
  uint64_t move_bytes_per_sec = uint64_t(256) << 20;
  unsigned max_moves = 2;  // moves at once
};

// The background scrub of the HDD tier (fs/scrub.h): rot there goes unseen
// until a read, possibly years later, so every object is re-read and
// checked against its block sums now and then, slowly enough to leave the
// disk to the readers and the moves.
struct ScrubLimits {
  int64_t interval_ns = int64_t(7) * 86400 * 1000000000;  // between passes; 0: no scrub
  uint64_t bytes_per_sec = uint64_t(64) << 20;            // a pass's reads; never 0
};

}  // namespace tierfs

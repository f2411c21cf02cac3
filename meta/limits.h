// TierLimits: how full the SSD tier may get and how hard moves between the
// tiers may run; ScrubLimits: how often and how fast the HDD tier is
// scrubbed; PinLimits: how long a user other than root may pin immutable.
// The policy file sets them ([tiers], [throttle], [scrub] and [pins],
// tierfs.policy(5));
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

// Immutable pins set by a user other than root (tierctl pin --immutable,
// fs/control_pins.cc). Nobody, root included, may shorten or remove an
// immutable hold before its end (WORM), so an unbounded one would let any
// local user keep files, and the tiers' space, for ever. Root's pins and
// the policy's own rules (written by the admin) are not bound by this.
struct PinLimits {
  // The latest end such a pin may have, counted from when it is set; it
  // must have an end. 0: users other than root may not pin immutable.
  int64_t max_user_immutable_ns = int64_t(30) * 86400 * 1000000000;
};

}  // namespace tierfs

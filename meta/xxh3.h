// xxh3 at the speed of the CPU's widest vector unit: libxxhash's
// *_dispatch entry points, which pick SSE2, AVX2 or AVX-512 at run time.
// Include this instead of <xxhash.h> where bytes are hashed in bulk (the
// stream sums of every write, moves, verified reads, exports).
//
// Contract: the same hashes as the plain functions, so sums recorded by
// any version verify with any other (tests/unit/block_sums_test.cc pins
// reference values). On x86-64 the dispatch header renames XXH3_64bits,
// XXH3_64bits_update and friends to their dispatching versions; elsewhere
// this is <xxhash.h>. Debian's libxxhash builds the baseline functions for
// SSE2 only: on this project's VM (AVX-512) a 1 MiB update ran at 15-16
// GB/s plain and 58-67 GB/s dispatched, and every written byte is hashed
// twice (the file's and its block's sums) on the writer's path.
#pragma once

#include <xxhash.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xxh_x86dispatch.h>
#endif

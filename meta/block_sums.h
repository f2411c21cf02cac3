// Block checksums: the unit a verified read checks (fs/verified_read.h) and
// the hasher and mover record (fs/block_hasher.h, tiering/mover.h). Plain
// helpers, no I/O.
#pragma once

#include "meta/xxh3.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace tierfs {

// Each 1 MiB of an object has its own xxh3_64 (the last block may be short).
inline constexpr uint64_t kSumBlockBytes = uint64_t(1) << 20;

inline uint64_t SumBlockCount(uint64_t size) {
  return (size + kSumBlockBytes - 1) / kSumBlockBytes;
}

// Hashes a stream of bytes given in file order, in pieces of any length:
// the whole-file xxh3_64 and one per kSumBlockBytes block.
class BlockSummer {
 public:
  // `blocks`: false hashes the whole only.
  explicit BlockSummer(bool blocks = true)
      : blocks_on_(blocks), whole_(XXH3_createState()), block_(XXH3_createState()) {
    XXH3_64bits_reset(whole_);
    XXH3_64bits_reset(block_);
  }
  ~BlockSummer() {
    XXH3_freeState(whole_);
    XXH3_freeState(block_);
  }
  BlockSummer(const BlockSummer&) = delete;
  BlockSummer& operator=(const BlockSummer&) = delete;

  void Update(const char* p, size_t n) {
    XXH3_64bits_update(whole_, p, n);
    while (blocks_on_ && n > 0) {
      const size_t take = size_t(std::min<uint64_t>(n, kSumBlockBytes - in_block_));
      XXH3_64bits_update(block_, p, take);
      in_block_ += take;
      p += take;
      n -= take;
      if (in_block_ == kSumBlockBytes) EndBlock();
    }
  }
  // The whole-file hash; `blocks` gets the per-block ones.
  uint64_t Finish(std::vector<uint64_t>* blocks) {
    if (in_block_ > 0) EndBlock();
    *blocks = std::move(blocks_);
    return XXH3_64bits_digest(whole_);
  }

 private:
  void EndBlock() {
    blocks_.push_back(XXH3_64bits_digest(block_));
    XXH3_64bits_reset(block_);
    in_block_ = 0;
  }
  const bool blocks_on_;
  XXH3_state_t* whole_;
  XXH3_state_t* block_;
  uint64_t in_block_ = 0;
  std::vector<uint64_t> blocks_;
};

}  // namespace tierfs

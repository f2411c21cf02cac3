// StreamSums: the checksums of a file computed from its writes as they pass
// through tierfs (fs/ops_write.cc WriteAt), so that the block hasher
// (fs/block_hasher.h) need not read back what was just written. Reading a
// checkpoint back right after its close cost the tier as much as the write
// (a 2 GiB file read cold at 2.9 GB/s while the hasher read it, 5.8 GB/s
// after).
//
// The sums hold only for a file written from its first byte to its last in
// order, every byte seen here: a write anywhere but at the end of what came
// before, and every change made another way (truncate, fallocate,
// copy_file_range, a writer the kernel serves itself), spoils them, and the
// hasher reads the file as before. An O_TRUNC open starts over. Moves and
// spills change where the bytes are, not what they are.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "meta/block_sums.h"

namespace tierfs {

// What a stream computed: the whole-file xxh3_64 and the block sums of the
// first `bytes` bytes of the file.
struct StreamedSums {
  uint64_t bytes = 0;
  uint64_t whole = 0;
  std::vector<uint64_t> blocks;
};

class StreamSums {
 public:
  // `n` bytes at `p` were written at `off`.
  void Wrote(uint64_t off, const char* p, size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    if (spoiled_ || off != next_) {
      spoiled_ = true;
      summer_.reset();
      return;
    }
    if (!summer_) summer_ = std::make_unique<BlockSummer>();
    summer_->Update(p, n);
    next_ += n;
  }
  // The file changed in a way these sums cannot follow.
  void Spoil() {
    std::lock_guard<std::mutex> lock(mu_);
    spoiled_ = true;
    summer_.reset();
  }
  // The file is empty again (O_TRUNC, truncate to 0).
  void Restart() {
    std::lock_guard<std::mutex> lock(mu_);
    spoiled_ = false;
    summer_.reset();
    next_ = 0;
  }
  // The sums of everything written so far, when they hold. A write after
  // this spoils them (the stream is finished).
  std::optional<StreamedSums> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (spoiled_) return std::nullopt;
    StreamedSums out;
    out.bytes = next_;
    BlockSummer empty;
    out.whole = (summer_ ? *summer_ : empty).Finish(&out.blocks);
    summer_.reset();
    spoiled_ = next_ > 0;  // a further write would need the finished state
    return out;
  }

 private:
  std::mutex mu_;
  std::unique_ptr<BlockSummer> summer_;  // null until the first write
  uint64_t next_ = 0;                    // where the next write must start
  bool spoiled_ = false;
};

}  // namespace tierfs

// The data path of a move: copy one object to another file while hashing it.
//
// CopyAndHash copies the first `size` bytes of `in` to `out` with io_uring:
// up to queue_depth chunk-sized requests in flight, into page-aligned
// buffers, hashing (xxh3_64) the bytes in file order as reads complete, and
// writing each chunk once it is hashed. Where io_uring is unavailable (old
// kernel, a seccomp profile that forbids it) it falls back to pread/pwrite.
// Either descriptor may be O_DIRECT: requests start at chunk boundaries and
// are padded to whole pages (a direct write's padding is truncated away), so
// a move copies without the page cache and the CPU copies each byte once.
// ReadAndHash is the same machine without the writes: the read-back check.
// With skip_holes, a chunk that lies wholly in a hole of the file read
// (lseek SEEK_DATA) is neither read nor written, only hashed as the zeros
// it reads as: a sparse file stays sparse on the other tier, and its holes
// cost no disk time and no bandwidth.
// The reads and writes go through the Io of each side (tiering/io.h) when
// one is given and it is not plain POSIX (a FaultIo in tests): io_uring
// would bypass it, so such a copy takes the synchronous pread/pwrite path
// through the Io instead, and an injected fault or corrupted read hits the
// copy exactly as asked. With plain POSIX (or no Io) nothing changes.
// Nothing here knows about tiers or LMDB; the caller names the files.
// Thread-safety: independent calls may run concurrently (each has its ring).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "meta/status.h"
#include "tiering/io.h"
#include "tiering/throttle.h"

namespace tierfs {

struct CopyParams {
  unsigned queue_depth = 8;
  size_t chunk_bytes = 1 << 20;                         // rounded up to a page
  MoveThrottle* throttle = nullptr;                     // paces each chunk; may be null
  const std::function<bool()>* should_abort = nullptr;  // polled before each chunk
  std::string src_name, dst_name;                       // for error messages
  bool direct_out = false;  // `out` is O_DIRECT: write whole pages, then truncate to size
  Io* in_io = nullptr;      // reads of `in` (null: plain POSIX)
  Io* out_io = nullptr;     // writes and the final truncate of `out` (null: plain POSIX)
  // Bytes written to `out` so far are added here as chunks land (a move's
  // progress, fs/placement.h); may be null.
  std::atomic<uint64_t>* progress = nullptr;
  // Set: gets the xxh3_64 of each kSumBlockBytes block (meta/block_sums.h).
  std::vector<uint64_t>* block_sums = nullptr;
  // Skip the chunks in holes of the file read (above). `out` must be new or
  // empty: what is skipped is left unwritten, and `out` is truncated to
  // `size` at the end.
  bool skip_holes = false;
};

// Errors: ECANCELED when should_abort said so or the source turned out
// shorter than `size` (it changed under us); the errno of a failed read or
// write otherwise, naming the file. On error `out` holds a partial copy.
Status CopyAndHash(int in, int out, uint64_t size, const CopyParams& p, uint64_t* hash);

// xxh3_64 of the first `size` bytes of `fd` (which may be O_DIRECT), read
// like CopyAndHash reads (p.throttle and p.should_abort apply, dst_name is
// unused). EIO when the file is shorter than `size`.
Status ReadAndHash(int fd, uint64_t size, const CopyParams& p, uint64_t* hash);

// xxh3_64 of the first `size` bytes of `fd`, read with pread. EIO when the
// file is shorter; the read's errno otherwise. `name` goes into messages.
Status HashFile(int fd, uint64_t size, size_t chunk_bytes, const std::string& name, uint64_t* hash);

}  // namespace tierfs

// The one check of a file's object against its recorded block sums
// (meta/block_sums.h), shared by `tierctl verify` (fs/control_verify.cc)
// and the background scrub (fs/scrub.h). Each 1 MiB block of the object is
// read whole, hashed (xxh3_64) and compared with its sum.
//
// A mismatch is reported as a verified read reports one (fs/verified_read.h):
// logged with the path, block, tier and object path; audited ("corrupt",
// rule = the reporter, "verify" or "scrub"); and the inode is marked
// corrupt (Inode::corrupt) so that every later read is EIO until the file
// is rewritten or removed. A mismatch on a file a writer changed since the
// sums were read is a change, not damage: "busy", nothing reported.
//
// Thread-safety: may run on any thread; holds no LMDB transaction while it
// reads (a throttled check may take long).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "meta/inode.h"
#include "meta/status.h"

namespace tierfs {

class Context;
class Tier;

struct ObjectCheck {
  enum class Result : uint8_t {
    kOk,
    kCorrupt,  // `block` does not match; reported and marked
    kNoSums,   // nothing recorded to check against
    kBusy,     // open for writing, or written during the check
    kError,    // the object could not be read (`detail` says why)
    kStopped,  // the pace function asked to stop
  };
  Result result = Result::kOk;
  uint64_t block = 0;
  std::string detail;       // corrupt: "expected xxh3 ..., actual ..."; error: the message
  uint64_t bytes_read = 0;  // of the object, whatever the result
};

// "ok", "corrupt", "no sums", "busy", "error", "stopped".
const char* ObjectCheckName(ObjectCheck::Result r);

// Called with a block's length before it is read: waits as a bandwidth
// limit requires; false stops the check (kStopped).
using CheckPace = std::function<bool(uint64_t bytes)>;

// What O_DIRECT asks of buffers, offsets and lengths on any medium.
constexpr size_t kDirectAlign = 4096;

// One block of an object, read to be checked against its sum.
struct BlockRead {
  size_t got = 0;               // bytes read: fewer than asked where the object ends early
  uint64_t actual = 0;          // xxh3_64 of those `got` bytes
  Status error;                 // a read failed; `got` is what came before it
  bool direct_refused = false;  // `direct_fd` got EINVAL: the rest was read through `fd`
};

// Reads the `len` bytes of block `b` (at b * kSumBlockBytes) of inode
// `ino`'s object, open as `fd` on tier `t`, into `buf` and hashes them;
// EINTR and short reads are retried until `len` bytes or the object's end.
// Where `direct_fd` >= 0 (the object opened O_DIRECT), aligned pieces are
// read through it: `buf` is then aligned to kDirectAlign and holds `len`
// rounded up to it (the last block's read asks for that much and gets the
// object's end), and a medium with larger sectors (EINVAL) has the rest
// read through `fd`. Shared by CheckObject and verified reads
// (fs/verified_read.h), so both read a block alike.
BlockRead ReadObjectBlock(const Tier& t, uint64_t ino, int fd, int direct_fd, uint64_t b,
                          size_t len, char* buf);

// A block's mismatch in words: "expected xxh3 <hex>, actual <hex>".
std::string MismatchText(uint64_t expected, uint64_t actual);

// A block of a file that does not match its sum.
struct CorruptBlock {
  uint64_t ino = 0;
  std::string path;
  uint64_t bytes = 0, checksum = 0;  // the file's recorded size and checksum
  uint64_t block = 0;
  std::string detail;  // MismatchText
};

// Reports `b`, found on tier `t`: logged ("<log_prefix>corrupt data: PATH
// ... block B DETAIL", with the tier and object path), audited ("corrupt",
// rule `rule`) and the inode marked corrupt (Inode::corrupt). The one report
// of CheckObject and verified reads (fs/verified_read.h).
void ReportCorrupt(Context& c, const Tier& t, const CorruptBlock& b, const std::string& rule,
                   const std::string& log_prefix);

// Checks regular file `n` (named `path`, for the reports) on its tier;
// `reporter` names who found a mismatch in the log and the audit record.
ObjectCheck CheckObject(Context& c, const Inode& n, const std::string& path,
                        const std::string& reporter, const CheckPace& pace = nullptr);

}  // namespace tierfs

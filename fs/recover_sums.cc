// Block sums in recovery (fs/recover_sums.h).
#include "fs/recover_sums.h"

#include <fcntl.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <vector>

#include "meta/block_sums.h"
#include "meta/text_format.h"

namespace tierfs {

namespace {

// Reads the object of `ino` whole: its xxh3, its block sums and its size.
Status HashObject(const Tier& hdd, uint64_t ino, uint64_t* whole, std::vector<uint64_t>* blocks,
                  uint64_t* size) {
  const std::string path = hdd.ObjectPath(ino);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::Errno(errno, "open " + path);
  BlockSummer sum;
  std::vector<char> buf(kSumBlockBytes);
  Status st;
  *size = 0;
  for (;;) {
    const ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) st = Status::Errno(errno, "read " + path);
    if (n <= 0) break;
    sum.Update(buf.data(), size_t(n));
    *size += uint64_t(n);
  }
  close(fd);
  *whole = sum.Finish(blocks);
  return st;
}

}  // namespace

Status SumRecoveredFile(Store& store, const Tier& hdd, RecoverEntry* entry) {
  Inode n;
  Status st = store.GetInode(entry->ino, &n);
  if (!st.ok()) return st;
  if (!n.is_reg() || n.tier != TierId::kHdd || n.size == 0) return Status::Ok();
  std::vector<uint64_t> blocks;
  if (store.GetBlockSums(entry->ino, &blocks).ok()) return Status::Ok();  // verified already
  uint64_t whole = 0, size = 0;
  const Status read = HashObject(hdd, entry->ino, &whole, &blocks, &size);
  std::string why;
  if (!read.ok())
    why = "its object cannot be read: " + read.message();
  else if (size != n.size)
    why = "its object holds " + std::to_string(size) + " bytes, " + std::to_string(n.size) +
          " recorded";
  else if (n.checksum != 0 && whole != n.checksum)
    why =
        "its object hashes to xxh3 " + Hex64(whole) + ", its identity records " + Hex64(n.checksum);
  if (why.empty()) {
    // Still the inode that was hashed: nothing else writes the new state.
    return store.CommitSums(
        entry->ino,
        [&](const Inode& now) { return now.size == n.size && now.checksum == n.checksum; }, whole,
        blocks);
  }
  st = store.MarkCorrupt(entry->ino, n.checksum);
  if (!st.ok()) return st;
  entry->detail = why + "; " + entry->status + ", and marked corrupt: every read is EIO";
  entry->status = "corrupt";
  return Status::Ok();
}

}  // namespace tierfs

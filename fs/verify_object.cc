#include "fs/verify_object.h"

#include <fcntl.h>
#include <unistd.h>
#include "meta/xxh3.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "fs/context.h"
#include "meta/block_sums.h"
#include "meta/text_format.h"

namespace tierfs {

std::string MismatchText(uint64_t expected, uint64_t actual) {
  return "expected xxh3 " + Hex64(expected) + ", actual " + Hex64(actual);
}

void ReportCorrupt(Context& c, const Tier& t, const CorruptBlock& b, const std::string& rule,
                   const std::string& log_prefix) {
  spdlog::error("{}corrupt data: {} (inode {}) on tier {} ({}): block {} {}", log_prefix, b.path,
                b.ino, t.name(), t.ObjectPath(b.ino), b.block, b.detail);
  AuditRecord rec;
  rec.action = "corrupt";
  rec.rule = rule;
  rec.path = b.path;
  rec.ino = b.ino;
  rec.from = t.name();
  rec.bytes = b.bytes;
  rec.checksum = b.checksum;
  rec.has_checksum = true;
  rec.result = "corrupt";
  rec.detail = "block " + std::to_string(b.block) + ": " + b.detail;
  c.Audit({rec});
  Status st = c.store().MarkCorrupt(b.ino, b.checksum);
  if (!st.ok()) spdlog::warn("marking inode {} corrupt: {}", b.ino, st.message());
}

const char* ObjectCheckName(ObjectCheck::Result r) {
  switch (r) {
    case ObjectCheck::Result::kOk:
      return "ok";
    case ObjectCheck::Result::kCorrupt:
      return "corrupt";
    case ObjectCheck::Result::kNoSums:
      return "no sums";
    case ObjectCheck::Result::kBusy:
      return "busy";
    case ObjectCheck::Result::kError:
      return "error";
    case ObjectCheck::Result::kStopped:
      return "stopped";
  }
  return "error";
}

BlockRead ReadObjectBlock(const Tier& t, uint64_t ino, int fd, int direct_fd, uint64_t b,
                          size_t len, char* buf) {
  BlockRead r;
  const uint64_t start = b * kSumBlockBytes;
  const size_t want = direct_fd >= 0 ? (len + kDirectAlign - 1) / kDirectAlign * kDirectAlign : len;
  while (r.got < len) {
    const bool aligned = direct_fd >= 0 && r.got % kDirectAlign == 0;
    const ssize_t n = t.io().Pread(aligned ? direct_fd : fd, buf + r.got,
                                   (aligned ? want : len) - r.got, off_t(start + r.got));
    if (n == -EINTR) continue;
    if (n == -EINVAL && aligned) {  // a medium with larger sectors: read it buffered
      direct_fd = -1;
      r.direct_refused = true;
      continue;
    }
    if (n < 0) {
      r.error = Status::Errno(int(-n), "read " + t.ObjectPath(ino));
      break;
    }
    if (n == 0) break;  // short: hashed as it is, so it fails the check
    r.got += size_t(n);
  }
  r.got = std::min(r.got, len);
  r.actual = XXH3_64bits(buf, r.got);
  return r;
}

ObjectCheck CheckObject(Context& c, const Inode& n, const std::string& path,
                        const std::string& reporter, const CheckPace& pace) {
  using R = ObjectCheck::Result;
  ObjectCheck out;
  std::shared_ptr<LiveState> live = c.table().FindLive(n.ino);
  if (live && live->writers.load() > 0) return out.result = R::kBusy, out;
  const uint64_t epoch = c.table().epoch();
  std::vector<uint64_t> sums;
  Status st = c.store().GetBlockSums(n.ino, &sums);
  if (st.err() == ENOENT) return out.result = R::kNoSums, out;
  const Tier& t = c.tier(n.tier);
  if (st.ok() && n.tier == TierId::kHdd) st = t.CheckHealth();
  int fd = st.ok() ? t.OpenObject(n.ino, O_RDONLY, &st) : -1;
  if (fd < 0 && st.err() == ENOENT && n.size == 0) return out;
  if (fd < 0) return out.result = R::kError, out.detail = st.message(), out;
  std::vector<char> buf(kSumBlockBytes);
  for (uint64_t b = 0; b < sums.size(); ++b) {
    const uint64_t start = b * kSumBlockBytes;
    const size_t len = size_t(std::min<uint64_t>(kSumBlockBytes, n.size - start));
    if (pace && !pace(len)) {
      close(fd);
      return out.result = R::kStopped, out;
    }
    // A failed read is checked as the short read it leaves.
    const BlockRead r = ReadObjectBlock(t, n.ino, fd, -1, b, len, buf.data());
    const size_t got = r.got;
    const uint64_t actual = r.actual;
    out.bytes_read += got;
    if (got == len && actual == sums[b]) continue;
    close(fd);
    // A write since the sums were read is a change, not damage.
    Inode now;
    live = c.table().FindLive(n.ino);
    if ((live && (live->writers.load() > 0 || live->last_write.load() > epoch)) ||
        !c.store().GetInode(n.ino, &now).ok() || now.checksum != n.checksum)
      return out.result = R::kBusy, out;
    const CorruptBlock corrupt{n.ino, path, n.size, n.checksum, b, MismatchText(sums[b], actual)};
    ReportCorrupt(c, t, corrupt, reporter, reporter + ": ");
    out.result = R::kCorrupt;
    out.block = b;
    out.detail = corrupt.detail;
    return out;
  }
  close(fd);
  return out;
}

}  // namespace tierfs

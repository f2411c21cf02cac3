// The `verify` command (tierctl verify [PATH]): re-reads the object of every
// regular file at or below PATH and checks each 1 MiB block against its
// recorded checksum (fs/verified_read.h says what is recorded and when).
// Root only: it reads every object, and its answer names files of
// directories other users may not list. A corrupt file is reported as a
// verified read reports it: logged, audited, and marked corrupt.
#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <spdlog/spdlog.h>

#include <cinttypes>
#include <cstdio>
#include <map>

#include "fs/context.h"
#include "fs/control_internal.h"
#include "meta/block_sums.h"

namespace tierfs {

using nlohmann::json;

namespace {

// One file: "ok", "corrupt" (with "block"), "no sums", "busy" (open for
// writing: its sums are being replaced) or "error" (with "error").
json VerifyFile(Context& c, const Inode& n, const std::string& path) {
  json j = {{"path", path}, {"tier", TierName(n.tier)}, {"bytes", n.size}};
  std::shared_ptr<LiveState> live = c.table().FindLive(n.ino);
  if (live && live->writers.load() > 0) return j["result"] = "busy", j;
  const uint64_t epoch = c.table().epoch();
  std::vector<uint64_t> sums;
  Status st = c.store().GetBlockSums(n.ino, &sums);
  if (st.err() == ENOENT) return j["result"] = "no sums", j;
  const Tier& t = c.tier(n.tier);
  if (st.ok() && n.tier == TierId::kHdd) st = t.CheckHealth();
  int fd = st.ok() ? t.OpenObject(n.ino, O_RDONLY, &st) : -1;
  if (fd < 0 && st.err() == ENOENT && n.size == 0) return j["result"] = "ok", j;
  if (fd < 0) return j["result"] = "error", j["error"] = st.message(), j;
  std::vector<char> buf(kSumBlockBytes);
  for (uint64_t b = 0; b < sums.size(); ++b) {
    const uint64_t start = b * kSumBlockBytes;
    const size_t len = size_t(std::min<uint64_t>(kSumBlockBytes, n.size - start));
    size_t got = 0;
    while (got < len) {
      const ssize_t r = t.io().Pread(fd, buf.data() + got, len - got, off_t(start + got));
      if (r == -EINTR) continue;
      if (r <= 0) break;
      got += size_t(r);
    }
    const uint64_t actual = XXH3_64bits(buf.data(), got);
    if (got == len && actual == sums[b]) continue;
    close(fd);
    // A write since the sums were read is a change, not damage.
    Inode now;
    live = c.table().FindLive(n.ino);
    if ((live && (live->writers.load() > 0 || live->last_write.load() > epoch)) ||
        !c.store().GetInode(n.ino, &now).ok() || now.checksum != n.checksum)
      return j["result"] = "busy", j;
    char detail[96];
    std::snprintf(detail, sizeof detail, "expected xxh3 %016" PRIx64 ", actual %016" PRIx64,
                  sums[b], actual);
    spdlog::error("verify: corrupt data: {} (inode {}) on tier {} ({}): block {} {}", path, n.ino,
                  t.name(), t.ObjectPath(n.ino), b, detail);
    AuditRecord rec;
    rec.action = "corrupt";
    rec.rule = "verify";
    rec.path = path;
    rec.ino = n.ino;
    rec.from = t.name();
    rec.bytes = n.size;
    rec.checksum = n.checksum;
    rec.has_checksum = true;
    rec.result = "corrupt";
    rec.detail = "block " + std::to_string(b) + ": " + detail;
    c.Audit({rec});
    st = c.store().MarkCorrupt(n.ino, n.checksum);
    if (!st.ok()) spdlog::warn("marking inode {} corrupt: {}", n.ino, st.message());
    j["result"] = "corrupt";
    j["block"] = b;
    j["detail"] = detail;
    return j;
  }
  close(fd);
  return j["result"] = "ok", j;
}

}  // namespace

json ControlVerify(Context& c, const ControlInfo&, const json& req, const ControlPeer& peer) {
  if (peer.uid != 0)
    return ControlError(EPERM, "verify: only root may verify (it reads every file)");
  const std::string path = req.value("path", std::string("/"));
  Inode top;
  std::string clean;
  Status st = ResolveForPeer(c.store(), path, peer, &top, &clean);
  if (!st.ok()) return ControlError(st.err(), "verify " + st.message());
  json files = json::array();
  std::map<std::string, uint64_t> counts;
  st = c.store().WalkBelow(top.ino, clean, [&](const Store::TreeEntry& e) {
    if (!e.inode->is_reg() || e.inode->nlink == 0) return Status::Ok();
    json f = VerifyFile(c, *e.inode, e.path);
    ++counts[f["result"].get<std::string>()];
    files.push_back(std::move(f));
    return Status::Ok();
  });
  if (!st.ok()) return ControlErrorOf(st);
  return {{"ok", true}, {"path", clean}, {"files", std::move(files)}, {"counts", counts}};
}

}  // namespace tierfs

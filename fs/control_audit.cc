// The audit command of the control socket (fs/control_commands.h):
//   {"cmd":"audit"[,"since":T][,"path":P][,"action":A][,"offset":O][,"limit":N]}
// Root sees every record; another user only records whose path they may
// stat now and whose "ino" is the inode at that path now (ResolveForPeer:
// the journal names every user's files, and a removed file's records stay
// root's, even once another file has its name; a record without "ino" is
// root's), without "xxh3" unless they may read the file (a checksum of a
// short secret gives it away). The
// records of STATE/audit.jsonl.1, .2, ... (rotated, meta/audit.h) and
// STATE/audit.jsonl in file order (oldest first) whose "time" is
// at or after T (RFC 3339 UTC, compared as text: the journal writes one
// fixed format), whose path is P or below it, whose action is A. A reply
// carries at most N records (default and maximum 1000) and reads at most
// a bounded number of bytes; "next" is the offset to ask for the rest, null
// at the end. A torn last line (a crash mid-write) is skipped.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "fs/context.h"
#include "fs/control_internal.h"
#include "meta/audit.h"
#include "meta/audit_verify.h"

namespace tierfs {

using nlohmann::json;

namespace {

constexpr uint64_t kMaxRecords = 1000;
constexpr size_t kChunk = 1 << 20;  // bytes read per reply at most

bool Under(const std::string& path, const std::string& prefix) {
  if (prefix.empty() || prefix == "/") return true;
  std::string p = prefix;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return path == p ||
         (path.size() > p.size() && path.compare(0, p.size(), p) == 0 && path[p.size()] == '/');
}

}  // namespace

json ControlAudit(Context& c, const ControlInfo& info, const json& req, const ControlPeer& peer) {
  const std::string since = StringField(req, "since", ""), action = StringField(req, "action", "");
  std::string path;
  PathField(req, &path);
  const uint64_t offset = UintField(req, "offset", 0);
  const uint64_t limit =
      std::min(std::max(UintField(req, "limit", kMaxRecords), uint64_t(1)), kMaxRecords);
  // The rotated files and the journal read as one stream (meta/audit.h):
  // the offset counts from the start of the oldest, and stays valid when
  // the journal rotates between two requests (its bytes only change name).
  const std::vector<std::string> files = AuditJournalFiles(info.state + "/audit.jsonl");
  std::string file;
  uint64_t base = 0, size = 0;
  bool last_file = false;
  for (size_t i = 0; i < files.size(); ++i) {
    struct stat st;
    size = stat(files[i].c_str(), &st) == 0 ? uint64_t(st.st_size) : 0;
    file = files[i];
    last_file = i + 1 == files.size();
    if (offset < base + size || last_file) break;
    base += size;
  }
  const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ControlError(errno, "audit: open " + file + ": " + std::strerror(errno));
  std::string buf(kChunk, '\0');
  const ssize_t n = pread(fd, buf.data(), buf.size(), off_t(offset > base ? offset - base : 0));
  const int err = errno;
  close(fd);
  if (n < 0) return ControlError(err, "audit: read " + file + ": " + std::strerror(err));
  buf.resize(size_t(n));
  json records = json::array();
  size_t pos = 0;
  bool more = false;
  while (pos < buf.size()) {
    const size_t nl = buf.find('\n', pos);
    if (nl == std::string::npos) {
      // A line cut by the chunk: read again from its start; a torn last
      // line (no newline at the end of the file) is never complete.
      more = size_t(n) == kChunk && pos > 0;
      break;
    }
    if (records.size() >= limit) {
      more = true;
      break;
    }
    json rec = json::parse(buf.begin() + long(pos), buf.begin() + long(nl), nullptr, false);
    pos = nl + 1;
    if (!rec.is_object()) continue;
    if (!since.empty() && rec.value("time", std::string()) < since) continue;
    if (!action.empty() && rec.value("action", std::string()) != action) continue;
    // The exact bytes of its path (a name that is not UTF-8 has them in
    // "path_hex"): two such names never match each other's records.
    const std::string p = AuditRecordPath(rec);
    if (!path.empty() && !Under(p, path)) continue;
    if (peer.uid != 0) {
      // The record's file must be the one at its path now: inode numbers
      // are never reused (meta/store.cc), so a file made under a removed
      // file's name does not show the removed file's records.
      const auto ino = rec.find("ino");
      Inode n;
      std::string clean;
      if (p.empty() || p[0] != '/' || ino == rec.end() || !ino->is_number_unsigned() ||
          !ResolveForPeer(c, p, peer, &n, &clean).ok() || n.ino != ino->get<uint64_t>())
        continue;
      // The checksum of the bytes only to one who may read them (as where).
      if (!MayRead(c, n, peer)) rec.erase("xxh3");
    }
    records.push_back(std::move(rec));
  }
  // A rotated file read to its end: the next one follows.
  if (!more && pos == buf.size() && !last_file) more = true;
  return {{"ok", true},
          {"records", std::move(records)},
          {"next", more ? json(std::max(offset, base) + pos) : json(nullptr)}};
}

}  // namespace tierfs

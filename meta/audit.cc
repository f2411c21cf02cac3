#include "meta/audit.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta/audit_verify.h"
#include "meta/state_file.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

namespace tierfs {

namespace {

std::string Rfc3339(int64_t ns) {
  const time_t secs = time_t(ns / 1000000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09" PRId64 "Z", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ns % 1000000000);
  return buf;
}

}  // namespace

Status AuditLog::Open(const std::string& path, std::unique_ptr<AuditLog>* out,
                      const std::string& head_path) {
  std::unique_ptr<AuditLog> log(new AuditLog());
  log->path_ = path;
  log->head_path_ = head_path;
  // The journal may be appended to by root: never through a planted link.
  // Read too: the chain continues from its last line.
  Status st = OpenStateFile(path, O_RDWR | O_APPEND | O_CREAT, 0640, &log->fd_);
  if (!st.ok()) return Status::Error(st.err(), "audit journal: " + st.message());
  st = log->LoadTail();
  if (!st.ok()) return st;
  *out = std::move(log);
  return Status::Ok();
}

// Finds the last complete line (its hash continues the chain) and counts
// the lines, reading the journal once in chunks. Bytes after the last
// newline are a torn append (a crash mid-write; Append never returned ok
// for them): they are cut, so the next record starts a line of its own, and
// a record says how many bytes went.
Status AuditLog::LoadTail() {
  MutexLock lock(&mu_);
  std::string buf(1 << 20, '\0');
  off_t size = 0, last_nl = -1, prev_nl = -1;
  uint64_t lines = 0;
  for (;;) {
    const ssize_t n = pread(fd_, buf.data(), buf.size(), size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Errno(errno, "read audit journal " + path_);
    if (n == 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[size_t(i)] != '\n') continue;
      prev_nl = last_nl;
      last_nl = size + i;
      ++lines;
    }
    size += n;
  }
  lines_ = lines;
  last_hash_ = Sha256Hex(kAuditGenesis);
  if (last_nl >= 0) {
    std::string line(size_t(last_nl - prev_nl - 1), '\0');
    if (pread(fd_, line.data(), line.size(), prev_nl + 1) != ssize_t(line.size()))
      return Status::Errno(errno ? errno : EIO, "read audit journal " + path_);
    last_hash_ = Sha256Hex(line);
  }
  const off_t torn = size - (last_nl + 1);
  if (torn > 0) {
    if (ftruncate(fd_, last_nl + 1) != 0)
      return Status::Errno(errno, "cut the torn tail of audit journal " + path_);
    spdlog::warn("audit journal {}: cut a torn last line of {} bytes (a crash mid-append)", path_,
                 torn);
  }
  const int64_t now = NowNs();
  if (torn > 0) {
    AuditRecord rec;
    rec.action = "journal";
    rec.rule = "open";
    rec.bytes = uint64_t(torn);
    rec.detail = "cut a torn last line of " + std::to_string(torn) +
                 " bytes (a crash mid-append, never a record)";
    return AppendLocked({rec}, now);
  }
  // An existing journal gets its head at once (a new head file, or one an
  // older tierfs never wrote).
  if (!head_path_.empty()) WriteHead(now);
  return Status::Ok();
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) close(fd_);
}

std::string AuditLog::Format(const AuditRecord& rec, int64_t time_ns, const std::string& prev) {
  nlohmann::ordered_json j;
  if (!prev.empty()) j["prev"] = prev;
  j["time"] = Rfc3339(time_ns);
  j["action"] = rec.action;
  j["rule"] = rec.rule;
  if (!rec.path.empty()) j["path"] = rec.path;
  if (rec.ino) j["ino"] = rec.ino;
  if (!rec.series.empty()) j["series"] = rec.series;
  if (rec.generation >= 0) j["generation"] = rec.generation;
  if (!rec.from.empty()) j["from"] = rec.from;
  if (!rec.to.empty()) j["to"] = rec.to;
  j["bytes"] = rec.bytes;
  if (rec.has_checksum) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016" PRIx64, rec.checksum);
    j["xxh3"] = hex;
  }
  j["result"] = rec.result;
  if (!rec.detail.empty()) j["detail"] = rec.detail;
  // Invalid UTF-8 in a file name must not make the record unwritable.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Status AuditLog::Append(const AuditRecord& rec) {
  return Append(std::vector<AuditRecord>{rec});
}

Status AuditLog::Append(const std::vector<AuditRecord>& records) {
  const int64_t now = NowNs();
  MutexLock lock(&mu_);
  return AppendLocked(records, now);
}

Status AuditLog::AppendLocked(const std::vector<AuditRecord>& records, int64_t now) {
  // Each record chains to the one before it, in the batch too; the chain
  // moves on only once the whole batch is durable.
  std::string lines, hash = last_hash_;
  for (const AuditRecord& rec : records) {
    const std::string line = Format(rec, now, hash);
    hash = Sha256Hex(line);
    lines += line + "\n";
  }
  // A failed batch is cut off again: its records were not acknowledged (the
  // caller logs them as not journaled), and a partial line left behind
  // would swallow the next record into a line that is not JSON, and a
  // whole one would break the chain the next record continues.
  struct stat st;
  const off_t before = fstat(fd_, &st) == 0 ? st.st_size : -1;
  auto fail = [&](int err, const std::string& what) {
    if (before < 0 || ftruncate(fd_, before) != 0)
      spdlog::error("audit journal {}: cannot cut a failed append back: {}", path_,
                    std::strerror(errno));
    return Status::Errno(err, what + " audit journal " + path_);
  };
  // A regular file takes a whole write at once; the loop is for the rare
  // short write, which the mutex keeps from interleaving with another.
  for (size_t done = 0; done < lines.size();) {
    const ssize_t n = write(fd_, lines.data() + done, lines.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(n < 0 ? errno : EIO, "append to");
    done += size_t(n);
  }
  if (fdatasync(fd_) != 0) return fail(errno, "sync");
  last_hash_ = hash;
  lines_ += records.size();
  if (!head_path_.empty()) WriteHead(now);
  return Status::Ok();
}

// tmp + fsync + rename: a reader sees the old head or the new one, never a
// mix. The directory is not synced: a crash may bring back the previous
// head, which verify reports as a head that lags (records after it not
// covered), not as tampering; one fsync fewer on the HDD per append.
void AuditLog::WriteHead(int64_t time_ns) {
  const std::string tmp = head_path_ + ".tmp";
  const std::string text = FormatAuditHead(lines_, last_hash_, time_ns);
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
  int err = fd < 0 ? errno : 0;
  if (!err && (write(fd, text.data(), text.size()) != ssize_t(text.size()) || fsync(fd) != 0))
    err = errno ? errno : EIO;
  if (fd >= 0) close(fd);
  if (!err && rename(tmp.c_str(), head_path_.c_str()) != 0) err = errno;
  if (err)
    spdlog::warn("audit head {}: {} (the journal record is kept; verify will find the head behind)",
                 head_path_, std::strerror(err));
}

}  // namespace tierfs

#include "meta/audit.h"

#include "meta/state_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
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

Status AuditLog::Open(const std::string& path, std::unique_ptr<AuditLog>* out) {
  std::unique_ptr<AuditLog> log(new AuditLog());
  log->path_ = path;
  // The journal may be appended to by root: never through a planted link.
  Status st = OpenStateFile(path, O_WRONLY | O_APPEND | O_CREAT, 0640, &log->fd_);
  if (!st.ok()) return Status::Error(st.err(), "audit journal: " + st.message());
  *out = std::move(log);
  return Status::Ok();
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) close(fd_);
}

std::string AuditLog::Format(const AuditRecord& rec, int64_t time_ns) {
  nlohmann::ordered_json j;
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
  std::string lines;
  for (const AuditRecord& rec : records) lines += Format(rec, now) + "\n";
  MutexLock lock(&mu_);
  // A regular file takes a whole write at once; the loop is for the rare
  // short write, which the mutex keeps from interleaving with another.
  for (size_t done = 0; done < lines.size();) {
    const ssize_t n = write(fd_, lines.data() + done, lines.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Errno(n < 0 ? errno : EIO, "append to audit journal " + path_);
    done += size_t(n);
  }
  if (fdatasync(fd_) != 0) return Status::Errno(errno, "sync audit journal " + path_);
  return Status::Ok();
}

}  // namespace tierfs

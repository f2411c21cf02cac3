#include "meta/audit.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta/audit_verify.h"
#include "meta/state_file.h"
#include "meta/text_format.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

namespace tierfs {

namespace {

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The hash of the last line of a rotated file (it ends with a newline).
Status LastLineHash(const std::string& path, std::string* hash) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Errno(errno ? errno : ENOENT, "open rotated audit journal " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Status::Errno(EIO, "read rotated audit journal " + path);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  const size_t nl = text.rfind('\n');
  *hash = Sha256Hex(text.empty() ? std::string(kAuditGenesis)
                                 : text.substr(nl == std::string::npos ? 0 : nl + 1));
  return Status::Ok();
}

}  // namespace

Status AuditLog::Open(const std::string& path, std::unique_ptr<AuditLog>* out,
                      const std::string& head_path, uint64_t max_bytes,
                      const std::string& mirror_path) {
  std::unique_ptr<AuditLog> log(new AuditLog());
  if (!mirror_path.empty()) log->mirror_ = std::make_unique<AuditMirror>(path, mirror_path);
  log->path_ = path;
  log->head_path_ = head_path;
  log->max_bytes_ = max_bytes;
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
  // Rotated files (meta/audit.h): the next number is past all of them and
  // past the one the journal continues; an empty journal after them is a
  // rotation a crash cut short: it begins with its rotate record.
  const std::vector<std::string> files = AuditJournalFiles(path_);
  for (const std::string& f : files)
    if (f != path_) next_rotation_ = std::stoull(f.substr(path_.size() + 1)) + 1;
  if (last_nl >= 0) {
    std::string first(size_t(std::min<off_t>(last_nl, 1 << 16)), '\0');
    if (pread(fd_, first.data(), first.size(), 0) == ssize_t(first.size())) {
      const std::string cont = AuditContinues(first.substr(0, first.find('\n')));
      if (cont.rfind(BaseName(path_) + ".", 0) == 0)
        next_rotation_ = std::max<uint64_t>(
            next_rotation_,
            std::strtoull(cont.c_str() + BaseName(path_).size() + 1, nullptr, 10) + 1);
    }
  } else if (files.size() > 1) {
    Status st = LastLineHash(files[files.size() - 2], &last_hash_);
    if (!st.ok()) return st;
    pending_continues_ = BaseName(files[files.size() - 2]);
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
  if (!pending_continues_.empty()) return AppendLocked({}, now);
  // The HDD copy catches up (an HDD that was away, a tierfs from before the
  // copy) before the head vouches for the chain.
  const bool hdd_open = HddOpen();
  if (mirror_ && hdd_open) mirror_->Sync();
  // An existing journal gets its head at once (a new head file, or one an
  // older tierfs never wrote).
  if (!head_path_.empty() && hdd_open) WriteHead(now);
  return Status::Ok();
}

std::string AuditRecordPath(const nlohmann::json& rec) {
  if (!rec.is_object()) return "";
  const auto hex = rec.find("path_hex");
  std::string bytes;
  if (hex != rec.end() && hex->is_string() &&
      FromHexBytes(hex->get_ref<const std::string&>(), &bytes))
    return bytes;
  const auto path = rec.find("path");
  return path != rec.end() && path->is_string() ? path->get<std::string>() : "";
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) close(fd_);
}

std::string AuditLog::Format(const AuditRecord& rec, int64_t time_ns, const std::string& prev) {
  nlohmann::ordered_json j;
  if (!prev.empty()) j["prev"] = prev;
  j["time"] = UtcNanos(time_ns);
  j["action"] = rec.action;
  if (!rec.continues.empty()) j["continues"] = rec.continues;
  j["rule"] = rec.rule;
  if (rec.uid >= 0) j["uid"] = rec.uid;
  if (rec.pid >= 0) j["pid"] = rec.pid;
  if (!rec.path.empty()) j["path"] = rec.path;
  // Dumped with U+FFFD below: two names that differ only in bytes that are
  // not UTF-8 would read the same. Their exact bytes go beside.
  if (!rec.path.empty() && !ValidUtf8(rec.path)) j["path_hex"] = HexBytes(rec.path);
  if (rec.ino) j["ino"] = rec.ino;
  if (!rec.series.empty()) j["series"] = rec.series;
  if (rec.generation >= 0) j["generation"] = rec.generation;
  if (!rec.from.empty()) j["from"] = rec.from;
  if (!rec.to.empty()) j["to"] = rec.to;
  j["bytes"] = rec.bytes;
  if (rec.new_size >= 0) j["new_size"] = rec.new_size;
  if (rec.has_checksum) {
    j["xxh3"] = Hex64(rec.checksum);
  }
  if (rec.count) j["count"] = rec.count;
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
  // A journal that begins after a rotation begins with its rotate record.
  std::vector<AuditRecord> with_rotate;
  const std::vector<AuditRecord>* batch = &records;
  if (!pending_continues_.empty()) {
    AuditRecord rec;
    rec.action = "rotate";
    rec.rule = "size";
    rec.continues = pending_continues_;
    rec.detail = "the journal continues " + pending_continues_ + ", rotated at " +
                 std::to_string(max_bytes_) + " bytes";
    with_rotate.push_back(std::move(rec));
    with_rotate.insert(with_rotate.end(), records.begin(), records.end());
    batch = &with_rotate;
  }
  // Each record chains to the one before it, in the batch too; the chain
  // moves on only once the whole batch is durable.
  std::string lines, hash = last_hash_;
  for (const AuditRecord& rec : *batch) {
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
  const bool hdd_open = HddOpen();
  if (mirror_ && hdd_open) mirror_->Append(before, lines);
  last_hash_ = hash;
  lines_ += batch->size();
  const bool rotated_now = !pending_continues_.empty();
  pending_continues_.clear();
  if (!head_path_.empty() && hdd_open) WriteHead(now);
  // Not right after a rotation: a limit below one record must not loop.
  if (max_bytes_ && !rotated_now && before >= 0 && uint64_t(before) + lines.size() >= max_bytes_)
    RotateLocked(now);
  return Status::Ok();
}

// The record just appended stays acknowledged whatever happens here: a
// rotation that fails leaves the journal as it was, to rotate on the next
// append.
void AuditLog::RotateLocked(int64_t now) {
  std::string rotated;
  for (int tries = 0; tries < 100; ++tries, ++next_rotation_) {
    rotated = path_ + "." + std::to_string(next_rotation_);
    // Never over a rotated file: each number is used once.
    if (renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, rotated.c_str(), RENAME_NOREPLACE) == 0) break;
    if (errno != EEXIST) {
      spdlog::warn("audit journal {}: cannot rotate to {}: {}", path_, rotated,
                   std::strerror(errno));
      return;
    }
    rotated.clear();
  }
  if (rotated.empty()) return;
  int fd = -1;
  Status st = OpenStateFile(path_, O_RDWR | O_APPEND | O_CREAT, 0640, &fd);
  if (!st.ok()) {
    spdlog::warn("audit journal {}: cannot begin a new file after rotating: {}", path_,
                 st.message());
    if (rename(rotated.c_str(), path_.c_str()) != 0)
      spdlog::error("audit journal {}: cannot rename {} back: {}", path_, rotated,
                    std::strerror(errno));
    return;
  }
  close(fd_);
  fd_ = fd;
  lines_ = 0;
  ++next_rotation_;
  pending_continues_ = BaseName(rotated);
  if (mirror_) mirror_->Rotated();
  // The rename and the new file survive a crash: the directory is synced.
  const std::string dir =
      path_.substr(0, path_.rfind('/') == std::string::npos ? 0 : path_.rfind('/'));
  const int dfd = open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    if (fsync(dfd) != 0)
      spdlog::warn("audit journal {}: fsync of its directory: {}", path_, std::strerror(errno));
    close(dfd);
  }
  st = AppendLocked({}, now);
  if (!st.ok())
    spdlog::warn("audit journal {}: the rotate record waits for the next append: {}", path_,
                 st.message());
  spdlog::info("audit journal rotated to {}", rotated);
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

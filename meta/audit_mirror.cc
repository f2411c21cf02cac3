#include "meta/audit_mirror.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "meta/audit_verify.h"
#include "meta/inode.h"

namespace tierfs {

namespace {

// How much of a copy's end is compared with the local file: enough to
// tell another chain or an edit near the end from a prefix, cheap at start.
constexpr off_t kPrefixCheckBytes = 4096;

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string BaseOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Status PreadAll(int fd, char* buf, size_t n, off_t at, const std::string& what) {
  for (size_t done = 0; done < n;) {
    const ssize_t r = pread(fd, buf + done, n - done, at + off_t(done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Status::Errno(r < 0 ? errno : EIO, "read " + what);
    done += size_t(r);
  }
  return Status::Ok();
}

Status WriteAll(int fd, const char* buf, size_t n, const std::string& what) {
  for (size_t done = 0; done < n;) {
    const ssize_t w = write(fd, buf + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Status::Errno(w < 0 ? errno : EIO, "append to " + what);
    done += size_t(w);
  }
  return Status::Ok();
}

// Whether the `copy_size` bytes of `copy` are the start of `local`
// (`local_size` bytes), judged by their last kPrefixCheckBytes.
Status IsPrefix(int copy, off_t copy_size, int local, off_t local_size, const std::string& what,
                bool* prefix) {
  *prefix = copy_size <= local_size;
  if (!*prefix || copy_size == 0) return Status::Ok();
  const off_t n = std::min(copy_size, kPrefixCheckBytes), at = copy_size - n;
  std::string a(size_t(n), '\0'), b(size_t(n), '\0');
  Status st = PreadAll(copy, a.data(), a.size(), at, what);
  if (st.ok()) st = PreadAll(local, b.data(), b.size(), at, what);
  *prefix = st.ok() && a == b;
  return st;
}

Status SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::Errno(errno, "open " + dir);
  const int rc = fsync(fd), err = errno;
  close(fd);
  return rc == 0 ? Status::Ok() : Status::Errno(err, "fsync " + dir);
}

// Makes `copy` equal to `local` (see the header). `changed_dir`: a name was
// made or renamed.
Status CatchUpFile(const std::string& local, const std::string& copy, bool* changed_dir) {
  const int in = open(local.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (in < 0) return Status::Errno(errno, "open local audit journal " + local);
  struct stat ls;
  if (fstat(in, &ls) != 0) {
    const int err = errno;
    close(in);
    return Status::Errno(err, "stat " + local);
  }
  int out = open(copy.c_str(), O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  if (out < 0 && errno == ENOENT) {
    out = open(copy.c_str(), O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
    *changed_dir = true;
  }
  Status st = out < 0 ? Status::Errno(errno, "open audit journal copy " + copy) : Status::Ok();
  struct stat cs;
  if (st.ok() && fstat(out, &cs) != 0) st = Status::Errno(errno, "stat " + copy);
  bool prefix = false;
  if (st.ok()) st = IsPrefix(out, cs.st_size, in, ls.st_size, copy + " and " + local, &prefix);
  if (st.ok() && !prefix) {
    // Another chain, or an edited copy: kept aside for whoever looks into it.
    const std::string aside = copy + ".diverged-" + std::to_string(NowNs());
    spdlog::warn("audit journal copy {} is not a copy of {}: kept as {}, copied afresh", copy,
                 local, aside);
    close(out);
    out = -1;
    if (rename(copy.c_str(), aside.c_str()) != 0)
      st = Status::Errno(errno, "rename " + copy + " to " + aside);
    if (st.ok())
      out = open(copy.c_str(), O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (st.ok() && out < 0) st = Status::Errno(errno, "create audit journal copy " + copy);
    cs.st_size = 0;
    *changed_dir = true;
  }
  std::vector<char> buf(1 << 20);
  for (off_t at = cs.st_size; st.ok() && at < ls.st_size;) {
    const size_t n = size_t(std::min<off_t>(off_t(buf.size()), ls.st_size - at));
    st = PreadAll(in, buf.data(), n, at, local);
    if (st.ok()) st = WriteAll(out, buf.data(), n, copy);
    at += off_t(n);
  }
  if (st.ok() && cs.st_size < ls.st_size && fdatasync(out) != 0)
    st = Status::Errno(errno, "sync audit journal copy " + copy);
  close(in);
  if (out >= 0) close(out);
  return st;
}

}  // namespace

Status AuditMirror::CatchUp() {
  in_step_ = false;
  const std::string dir = DirOf(path_);
  if (mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST)
    return Status::Errno(errno, "create audit journal copy directory " + dir);
  bool changed_dir = false, current_done = false;
  struct stat sb;
  for (const std::string& local : AuditJournalFiles(local_)) {
    if (stat(local.c_str(), &sb) != 0) continue;  // no journal yet
    const bool current = local == local_;
    const std::string copy = current ? path_ : dir + "/" + BaseOf(local);
    // The copy's rotation that a crash or a failure cut short: the current
    // copy is (the start of) this rotated file.
    if (!current && stat(copy.c_str(), &sb) != 0 && errno == ENOENT) {
      const int c = open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      const int l = open(local.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      struct stat cs, ls;
      bool prefix = false;
      if (c >= 0 && l >= 0 && fstat(c, &cs) == 0 && fstat(l, &ls) == 0 && cs.st_size > 0)
        // Unreadable: no rename; the copy is then checked as the current one.
        prefix = IsPrefix(c, cs.st_size, l, ls.st_size, path_, &prefix).ok() && prefix;
      if (c >= 0) close(c);
      if (l >= 0) close(l);
      if (prefix &&
          renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, copy.c_str(), RENAME_NOREPLACE) == 0)
        changed_dir = true;
    }
    Status st = CatchUpFile(local, copy, &changed_dir);
    if (!st.ok()) return st;
    current_done = current_done || current;
  }
  if (changed_dir) {
    Status st = SyncDir(dir);
    if (!st.ok()) return st;
  }
  in_step_ = current_done;
  return in_step_ ? Status::Ok()
                  : Status::Error(ENOENT, "no local audit journal " + local_ + " to copy");
}

// Opened for each append, never held open: a tier mounted read-only by an
// admin (mount -o remount,ro) refuses while a file on it is open for writing.
Status AuditMirror::AppendLines(off_t before, const std::string& lines) {
  const int fd = open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::Errno(errno, "open audit journal copy " + path_);
  struct stat sb;
  Status st;
  if (fstat(fd, &sb) != 0) st = Status::Errno(errno, "stat audit journal copy " + path_);
  // Not where the local journal was: catch up instead (the caller does).
  if (st.ok() && sb.st_size != before)
    st = Status::Error(ESTALE, "audit journal copy " + path_ + " is " + std::to_string(sb.st_size) +
                                   " bytes, the local journal was " + std::to_string(before));
  else if (st.ok()) {
    st = WriteAll(fd, lines.data(), lines.size(), "audit journal copy " + path_);
    if (st.ok() && fdatasync(fd) != 0)
      st = Status::Errno(errno, "sync audit journal copy " + path_);
    // A partial append is cut, so the copy stays a prefix of the local journal.
    if (!st.ok() && ftruncate(fd, before) != 0)
      spdlog::warn("audit journal copy {}: cannot cut a failed append back: {}", path_,
                   std::strerror(errno));
  }
  close(fd);
  return st;
}

void AuditMirror::Append(off_t before, const std::string& lines) {
  Status st = in_step_ ? AppendLines(before, lines) : CatchUp();
  if (!st.ok() && in_step_) st = CatchUp();  // the local file has these lines already
  Report(st);
}

void AuditMirror::Sync() {
  if (!in_step_) Report(CatchUp());
}

void AuditMirror::Report(const Status& st) {
  if (st.ok()) {
    if (warned_) spdlog::info("audit journal copy {} caught up with {}", path_, local_);
    warned_ = false;
    return;
  }
  in_step_ = false;
  if (!warned_)
    spdlog::warn(
        "audit journal copy {} lags the local journal {}: {} (the records are in the local "
        "journal; the copy catches up at the next append or start)",
        path_, local_, st.message());
  warned_ = true;
}

void AuditMirror::Rotated() {
  in_step_ = false;
}

}  // namespace tierfs

// tools/tierctl_export_fs.h: DEST and the copies made relative to fds.
#include "tools/tierctl_export_fs.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <utility>

#include "meta/text_format.h"

namespace tierctl {

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) close(fd_);
}
UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  std::swap(fd_, o.fd_);
  return *this;
}

std::string Errno(const std::string& what, int err) {
  return what + ": " + std::strerror(err);
}

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < path.size();) {
    const size_t slash = std::min(path.find('/', i), path.size());
    if (slash > i) parts.push_back(path.substr(i, slash - i));
    i = slash + 1;
  }
  return parts;
}

namespace {

struct CloseDir {
  void operator()(DIR* d) const { closedir(d); }
};

// Whether `inner` is `outer` or below it (both absolute, no trailing slash).
bool Below(const std::string& inner, const std::string& outer) {
  return inner == outer ||
         (inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
          (outer == "/" || inner[outer.size()] == '/'));
}

}  // namespace

void PutName(nlohmann::json* entry, const std::string& key, const std::string& name) {
  (*entry)[key] = name;
  if (!tierfs::ValidUtf8(name)) (*entry)[key + "_hex"] = tierfs::HexBytes(name);
}

std::string Sha256SumsLine(const std::string& sha256, const std::string& name) {
  std::string escaped;
  bool any = false;
  for (const char c : name) {
    const char* e = c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r" : nullptr;
    any |= e != nullptr;
    if (e)
      escaped += e;
    else
      escaped += c;
  }
  return (any ? "\\" : "") + sha256 + "  " + escaped + "\n";
}

UniqueFd OpenDest(const std::string& arg, const std::string& source, std::string* shown,
                  std::string* err) {
  std::string dest = arg;
  while (dest.size() > 1 && dest.back() == '/') dest.pop_back();
  const size_t slash = dest.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "."
                             : slash == 0               ? "/"
                                                        : dest.substr(0, slash);
  const std::string base = slash == std::string::npos ? dest : dest.substr(slash + 1);
  char real_parent[PATH_MAX], real_source[PATH_MAX];
  if (realpath(parent.c_str(), real_parent) == nullptr)
    return *err = Errno(parent, errno), UniqueFd();
  if (realpath(source.c_str(), real_source) == nullptr)
    return *err = Errno("realpath " + source, errno), UniqueFd();
  *shown = std::string(real_parent) + (std::string(real_parent) == "/" ? "" : "/") + base;
  if (Below(*shown, real_source)) return *err = dest + " is inside " + source, UniqueFd();
  const UniqueFd parent_fd(open(real_parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent_fd.ok()) return *err = Errno(parent, errno), UniqueFd();
  if (mkdirat(parent_fd.get(), base.c_str(), 0755) != 0 && errno != EEXIST)
    return *err = Errno("mkdir " + dest, errno), UniqueFd();
  // Opened without following a symlink, then checked on the fd: whatever
  // replaces DEST after this, the export goes into what was checked.
  UniqueFd fd(openat(parent_fd.get(), base.c_str(), kDirFlags));
  const char* rule = "DEST must not exist, or be an empty directory of the caller's";
  struct stat st;
  if (!fd.ok() && (errno == ELOOP || errno == ENOTDIR)) {  // which one: O_DIRECTORY or O_NOFOLLOW
    const bool link = fstatat(parent_fd.get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                      S_ISLNK(st.st_mode);
    return *err = dest + (link ? " is a symbolic link: " : " is not a directory: ") + rule,
           UniqueFd();
  }
  if (!fd.ok() || fstat(fd.get(), &st) != 0) return *err = Errno(dest, errno), UniqueFd();
  if (st.st_uid != geteuid())
    return *err = dest + " is owned by uid " + std::to_string(st.st_uid) +
                  ", not by the caller (uid " + std::to_string(geteuid()) + "): " + rule,
           UniqueFd();
  std::vector<std::string> names;
  int e = 0;
  if (!ReadNames(fd.get(), &names, &e)) return *err = Errno(dest, e), UniqueFd();
  // An export never mixes with other files, and never overwrites any.
  if (!names.empty()) return *err = dest + " is not empty: " + rule, UniqueFd();
  return fd;
}

bool ReadNames(int dir, std::vector<std::string>* names, int* err) {
  // Reopened: a DIR stream of its own, with its own offset.
  const int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return *err = errno, false;
  std::unique_ptr<DIR, CloseDir> d(fdopendir(fd));
  if (!d) {
    *err = errno;
    close(fd);
    return false;
  }
  errno = 0;
  while (dirent* e = readdir(d.get())) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
      names->push_back(e->d_name);
    errno = 0;
  }
  if (errno != 0) return *err = errno, false;
  std::sort(names->begin(), names->end());
  return true;
}

bool ReadLinkAt(int dir, const std::string& name, std::string* target, int* err) {
  std::string buf(PATH_MAX + 1, '\0');
  const ssize_t n = readlinkat(dir, name.c_str(), buf.data(), buf.size());
  if (n < 0) return *err = errno, false;
  if (size_t(n) == buf.size()) return *err = ENAMETOOLONG, false;
  *target = buf.substr(0, size_t(n));
  return true;
}

UniqueFd MakeDirAt(int dir, const std::string& name, std::string* err) {
  if (mkdirat(dir, name.c_str(), 0700) != 0) {
    *err = errno == EEXIST ? "already exists (made by someone else during the export; not used)"
                           : Errno("mkdir", errno);
    return UniqueFd();
  }
  UniqueFd fd(openat(dir, name.c_str(), kDirFlags));
  struct stat st;
  if (!fd.ok() || fstat(fd.get(), &st) != 0) return *err = Errno("open", errno), UniqueFd();
  if (st.st_uid != geteuid()) return *err = "replaced during the export; not used", UniqueFd();
  return fd;
}

std::string SetOwnerModeTimes(int fd, const struct stat& st) {
  mode_t mode = st.st_mode & 07777;
  if (geteuid() == 0 && fchown(fd, st.st_uid, st.st_gid) != 0) {
    // Kept as root's (the manifest records the owner), so never set-ID:
    // that would make another user's program run as root.
    mode &= ~mode_t(S_ISUID | S_ISGID);
  }
  if (fchmod(fd, mode) != 0) return Errno("chmod", errno);
  const timespec times[2] = {st.st_atim, st.st_mtim};
  if (futimens(fd, times) != 0) return Errno("set times", errno);
  return "";
}

std::string SetLinkOwner(int dir, const std::string& name, const struct stat& st) {
  if (geteuid() != 0) return "";
  // The link just made, checked on an fd: in a DEST others may write to,
  // the name could already be someone else's file.
  const UniqueFd fd(openat(dir, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  struct stat now;
  if (!fd.ok() || fstat(fd.get(), &now) != 0) return Errno("open", errno);
  if (!S_ISLNK(now.st_mode) || now.st_uid != 0) return "replaced during the export";
  if (fchownat(fd.get(), "", st.st_uid, st.st_gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
    // Kept as root's: the manifest records the owner, and a link has no mode.
  }
  return "";
}

bool WriteWholeAt(int dir, const std::string& name, const std::string& text, std::string* err) {
  const std::string tmp = name + ".tmp";
  const UniqueFd fd(
      openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd.ok()) return *err = Errno("create " + tmp, errno), false;
  for (size_t done = 0; done < text.size();) {
    const ssize_t w = write(fd.get(), text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return *err = Errno("write " + tmp, w < 0 ? errno : ENOSPC), false;
    done += size_t(w);
  }
  if (fsync(fd.get()) != 0) return *err = Errno("fsync " + tmp, errno), false;
  if (renameat(dir, tmp.c_str(), dir, name.c_str()) != 0)
    return *err = Errno("rename", errno), false;
  fsync(dir);  // the names too, or a crash could lose the manifest of fsynced files
  return true;
}

}  // namespace tierctl

// The file-system side of tierctl export (tools/tierctl_export.cc): DEST
// opened and checked once, then every directory, file and symlink made or
// read relative to a directory fd, never by a path that another user could
// redirect with a symlink; and the text forms the manifest and SHA256SUMS
// give to names that are not valid UTF-8 or hold a newline.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tierctl {

// How export opens every directory: never through a symlink.
constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

// An owned file descriptor (-1: none).
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

// "what: strerror(err)".
std::string Errno(const std::string& what, int err);
// The non-empty components of a path.
std::vector<std::string> SplitPath(const std::string& path);

// Sets `key` to `name`, and `key`_hex to its exact bytes in hex when it is
// not valid UTF-8 (the manifest is dumped with U+FFFD in place of each
// invalid byte, which alone could not tell such names apart).
void PutName(nlohmann::json* entry, const std::string& key, const std::string& name);
// One line of SHA256SUMS as sha256sum(1) of coreutils 9 writes it: a name
// holding a backslash, newline or carriage return is escaped (\\, \n, \r)
// and its line starts with a backslash.
std::string Sha256SumsLine(const std::string& sha256, const std::string& name);

// DEST from the command line: created (0755, less the umask) if it does not
// exist; else it must be a directory, not a symlink, owned by the caller
// and empty. Refused too when it is inside `source`. Its fd, with
// `shown` the path to print; on refusal no fd and `err` says why, naming
// DEST. The path up to DEST's parent is resolved as typed.
UniqueFd OpenDest(const std::string& dest, const std::string& source, std::string* shown,
                  std::string* err);

// The names in the open directory `dir` (without . and ..), sorted.
bool ReadNames(int dir, std::vector<std::string>* names, int* err);
// The target of the symlink `name` in `dir` (EINVAL: not a symlink).
bool ReadLinkAt(int dir, const std::string& name, std::string* target, int* err);
// A new directory `name` in `dir`, mode 0700, opened; a name already there
// is an error (never reused: someone else put it there).
UniqueFd MakeDirAt(int dir, const std::string& name, std::string* err);
// The owner (when root), mode and times of `st` on the open copy `fd`, in
// that order; "" or what failed. A copy whose owner cannot be set keeps
// no set-user-ID or set-group-ID bit: it is still root's.
std::string SetOwnerModeTimes(int fd, const struct stat& st);
// The owner of `st` (when root) on the symlink `name` just made in `dir`.
std::string SetLinkOwner(int dir, const std::string& name, const struct stat& st);
// `text` as `name` in `dir`: written to name.tmp, fsynced, renamed.
bool WriteWholeAt(int dir, const std::string& name, const std::string& text, std::string* err);

}  // namespace tierctl

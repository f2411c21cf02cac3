// tierctl export PATH DEST (tools/tierctl.h): copies a tree out of the mount
// as plain files, for an auditor who has no tierfs. Each file is read
// through the mount (so an HDD-resident file is read, and verified, the way
// an application reads it), hashed as it is copied (SHA-256 for the
// auditor, xxh3-64 to compare with the checksum tierfs recorded), and
// listed in DEST/MANIFEST.json with where it lived, its series, generation
// and hold. DEST/SHA256SUMS lets `sha256sum -c` check the copy later with
// nothing but coreutils. A file that cannot be read, or whose bytes do not
// match its recorded checksum, is named on stderr, kept out of SHA256SUMS,
// marked in the manifest, and makes the exit status 1.
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>
#include "meta/xxh3.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>
#include <vector>

#include "meta/text_format.h"
#include "tools/tierctl.h"

namespace tierctl {

namespace {

std::string Hex(const unsigned char* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += {kDigits[p[i] >> 4], kDigits[p[i] & 15]};
  return s;
}

std::string UtcTime(const timespec& t) {
  char buf[64];
  struct tm tm;
  gmtime_r(&t.tv_sec, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%09ldZ", t.tv_nsec);
  return std::string(buf) + frac;
}

struct CloseDir {
  void operator()(DIR* d) const { closedir(d); }
};
using tierfs::Hex64;

using DirPtr = std::unique_ptr<DIR, CloseDir>;

std::string Errno(const std::string& what, int err) {
  return what + ": " + std::strerror(err);
}

struct FileSums {
  uint64_t bytes = 0;
  std::string sha256, xxh3;
};

// Copies the open file `in` to the new file `out`, hashing what it reads.
// The copy is fsynced: the manifest never lists bytes a crash could lose.
bool CopyHashing(int in, int out, FileSums* sums, std::string* err) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> xxh(XXH3_createState(), XXH3_freeState);
  if (!sha || !xxh || EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr) != 1 ||
      XXH3_64bits_reset(xxh.get()) != XXH_OK) {
    *err = "out of memory for the hashes";
    return false;
  }
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return *err = Errno("read", errno), false;
    if (n == 0) break;
    EVP_DigestUpdate(sha.get(), buf.data(), size_t(n));
    XXH3_64bits_update(xxh.get(), buf.data(), size_t(n));
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = write(out, buf.data() + done, size_t(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return *err = Errno("write", w < 0 ? errno : ENOSPC), false;
      done += w;
    }
    sums->bytes += uint64_t(n);
  }
  if (fsync(out) != 0) return *err = Errno("fsync", errno), false;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (EVP_DigestFinal_ex(sha.get(), md, &len) != 1) return *err = "SHA-256 failed", false;
  sums->sha256 = Hex(md, len);
  sums->xxh3 = Hex64(XXH3_64bits_digest(xxh.get()));
  return true;
}

class Exporter {
 public:
  Exporter(std::string source, std::string dest)
      : source_(std::move(source)), dest_(std::move(dest)) {}

  // Exports the tree; false when anything failed (already reported).
  bool Run() {
    struct stat st;
    if (lstat(source_.c_str(), &st) != 0) return Fail(source_, Errno("stat", errno));
    if (S_ISDIR(st.st_mode)) {
      ExportDir(source_, dest_, "");
    } else {
      const size_t slash = source_.find_last_of('/');
      const std::string name = slash == std::string::npos ? source_ : source_.substr(slash + 1);
      ExportEntry(source_, dest_ + "/" + name, name, st);
    }
    return WriteManifest() && failures_ == 0;
  }
  json Summary() const {
    return {{"files", files_},
            {"bytes", bytes_},
            {"verified", verified_},
            {"unverified", unverified_},
            {"failed", failures_},
            {"manifest", dest_ + "/MANIFEST.json"},
            {"sha256sums", dest_ + "/SHA256SUMS"}};
  }

 private:
  bool Fail(const std::string& what, const std::string& why) {
    std::cerr << "tierctl: export: " << what << ": " << why << "\n";
    ++failures_;
    return false;
  }

  void ExportDir(const std::string& from, const std::string& to, const std::string& rel) {
    DirPtr d(opendir(from.c_str()));
    if (!d) return (void)Fail(from, Errno("opendir", errno));
    std::vector<std::string> names;
    while (dirent* e = readdir(d.get()))
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
        names.push_back(e->d_name);
    std::sort(names.begin(), names.end());  // a manifest in a stable order
    for (const std::string& name : names) {
      const std::string src = from + "/" + name;
      struct stat st;
      if (lstat(src.c_str(), &st) != 0) {
        Fail(src, Errno("stat", errno));
        continue;
      }
      ExportEntry(src, to + "/" + name, rel.empty() ? name : rel + "/" + name, st);
    }
  }

  void ExportEntry(const std::string& src, const std::string& dst, const std::string& rel,
                   const struct stat& st) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
    json entry = {{"path", rel},
                  {"mode", mode},
                  {"uid", st.st_uid},
                  {"gid", st.st_gid},
                  {"mtime", UtcTime(st.st_mtim)}};
    if (S_ISDIR(st.st_mode)) {
      entry["type"] = "directory";
      if (mkdir(dst.c_str(), 0700) != 0 && errno != EEXIST)
        return (void)Fail(dst, Errno("mkdir", errno));
      entries_.push_back(entry);
      ExportDir(src, dst, rel);
      chmod(dst.c_str(), st.st_mode & 07777);  // after its entries: it may be read-only
      return;
    }
    if (S_ISLNK(st.st_mode)) {
      std::string target(size_t(st.st_size) + 1, '\0');
      const ssize_t n = readlink(src.c_str(), target.data(), target.size());
      if (n < 0) return (void)Fail(src, Errno("readlink", errno));
      target.resize(size_t(n));
      if (symlink(target.c_str(), dst.c_str()) != 0)
        return (void)Fail(dst, Errno("symlink", errno));
      entry["type"] = "symlink";
      entry["target"] = target;
      entries_.push_back(entry);
      return;
    }
    if (!S_ISREG(st.st_mode)) {
      entry["type"] = "special";
      entry["exported"] = false;  // device nodes and fifos are not archive data
      entries_.push_back(entry);
      return;
    }
    entry["type"] = "file";
    ExportFile(src, dst, rel, &entry);
    entries_.push_back(entry);
  }

  void ExportFile(const std::string& src, const std::string& dst, const std::string& rel,
                  json* entry) {
    ++files_;
    json where;
    std::string root, err;
    if (clients_.AskAbout(src, {{"cmd", "where"}}, &where, &root, &err)) {
      for (const char* k : {"tier", "series", "generation", "hold", "checksum"})
        if (where.contains(k))
          (*entry)[k == std::string("checksum") ? "recorded_xxh3" : k] = where[k];
    } else {
      (*entry)["where_error"] = err;  // still exported: the bytes are what matters
    }
    const int in = open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0) {
      (*entry)["error"] = Errno("open", errno);
      return (void)Fail(src, (*entry)["error"].get<std::string>());
    }
    const int out = open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
      close(in);
      (*entry)["error"] = Errno("create " + dst, errno);
      return (void)Fail(src, (*entry)["error"].get<std::string>());
    }
    FileSums sums;
    const bool copied = CopyHashing(in, out, &sums, &err);
    struct stat st;
    if (copied && fstat(in, &st) == 0) {
      const timespec times[2] = {st.st_atim, st.st_mtim};
      futimens(out, times);
      fchmod(out, st.st_mode & 07777);
      if (geteuid() == 0 && fchown(out, st.st_uid, st.st_gid) != 0) {
        // Kept as root's: the manifest records the owner.
      }
    }
    close(in);
    close(out);
    if (!copied) {
      (*entry)["error"] = err;
      return (void)Fail(src, err);
    }
    (*entry)["size"] = sums.bytes;
    (*entry)["sha256"] = sums.sha256;
    (*entry)["xxh3"] = sums.xxh3;
    bytes_ += sums.bytes;
    const json& recorded = (*entry)["recorded_xxh3"];
    if (recorded.is_string()) {
      const bool match = recorded.get<std::string>() == sums.xxh3;
      (*entry)["verified"] = match;
      if (!match)
        return (void)Fail(src, "xxh3 " + sums.xxh3 + " does not match the recorded checksum " +
                                   recorded.get<std::string>());
      ++verified_;
    } else {
      (*entry)["verified"] = nullptr;  // nothing recorded to compare with
      ++unverified_;
    }
    sums_ += sums.sha256 + "  " + rel + "\n";
  }

  // MANIFEST.json and SHA256SUMS, each written whole or not at all.
  bool WriteManifest() {
    timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    json manifest = {{"tool", "tierctl export"},
                     {"source", source_},
                     {"exported_at", UtcTime(now)},
                     {"summary", Summary()},
                     {"entries", entries_}};
    return WriteWhole(dest_ + "/MANIFEST.json", manifest.dump(2) + "\n") &&
           WriteWhole(dest_ + "/SHA256SUMS", sums_);
  }
  bool WriteWhole(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return Fail(tmp, Errno("create", errno));
    const bool ok = write(fd, text.data(), text.size()) == ssize_t(text.size()) && fsync(fd) == 0;
    const int err = errno;
    close(fd);
    if (!ok) return Fail(tmp, Errno("write", err));
    if (rename(tmp.c_str(), path.c_str()) != 0) return Fail(path, Errno("rename", errno));
    return true;
  }

  const std::string source_, dest_;
  Clients clients_;
  json entries_ = json::array();
  std::string sums_;
  uint64_t files_ = 0, bytes_ = 0, verified_ = 0, unverified_ = 0, failures_ = 0;
};

int Usage(const std::string& msg) {
  std::cerr << "tierctl: export: " << msg << " (see tierctl --help)\n";
  return 2;
}

// Whether `inner` is `outer` or below it (both absolute, no trailing slash).
bool Below(const std::string& inner, const std::string& outer) {
  return inner == outer ||
         (inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
          (outer == "/" || inner[outer.size()] == '/'));
}

}  // namespace

int CmdExport(const std::vector<std::string>& args, const Flags& f) {
  if (args.size() != 2) return Usage("takes PATH DEST");
  for (const std::string& a : args)
    if (a.size() > 1 && a[0] == '-') return Usage("unrecognised option '" + a + "'");
  std::string root, rel, err;
  if (!FindMount(args[0], &root, &rel, &err)) {
    std::cerr << "tierctl: export: " << err << "\n";
    return 1;
  }
  const std::string source = root + (rel == "/" ? "" : rel);
  char real_source[PATH_MAX];
  if (realpath(source.c_str(), real_source) == nullptr) {
    std::cerr << "tierctl: export: " << Errno("realpath " + source, errno) << "\n";
    return 1;
  }
  // DEST may not exist yet: where it would be, from its parent's real path.
  std::string dest = args[1];
  while (dest.size() > 1 && dest.back() == '/') dest.pop_back();
  const size_t slash = dest.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "."
                             : slash == 0               ? "/"
                                                        : dest.substr(0, slash);
  char real_parent[PATH_MAX];
  if (realpath(parent.c_str(), real_parent) == nullptr) {
    std::cerr << "tierctl: export: " << Errno(parent, errno) << "\n";
    return 1;
  }
  const std::string base = slash == std::string::npos ? dest : dest.substr(slash + 1);
  const std::string real_dest =
      std::string(real_parent) + (std::string(real_parent) == "/" ? "" : "/") + base;
  if (Below(real_dest, real_source)) {
    std::cerr << "tierctl: export: " << dest << " is inside " << source << "\n";
    return 1;
  }
  // DEST is created, or must be an empty directory: an export never mixes
  // with other files, and never overwrites any.
  if (mkdir(real_dest.c_str(), 0755) != 0 && errno != EEXIST) {
    std::cerr << "tierctl: export: " << Errno("mkdir " + dest, errno) << "\n";
    return 1;
  }
  DirPtr d(opendir(real_dest.c_str()));
  if (!d) {
    std::cerr << "tierctl: export: " << Errno(dest, errno) << "\n";
    return 1;
  }
  while (dirent* e = readdir(d.get())) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      std::cerr << "tierctl: export: " << dest << " is not empty\n";
      return 1;
    }
  }
  Exporter exporter(source, real_dest);
  const bool ok = exporter.Run();
  const json s = exporter.Summary();
  if (f.json) {
    std::cout << s.dump() << "\n";
  } else {
    std::cout << "exported " << s["files"] << " files (" << Size(s["bytes"], f) << ") to "
              << real_dest << ": " << s["verified"] << " verified against recorded checksums, "
              << s["unverified"] << " with none recorded, " << s["failed"] << " failed\n"
              << "manifest: " << Text(s["manifest"]) << "; check later with: cd " << real_dest
              << " && sha256sum -c SHA256SUMS\n";
  }
  return ok ? 0 : 1;
}

}  // namespace tierctl

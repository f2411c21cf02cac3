// tierctl export PATH DEST (tools/tierctl.h): copies a tree out of the mount
// as plain files, for an auditor who has no tierfs. Each file is read
// through the mount (so an HDD-resident file is read, and verified, the way
// an application reads it), hashed as it is copied (SHA-256 for the
// auditor, xxh3-64 to compare with the checksum tierfs recorded), and
// listed in DEST/MANIFEST.json with where it lived, its series, generation
// and hold. DEST/SHA256SUMS lets `sha256sum -c` check the copy later with
// nothing but coreutils. A file that cannot be read, or whose bytes do not
// match its recorded checksum, is named on stderr, listed in SHA256SUMS with
// a sum of zeros (so `sha256sum -c` fails on it; a partial copy is removed),
// marked in the manifest, and makes the exit status 1.
//
// Root runs this over trees other users can change while it runs, into
// places they may write next to. So no path below the mount root or below
// DEST is ever resolved by name: both trees are walked with openat,
// mkdirat, symlinkat and readlinkat relative to directory fds opened with
// O_NOFOLLOW, a name that exists where export creates one is an error (never
// reused), and modes and owners are set on export's own fds. A directory is
// created 0700 and a file 0600, owner set before mode: nobody else can
// reach into a directory while it is filled, and no root-owned set-user-ID
// copy is ever visible.
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
#include <utility>
#include <vector>

#include "meta/text_format.h"
#include "tools/tierctl.h"
#include "tools/tierctl_export_fs.h"

namespace tierctl {

namespace {

using tierfs::Hex64;

std::string UtcTime(const timespec& t) {
  char buf[64];
  struct tm tm;
  gmtime_r(&t.tv_sec, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%09ldZ", t.tv_nsec);
  return std::string(buf) + frac;
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
  sums->sha256 = tierfs::HexBytes(std::string_view(reinterpret_cast<const char*>(md), len));
  sums->xxh3 = Hex64(XXH3_64bits_digest(xxh.get()));
  return true;
}

class Exporter {
 public:
  // `mount` is the mount's root, `dest_fd` DEST (checked by OpenDest), shown
  // in messages as `dest`.
  Exporter(std::string mount, int dest_fd, std::string dest)
      : mount_(std::move(mount)), dest_fd_(dest_fd), dest_(std::move(dest)) {}

  // Exports `name` in the directory `parent_fd` (at `parent_rel` from the
  // mount's root; "" for the root itself): a directory's entries go into
  // DEST, anything else into DEST/name. False when anything failed
  // (already reported).
  bool Run(int parent_fd, const std::string& parent_rel, const std::string& name) {
    where_base_ = name.empty() ? "" : parent_rel + "/" + name;
    source_ = mount_ + where_base_;
    struct stat st;
    if (name.empty()) {  // the mount's root
      ExportEntries(parent_fd, dest_fd_, "");
    } else if (fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      Fail(Source(""), Errno("stat", errno));
    } else if (S_ISDIR(st.st_mode)) {
      const UniqueFd dir(openat(parent_fd, name.c_str(), kDirFlags));
      if (dir.ok())
        ExportEntries(dir.get(), dest_fd_, "");
      else
        Fail(Source(""), Errno("open", errno));  // ELOOP/ENOTDIR: replaced since the stat
    } else {
      where_base_ = parent_rel;  // its entry is DEST/name
      ExportEntry(parent_fd, dest_fd_, name, name);
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
  // Paths for messages only: nothing is ever opened by these.
  std::string Source(const std::string& rel) const {
    return mount_ + where_base_ + (rel.empty() ? "" : "/" + rel);
  }
  std::string Dest(const std::string& rel) const { return dest_ + "/" + rel; }

  // The entries of the source directory `from` into the directory `to`
  // (both open), `rel` being their directory's path from the export's top.
  void ExportEntries(int from, int to, const std::string& rel) {
    std::vector<std::string> names;
    int err = 0;
    if (!ReadNames(from, &names, &err)) return (void)Fail(Source(rel), Errno("readdir", err));
    for (const std::string& name : names)  // sorted: a manifest in a stable order
      ExportEntry(from, to, name, rel.empty() ? name : rel + "/" + name);
  }

  json Describe(const std::string& rel, const struct stat& st) const {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
    json entry = {
        {"mode", mode}, {"uid", st.st_uid}, {"gid", st.st_gid}, {"mtime", UtcTime(st.st_mtim)}};
    PutName(&entry, "path", rel);
    return entry;
  }

  void ExportEntry(int from, int to, const std::string& name, const std::string& rel) {
    struct stat st;
    if (fstatat(from, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return (void)Fail(Source(rel), Errno("stat", errno));
    if (S_ISDIR(st.st_mode)) return ExportDir(from, to, name, rel);
    if (S_ISREG(st.st_mode)) return ExportFile(from, to, name, rel, st);
    json entry = Describe(rel, st);
    if (S_ISLNK(st.st_mode)) {
      std::string target;
      int err = 0;
      if (!ReadLinkAt(from, name, &target, &err))
        return (void)Fail(Source(rel), Errno("readlink", err));  // EINVAL: replaced meanwhile
      if (symlinkat(target.c_str(), to, name.c_str()) != 0)
        return (void)Fail(Dest(rel), Errno("symlink", errno));
      const std::string why = SetLinkOwner(to, name, st);
      if (!why.empty()) Fail(Dest(rel), why);
      entry["type"] = "symlink";
      PutName(&entry, "target", target);
    } else {
      entry["type"] = "special";
      entry["exported"] = false;  // device nodes and fifos are not archive data
    }
    entries_.push_back(entry);
  }

  void ExportDir(int from, int to, const std::string& name, const std::string& rel) {
    // Opened before its copy is made: whatever is renamed or swapped in
    // under this name from now on, its entries come from this directory.
    const UniqueFd src(openat(from, name.c_str(), kDirFlags));
    struct stat st;
    if (!src.ok() || fstat(src.get(), &st) != 0)
      return (void)Fail(Source(rel), Errno("open", errno));  // ELOOP/ENOTDIR: replaced
    std::string err;
    const UniqueFd dst = MakeDirAt(to, name, &err);
    if (!dst.ok()) return (void)Fail(Dest(rel), err);
    json entry = Describe(rel, st);
    entry["type"] = "directory";
    entries_.push_back(entry);
    ExportEntries(src.get(), dst.get(), rel);
    // After its entries: it may be read-only, and its mtime is the source's.
    err = SetOwnerModeTimes(dst.get(), st);
    if (!err.empty()) Fail(Dest(rel), err);
  }

  void ExportFile(int from, int to, const std::string& name, const std::string& rel,
                  const struct stat& lst) {
    ++files_;
    json entry = Describe(rel, lst);
    entry["type"] = "file";
    // A file that failed is listed in SHA256SUMS with a sum no bytes have,
    // and a partial copy is removed: `sha256sum -c` then fails, naming it,
    // rather than pass over an export that is not whole.
    auto poison = [&] { sums_ += Sha256SumsLine(std::string(64, '0'), rel); };
    auto failed = [&](const std::string& what, const std::string& why, bool made = false) {
      entry["error"] = why;
      entries_.push_back(entry);
      if (made) unlinkat(to, name.c_str(), 0);
      poison();
      Fail(what, why);
    };
    // O_NONBLOCK: a fifo swapped in since the stat must not hang the export.
    const UniqueFd in(
        openat(from, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    struct stat st;
    if (!in.ok() || fstat(in.get(), &st) != 0) return failed(Source(rel), Errno("open", errno));
    if (!S_ISREG(st.st_mode))
      return failed(Source(rel), "no longer a regular file (replaced during the export)");
    fcntl(in.get(), F_SETFL, fcntl(in.get(), F_GETFL) & ~O_NONBLOCK);
    entry = Describe(rel, st);
    entry["type"] = "file";
    Where(rel, st, &entry);
    const UniqueFd out(
        openat(to, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out.ok()) return failed(Dest(rel), Errno("create " + Dest(rel), errno));
    FileSums sums;
    std::string err;
    if (!CopyHashing(in.get(), out.get(), &sums, &err)) return failed(Source(rel), err, true);
    if (fstat(in.get(), &st) == 0) err = SetOwnerModeTimes(out.get(), st);
    if (!err.empty()) Fail(Dest(rel), err);
    entry["size"] = sums.bytes;
    entry["sha256"] = sums.sha256;
    entry["xxh3"] = sums.xxh3;
    bytes_ += sums.bytes;
    const json recorded = entry.value("recorded_xxh3", json());
    if (recorded.is_string()) {
      const bool match = recorded.get<std::string>() == sums.xxh3;
      entry["verified"] = match;
      if (!match) {
        entries_.push_back(entry);  // listed with its sums; the copy kept for a look
        poison();
        return (void)Fail(Source(rel), "xxh3 " + sums.xxh3 +
                                           " does not match the recorded checksum " +
                                           recorded.get<std::string>());
      }
      ++verified_;
    } else {
      entry["verified"] = nullptr;  // nothing recorded to compare with
      ++unverified_;
    }
    entries_.push_back(entry);
    sums_ += Sha256SumsLine(sums.sha256, rel);
  }

  // The daemon's tier, series, generation, hold and recorded checksum of
  // the file open as `st`, asked by its path inside the mount (the daemon
  // resolves it without following symlinks); an answer about another inode
  // (renamed meanwhile) is not taken.
  void Where(const std::string& rel, const struct stat& st, json* entry) {
    json where;
    std::string err;
    if (!Ask({{"cmd", "where"}, {"path", where_base_ + "/" + rel}}, &where, &err)) {
      (*entry)["where_error"] = Source(rel) + ": " + err;  // still exported: the bytes matter
    } else if (where.value("ino", uint64_t(0)) != uint64_t(st.st_ino)) {
      (*entry)["where_error"] = Source(rel) + ": the daemon's answer is about another file";
    } else {
      for (const char* k : {"tier", "series", "generation", "hold", "checksum"})
        if (where.contains(k))
          (*entry)[k == std::string("checksum") ? "recorded_xxh3" : k] = where[k];
    }
  }
  bool Ask(const json& request, json* reply, std::string* err) {
    if (!connected_ && !(connected_ = client_.Connect(mount_, err))) return false;
    try {
      if (!client_.Ask(request, reply, err)) return false;
    } catch (const json::exception& e) {  // a path JSON cannot carry as it is
      *err = std::string("not asked: ") + e.what();
      return false;
    }
    if (reply->value("ok", false)) return true;
    *err = Text((*reply)["error"]);
    return false;
  }

  // MANIFEST.json and SHA256SUMS, each written whole or not at all.
  bool WriteManifest() {
    timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    json manifest = {{"tool", "tierctl export"},
                     {"exported_at", UtcTime(now)},
                     {"summary", Summary()},
                     {"entries", entries_}};
    PutName(&manifest, "source", source_);
    // Invalid UTF-8 (in a name, or an error naming it) is dumped as U+FFFD;
    // the names' exact bytes are in their _hex fields.
    const std::string text = manifest.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
    std::string err;
    if (!WriteWholeAt(dest_fd_, "MANIFEST.json", text, &err))
      return Fail(Dest("MANIFEST.json"), err);
    if (!WriteWholeAt(dest_fd_, "SHA256SUMS", sums_, &err)) return Fail(Dest("SHA256SUMS"), err);
    return true;
  }

  const std::string mount_;
  const int dest_fd_;
  const std::string dest_;
  std::string where_base_, source_;
  Client client_;
  bool connected_ = false;
  json entries_ = json::array();
  std::string sums_;
  uint64_t files_ = 0, bytes_ = 0, verified_ = 0, unverified_ = 0, failures_ = 0;
};

int Usage(const std::string& msg) {
  std::cerr << "tierctl: export: " << msg << " (see tierctl --help)\n";
  return 2;
}

int Refuse(const std::string& msg) {
  std::cerr << "tierctl: export: " << msg << "\n";
  return 1;
}

}  // namespace

int CmdExport(const std::vector<std::string>& args, const Flags& f) {
  if (args.size() != 2) return Usage("takes PATH DEST");
  for (const std::string& a : args)
    if (a.size() > 1 && a[0] == '-') return Usage("unrecognised option '" + a + "'");
  std::string root, rel, err;
  if (!FindMount(args[0], &root, &rel, &err)) return Refuse(err);
  const std::string source = root + (rel == "/" ? "" : rel);
  // PATH from the mount's root, one component at a time: a directory on
  // the way replaced by a symlink since FindMount is refused, not followed.
  UniqueFd parent(open(root.c_str(), kDirFlags));
  if (!parent.ok()) return Refuse(Errno(root, errno));
  std::vector<std::string> parts = SplitPath(rel);
  const std::string name = parts.empty() ? "" : parts.back();
  std::string parent_rel;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    parent_rel += "/" + parts[i];
    UniqueFd next(openat(parent.get(), parts[i].c_str(), kDirFlags));
    if (!next.ok()) return Refuse(Errno(root + parent_rel, errno));
    parent = std::move(next);
  }
  std::string real_dest;
  const UniqueFd dest = OpenDest(args[1], source, &real_dest, &err);
  if (!dest.ok()) return Refuse(err);
  Exporter exporter(root, dest.get(), real_dest);
  const bool ok = exporter.Run(parent.get(), parent_rel, name);
  const json s = exporter.Summary();
  if (f.json) {
    std::cout << s.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  } else {
    std::cout << "exported " << s["files"] << " files (" << Size(s["bytes"], f) << ") to "
              << real_dest << ": " << s["verified"] << " verified against recorded checksums, "
              << s["unverified"] << " with none recorded, " << s["failed"] << " failed\n"
              << "manifest: " << real_dest << "/MANIFEST.json; check later with: cd " << real_dest
              << " && sha256sum -c SHA256SUMS\n";
  }
  return ok ? 0 : 1;
}

}  // namespace tierctl

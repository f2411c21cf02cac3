// CrashIo: an Io (tiering/io.h) for tests that remembers what a power loss
// would keep of the files written through it, and on SimulateCrash() puts
// them back to exactly that, so a test can prove that whatever tierfs
// relies on after a crash was synced first. After LevelDB's
// FaultInjectionTestEnv (db/fault_injection_test.cc), which truncates files
// to their synced size and deletes files created since the last directory
// sync; this model also undoes renames and unlinks.
//
// The model: what a crash keeps
//  - A file's content: its bytes as of its last successful Fsync or
//    Fdatasync through this Io (both count as a full sync). A file this Io
//    first sees being changed (opened with O_TRUNC, written, truncated or
//    preallocated) is taken to be durable as it was just before that
//    change: it was written before the test began or outside this Io. A
//    file created through this Io and never synced is durable as empty.
//  - A directory entry change: a name created (OpenAt with O_CREAT of a
//    name that did not exist), a rename (RenameAt, which may replace a
//    regular file) or an unlink (UnlinkAt of a regular file) is durable
//    only once the directory holding the (new) name is fsynced through
//    this Io: a descriptor of that directory from OpenAt, then Fsync or
//    Fdatasync. A file's own fsync does not make its name durable.
//  - SimulateCrash() undoes the entry changes not yet durable, newest
//    first: a created name is removed; a rename is renamed back, and a file
//    it replaced is recreated with that file's durable content; an unlinked
//    file is recreated with its durable content and mode. Then every file
//    changed since its last sync gets its durable content back (a file
//    never synced is truncated to empty). Afterwards all is durable as it
//    stands. Errors of these repairs name the path; it keeps going and
//    returns the first.
// Not modeled (kept as it is at the crash): partial syncs or unsynced data
// that a real disk may happen to keep (nothing unsynced survives here),
// mkdir/rmdir (UnlinkAt with AT_REMOVEDIR is only forwarded), renames of
// directories, hard links (a file is known by its path), times, mode and
// owner changes, and every call made outside this Io (raw system calls,
// LMDB; io_uring is avoided by callers since IsPlainPosix() is false).
//
// Descriptors are mapped to their files through /proc/self/fd (Linux; the
// kernel's own name for the descriptor, so reused descriptor numbers and
// renames need no bookkeeping); writes to a file unlinked while open are
// forwarded untracked. Whole files are copied into memory at each sync:
// for small test files only.
// Use: SimulateCrash() must not overlap other calls, and descriptors opened
// before it must be closed and not used after (their files may have been
// replaced). Thread-safety: all methods may be called concurrently (one
// mutex, held across the forwarded call).
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "meta/mutex.h"
#include "meta/status.h"
#include "tiering/io.h"

namespace tierfs {

class CrashIo : public IoWrapper {
 public:
  explicit CrashIo(std::shared_ptr<Io> target) : IoWrapper(std::move(target)) {}
  // Drops everything not durable, as described above.
  Status SimulateCrash();
  // What a crash now would undo: files changed since their last sync, and
  // entry changes whose directory was not synced since.
  size_t UnsyncedFiles() const;
  size_t PendingEntries() const;

  int OpenAt(int dir_fd, const char* path, int flags, mode_t mode) override;
  ssize_t Pwrite(int fd, const void* buf, size_t n, off_t off) override;
  ssize_t Pwritev2(int fd, const void* buf, size_t n, off_t off, int flags) override;
  int Fsync(int fd) override;
  int Fdatasync(int fd) override;
  int Fallocate(int fd, int mode, off_t off, off_t len) override;
  int Ftruncate(int fd, off_t len) override;
  int RenameAt(int old_dir, const char* old_path, int new_dir, const char* new_path) override;
  int UnlinkAt(int dir_fd, const char* path, int flags) override;

 private:
  // A file this Io has seen change, by its absolute path.
  struct File {
    std::string durable;  // content a crash keeps
    mode_t mode = 0600;
    bool dirty = false;  // changed since `durable` was taken
  };
  // An entry change a crash would undo.
  struct Entry {
    enum Kind { kCreate, kRename, kUnlink } kind = kCreate;
    std::string path;        // created or unlinked name; rename: the old name
    std::string to;          // rename: the new name
    std::string dir;         // the directory whose fsync makes it durable
    bool has_saved = false;  // unlink, or rename over a file: what to recreate
    File saved;
  };
  // The file's state, taken from the file as it is now on first sight;
  // null when `path` is not a regular file.
  File* Touch(const std::string& path) REQUIRES(mu_);
  // What a crash keeps of the regular file at `path`; false if there is none.
  bool DurableOf(const std::string& path, File* out) REQUIRES(mu_);
  // Before a write-like call on `fd`: the state to mark dirty, or null.
  File* BeforeChange(int fd) REQUIRES(mu_);
  int AfterSync(int fd, int rc) REQUIRES(mu_);
  Status Undo(const Entry& e) REQUIRES(mu_);

  mutable Mutex mu_;
  std::map<std::string, File> files_ GUARDED_BY(mu_);
  std::vector<Entry> pending_ GUARDED_BY(mu_);
};

}  // namespace tierfs

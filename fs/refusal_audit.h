// RefusalAudit: the audit records of changes an immutable hold refused
// (Holds::CheckMutable: EPERM, root included), coalesced so that a user
// looping on `rm` cannot flood the journal.
//
// The first refusal of a (uid, inode, op) is recorded at once. Repeats of
// the same triple within the window after it (60 s) are only counted; when
// the window ends, one record with "count" (the repeats) and the time of
// the last one stands for them all. The window's end is noticed on the next
// refusal of anything, on the evictor's periodic tick, and at unmount
// (Flush), so no count is lost and none waits much longer than the window.
// A refusal of another triple does not end a window: alternating between
// two files still costs two records a window, not two a try. At most
// kMaxOpen windows are open; beyond that all are closed (recorded) at once.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "meta/audit.h"
#include "meta/mutex.h"
#include "meta/store.h"

namespace tierfs {

class RefusalAudit {
 public:
  using Sink = std::function<void(const std::vector<AuditRecord>&)>;
  static constexpr int64_t kWindowNs = 60'000'000'000;
  static constexpr size_t kMaxOpen = 4096;
  explicit RefusalAudit(Sink sink, int64_t window_ns = kWindowNs)
      : sink_(std::move(sink)), window_ns_(window_ns) {}

  // The record of `what` ("unlink", "write", ...) of inode `ino` at `path`,
  // asked for by `uid`/`pid`, refused by immutable hold `h`.
  static AuditRecord RecordOf(int64_t uid, int64_t pid, uint64_t ino, const std::string& path,
                              const char* what, const Store::Hold& h);
  // A refusal at `now`; `rec` carries action "refuse", uid, ino, path, rule
  // and a detail naming the op, and `op` is the op's name.
  void Note(const AuditRecord& rec, const std::string& op, int64_t now) EXCLUDES(mu_);
  // Records the repeats of the windows that ended by `now` (all of them
  // when `now` is INT64_MAX: at unmount).
  void Flush(int64_t now) EXCLUDES(mu_);

 private:
  struct Window {
    AuditRecord first;
    int64_t start_ns = 0, last_ns = 0;
    uint64_t repeats = 0;
  };
  using Key = std::tuple<int64_t, uint64_t, std::string>;  // uid, ino, op
  // Closes the windows ended by `now` (all when `all`) into `out`.
  void CloseLocked(int64_t now, bool all, std::vector<AuditRecord>* out) REQUIRES(mu_);

  const Sink sink_;
  const int64_t window_ns_;
  Mutex mu_;  // also orders the records of one window
  std::map<Key, Window> open_ GUARDED_BY(mu_);
};

}  // namespace tierfs

// The audit journal's copy on the capacity tier (tierfs(8), THE AUDIT
// JOURNAL'S HDD COPY): HDD/ns/NAME/audit/audit.jsonl and its rotated files
// audit.jsonl.N, the same chain as the local journal (meta/audit.h) record
// for record and byte for byte, so that the record of what was kept and
// why anything was deleted survives the loss of the SSD and the state
// directory (`tierfs recover`, fs/recover.h).
//
// AuditLog drives it: after each batch is durable in the local journal the
// same bytes are appended to the copy and fdatasynced, before the head is
// written. The local journal is the one appends are acknowledged for: a
// copy that cannot be written is logged with its file and never fails or
// holds back the local append. The copy is then behind; the next append
// (or the next start) catches it up from the local files, so it lags, it
// never skips. Only when the local journal is lost while the copy lags do
// records go missing from it; its chain still verifies, and the head
// (written after every append) is then ahead of it, which `tierctl audit
// verify --journal COPY --head HEAD` reports.
//
// Catching up (at start, after a rotation, after a failed append) takes
// each local file in order and makes its copy equal: a copy that is a
// prefix of the local file (checked on its last 4 KiB) gets the rest; a
// copy that is not (another chain, an edited copy) is renamed aside to
// NAME.diverged-<time ns> (never deleted) and copied afresh. A copy of the
// current journal that is the whole of a rotated local file is the copy's
// rotation a crash cut short: it is renamed to that file's name first.
//
// The copy is opened for each append and closed, never held open: an HDD
// tier an admin remounts read-only must not be busy because of it.
//
// Thread-safety: not thread-safe; AuditLog calls it under its mutex.
#pragma once

#include <sys/types.h>

#include <string>

#include "meta/status.h"

namespace tierfs {

// The copy's directory in a namespace's directory on the HDD tier.
inline constexpr char kAuditMirrorDir[] = "audit";

class AuditMirror {
 public:
  // `local`: the local journal (its rotated files beside it); `path`: the
  // copy's journal (its directory is created when needed).
  AuditMirror(std::string local, std::string path) : local_(std::move(local)), path_(path) {}
  AuditMirror(const AuditMirror&) = delete;
  AuditMirror& operator=(const AuditMirror&) = delete;

  // Makes every file of the copy equal to the local one; ok when it did.
  Status CatchUp();
  // `lines` were just appended durably to the local journal, which was
  // `before` bytes long: the copy gets them too (or catches up).
  void Append(off_t before, const std::string& lines);
  // Catches up unless in step (at start); a failure is logged.
  void Sync();
  // The local journal was rotated: the copy follows at the next append.
  void Rotated();
  const std::string& path() const { return path_; }

 private:
  Status AppendLines(off_t before, const std::string& lines);
  void Report(const Status& st);
  std::string local_, path_;
  bool in_step_ = false;  // the copy equals the local journal
  bool warned_ = false;   // a lag is logged once until the copy catches up
};

}  // namespace tierfs

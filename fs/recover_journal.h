// The audit journal in `tierfs recover` (fs/recover.h): the HDD tier's copy
// (meta/audit_mirror.h) becomes the new state's journal, and its records
// after the snapshot tell which files were thinned or deleted.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "fs/recover.h"
#include "meta/status.h"

namespace tierfs {

struct JournalCopy {
  bool copied = false;   // the HDD tier had a copy, now in the new state
  bool head_ok = false;  // it verifies against the head on the HDD tier
  uint64_t files = 0, records = 0;
  std::string summary;  // for the report and the recover record
};

// Copies every file of the copy in `ns_dir`/audit/ into `state_dir` and
// verifies the chain against `ns_dir`/audit.head. Errors name the file.
Status CopyAuditJournal(const std::string& ns_dir, const std::string& state_dir, JournalCopy* out);

// A removal the journal records: action "thin" or "delete".
struct JournalRemoval {
  std::string action, time, rule, path;
  int64_t uid = -1;
};

// The removals (result "ok", not undone by a later record for the inode)
// in the journal `journal` (its rotated files too) at or after `since_ns`,
// by inode. Unreadable lines are skipped (the copy's verification names them).
Status ReadJournalRemovals(const std::string& journal, int64_t since_ns,
                           std::map<uint64_t, JournalRemoval>* out);

// The time a snapshot's file name ("snap-20261205T193012.123456Z.mdb")
// gives, in ns since the epoch; 0 when it gives none.
int64_t SnapshotTimeNs(const std::string& snapshot_path);

// Appends the "recover" record to the new state's journal, continuing the
// chain, with the HDD copy and head in `ns_dir`.
Status AppendRecoverRecord(const std::string& ns_dir, const std::string& state_dir,
                           const RecoverReport& report);

}  // namespace tierfs

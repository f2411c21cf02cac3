// AuditLog: the append-only journal of what tierfs did to data on its own
// initiative or on request: moves between tiers, thinning, pins, hold
// expiries and refused actions, with time, rule, path, generation, bytes
// and checksum. It is what proves, later, what was kept and why anything
// was deleted.
//
// Format: one JSON object per line (JSON Lines) in <state>/audit.jsonl.
// Each Append is a single write() to a file opened O_APPEND, followed by
// fdatasync, so records are never interleaved, never rewritten, and every
// record that Append returned ok for survives a crash or power loss. A
// reader should skip a torn last line (a crash in the middle of a write).
//
// Hash chain (meta/audit_verify.h): each record's "prev" is the SHA-256 of
// the line before it (of kAuditGenesis for the first). Open reads the last
// complete line to continue the chain; a torn last line is cut off first
// (Append never returned ok for it) and a record says so. A journal of an
// older tierfs (no "prev") is continued: the first chained record names the
// hash of its last line. After each append the head (last hash, its line
// number, time) replaces `head_path` (tmp + fsync + rename) when one is
// given; a head that cannot be written is logged and the append still
// succeeds: the journal record is never lost for the head's sake.
//
// Rotation by size (max_bytes, 0: never): once an append leaves the journal
// at max_bytes or more, it is renamed JOURNAL.N (N = 1, 2, ..., one more
// than any rotated file there or named by the journal; never reused, never
// deleted by tierfs) and a new JOURNAL begins with an action "rotate"
// record whose "continues" names JOURNAL.N and whose "prev" is the hash of
// its last line: one chain across the files (VerifyAuditChain). The head
// stays the head of the whole chain: the hash of its last record and that
// record's line in the current JOURNAL. A crash between the rename and the
// rotate record leaves no JOURNAL (or an empty one): Open then begins it
// with the rotate record.
//
// The capacity tier's copy (meta/audit_mirror.h): with `mirror_path`, each
// batch durable in the journal is appended to that copy too (and synced)
// before the head is written; a copy that cannot be written is logged and
// caught up later, never failing the append.
//
// Thread-safety: Append may be called from many threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "meta/audit_mirror.h"
#include "meta/inode.h"
#include "meta/mutex.h"
#include "meta/status.h"

namespace tierfs {

// Every AuditRecord::action tierfs writes (`tierctl audit --action` takes
// only these, so a mistyped one is an error rather than an empty answer).
inline constexpr const char* kAuditActions[] = {
    "corrupt", "delete", "journal", "manifest", "move",     "pin",    "recover", "refuse",
    "reload",  "rotate", "scrub",   "thin",     "truncate", "unlink", "unpin"};

struct AuditRecord {
  std::string action;  // one of kAuditActions
  std::string rule;    // the policy rule, or "manual", "evict", "spill"
  // Within the mount, when known; any bytes. One that is not valid UTF-8
  // is written as "path" with U+FFFD for the bytes that are not and
  // "path_hex", its exact bytes (AuditRecordPath reads either).
  std::string path;
  uint64_t ino = 0;
  std::string series;       // checkpoint series, when the action concerns one
  int64_t generation = -1;  // -1: none
  std::string from, to;     // tiers of a move
  uint64_t bytes = 0;
  int64_t new_size = -1;  // a "truncate" record: the size the file is cut to; -1: none
  uint64_t checksum = 0;  // xxh3-64 of the data, 0 when unknown
  bool has_checksum = false;
  std::string result = "ok";  // "ok", or why it failed or was refused
  std::string detail;         // anything else worth keeping (pin expiry, ...)
  // Who asked, for a user's action (a deletion, a refused change); -1: none.
  int64_t uid = -1, pid = -1;
  uint64_t count = 0;     // repeats a record stands for (coalesced refusals); 0: one
  std::string continues;  // a "rotate" record: the rotated file it continues
};

// The exact path of a journal record read back: "path_hex" decoded when
// the record has one (a name that is not valid UTF-8), else "path"
// (records of older tierfs have only that); "" when it has neither.
std::string AuditRecordPath(const nlohmann::json& rec);

class AuditLog {
 public:
  // Opens (creating) `path` for appending; `head_path` ("" for none) gets
  // the chain's head after each append; `max_bytes` rotates it (0: never);
  // `mirror_path` ("" for none) is the copy's journal on the HDD tier.
  // Errors name the file.
  static Status Open(const std::string& path, std::unique_ptr<AuditLog>* out,
                     const std::string& head_path = "", uint64_t max_bytes = 0,
                     const std::string& mirror_path = "");
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends `rec` stamped with the current time (UTC, nanoseconds) and makes
  // it durable. EIO/ENOSPC from the filesystem are returned, never thrown.
  Status Append(const AuditRecord& rec);
  // Appends all of `records` with one write and one fdatasync.
  Status Append(const std::vector<AuditRecord>& records) EXCLUDES(mu_);
  const std::string& path() const { return path_; }
  const std::string& head_path() const { return head_path_; }
  // The copies on the HDD tier (the head and the mirror) are written only
  // while `gate` answers Ok: the daemon's HDD health check, which fails for
  // good once another state took the namespace over, whose journal those
  // copies are from then on. Skipped copies catch up at a later append.
  // Call before the log is shared between threads.
  void SetHddGate(std::function<Status()> gate) { hdd_gate_ = std::move(gate); }

  // The line Append writes for `rec` at `time_ns` (without the newline);
  // `prev` is the chain's hash ("" leaves it out, for log messages).
  static std::string Format(const AuditRecord& rec, int64_t time_ns, const std::string& prev = "");

 private:
  AuditLog() = default;
  Status LoadTail();
  Status AppendLocked(const std::vector<AuditRecord>& records, int64_t now) REQUIRES(mu_);
  void WriteHead(int64_t time_ns) REQUIRES(mu_);
  // Renames the journal to path_.N and begins the next one (see above).
  void RotateLocked(int64_t now) REQUIRES(mu_);
  std::string path_, head_path_;
  uint64_t max_bytes_ = 0;
  uint64_t next_rotation_ GUARDED_BY(mu_) = 1;  // N of the next rotated file
  // The rotated file the journal continues while its rotate record is not
  // written yet: it goes first in the next append.
  std::string pending_continues_ GUARDED_BY(mu_);
  int fd_ = -1;                          // set once by Open; written to under mu_
  std::unique_ptr<AuditMirror> mirror_;  // set once by Open (or null); used under mu_
  std::function<Status()> hdd_gate_;     // SetHddGate; empty: always open
  bool HddOpen() const { return !hdd_gate_ || hdd_gate_().ok(); }
  Mutex mu_;                               // orders write + fdatasync pairs and the chain
  std::string last_hash_ GUARDED_BY(mu_);  // hash of the last line written
  uint64_t lines_ GUARDED_BY(mu_) = 0;     // complete lines in the journal
};

}  // namespace tierfs

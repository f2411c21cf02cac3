// The audit journal's hash chain (meta/audit.h) and its verification.
//
// Every record carries "prev": the SHA-256 (lowercase hex) of the previous
// line of the journal as written, without its newline. The first record of
// a journal carries the hash of kAuditGenesis. After each append the
// journal's head (the hash of its last line, that line's number and the
// time) is also written to the capacity tier (HDD_ROOT/ns/NAME/audit.head),
// so a journal cut short on the SSD's state directory does not match it.
//
// What the chain proves: no record was edited, deleted, inserted or
// reordered after it was written, and (with the head) none was cut from the
// end, unless whoever changed the journal also rewrote every record after
// the change AND the head file. Root on the host can do that; the chain
// makes it a deliberate rewrite instead of a quiet edit.
//
// This file does not use spdlog or the daemon: tierctl links it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "meta/status.h"

namespace tierfs {

// The text whose hash the first record of a journal names as "prev".
inline constexpr char kAuditGenesis[] = "tierfs audit journal genesis v1";
// The head file's name in the namespace directory of the HDD tier.
inline constexpr char kAuditHeadName[] = "audit.head";

// SHA-256 of `data` as 64 lowercase hex digits (OpenSSL's libcrypto).
std::string Sha256Hex(std::string_view data);

// The head file's contents: {"record":N,"hash":H,"time":T}\n.
std::string FormatAuditHead(uint64_t record, const std::string& hash, int64_t time_ns);

// The files of a journal rotated by size (meta/audit.h), oldest first:
// JOURNAL.1, JOURNAL.2, ... (those that exist, in number order), then
// JOURNAL itself when it exists.
std::vector<std::string> AuditJournalFiles(const std::string& journal);
// The rotated file a journal's first line continues ("" when it is not a
// rotate record), from the text of that line.
std::string AuditContinues(std::string_view first_line);

struct AuditVerifyResult {
  bool ok = false;             // chain intact (and the head matches, when given)
  uint64_t records = 0;        // complete lines in the journal
  uint64_t unchained = 0;      // leading records of an older tierfs, without "prev"
  uint64_t bad_line = 0;       // 1-based line of the first bad record (when !ok)
  std::string bad_file;        // its file, when the chain spans rotated files
  uint64_t files = 1;          // files of the chain (VerifyAuditChain)
  uint64_t chain_records = 0;  // complete lines in all of them
  std::string reason;          // why it is bad (when !ok)
  std::string last_hash;       // hash of the last complete line (genesis hash if none)
  // A last line without its newline: a crash in the middle of an append.
  // Not a record and not tampering; the chain ends before it.
  uint64_t torn_line = 0;  // its line number, 0 when none
  uint64_t torn_bytes = 0;
  bool head_checked = false;
  uint64_t head_record = 0;  // the record the head names
};

// Walks `journal` and, when `head` is not empty, compares its end with that
// head file. An unreadable file is an error Status naming it; everything
// found in a readable one is in `out`.
Status VerifyAuditJournal(const std::string& journal, const std::string& head,
                          AuditVerifyResult* out);

// Verifies the chain across `journal`'s rotated files and itself, in
// order (AuditJournalFiles), as one chain: each file after the first must
// begin with the rotate record that continues the one before it (a file
// missing from the sequence is named). `records` and the head's record
// count in the last file; the first bad record is named by bad_file and
// bad_line (its line in that file).
Status VerifyAuditChain(const std::string& journal, const std::string& head,
                        AuditVerifyResult* out);

// One line of text for a result: "ok: N records, chain intact, head
// matches" or "line N: why".
std::string AuditVerifySummary(const AuditVerifyResult& r);

}  // namespace tierfs

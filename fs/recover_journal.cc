// The audit journal in recovery (fs/recover_journal.h).
#include "fs/recover_journal.h"

#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fs/recover_copy.h"
#include "meta/audit.h"
#include "meta/audit_mirror.h"
#include "meta/audit_verify.h"

namespace tierfs {

namespace {

using nlohmann::json;

std::string BaseOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// "YYYY?MM?DD?HH?MM?SS" digits (any separators) and a fraction after '.'.
int64_t ParseUtcNs(const std::string& text) {
  std::string digits, frac;
  size_t i = 0;
  for (; i < text.size() && digits.size() < 14 && text[i] != '.'; ++i)
    if (isdigit(static_cast<unsigned char>(text[i]))) digits += text[i];
  if (digits.size() != 14) return 0;
  if (i < text.size() && text[i] == '.')
    for (++i; i < text.size() && isdigit(static_cast<unsigned char>(text[i])) && frac.size() < 9;
         ++i)
      frac += text[i];
  frac.resize(9, '0');
  struct tm tm = {};
  tm.tm_year = std::stoi(digits.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(digits.substr(4, 2)) - 1;
  tm.tm_mday = std::stoi(digits.substr(6, 2));
  tm.tm_hour = std::stoi(digits.substr(8, 2));
  tm.tm_min = std::stoi(digits.substr(10, 2));
  tm.tm_sec = std::stoi(digits.substr(12, 2));
  return int64_t(timegm(&tm)) * 1000000000 + std::stoll(frac);
}

}  // namespace

Status CopyAuditJournal(const std::string& ns_dir, const std::string& state_dir, JournalCopy* out) {
  *out = JournalCopy();
  const std::string copy = ns_dir + "/" + kAuditMirrorDir + "/audit.jsonl";
  struct stat sb;
  for (const std::string& f : AuditJournalFiles(copy)) {
    if (stat(f.c_str(), &sb) != 0) continue;  // no copy (a tierfs from before it)
    Status st = CopyToNewFile(f, state_dir + "/" + BaseOf(f), 0640, CopySource::kNoLinks);
    if (!st.ok()) return st;
    out->copied = true;
    out->files++;
  }
  if (!out->copied) {
    out->summary = "no copy of the audit journal on the HDD tier (" + copy + "): a new one begins";
    return Status::Ok();
  }
  const std::string head = ns_dir + "/" + kAuditHeadName;
  AuditVerifyResult r;
  Status st =
      VerifyAuditChain(state_dir + "/audit.jsonl", stat(head.c_str(), &sb) == 0 ? head : "", &r);
  if (!st.ok()) return st;
  out->records = r.chain_records;
  out->head_ok = r.ok && r.head_checked;
  out->summary = "copied " + std::to_string(out->files) + " files of the audit journal from " +
                 copy + ": " + AuditVerifySummary(r);
  return Status::Ok();
}

Status ReadJournalRemovals(const std::string& journal, int64_t since_ns,
                           std::map<uint64_t, JournalRemoval>* out) {
  out->clear();
  struct stat sb;
  for (const std::string& f : AuditJournalFiles(journal)) {
    if (stat(f.c_str(), &sb) != 0) continue;
    std::ifstream in(f);
    if (!in) return Status::Errno(errno ? errno : EIO, "open audit journal " + f);
    for (std::string line; std::getline(in, line);) {
      const json rec = json::parse(line, nullptr, false);
      if (!rec.is_object() || !rec.contains("ino") || !rec["ino"].is_number_unsigned()) continue;
      const std::string action = rec.value("action", ""), time = rec.value("time", "");
      if (action != "thin" && action != "delete") continue;
      if (ParseUtcNs(time) < since_ns) continue;
      const uint64_t ino = rec["ino"].get<uint64_t>();
      // A removal that failed after its record says so in a later one.
      if (rec.value("result", "") != "ok") {
        out->erase(ino);
        continue;
      }
      JournalRemoval& r = (*out)[ino];
      r.action = action;
      r.time = time;
      r.rule = rec.value("rule", "");
      r.path = AuditRecordPath(rec);  // "path_hex" when not UTF-8
      r.uid =
          rec.contains("uid") && rec["uid"].is_number_integer() ? rec["uid"].get<int64_t>() : -1;
    }
  }
  return Status::Ok();
}

int64_t SnapshotTimeNs(const std::string& snapshot_path) {
  const std::string name = BaseOf(snapshot_path);
  return name.rfind("snap-", 0) == 0 ? ParseUtcNs(name.substr(5)) : 0;
}

Status AppendRecoverRecord(const std::string& ns_dir, const std::string& state_dir,
                           const RecoverReport& report) {
  std::map<std::string, uint64_t> counts;
  for (const RecoverEntry& e : report.entries) counts[e.status]++;
  AuditRecord rec;
  rec.action = "recover";
  rec.rule = "recover";
  rec.result = report.complete() ? "ok" : "incomplete";
  rec.detail = "snapshot " + (report.snapshot.empty() ? "none" : BaseOf(report.snapshot)) + ";";
  for (const char* k : {"kept", "placed", "recreated", "lost", "thinned", "deleted", "missing",
                        "unplaced", "corrupt"})
    rec.detail += std::string(" ") + k + " " + std::to_string(counts[k]) + ",";
  rec.detail.back() = ';';
  rec.detail += " " + report.journal + "; namespace taken over from state " +
                (report.previous_owner.empty() ? "(none)" : report.previous_owner) + " by state " +
                report.owner;
  std::unique_ptr<AuditLog> log;
  Status st = AuditLog::Open(state_dir + "/audit.jsonl", &log, ns_dir + "/" + kAuditHeadName, 0,
                             ns_dir + "/" + kAuditMirrorDir + "/audit.jsonl");
  if (st.ok()) st = log->Append(rec);
  return st;
}

}  // namespace tierfs

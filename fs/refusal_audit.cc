#include "fs/refusal_audit.h"
#include "meta/text_format.h"

#include <climits>
#include <cstdio>
#include <ctime>

namespace tierfs {

AuditRecord RefusalAudit::RecordOf(int64_t uid, int64_t pid, uint64_t ino, const std::string& path,
                                   const char* what, const Store::Hold& h) {
  AuditRecord rec;
  rec.action = "refuse";
  rec.rule = h.rule;
  rec.uid = uid;
  rec.pid = pid;
  rec.ino = ino;
  rec.path = path;
  rec.result = "EPERM";
  std::string until = "without end";
  if (h.until_ns != 0) until = "until " + UtcSeconds(h.until_ns);
  rec.detail = std::string(what) + " refused: held immutable " + until;
  return rec;
}

void RefusalAudit::CloseLocked(int64_t now, bool all, std::vector<AuditRecord>* out) {
  for (auto it = open_.begin(); it != open_.end();) {
    if (!all && now - it->second.start_ns < window_ns_) {
      ++it;
      continue;
    }
    const Window& w = it->second;
    if (w.repeats > 0) {
      AuditRecord rec = w.first;
      rec.count = w.repeats;
      rec.detail += "; repeated " + std::to_string(w.repeats) + " times in the " +
                    std::to_string(window_ns_ / 1'000'000'000) +
                    " s after the first (coalesced), the last " +
                    std::to_string((w.last_ns - w.start_ns) / 1'000'000) + " ms after it";
      out->push_back(std::move(rec));
    }
    it = open_.erase(it);
  }
}

void RefusalAudit::Note(const AuditRecord& rec, const std::string& op, int64_t now) {
  MutexLock lock(&mu_);
  std::vector<AuditRecord> records;
  CloseLocked(now, open_.size() >= kMaxOpen, &records);
  const Key key{rec.uid, rec.ino, op};
  auto it = open_.find(key);
  if (it != open_.end()) {
    it->second.repeats++;
    it->second.last_ns = now;
  } else {
    open_.emplace(key, Window{rec, now, now, 0});
    records.push_back(rec);
  }
  // Under the lock: a window's count never lands before its first record.
  if (!records.empty()) sink_(records);
}

void RefusalAudit::Flush(int64_t now) {
  MutexLock lock(&mu_);
  std::vector<AuditRecord> records;
  CloseLocked(now, now == INT64_MAX, &records);
  if (!records.empty()) sink_(records);
}

}  // namespace tierfs

#include "meta/audit_verify.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace tierfs {

namespace {

using nlohmann::json;

std::string Rfc3339Utc(int64_t ns) {
  const time_t secs = time_t(ns / 1000000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09" PRId64 "Z", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ns % 1000000000);
  return buf;
}

Status ReadAll(const std::string& path, std::string* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::Errno(errno, "open " + path);
  out->clear();
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  const bool failed = std::ferror(f);
  const int err = errno;
  std::fclose(f);
  if (failed) return Status::Errno(err ? err : EIO, "read " + path);
  return Status::Ok();
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest fails only without memory; an empty hash then never matches.
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) return "";
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::string FormatAuditHead(uint64_t record, const std::string& hash, int64_t time_ns) {
  nlohmann::ordered_json j;
  j["record"] = record;
  j["hash"] = hash;
  j["time"] = Rfc3339Utc(time_ns);
  return j.dump() + "\n";
}

Status VerifyAuditJournal(const std::string& journal, const std::string& head,
                          AuditVerifyResult* out) {
  *out = AuditVerifyResult();
  // The head first: a daemon appending meanwhile writes its journal before
  // its head, so the journal read after it is never shorter than it names.
  uint64_t head_record = 0;
  std::string head_hash;
  if (!head.empty()) {
    std::string text;
    Status st = ReadAll(head, &text);
    if (!st.ok()) return st;
    const json j = json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("record") || !j["record"].is_number_unsigned() ||
        !j.contains("hash") || !j["hash"].is_string())
      return Status::Error(EINVAL, "head file " + head + " is not a tierfs audit head");
    head_record = j["record"].get<uint64_t>();
    head_hash = j["hash"].get<std::string>();
    out->head_checked = true;
    out->head_record = head_record;
  }
  std::string data;
  Status st = ReadAll(journal, &data);
  if (!st.ok()) return st;

  auto bad = [&](uint64_t line, std::string why) {
    out->ok = false;
    out->bad_line = line;
    out->reason = std::move(why);
    return Status::Ok();
  };
  std::string prev_hash = Sha256Hex(kAuditGenesis);
  std::string hash_at_head = head_record == 0 ? prev_hash : std::string();
  bool chained = false;
  uint64_t line = 0;
  for (size_t pos = 0; pos < data.size();) {
    const size_t nl = data.find('\n', pos);
    ++line;
    if (nl == std::string::npos) {
      out->torn_line = line;
      out->torn_bytes = data.size() - pos;
      break;
    }
    const std::string_view text(data.data() + pos, nl - pos);
    pos = nl + 1;
    const json rec = json::parse(text.begin(), text.end(), nullptr, false);
    if (!rec.is_object()) return bad(line, "not JSON");
    auto it = rec.find("prev");
    if (it == rec.end()) {
      if (chained)
        return bad(line, "no \"prev\" after the chain began (a record inserted by hand)");
      ++out->unchained;
    } else {
      chained = true;
      if (!it->is_string() || it->get<std::string>() != prev_hash)
        return bad(line, line == 1
                             ? "prev does not match the genesis hash (the first record "
                               "was edited or deleted)"
                             : "prev does not match the hash of line " + std::to_string(line - 1) +
                                   " (a record edited, deleted, inserted or reordered)");
    }
    prev_hash = Sha256Hex(text);
    out->records = line;
    if (line == head_record) hash_at_head = prev_hash;
  }
  out->last_hash = prev_hash;
  if (out->head_checked) {
    if (head_record > out->records)
      return bad(out->records + 1, "journal ends at record " + std::to_string(out->records) +
                                       ", the head on the HDD tier names record " +
                                       std::to_string(head_record) + " (records cut from the end)");
    if (hash_at_head != head_hash)
      return bad(head_record, "the hash of record " + std::to_string(head_record) +
                                  " does not match the head on the HDD tier");
  }
  out->ok = true;
  return Status::Ok();
}

std::string AuditVerifySummary(const AuditVerifyResult& r) {
  if (!r.ok) return "line " + std::to_string(r.bad_line) + ": " + r.reason;
  std::ostringstream s;
  s << "ok: " << r.records << " records, chain intact";
  if (r.unchained)
    s << " (the first " << r.unchained
      << " written by an older tierfs without a chain: only the last of them is covered)";
  if (!r.head_checked)
    s << ", no head checked";
  else if (r.head_record == r.records)
    s << ", head matches";
  else
    s << ", head matches record " << r.head_record << " (the " << r.records - r.head_record
      << " after it were appended after the head was last written)";
  if (r.torn_line)
    s << "; torn tail at line " << r.torn_line << " (" << r.torn_bytes
      << " bytes of a crash mid-append, not a record)";
  return s.str();
}

}  // namespace tierfs

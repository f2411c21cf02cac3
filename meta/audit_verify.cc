#include "meta/audit_verify.h"
#include "meta/text_format.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
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
  j["time"] = UtcNanos(time_ns);
  return j.dump() + "\n";
}

// One file of the chain, from `start_hash` (the genesis hash, or the hash
// of the last line of the file before it); `continues` is that file's name
// ("" for the first file: it must not begin with a rotate record).
Status VerifyFile(const std::string& journal, const std::string& head,
                  const std::string& start_hash, const std::string& continues,
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
  std::string prev_hash = start_hash;
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
    if (line == 1) {
      const std::string cont = AuditContinues(text);
      if (continues.empty() && !cont.empty())
        return bad(line, "continues " + cont + ", which is missing (a rotated file deleted)");
      if (!continues.empty() && cont != continues)
        return bad(line,
                   "does not begin with the rotate record that continues " + continues +
                       (cont.empty() ? "" : " (it continues " + cont + ", which is missing)"));
    }
    auto it = rec.find("prev");
    if (it == rec.end()) {
      if (chained || !continues.empty())
        return bad(line, "no \"prev\" after the chain began (a record inserted by hand)");
      ++out->unchained;
    } else {
      chained = true;
      if (!it->is_string() || it->get<std::string>() != prev_hash)
        return bad(line, line == 1
                             ? (continues.empty()
                                    ? "prev does not match the genesis hash (the first record "
                                      "was edited or deleted)"
                                    : "prev does not match the hash of the last line of " +
                                          continues + " (a record of it edited or deleted)")
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

Status VerifyAuditJournal(const std::string& journal, const std::string& head,
                          AuditVerifyResult* out) {
  return VerifyFile(journal, head, Sha256Hex(kAuditGenesis), "", out);
}

std::vector<std::string> AuditJournalFiles(const std::string& journal) {
  const size_t slash = journal.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : journal.substr(0, slash);
  const std::string base = journal.substr(slash == std::string::npos ? 0 : slash + 1);
  std::vector<std::pair<uint64_t, std::string>> rotated;
  if (DIR* d = opendir(dir.c_str())) {
    while (const dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.size() <= base.size() + 1 || name.compare(0, base.size() + 1, base + ".") != 0)
        continue;
      const std::string num = name.substr(base.size() + 1);
      if (num.size() > 18 || num[0] == '0' ||
          num.find_first_not_of("0123456789") != std::string::npos)
        continue;
      rotated.emplace_back(std::stoull(num), journal + "." + num);
    }
    closedir(d);
  }
  std::sort(rotated.begin(), rotated.end());
  std::vector<std::string> files;
  for (auto& [n, path] : rotated) files.push_back(std::move(path));
  struct stat st;
  if (stat(journal.c_str(), &st) == 0 || files.empty()) files.push_back(journal);
  return files;
}

std::string AuditContinues(std::string_view first_line) {
  const json rec = json::parse(first_line.begin(), first_line.end(), nullptr, false);
  if (!rec.is_object() || rec.value("action", "") != "rotate") return "";
  auto it = rec.find("continues");
  return it != rec.end() && it->is_string() ? it->get<std::string>() : "";
}

Status VerifyAuditChain(const std::string& journal, const std::string& head,
                        AuditVerifyResult* out) {
  const std::vector<std::string> files = AuditJournalFiles(journal);
  std::string hash = Sha256Hex(kAuditGenesis), continues;
  uint64_t unchained = 0, chain_records = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    const bool last = i + 1 == files.size();
    Status st = VerifyFile(files[i], last ? head : "", hash, continues, out);
    if (!st.ok()) return st;
    unchained += out->unchained;
    out->unchained = unchained;
    chain_records += out->records;
    out->chain_records = chain_records;
    out->files = files.size();
    if (files.size() > 1) out->bad_file = files[i];
    if (!out->ok) return Status::Ok();
    if (!last && out->torn_line) {
      out->ok = false;
      out->bad_line = out->torn_line;
      out->reason = "a rotated file ends in a torn line (rotation follows a whole record)";
      return Status::Ok();
    }
    hash = out->last_hash;
    const size_t slash = files[i].rfind('/');
    continues = files[i].substr(slash == std::string::npos ? 0 : slash + 1);
  }
  if (out->ok) out->bad_file.clear();
  return Status::Ok();
}

std::string AuditVerifySummary(const AuditVerifyResult& r) {
  if (!r.ok)
    return (r.bad_file.empty() ? "" : r.bad_file + " ") + "line " + std::to_string(r.bad_line) +
           ": " + r.reason;
  std::ostringstream s;
  if (r.files > 1)
    s << "ok: " << r.chain_records << " records in " << r.files << " files (" << r.records
      << " in the current one), chain intact";
  else
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

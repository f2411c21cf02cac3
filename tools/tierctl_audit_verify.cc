// tierctl audit verify | export (tools/tierctl.h): the audit journal's hash
// chain (meta/audit_verify.h) checked by tierctl itself, reading the files:
// through the daemon, which names them (root only), or from an auditor's
// copy with --journal/--head and no daemon at all.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "meta/audit_verify.h"
#include "tools/tierctl.h"

namespace tierctl {

namespace {

int Usage(const std::string& what, const std::string& msg) {
  std::cerr << "tierctl: audit " << what << ": " << msg << " (see tierctl --help)\n";
  return 2;
}

// The journal and head paths of the mount holding `where`, from its daemon.
bool AskFiles(const std::string& where, std::string* journal, std::string* head, std::string* err) {
  std::string root, rel;
  if (!FindMount(where, &root, &rel, err)) return false;
  Client client;
  if (!client.Connect(root, err)) return false;
  json reply;
  if (!client.Ask({{"cmd", "audit_files"}}, &reply, err)) return false;
  if (!reply.value("ok", false)) {
    *err = root + ": " + Text(reply["error"]);
    return false;
  }
  *journal = reply.value("journal", "");
  *head = reply.value("head", "");
  return true;
}

// Prints the result of verifying `journal` (and `head` when not empty);
// the exit status: 0 intact, 1 not (or unreadable).
int Report(const std::string& what, const std::string& journal, const std::string& head,
           const Flags& f) {
  tierfs::AuditVerifyResult r;
  tierfs::Status st = tierfs::VerifyAuditChain(journal, head, &r);
  if (!st.ok()) {
    std::cerr << "tierctl: audit " << what << ": " << st.message() << "\n";
    return 1;
  }
  const std::string summary = tierfs::AuditVerifySummary(r);
  if (f.json) {
    json j = {{"ok", r.ok},
              {"journal", journal},
              {"head", head.empty() ? json(nullptr) : json(head)},
              {"records", r.records},
              {"files", r.files},
              {"chain_records", r.chain_records},
              {"bad_file", r.bad_file.empty() ? json(nullptr) : json(r.bad_file)},
              {"unchained", r.unchained},
              {"last_hash", r.last_hash},
              {"head_record", r.head_checked ? json(r.head_record) : json(nullptr)},
              {"torn_line", r.torn_line ? json(r.torn_line) : json(nullptr)},
              {"bad_line", r.ok ? json(nullptr) : json(r.bad_line)},
              {"reason", r.ok ? json(nullptr) : json(r.reason)},
              {"summary", summary}};
    std::cout << JsonText(j, -1) << "\n";
  } else {
    // A bad record in a rotated file names its file in the summary.
    std::cout << (r.ok || !r.bad_file.empty() ? "" : journal + ": ") << summary << "\n";
  }
  return r.ok ? 0 : 1;
}

bool CopyFile(const std::string& from, const std::string& to, std::string* err) {
  const int in = open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    *err = "open " + from + ": " + std::strerror(errno);
    return false;
  }
  const int out = open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0) {
    *err = "create " + to + ": " + std::strerror(errno);
    close(in);
    return false;
  }
  char buf[1 << 16];
  ssize_t n;
  bool ok = true;
  while (ok && (n = read(in, buf, sizeof buf)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0 && write(out, buf, size_t(n)) == n;
  }
  if (ok) ok = fsync(out) == 0;
  if (!ok) *err = "copy " + from + " to " + to + ": " + std::strerror(errno ? errno : EIO);
  close(in);
  close(out);
  return ok;
}

}  // namespace

int CmdAuditVerify(const std::vector<std::string>& args, const Flags& f) {
  std::string journal, head, where = ".";
  bool have_where = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a, value;
    bool is_opt = false;
    if (!NextOption(args, &i, &a, &value, &is_opt)) return Usage("verify", a + " needs a value");
    if (a == "--journal")
      journal = value;
    else if (a == "--head")
      head = value;
    else if (is_opt || (a.size() > 1 && a[0] == '-'))
      return Usage("verify", "unknown option " + a);
    else if (have_where)
      return Usage("verify", "takes at most one PATH");
    else
      where = a, have_where = true;
  }
  if (journal.empty() && !head.empty()) return Usage("verify", "--head needs --journal");
  if (!journal.empty() && have_where)
    return Usage("verify", "PATH or --journal, not both (--journal needs no daemon)");
  if (journal.empty()) {
    std::string err;
    if (!AskFiles(where, &journal, &head, &err)) {
      std::cerr << "tierctl: audit verify " << err << "\n";
      return 1;
    }
  }
  return Report("verify", journal, head, f);
}

int CmdAuditExport(const std::vector<std::string>& args, const Flags& f) {
  if (args.empty() || args.size() > 2) return Usage("export", "takes DEST [PATH]");
  for (const std::string& a : args)
    if (a.size() > 1 && a[0] == '-') return Usage("export", "unknown option " + a);
  const std::string dest = args[0];
  struct stat st;
  if (stat(dest.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    std::cerr << "tierctl: audit export: " << dest << " is not a directory\n";
    return 1;
  }
  std::string journal, head, err;
  if (!AskFiles(args.size() > 1 ? args[1] : ".", &journal, &head, &err)) {
    std::cerr << "tierctl: audit export " << err << "\n";
    return 1;
  }
  // The head before the journal: the daemon writes its journal first, so
  // the copy of the journal never ends before the head it is checked with.
  // Rotated files first, oldest first (meta/audit.h), each under its own
  // name; a rotation meanwhile renames the journal, so the files are
  // listed again and copied again until the list stays the same.
  const std::string to_head = dest + "/" + tierfs::kAuditHeadName;
  const std::string to_journal = dest + "/audit.jsonl";
  std::vector<std::string> files, copied;
  bool ok = true;
  for (int round = 0; ok && round < 5 && (files = tierfs::AuditJournalFiles(journal)) != copied;
       ++round) {
    ok = CopyFile(head, to_head, &err);  // before the journal, as above
    for (const std::string& from : files)
      ok = ok && CopyFile(from, to_journal + from.substr(journal.size()), &err);
    copied = files;
  }
  if (!ok) {
    std::cerr << "tierctl: audit export: " << err << "\n";
    return 1;
  }
  if (!f.json)
    std::cout << "exported " << to_journal
              << (files.size() > 1 ? " (and " + std::to_string(files.size() - 1) + " rotated files)"
                                   : "")
              << " and " << to_head << "\n";
  return Report("export", to_journal, to_head, f);
}

}  // namespace tierctl

// tierctl audit (tools/tierctl.h): the audit journal through the daemon,
// filtered, oldest first, paged (the daemon answers a bounded page and the
// offset of the next).
#include <algorithm>
#include <cstring>
#include <ctime>
#include <iostream>

#include "meta/audit.h"
#include "tools/tierctl.h"

namespace tierctl {

namespace {

int Usage(const std::string& msg) {
  std::cerr << "tierctl: audit: " << msg << " (see tierctl --help)\n";
  return 2;
}

// TIME as the journal writes times ("2026-12-05T12:40:26.000000000Z", UTC):
// "90s", "30m", "1h", "2d", "1w" ago, or a local date "2026-12-05",
// "2026-12-05 14:00" or "2026-12-05T14:00:00". False when it is none.
bool SinceOf(const std::string& arg, std::string* out) {
  time_t t = 0;
  char* end = nullptr;
  const long long n = std::strtoll(arg.c_str(), &end, 10);
  static const std::pair<const char*, long long> kUnits[] = {
      {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {"w", 7 * 86400}};
  bool ago = false;
  if (end != arg.c_str() && n >= 0 && *end != '\0' && *end != '-') {
    for (const auto& [unit, secs] : kUnits)
      if (std::strcmp(end, unit) == 0) t = time(nullptr) - time_t(n * secs), ago = true;
    if (!ago) return false;
  } else {
    struct tm tm = {};
    tm.tm_isdst = -1;
    const char* rest = nullptr;
    for (const char* fmt :
         {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"}) {
      tm = {};
      tm.tm_isdst = -1;
      rest = strptime(arg.c_str(), fmt, &tm);
      if (rest && *rest == '\0') break;
      rest = nullptr;
    }
    if (!rest) return false;
    t = mktime(&tm);
  }
  struct tm utc;
  gmtime_r(&t, &utc);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000000000Z", &utc);
  *out = buf;
  return true;
}

// A journal time (nanoseconds) as a local date and time.
std::string When(const json& v) {
  if (!v.is_string() || v.get<std::string>().size() < 19) return Text(v);
  return Date(v.get<std::string>().substr(0, 19) + "Z");
}

}  // namespace

int CmdAudit(const std::vector<std::string>& args, const Flags& f) {
  if (!args.empty() && args[0] == "verify")
    return CmdAuditVerify({args.begin() + 1, args.end()}, f);
  if (!args.empty() && args[0] == "export")
    return CmdAuditExport({args.begin() + 1, args.end()}, f);
  json request = {{"cmd", "audit"}};
  std::string where = ".";
  bool have_where = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a, value;
    bool is_opt = false;
    if (!NextOption(args, &i, &a, &value, &is_opt)) return Usage(a + " needs a value");
    if (a == "--since") {
      std::string since;
      if (!SinceOf(value, &since))
        return Usage("--since " + value + ": not a date (2026-12-05 [14:00]) nor an age (1h, 2d)");
      request["since"] = since;
    } else if (a == "--path") {
      std::string root, rel, err;
      // A path in the mount, or already relative to its root ("/runs/a").
      request["path"] = FindMount(value, &root, &rel, &err) ? rel : value;
    } else if (a == "--action") {
      std::string known;
      for (const char* action : tierfs::kAuditActions)
        known += (known.empty() ? "" : ", ") + std::string(action);
      if (std::find(std::begin(tierfs::kAuditActions), std::end(tierfs::kAuditActions), value) ==
          std::end(tierfs::kAuditActions))
        return Usage("--action " + value + ": not an action (" + known + ")");
      request["action"] = value;
    } else if (is_opt || (a.size() > 1 && a[0] == '-')) {
      return Usage("unknown option " + a);
    } else if (have_where) {
      return Usage("takes at most one PATH");
    } else {
      where = a;
      have_where = true;
    }
  }
  std::string root, rel, err;
  if (!FindMount(where, &root, &rel, &err)) {
    std::cerr << "tierctl: audit " << err << "\n";
    return 1;
  }
  Client client;
  if (!client.Connect(root, &err)) {
    std::cerr << "tierctl: audit " << err << "\n";
    return 1;
  }
  std::vector<std::vector<std::string>> rows = {
      {"TIME", "ACTION", "PATH", "BYTES", "RULE", "RESULT"}};
  for (json next = 0; !next.is_null();) {
    request["offset"] = next;
    json reply;
    if (!client.Ask(request, &reply, &err)) {
      std::cerr << "tierctl: audit " << root << ": " << err << "\n";
      return 1;
    }
    if (!reply.value("ok", false)) {
      std::cerr << "tierctl: audit " << root << ": " << ShownBytes(Text(reply["error"])) << "\n";
      return 1;
    }
    for (const json& r : reply["records"]) {
      if (f.json)
        std::cout << JsonText(r, -1) << "\n";
      else
        rows.push_back({When(r["time"]), Text(r["action"]), Text(r.value("path", json())),
                        Size(r["bytes"], f), Text(r["rule"]), Text(r["result"])});
    }
    next = reply["next"];
  }
  if (!f.json) PrintTable(rows, {false, false, false, true, false, false});
  return 0;
}

}  // namespace tierctl

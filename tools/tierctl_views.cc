// tierctl's read-only listings (tools/tierctl.h): where -r, ls, du and gens.
// The daemon pages long listings ("next" in a reply); these commands ask
// for page after page, so a tree of any size is listed without one giant
// reply. Tables by default, --json for scripts (tierctl(1)).
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <set>

#include "tools/tierctl.h"

namespace tierctl {

namespace {

// Entries a page asks for: the daemon's most (fs/control_views.cc), since
// each page of a tree walks it again up to where the page starts.
constexpr uint64_t kPage = 5000;

// Splits a subcommand's arguments into its one-letter flags (of `allowed`,
// combinable: -lb) and its operands; "--" ends the flags. False (bad usage)
// with a message on stderr for any other flag.
bool SubFlags(const char* cmd, const std::vector<std::string>& args, const std::string& allowed,
              std::set<char>* flags, std::vector<std::string>* operands) {
  bool operands_only = false;
  for (const std::string& a : args) {
    if (operands_only || a.size() < 2 || a[0] != '-') {
      operands->push_back(a);
      continue;
    }
    if (a == "--") {
      operands_only = true;
      continue;
    }
    for (size_t i = 1; i < a.size(); ++i) {
      if (a[1] == '-' || allowed.find(a[i]) == std::string::npos) {
        std::cerr << "tierctl: " << cmd << ": unknown option '" << a << "' (see tierctl --help)\n";
        return false;
      }
      flags->insert(a[i]);
    }
  }
  return true;
}

// Asks for every page of a paged listing of `arg`: `key`'s arrays appended
// to `items`, the first reply (without them) in `head`.
bool AskAll(Clients& clients, const std::string& arg, json request, const char* key, json* items,
            json* head, std::string* root, std::string* err) {
  *items = json::array();
  for (uint64_t offset = 0;;) {
    request["offset"] = offset;
    request["limit"] = kPage;
    json reply;
    if (!clients.AskAbout(arg, request, &reply, root, err)) return false;
    for (json& e : reply[key]) items->push_back(std::move(e));
    if (head->is_null()) {
      *head = reply;
      head->erase(key);
      head->erase("ok");
      head->erase("next");
    }
    if (!reply["next"].is_number_unsigned()) return true;
    offset = reply["next"].get<uint64_t>();
  }
}

// The path to show for the daemon's `path` (from the mount's root) of an
// entry below `clean`, which the user named `arg`.
std::string Shown(const std::string& arg, const std::string& clean, const std::string& path) {
  if (path.size() <= clean.size()) return arg;
  std::string rest = path.substr(clean == "/" ? 0 : clean.size());
  if (!arg.empty() && arg.back() == '/') rest.erase(0, 1);
  return arg + rest;
}

std::string ModeString(const json& e) {
  const std::string type = Text(e["type"]);
  std::string s = type == "directory" ? "d" : type == "symlink" ? "l" : type == "file" ? "-" : "?";
  const unsigned m = e.value("mode", 0u);
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) s += (m & (0400u >> i)) ? rwx[i] : '-';
  if (m & S_ISUID) s[3] = s[3] == 'x' ? 's' : 'S';
  if (m & S_ISGID) s[6] = s[6] == 'x' ? 's' : 'S';
  if (m & S_ISVTX) s[9] = s[9] == 'x' ? 't' : 'T';
  return s;
}

std::string UserName(const json& uid) {
  if (!uid.is_number_unsigned()) return "-";
  passwd pw, *res = nullptr;
  char buf[4096];
  if (getpwuid_r(uid.get<uid_t>(), &pw, buf, sizeof buf, &res) == 0 && res) return pw.pw_name;
  return std::to_string(uid.get<uint64_t>());
}

std::string GroupName(const json& gid) {
  if (!gid.is_number_unsigned()) return "-";
  group gr, *res = nullptr;
  char buf[4096];
  if (getgrgid_r(gid.get<gid_t>(), &gr, buf, sizeof buf, &res) == 0 && res) return gr.gr_name;
  return std::to_string(gid.get<uint64_t>());
}

std::string State(const json& e) {
  if (e.value("moving", false)) return "moving";
  if (Text(e["type"]) != "file")
    return Text(e["type"]) + (e.value("listable", true) ? "" : ", unlistable");
  return "-";
}

int Refused(const char* cmd, const std::string& err) {
  std::cerr << "tierctl: " << cmd << " " << err << "\n";
  return 1;
}

// ls and gens: every page of `cmd`'s listing (`key`) of each of `args`,
// handed to `each` with the PATH, its mount and the first reply's other
// fields; a PATH refused is said on stderr. 1 if one was, else 0.
int ListEach(const char* cmd, const char* key, const std::vector<std::string>& args,
             const std::function<void(const std::string& arg, const std::string& root, json& items,
                                      const json& head)>& each) {
  Clients clients;
  int rc = 0;
  for (const std::string& a : args) {
    std::string root, err;
    json items, head;
    if (!AskAll(clients, a, {{"cmd", cmd}}, key, &items, &head, &root, &err)) {
      rc = Refused(cmd, err);
      continue;
    }
    each(a, root, items, head);
  }
  return rc;
}

int WhereTree(const std::vector<std::string>& args, const Flags& f) {
  Clients clients;
  std::vector<std::vector<std::string>> rows = {{"PATH", "TIER", "SIZE", "GEN", "HOLD", "STATE"}};
  json all = json::array();
  int rc = 0;
  for (const std::string& a : args) {
    std::string root, err;
    json entries, head;
    if (!AskAll(clients, a, {{"cmd", "tree"}}, "entries", &entries, &head, &root, &err)) {
      rc = Refused("where -r", err);
      if (f.json) all.push_back({{"path", a}, {"ok", false}, {"error", err}});  // as where does
      continue;
    }
    const std::string clean = Text(head["path"]);
    // The daemon's order is its walk's (all of a directory's entries, then
    // their subtrees); people read trees in path order, as find(1) prints.
    std::vector<std::pair<std::string, size_t>> order;
    for (size_t i = 0; i < entries.size(); ++i) order.emplace_back(Text(entries[i]["path"]), i);
    std::sort(order.begin(), order.end(), [](const auto& x, const auto& y) {
      return std::lexicographical_compare(
          x.first.begin(), x.first.end(), y.first.begin(), y.first.end(), [](char a, char b) {
            // '/' first: a directory's entries right after it
            return (a == '/' ? 0 : (unsigned char)a + 1) < (b == '/' ? 0 : (unsigned char)b + 1);
          });
    });
    for (const auto& [path, i] : order) {
      json& e = entries[i];
      const std::string shown = Shown(a, clean, Text(e["path"]));
      if (f.json) {
        e["path"] = shown;
        e["mountpoint"] = root;
        all.push_back(std::move(e));
      } else {
        rows.push_back({shown, e.contains("tier") ? Text(e["tier"]) : "-", Size(e["size"], f),
                        Text(e["generation"]), HoldText(e["hold"]), State(e)});
      }
    }
  }
  if (f.json)
    std::cout << JsonText(all) << "\n";
  else if (rows.size() > 1)
    PrintTable(rows, {false, false, true, true, false, false});
  return rc;
}

}  // namespace

int CmdWhereViews(const std::vector<std::string>& args, const Flags& global) {
  std::set<char> flags;
  std::vector<std::string> paths;
  if (!SubFlags("where", args, "rb", &flags, &paths)) return 2;
  Flags f = global;
  f.bytes |= flags.count('b') > 0;
  if (paths.empty()) {
    std::cerr << "tierctl: where needs at least one PATH (see tierctl --help)\n";
    return 2;
  }
  return flags.count('r') ? WhereTree(paths, f) : CmdWhere(paths, f);
}

int CmdLs(const std::vector<std::string>& args, const Flags& global) {
  std::set<char> flags;
  std::vector<std::string> dirs;
  if (!SubFlags("ls", args, "lb", &flags, &dirs)) return 2;
  Flags f = global;
  f.bytes |= flags.count('b') > 0;
  const bool longer = flags.count('l') > 0;
  if (dirs.empty()) dirs.push_back(".");
  json all = json::array();
  const int rc = ListEach(
      "ls", "entries", dirs,
      [&](const std::string& d, const std::string&, json& entries, const json& head) {
        if (f.json) {
          for (json& e : entries) all.push_back(std::move(e));
          return;
        }
        if (dirs.size() > 1 && head.value("directory", false)) std::cout << ShownBytes(d) << ":\n";
        std::vector<std::vector<std::string>> rows;
        for (const json& e : entries) {
          std::string name = head.value("directory", false) ? Text(e["name"]) : d;
          if (!longer) {
            std::cout << ShownBytes(name) << "\n";
            continue;
          }
          if (e.contains("target")) name += " -> " + Text(e["target"]);
          rows.push_back({ModeString(e), Text(e["nlink"]), UserName(e["uid"]), GroupName(e["gid"]),
                          Size(e["size"], f), Date(e["mtime"]),
                          e.contains("tier") ? Text(e["tier"]) : "-", Text(e["generation"]), name});
        }
        if (longer && !rows.empty()) {
          rows.insert(rows.begin(),
                      {"MODE", "LINKS", "OWNER", "GROUP", "SIZE", "MTIME", "TIER", "GEN", "NAME"});
          PrintTable(rows, {false, true, false, false, true, false, false, true, false});
        }
      });
  if (f.json) std::cout << JsonText(all) << "\n";
  return rc;
}

int CmdDu(const std::vector<std::string>& args, const Flags& global) {
  std::set<char> flags;
  std::vector<std::string> paths;
  if (!SubFlags("du", args, "b", &flags, &paths)) return 2;
  Flags f = global;
  f.bytes |= flags.count('b') > 0;
  return AskEachMount("du", paths, f, [&](const std::string& p, const std::string&, json& reply) {
    if (f.json) return 0;
    std::cout << ShownBytes(p) << ":\n";
    std::vector<std::vector<std::string>> rows = {{"TIER", "FILES", "BYTES"}};
    for (const char* t : {"ssd", "hdd"})
      rows.push_back({t, Text(reply["tiers"][t]["files"]), Size(reply["tiers"][t]["bytes"], f)});
    PrintTable(rows, {false, true, true}, "  ");
    if (reply.value("unlistable", 0) > 0)
      std::cout << "  (" << Text(reply["unlistable"])
                << " directories you may not list are not counted)\n";
    if (!reply["series"].empty()) {
      rows = {{"SERIES", "DIR", "GENS", "SSD", "HDD"}};
      for (const json& s : reply["series"])
        rows.push_back({Text(s["series"]), Text(s["dir"]), Text(s["generations"]),
                        Size(s["tiers"]["ssd"], f), Size(s["tiers"]["hdd"], f)});
      std::cout << "\n";
      PrintTable(rows, {false, false, true, true, true}, "  ");
      rows = {{"SERIES", "DIR", "GEN", "SSD", "HDD"}};
      for (const json& g : reply["generations"])
        rows.push_back({Text(g["series"]), Text(g["dir"]), Text(g["generation"]),
                        Size(g["tiers"]["ssd"], f), Size(g["tiers"]["hdd"], f)});
      std::cout << "\n";
      PrintTable(rows, {false, false, true, true, true}, "  ");
      if (reply.value("truncated", false)) std::cout << "  (more generations not shown)\n";
    }
    return 0;
  });
}

int CmdGens(const std::vector<std::string>& args, const Flags& global) {
  std::set<char> flags;
  std::vector<std::string> dirs;
  if (!SubFlags("gens", args, "b", &flags, &dirs)) return 2;
  Flags f = global;
  f.bytes |= flags.count('b') > 0;
  if (dirs.empty()) dirs.push_back(".");
  json all = json::array();
  const int rc = ListEach(
      "gens", "generations", dirs,
      [&](const std::string& d, const std::string& root, json& gens, const json&) {
        std::string instance;
        std::vector<std::vector<std::string>> rows;
        auto flush = [&] {
          if (rows.size() > 1) PrintTable(rows, {true, false, true, false, false, false}, "  ");
          rows = {{"GEN", "TIER", "SIZE", "COMPLETE", "HOLD", "NEXT"}};
        };
        flush();
        for (json& g : gens) {
          if (f.json) {
            g["mountpoint"] = root;
            all.push_back(std::move(g));
            continue;
          }
          const std::string here = Text(g["series"]) + " in " + Text(g["dir"]);
          if (here != instance) {
            flush();
            std::cout << (instance.empty() ? "" : "\n") << "series " << ShownBytes(here) << ":\n";
            instance = here;
          }
          std::string tiers;
          for (const json& t : g["on"]) tiers += (tiers.empty() ? "" : "+") + Text(t);
          const std::string complete =
              g.value("complete", false) ? "yes" : "no (" + Text(g["incomplete_reason"]) + ")";
          rows.push_back({Text(g["generation"]), tiers.empty() ? "-" : tiers, Size(g["bytes"], f),
                          complete, HoldText(g["hold"]), Text(g["next"]["text"])});
        }
        flush();
        if (!f.json && gens.empty()) std::cout << ShownBytes(d) << ": no checkpoint generations\n";
      });
  if (f.json) std::cout << JsonText(all) << "\n";
  return rc;
}

}  // namespace tierctl

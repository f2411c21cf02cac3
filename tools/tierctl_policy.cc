// tierctl policy check|show|dry-run|reload and tierctl audit (tools/tierctl.h).
// `policy check` parses the file here, without a daemon; the others ask the
// daemon of the mount holding PATH (the current directory by default).
#include <pwd.h>

#include <cstring>
#include <ctime>
#include <iostream>
#include <set>

#include "policy/policy.h"
#include "tools/tierctl.h"

namespace tierctl {

namespace {

int Usage(const std::string& msg) {
  std::cerr << "tierctl: " << msg << " (see tierctl --help)\n";
  return 2;
}

bool IsOption(const std::string& a) {
  return a.size() > 1 && a[0] == '-';
}

// Asks the daemon of the mount holding `where`; prints the error and
// returns false when it fails or refuses.
bool AskMount(const std::string& what, const std::string& where, json request, json* reply) {
  Clients clients;
  std::string root, err;
  if (clients.AskAbout(where, std::move(request), reply, &root, &err)) return true;
  std::cerr << "tierctl: " << what << " " << err << "\n";
  return false;
}

int Check(const std::vector<std::string>& args, const Flags& f) {
  if (args.size() != 1) return Usage("policy check needs exactly one FILE");
  std::string text;
  tierfs::Status st = tierfs::ReadPolicyFile(args[0], &text);
  std::vector<tierfs::Status> errors;
  tierfs::Policy policy;
  if (!st.ok())
    errors.push_back(st);
  else
    tierfs::ParsePolicyAll(text, args[0], &policy, &errors);
  // The daemon refuses a policy naming a user it does not know: say so too.
  if (errors.empty()) {
    for (const tierfs::Rule& r : policy.rules) {
      if (r.owner_name.empty() || r.owner_uid) continue;
      struct passwd pw, *found = nullptr;
      char buf[4096];
      if (getpwnam_r(r.owner_name.c_str(), &pw, buf, sizeof buf, &found) != 0 || !found)
        errors.push_back(tierfs::Status::Error(
            ENOENT, args[0] + ": rule \"" + r.name + "\" (line " + std::to_string(r.line) +
                        "): unknown user \"" + r.owner_name + "\""));
    }
  }
  if (f.json) {
    json out = {{"file", args[0]}, {"valid", errors.empty()}, {"errors", json::array()}};
    for (const tierfs::Status& e : errors) out["errors"].push_back(e.message());
    if (errors.empty()) out["series"] = policy.series.size(), out["rules"] = policy.rules.size();
    std::cout << JsonText(out) << "\n";
  } else if (errors.empty()) {
    std::cout << args[0] << ": ok (" << policy.series.size() << " series, " << policy.rules.size()
              << " rules)\n";
  } else {
    for (const tierfs::Status& e : errors) std::cerr << e.message() << "\n";
    std::cerr << args[0] << ": " << errors.size() << " error" << (errors.size() > 1 ? "s" : "")
              << "\n";
  }
  return errors.empty() ? 0 : 1;
}

int Show(const std::vector<std::string>& args, const Flags& f) {
  if (args.size() > 1) return Usage("policy show takes at most one PATH");
  json reply;
  if (!AskMount("policy show", args.empty() ? "." : args[0], {{"cmd", "policy-show"}}, &reply))
    return 1;
  reply.erase("ok");
  if (f.json) {
    std::cout << JsonText(reply) << "\n";
    return 0;
  }
  std::cout << "policy: " << (reply.value("builtin", false) ? "built-in" : Text(reply["file"]))
            << "\nloaded: " << Date(reply["loaded"]) << "\n";
  if (!reply["last_error"].is_null())
    std::cout << "last reload refused (" << Date(reply["last_error_time"])
              << "): " << Text(reply["last_error"]) << "\n";
  std::cout << "\n" << Text(reply["text"]);
  return 0;
}

int Reload(const std::vector<std::string>& args, const Flags& f) {
  if (args.size() > 1) return Usage("policy reload takes at most one PATH");
  json reply;
  if (!AskMount("policy reload", args.empty() ? "." : args[0], {{"cmd", "policy-reload"}}, &reply))
    return 1;
  reply.erase("ok");
  if (f.json)
    std::cout << JsonText(reply) << "\n";
  else
    std::cout << "policy reloaded from "
              << (reply["file"].is_null() ? "the built-in policy" : Text(reply["file"])) << "\n";
  return 0;
}

void PrintPlan(const json& plan, const Flags& f) {
  if (plan["rules"].empty()) std::cout << "nothing to do\n";
  for (const json& r : plan["rules"]) {
    std::string totals;
    for (const auto& [kind, t] : r["totals"].items())
      totals += " " + Text(t["files"]) + " " + kind + " (" + Size(t["bytes"], f) + ")";
    std::cout << "rule \"" << ShownBytes(Text(r["rule"])) << "\":" << totals << "\n";
    if (r.contains("because")) std::cout << "  because " << ShownBytes(Text(r["because"])) << "\n";
    std::vector<std::vector<std::string>> rows;
    for (const json& a : r["actions"]) {
      std::string what = a.contains("to") ? "-> " + Text(a["to"]) : "";
      if (a["kind"] == "pin")
        what += (what.empty() ? "" : " ") +
                (a["until"].is_null() ? std::string("indefinitely") : "until " + Date(a["until"])) +
                (a.value("immutable", false) ? ", immutable" : "");
      if (a["kind"] == "refuse") what = Text(a["reason"]);
      const std::string gen = a.contains("generation")
                                  ? Text(a["series"]) + " #" + Text(a["generation"])
                                  : std::string("-");
      rows.push_back({Text(a["kind"]), Text(a["path"]), gen, Size(a["bytes"], f), what});
    }
    PrintTable(rows, {false, false, false, true, false}, "  ");
  }
  if (plan.value("hidden", 0) > 0)
    std::cout << Text(plan["hidden"]) << " actions on paths you may not stat are not shown\n";
  if (plan.value("truncated", false)) std::cout << "(the listing is cut; the totals are whole)\n";
}

int DryRun(const std::vector<std::string>& args, const Flags& f) {
  // [FILE] [PATH]: one argument is a FILE unless it is inside a tierfs mount.
  std::string file, where = ".";
  if (args.size() > 2) return Usage("policy dry-run takes at most FILE and PATH");
  if (args.size() == 2) {
    file = args[0];
    where = args[1];
  } else if (args.size() == 1) {
    std::string root, rel, err;
    if (FindMount(args[0], &root, &rel, &err))
      where = args[0];
    else
      file = args[0];
  }
  json request = {{"cmd", "policy-dry-run"}};
  if (!file.empty()) {
    // Read here, as the caller: the daemon never opens a file for a client.
    std::string text;
    tierfs::Status st = tierfs::ReadPolicyFile(file, &text);
    if (!st.ok()) {
      std::cerr << "tierctl: policy dry-run: " << st.message() << "\n";
      return 1;
    }
    request["text"] = text;
    request["name"] = file;
  }
  json reply;
  if (!AskMount("policy dry-run", where, request, &reply)) return 1;
  reply.erase("ok");
  if (f.json)
    std::cout << JsonText(reply) << "\n";
  else
    PrintPlan(reply, f);
  return 0;
}

}  // namespace

int CmdPolicy(const std::vector<std::string>& args, const Flags& f) {
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  for (const std::string& a : rest)
    if (IsOption(a)) return Usage("policy " + args[0] + ": unknown option " + a);
  if (args[0] == "check") return Check(rest, f);
  if (args[0] == "show") return Show(rest, f);
  if (args[0] == "dry-run") return DryRun(rest, f);
  if (args[0] == "reload") return Reload(rest, f);
  return Usage("unknown policy command '" + args[0] + "' (known: check, show, dry-run, reload)");
}

}  // namespace tierctl

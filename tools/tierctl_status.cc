// tierctl status and where (tools/tierctl.h).
#include <iostream>

#include "tools/tierctl.h"

namespace tierctl {

namespace {

void PrintStatus(const json& s, const Flags& f) {
  std::cout << Text(s["mountpoint"]) << ": tierfs " << Text(s["version"]) << ", pid "
            << Text(s["pid"]) << ", up " << Duration(s.value("uptime_s", int64_t(0))) << " (since "
            << Date(s["started"]) << ")\n";
  const std::string policy = s.value("policy_file", std::string());
  const json& p = s.contains("policy") ? s["policy"] : json::object();
  std::vector<std::vector<std::string>> about = {
      {"state", Text(s["state"])},
      {"policy",
       (policy.empty() ? "built-in" : policy) + ", loaded " + Date(p.value("loaded", json()))},
      {"watermarks", "ssd high " + Percent(s["watermarks"].value("high", 0.0)) + ", low " +
                         Percent(s["watermarks"].value("low", 0.0))}};
  if (p.contains("last_reload_error") && p["last_reload_error"].is_object())
    about.push_back({"reload refused", Date(p["last_reload_error"]["at"]) + ": " +
                                           Text(p["last_reload_error"]["error"])});
  if (s.contains("moves")) {
    const json& m = s["moves"];
    about.push_back({"moves", Text(m["running"]) + " running, " + Text(m["queued"]) + " queued, " +
                                  Size(m["bytes_last_minute"], f) + " in the last minute (" +
                                  Size(m["bytes_per_second"], f) + "/s)"});
  }
  // Files a verified read found corrupt (EIO until rewritten or removed).
  if (s.value("corrupt_files", uint64_t(0)) > 0)
    about.push_back({"corrupt files", Text(s["corrupt_files"]) + " (reads fail with EIO)"});
  if (s.contains("scrub")) about.push_back({"scrub", ScrubText(s["scrub"], f)});
  PrintTable(about, {}, "  ");
  std::vector<std::vector<std::string>> rows = {
      {"TIER", "PATH", "CAPACITY", "USED", "FREE", "USE%", "FILES", "BYTES"}};
  // A tier that cannot say its space (a failing disk, a network
  // filesystem that dropped) has no capacity, used or free: "-".
  for (const json& t : Field(s, "tiers")) {
    const json &cap = Field(t, "capacity"), &used = Field(t, "used");
    std::string name = Text(Field(t, "name"));
    if (!t.value("healthy", true))
      name += " (unhealthy: " + Text(Field(t, "error")) + ")";
    else if (!Field(t, "error").is_null())
      name += " (" + Text(Field(t, "error")) + ")";
    rows.push_back({name, Text(Field(t, "path")), Size(cap, f), Size(used, f),
                    Size(Field(t, "free"), f),
                    cap.is_number() && used.is_number() && cap.get<uint64_t>() > 0
                        ? Percent(used.get<double>() / cap.get<double>())
                        : "-",
                    Text(Field(t, "files")), Size(Field(t, "bytes"), f)});
  }
  PrintTable(rows, {false, false, true, true, true, true, true, true}, "  ");
  if (s.contains("recent_errors") && !s["recent_errors"].empty()) {
    std::cout << "  recent warnings and errors (UTC):\n";
    for (const json& e : s["recent_errors"]) std::cout << "    " << ShownBytes(Text(e)) << "\n";
  }
}

}  // namespace

std::string HoldText(const json& h) {
  if (!h.is_object()) return "-";
  std::string out = h["until"].is_null() ? "forever" : "until " + Date(h["until"]);
  if (!h.value("active", true)) out = "expired " + Date(h["until"]);
  out += " (" + Text(h["rule"]) + (h.value("immutable", false) ? ", immutable" : "") + ")";
  return out;
}

int CmdStatus(const std::vector<std::string>& args, const Flags& f) {
  std::vector<std::string> roots;
  int rc = 0;
  if (args.empty()) {
    for (const MountEntry& m : Mounts())
      if (m.fstype == "fuse.tierfs") roots.push_back(m.point);
    if (roots.empty()) {
      std::cerr << "tierctl: status: no tierfs mount found\n";
      return 1;
    }
  }
  for (const std::string& a : args) {
    std::string root, rel, err;
    if (!FindMount(a, &root, &rel, &err)) {
      std::cerr << "tierctl: status " << err << "\n";
      rc = 1;
    } else {
      roots.push_back(root);
    }
  }
  json all = json::array();
  for (const std::string& root : roots) {
    Client client;
    json reply;
    std::string err;
    if (!client.Connect(root, &err) || !client.Ask({{"cmd", "status"}}, &reply, &err)) {
      std::cerr << "tierctl: status " << root << ": " << err << "\n";
      rc = 1;
      continue;
    }
    if (!reply.value("ok", false)) {
      std::cerr << "tierctl: status " << root << ": " << ShownBytes(Text(reply["error"])) << "\n";
      rc = 1;
      continue;
    }
    reply.erase("ok");
    if (f.json) {
      all.push_back(reply);
    } else {
      if (!all.empty()) std::cout << "\n";
      PrintStatus(reply, f);
      all.push_back(true);
    }
  }
  if (f.json) std::cout << JsonText(all) << "\n";
  return rc;
}

int CmdWhere(const std::vector<std::string>& args, const Flags& f) {
  Clients clients;
  std::vector<std::vector<std::string>> rows = {
      {"PATH", "TIER", "SIZE", "GEN", "HOLD", "STATE", "OBJECT"}};
  json all = json::array();
  int rc = 0;
  for (const std::string& a : args) {
    std::string root, err;
    json reply;
    if (!clients.AskAbout(a, {{"cmd", "where"}}, &reply, &root, &err)) {
      std::cerr << "tierctl: where " << err << "\n";
      if (f.json) all.push_back({{"path", a}, {"ok", false}, {"error", err}});
      rc = 1;
      continue;
    }
    reply.erase("ok");
    reply["mountpoint"] = root;
    if (f.json) {
      reply["path"] = a;
      all.push_back(reply);
      continue;
    }
    std::string state = "-";
    if (reply.value("moving", false)) state = "moving";
    if (reply["type"] != "file") state = Text(reply["type"]);
    rows.push_back({a, reply.contains("tier") ? Text(reply["tier"]) : "-", Size(reply["size"], f),
                    Text(reply["generation"]), HoldText(reply["hold"]), state,
                    reply.contains("object") ? Text(reply["object"]) : "-"});
  }
  if (f.json)
    std::cout << JsonText(all) << "\n";
  else if (rows.size() > 1)
    PrintTable(rows, {false, false, true, true, false, false, false});
  return rc;
}

}  // namespace tierctl

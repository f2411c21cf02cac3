// The policy commands of the control socket (fs/control_commands.h):
//   {"cmd":"policy-show"}                   anyone: the running policy
//   {"cmd":"policy-dry-run"[,"text":T,"name":N]}
//                                           anyone: the plan of policy text T
//                                           (parsed here, never a file the
//                                           daemon opens for the client) or
//                                           of the running policy, rule by
//                                           rule; a non-root peer sees the
//                                           actions on paths it could stat
//   {"cmd":"policy-reload"}                 root only (EPERM otherwise)
#include <map>

#include "fs/context.h"
#include "fs/control_internal.h"
#include "policy/units.h"

namespace tierfs {

using nlohmann::json;

namespace {

// At most this many actions are listed in one dry-run reply (the totals
// count them all): a reply stays a bounded line.
constexpr size_t kMaxListedActions = 10000;

json ActionJson(const Action& a) {
  json j = {{"kind", ActionKindName(a.kind)}, {"path", a.path}, {"bytes", a.bytes}};
  if (a.to) j["to"] = TierName(*a.to);
  if (!a.series.empty()) j["series"] = a.series;
  if (a.generation) j["generation"] = *a.generation;
  if (a.kind == Action::Kind::kPin) {
    j["until"] = a.pin_until_ns ? json(UtcSeconds(a.pin_until_ns)) : json(nullptr);
    j["immutable"] = a.immutable;
  }
  if (!a.reason.empty()) j["reason"] = a.reason;
  return j;
}

}  // namespace

json ControlPolicyShow(Context& c, const ControlInfo&, const json&, const ControlPeer&) {
  const PolicyRunner::Info info = c.policy_runner().GetInfo();
  return {{"ok", true},
          {"file", info.file.empty() ? json(nullptr) : json(info.file)},
          {"builtin", info.file.empty()},
          {"text", info.text},
          {"loaded", UtcSeconds(info.loaded_ns)},
          {"last_error", info.last_error.empty() ? json(nullptr) : json(info.last_error)},
          {"last_error_time",
           info.last_error_ns ? json(UtcSeconds(info.last_error_ns)) : json(nullptr)}};
}

json ControlPolicyReload(Context& c, const ControlInfo&, const json&, const ControlPeer& peer) {
  if (peer.uid != 0) return ControlError(EPERM, "policy reload: only root may reload the policy");
  Status st = c.policy_runner().Reload();
  if (!st.ok())
    return ControlError(st.err(),
                        "policy reload refused, the running policy stays: " + st.message());
  const PolicyRunner::Info info = c.policy_runner().GetInfo();
  return {{"ok", true},
          {"file", info.file.empty() ? json(nullptr) : json(info.file)},
          {"loaded", UtcSeconds(info.loaded_ns)}};
}

json ControlPolicyDryRun(Context& c, const ControlInfo&, const json& req, const ControlPeer& peer) {
  Policy given;
  const Policy* policy = nullptr;
  std::string source = "running";
  if (HasField(req, "text")) {
    const std::string text = StringField(req, "text", "");
    source = StringField(req, "name", "<policy from tierctl>");
    Status st = ParsePolicyText(text, source, &given);
    if (!st.ok()) return ControlError(st.err(), st.message());
    policy = &given;
  }
  Plan plan;
  Status st = c.policy_runner().PlanWith(policy, &plan);
  if (!st.ok()) return ControlError(st.err(), "policy dry-run: " + st.message());
  json rules = json::array();
  std::map<std::string, size_t> index;  // rule name -> its entry in `rules`
  size_t listed = 0, hidden = 0;
  bool truncated = false;
  for (const Action& a : plan) {
    if (peer.uid != 0) {
      Inode n;
      std::string clean;
      if (!ResolveForPeer(c, a.path, peer, &n, &clean).ok()) {
        ++hidden;
        continue;
      }
    }
    auto [it, fresh] = index.emplace(a.rule, rules.size());
    if (fresh)
      rules.push_back({{"rule", a.rule}, {"totals", json::object()}, {"actions", json::array()}});
    json& r = rules[it->second];
    if (!r.contains("because") && a.kind != Action::Kind::kRefuse) r["because"] = a.reason;
    json& total = r["totals"][ActionKindName(a.kind)];
    if (!total.is_object()) total = {{"files", uint64_t(0)}, {"bytes", uint64_t(0)}};
    total["files"] = total["files"].get<uint64_t>() + 1;
    total["bytes"] = total["bytes"].get<uint64_t>() + a.bytes;
    if (listed < kMaxListedActions) {
      r["actions"].push_back(ActionJson(a));
      ++listed;
    } else {
      truncated = true;
    }
  }
  return {{"ok", true},
          {"policy", source},
          {"rules", std::move(rules)},
          {"hidden", hidden},
          {"truncated", truncated}};
}

}  // namespace tierfs

// `gens` (tierctl gens DIR) and the generations `du` sums: the series
// generations the running policy recognises below a directory, and what the
// policy will do to each next. "Next" comes from the policy's own Evaluate
// over one snapshot, at now and at later times (the snapshot aged, nothing
// new written), so it says "thin within 2d" only when the rules would.
#include <algorithm>
#include <map>
#include <unordered_map>

#include "fs/context.h"
#include "fs/control_internal.h"
#include "policy/rule_match.h"

namespace tierfs {

using nlohmann::json;

namespace {

constexpr int64_t kMinute = int64_t(60) * 1000000000;
constexpr int64_t kHour = 60 * kMinute, kDay = 24 * kHour;
// When to look ahead: a later action is reported as "within" the first of
// these at which the policy would take it.
constexpr int64_t kHorizons[] = {0,         10 * kMinute, kHour,      6 * kHour, 12 * kHour,
                                 kDay,      2 * kDay,     3 * kDay,   7 * kDay,  14 * kDay,
                                 30 * kDay, 90 * kDay,    180 * kDay, 365 * kDay};

std::string Within(int64_t ns) {
  if (ns % kDay == 0) return std::to_string(ns / kDay) + "d";
  if (ns % kHour == 0) return std::to_string(ns / kHour) + "h";
  return std::to_string(ns / kMinute) + "m";
}

bool Below(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

// What the policy does to one generation next. A "strong" verdict (it acts
// or refuses to) beats a weak one (a rule that keeps it where it is).
struct Next {
  int strength = 0;  // 0 nothing yet, 1 weak, 2 strong
  json j;
};

void Consider(const Action& a, const Snapshot& snap, size_t member, int64_t after, Next* next) {
  const bool now = after == 0;
  json j = {{"rule", a.rule}, {"within_s", after / 1000000000}};
  int strength = 2;
  switch (a.kind) {
    case Action::Kind::kThin:
      j["action"] = "thin";
      j["text"] = (now ? "thin now" : "thin within " + Within(after)) + " by rule " + a.rule;
      break;
    case Action::Kind::kMigrate: {
      if (!a.to) return;
      const char* to = TierName(*a.to);
      j["to"] = to;
      if (snap[member].is_dir || snap[member].is_symlink) return;
      if (*a.to == snap[member].tier) {
        if (!now) return;
        strength = 1;
        j["action"] = "keep";
        j["text"] = std::string("keep on ") + to + " (rule " + a.rule + ")";
      } else {
        j["action"] = "migrate";
        j["text"] = (now ? std::string("migrate to ") + to
                         : std::string("migrate to ") + to + " within " + Within(after)) +
                    " by rule " + a.rule;
      }
      break;
    }
    case Action::Kind::kPin:
      if (!now) return;
      strength = 1;
      j["action"] = "keep";
      j["text"] = "keep, pinned (rule " + a.rule + ")";
      break;
    case Action::Kind::kRefuse:
      if (!now) return;
      j["action"] = "keep";
      j["reason"] = a.reason;
      j["text"] = "keep (rule " + a.rule + ": " + a.reason + ")";
      break;
  }
  if (strength > next->strength) next->strength = strength, next->j = std::move(j);
}

// Why a generation the plan leaves alone stays as it is: the first rule
// that judges it (an action already done is no action in a plan).
json KeptBy(const Policy& policy, const Generation& g, const Snapshot& snap, int64_t now) {
  for (const Rule& rule : policy.rules) {
    if (!rule.judges_generations() || !RuleMatchesGeneration(rule, g, snap, now)) continue;
    json j = {{"action", "keep"}, {"rule", rule.name}, {"within_s", 0}};
    switch (rule.action) {
      case Rule::Action::kMigrate:
        j["to"] = TierName(*rule.to);
        j["text"] = std::string("keep on ") + TierName(*rule.to) + " (rule " + rule.name + ")";
        return j;
      case Rule::Action::kPin:
        if (const int64_t until = PinUntil(rule, g.last_write_ns); until && until <= now) continue;
        j["text"] = "keep, pinned (rule " + rule.name + ")";
        return j;
      case Rule::Action::kExclude:
        j["text"] = "keep, excluded (rule " + rule.name + ")";
        return j;
      case Rule::Action::kThin:
        continue;  // a thin that does not happen shows as a refusal in the plan
    }
  }
  return {{"action", "keep"}, {"text", "keep (no rule acts on it)"}};
}

}  // namespace

Status GenerationsBelow(Context& c, const std::string& dir, const ControlPeer& peer, bool with_next,
                        json* out) {
  *out = json::array();
  if (dir.empty()) return Status::Ok();
  std::shared_ptr<const Policy> policy;
  Snapshot snap;
  Status st = c.policy_runner().Inspect(&policy, &snap);
  if (!st.ok()) return st;
  const int64_t now = NowNs();
  std::vector<Generation> all = RecognizeGenerations(*policy, snap, now);
  // The instances below `dir` that the peer may list.
  std::map<std::string, bool> listable;
  std::vector<const Generation*> gens;
  for (const Generation& g : all) {
    if (!Below(g.instance_dir, dir)) continue;
    auto [it, fresh] = listable.emplace(g.instance_dir, false);
    if (fresh) {
      Inode d;
      std::string clean;
      it->second = ResolveForPeer(c, g.instance_dir, peer, &d, &clean).ok() && d.is_dir() &&
                   MayRead(c, d, peer) && MaySearch(c, d, peer);
    }
    if (it->second) gens.push_back(&g);
  }
  std::sort(gens.begin(), gens.end(), [&](const Generation* a, const Generation* b) {
    const std::string& sa = policy->series[a->series].name;
    const std::string& sb = policy->series[b->series].name;
    if (sa != sb) return sa < sb;
    if (a->instance_dir != b->instance_dir) return a->instance_dir < b->instance_dir;
    return a->number > b->number;
  });
  std::vector<Next> next(gens.size());
  if (with_next && !gens.empty()) {
    std::unordered_map<uint64_t, std::pair<size_t, size_t>> by_ino;  // gen index, member
    for (size_t i = 0; i < gens.size(); ++i)
      for (size_t m : gens[i]->members) by_ino.emplace(snap[m].ino, std::pair{i, m});
    for (int64_t after : kHorizons) {
      const Plan plan = Evaluate(*policy, snap, now + after);
      for (const Action& a : plan) {
        auto it = by_ino.find(a.ino);
        if (it == by_ino.end() || next[it->second.first].strength == 2) continue;
        Consider(a, snap, it->second.second, after, &next[it->second.first]);
      }
      if (std::all_of(next.begin(), next.end(), [](const Next& n) { return n.strength == 2; }))
        break;
    }
  }
  for (size_t i = 0; i < gens.size(); ++i) {
    const Generation& g = *gens[i];
    uint64_t bytes[2] = {0, 0}, files = 0;
    for (size_t m : g.members) {
      const FileFacts& f = snap[m];
      if (f.is_dir || f.is_symlink) continue;
      bytes[size_t(f.tier)] += f.size;
      ++files;
    }
    json tiers = json::array();
    for (TierId id : {TierId::kSsd, TierId::kHdd})
      if (bytes[size_t(id)]) tiers.push_back(TierName(id));
    const FileFacts& root = snap[g.roots.front()];
    json j = {{"series", policy->series[g.series].name},
              {"dir", g.instance_dir},
              {"generation", g.number},
              {"path", root.path},
              {"files", files},
              {"bytes", g.bytes},
              {"tiers", {{"ssd", bytes[0]}, {"hdd", bytes[1]}}},
              {"on", std::move(tiers)},
              {"complete", g.complete},
              {"newest_complete", g.newest_complete},
              {"last_write", UtcSeconds(g.last_write_ns)}};
    if (!g.complete) j["incomplete_reason"] = g.incomplete_reason;
    Store::Hold h;
    if (c.store().GetHold(root.ino, &h).ok()) {
      j["hold"] = {{"rule", h.rule},
                   {"since", UtcSeconds(h.since_ns)},
                   {"until", h.until_ns ? json(UtcSeconds(h.until_ns)) : json(nullptr)},
                   {"immutable", h.immutable},
                   {"active", Holds::Active(h, now)}};
    } else {
      j["hold"] = nullptr;
    }
    if (with_next) j["next"] = next[i].strength ? next[i].j : KeptBy(*policy, g, snap, now);
    out->push_back(std::move(j));
  }
  return Status::Ok();
}

json ControlGens(Context& c, const ControlInfo&, const json& req, const ControlPeer& peer) {
  std::string path;
  if (!PathField(req, &path)) return ControlError(EINVAL, "gens: \"path\" (a string) is required");
  const uint64_t offset = UintField(req, "offset", 0);
  const size_t limit = std::clamp<uint64_t>(UintField(req, "limit", 1000), 1, 2000);
  Inode dir;
  std::string clean;
  Status st = ResolveForPeer(c, path, peer, &dir, &clean);
  if (st.ok() && !dir.is_dir()) st = Status::Error(ENOTDIR, clean + " is not a directory");
  if (st.ok() && !(MayRead(c, dir, peer) && MaySearch(c, dir, peer)))
    st = Status::Error(EACCES, clean + ": permission denied (cannot list it)");
  if (!st.ok()) return ControlError(st.err(), "gens " + st.message());
  json gens;
  st = GenerationsBelow(c, clean, peer, true, &gens);
  if (!st.ok()) return ControlError(st.err(), "gens " + clean + ": " + st.message());
  // Every generation is evaluated for each page; a page only bounds the reply.
  json page = json::array();
  for (size_t i = offset; i < gens.size() && page.size() < limit; ++i)
    page.push_back(std::move(gens[i]));
  const size_t end = offset + page.size();
  return {{"ok", true},
          {"path", clean},
          {"generations", std::move(page)},
          {"next", end < gens.size() ? json(end) : json(nullptr)}};
}

}  // namespace tierfs

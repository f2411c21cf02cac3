// Evaluate: rules in file order, first match per file and action kind, then
// the safety checks that no rule can override.
#include <algorithm>
#include <iterator>

#include "policy/policy.h"
#include "policy/rule_match.h"
#include "policy/units.h"

namespace tierfs {

namespace {

constexpr uint8_t kMigrateBit = 1, kThinBit = 2, kPinBit = 4, kAllBits = 7;

// What the rules decided for one file.
struct Decision {
  uint8_t claimed = 0;
  int migrate_rule = -1;
  TierId to = TierId::kSsd;
  int thin_rule = -1;
  int retained_by = -1;  // a pin or exclude rule that shields it from thinning
  int pin_rule = -1;
  int64_t pin_until_ns = 0;
};

bool Held(const FileFacts& file, int64_t now_ns) {
  return file.pinned && (file.pin_until_ns == 0 || file.pin_until_ns > now_ns);
}

bool ManuallyHeld(const FileFacts& file, int64_t now_ns) {
  return file.manual_pin && Held(file, now_ns);
}

// "manually pinned to hdd by uid 1000 until 2027-01-31T12:00:00Z".
std::string ManualPinText(const FileFacts& file) {
  return std::string("manually pinned") +
         (file.pin_tier ? std::string(" to ") + TierName(*file.pin_tier) : "") + " by uid " +
         std::to_string(file.pin_uid) +
         (file.pin_until_ns == 0 ? " indefinitely" : " until " + FormatUtc(file.pin_until_ns)) +
         (file.immutable ? ", immutable" : "");
}

// "manually placed on hdd by uid 1000".
std::string ManualPlaceText(const FileFacts& file) {
  return std::string("manually placed") +
         (file.pin_tier ? std::string(" on ") + TierName(*file.pin_tier) : "") + " by uid " +
         std::to_string(file.pin_uid);
}

// Why `file` may not be thinned, or "".
std::string FileSafety(const FileFacts& file, int64_t now_ns) {
  if (file.open) return file.path + " is open";
  if (ManuallyHeld(file, now_ns)) return file.path + " is " + ManualPinText(file);
  if (Held(file, now_ns)) {
    return file.path + (file.pin_until_ns == 0 ? " is pinned"
                                               : " is pinned for another " +
                                                     FormatDuration(file.pin_until_ns - now_ns));
  }
  if (file.immutable) return file.path + " is immutable";
  return "";
}

// Why generation `gen` may not be thinned (in whole or in part), or "".
std::string GenerationSafety(const Generation& gen, const Policy& policy, const Snapshot& snapshot,
                             int64_t now_ns) {
  const std::string label = policy.series[gen.series].name + " generation " +
                            std::to_string(gen.number) + " in " + gen.instance_dir;
  if (gen.newest_complete) return "the newest complete " + label;
  if (!gen.named_by.empty()) return label + " is named by " + gen.named_by;
  if (!gen.complete) return label + " is incomplete (" + gen.incomplete_reason + ")";
  for (size_t member : gen.members) {
    std::string why = FileSafety(snapshot[member], now_ns);
    if (!why.empty()) return why + " (in " + label + ")";
  }
  return "";
}

class Evaluator {
 public:
  Evaluator(const Policy& policy, const Snapshot& snapshot, int64_t now_ns)
      : policy_(policy), snapshot_(snapshot), now_ns_(now_ns) {}

  Plan Run();

 private:
  void DecideFile(size_t index);
  void PlanGenerationThin(size_t g);
  void PlanFileThin(size_t index);
  void PlanOwnershipRefusal(size_t g);
  void Add(int rule, Action action) { by_rule_[rule].push_back(std::move(action)); }
  Action Base(Action::Kind kind, int rule, size_t index) const;

  const Policy& policy_;
  const Snapshot& snapshot_;
  const int64_t now_ns_;
  std::vector<Generation> gens_;
  std::vector<int> gen_of_;           // generation index per file, -1 outside series
  std::vector<uint8_t> gen_matches_;  // [generation * rules + rule]
  std::vector<Decision> decisions_;
  std::vector<bool> thinned_;
  std::vector<std::string> rule_descriptions_;  // computed once: plans can hold millions
  std::vector<std::vector<Action>> by_rule_;    // the plan, grouped by rule
};

Action Evaluator::Base(Action::Kind kind, int rule, size_t index) const {
  Action action;
  action.kind = kind;
  action.rule = policy_.rules[rule].name;
  action.path = snapshot_[index].path;
  action.ino = snapshot_[index].ino;
  action.bytes = snapshot_[index].is_dir ? 0 : snapshot_[index].size;
  action.reason = rule_descriptions_[rule];
  if (gen_of_[index] >= 0) {
    const Generation& gen = gens_[gen_of_[index]];
    action.series = policy_.series[gen.series].name;
    action.generation = gen.number;
  }
  return action;
}

void Evaluator::DecideFile(size_t index) {
  const FileFacts& file = snapshot_[index];
  const int g = gen_of_[index];
  Decision& d = decisions_[index];
  const size_t rule_count = policy_.rules.size();
  for (size_t r = 0; r < rule_count && d.claimed != kAllBits; ++r) {
    const Rule& rule = policy_.rules[r];
    bool match = rule.judges_generations()
                     ? g >= 0 && gen_matches_[static_cast<size_t>(g) * rule_count + r]
                     : RuleMatchesFile(rule, file, g >= 0, now_ns_);
    if (!match) continue;
    const int rule_index = static_cast<int>(r);
    switch (rule.action) {
      case Rule::Action::kExclude:
        if (!(d.claimed & kThinBit)) d.retained_by = rule_index;
        d.claimed = kAllBits;
        break;
      case Rule::Action::kMigrate:
        if (!(d.claimed & kMigrateBit)) {
          d.claimed |= kMigrateBit, d.migrate_rule = rule_index, d.to = *rule.to;
        }
        break;
      case Rule::Action::kThin:
        if (!(d.claimed & kThinBit)) d.claimed |= kThinBit, d.thin_rule = rule_index;
        break;
      case Rule::Action::kPin: {
        int64_t until = PinUntil(
            rule, g >= 0 && rule.judges_generations() ? gens_[g].last_write_ns : file.mtime_ns);
        if ((until != 0 && until <= now_ns_) || (d.claimed & kPinBit)) break;  // ended: no pin
        d.claimed |= kPinBit, d.pin_rule = rule_index, d.pin_until_ns = until;
        // A pin in effect retains: later rules neither thin nor move it.
        if (!(d.claimed & kThinBit)) d.claimed |= kThinBit, d.retained_by = rule_index;
        if (rule.to && !(d.claimed & kMigrateBit)) {
          d.claimed |= kMigrateBit, d.migrate_rule = rule_index, d.to = *rule.to;
        }
        break;
      }
    }
  }
}

void Evaluator::PlanGenerationThin(size_t g) {
  const Generation& gen = gens_[g];
  int rule = -1;
  for (size_t member : gen.members) {
    int r = decisions_[member].thin_rule;
    if (r >= 0 && policy_.rules[r].judges_generations() && (rule < 0 || r < rule)) rule = r;
  }
  if (rule < 0) return;
  std::string why = GenerationSafety(gen, policy_, snapshot_, now_ns_);
  for (size_t member : gen.members) {
    int blocker = decisions_[member].retained_by;
    if (why.empty() && blocker >= 0) {
      why = snapshot_[member].path + " is retained by rule \"" + policy_.rules[blocker].name + "\"";
    }
  }
  for (size_t root : gen.roots) {
    Action action = Base(why.empty() ? Action::Kind::kThin : Action::Kind::kRefuse, rule, root);
    const std::string& root_path = snapshot_[root].path;
    action.bytes = 0;
    for (size_t member : gen.members) {
      const FileFacts& file = snapshot_[member];
      bool below =
          file.path == root_path || (file.path.size() > root_path.size() &&
                                     file.path.compare(0, root_path.size(), root_path) == 0 &&
                                     file.path[root_path.size()] == '/');
      if (below && !file.is_dir && !file.is_symlink) action.bytes += file.size;
    }
    if (!why.empty()) action.reason = "thin refused: " + why;
    Add(rule, std::move(action));
  }
  if (why.empty()) {
    for (size_t member : gen.members) thinned_[member] = true;
  }
}

// A generation that newer ones of other owners would have superseded, had
// the series spanned owners: the thin the bound prevented is refused, so the
// audit journal says why the generation stays.
void Evaluator::PlanOwnershipRefusal(size_t g) {
  const Generation& gen = gens_[g];
  if (gen.newer_complete_of_others == 0) return;
  for (size_t member : gen.members) {
    const Decision& d = decisions_[member];
    if (d.thin_rule >= 0 || d.retained_by >= 0 || thinned_[member]) return;  // decided already
  }
  Generation spanned = gen;
  spanned.newer_complete += gen.newer_complete_of_others;
  spanned.newest_complete = false;
  if (!GenerationSafety(spanned, policy_, snapshot_, now_ns_).empty()) return;
  for (size_t r = 0; r < policy_.rules.size(); ++r) {
    const Rule& rule = policy_.rules[r];
    if (!rule.judges_generations() || rule.action == Rule::Action::kMigrate) continue;
    if (!RuleMatchesGeneration(rule, spanned, snapshot_, now_ns_)) continue;
    if (rule.action == Rule::Action::kPin) {
      int64_t until = PinUntil(rule, gen.last_write_ns);
      if (until != 0 && until <= now_ns_) continue;  // ended: does not retain
    }
    if (rule.action != Rule::Action::kThin) return;  // retained by the rules anyway
    const std::string label = policy_.series[gen.series].name + " generation " +
                              std::to_string(gen.number) + " in " + gen.instance_dir;
    for (size_t root : gen.roots) {
      Action action = Base(Action::Kind::kRefuse, static_cast<int>(r), root);
      action.reason = "thin refused: " + label + " is owned by uid " + std::to_string(gen.owner) +
                      " and the " + std::to_string(gen.newer_complete_of_others) +
                      " newer complete generation(s) that would supersede it by uid " +
                      std::to_string(gen.newer_owner) +
                      " (and perhaps others), who could not remove it (series \"" +
                      policy_.series[gen.series].name + "\" does not span owners)";
      Add(static_cast<int>(r), std::move(action));
    }
    return;
  }
}

void Evaluator::PlanFileThin(size_t index) {
  const FileFacts& file = snapshot_[index];
  int rule = decisions_[index].thin_rule;
  if (rule < 0 || thinned_[index] || file.is_dir || policy_.rules[rule].judges_generations())
    return;
  std::string why = FileSafety(file, now_ns_);
  if (why.empty() && gen_of_[index] >= 0) {
    why = GenerationSafety(gens_[gen_of_[index]], policy_, snapshot_, now_ns_);
  }
  Action action = Base(why.empty() ? Action::Kind::kThin : Action::Kind::kRefuse, rule, index);
  if (!why.empty())
    action.reason = "thin refused: " + why;
  else
    thinned_[index] = true;
  Add(rule, std::move(action));
}

Plan Evaluator::Run() {
  for (const Rule& rule : policy_.rules) rule_descriptions_.push_back(DescribeRule(rule, policy_));
  gens_ = RecognizeGenerations(policy_, snapshot_, now_ns_);
  gen_of_.assign(snapshot_.size(), -1);
  for (size_t g = 0; g < gens_.size(); ++g) {
    for (size_t member : gens_[g].members) gen_of_[member] = static_cast<int>(g);
  }
  const size_t rule_count = policy_.rules.size();
  gen_matches_.assign(gens_.size() * rule_count, 0);
  for (size_t g = 0; g < gens_.size(); ++g) {
    for (size_t r = 0; r < rule_count; ++r) {
      const Rule& rule = policy_.rules[r];
      if (rule.judges_generations()) {
        gen_matches_[g * rule_count + r] =
            RuleMatchesGeneration(rule, gens_[g], snapshot_, now_ns_);
      }
    }
  }
  by_rule_.resize(rule_count);
  decisions_.assign(snapshot_.size(), Decision{});
  thinned_.assign(snapshot_.size(), false);
  for (size_t i = 0; i < snapshot_.size(); ++i) DecideFile(i);
  for (size_t g = 0; g < gens_.size(); ++g) PlanGenerationThin(g);
  for (size_t g = 0; g < gens_.size(); ++g) PlanOwnershipRefusal(g);
  for (size_t i = 0; i < snapshot_.size(); ++i) PlanFileThin(i);

  for (size_t i = 0; i < snapshot_.size(); ++i) {
    const FileFacts& file = snapshot_[i];
    const Decision& d = decisions_[i];
    if (thinned_[i]) continue;
    bool has_data = !file.is_dir && !file.is_symlink;
    const bool manual = ManuallyHeld(file, now_ns_);
    const bool sticky = manual || file.placed;
    if (d.migrate_rule >= 0 && has_data && file.tier != d.to) {
      Action action =
          Base(sticky ? Action::Kind::kRefuse : Action::Kind::kMigrate, d.migrate_rule, i);
      action.to = d.to;
      if (sticky)
        action.reason =
            "migrate refused: " + (manual ? ManualPinText(file) : ManualPlaceText(file));
      Add(d.migrate_rule, std::move(action));
    }
    if (d.pin_rule >= 0) {
      const Rule& rule = policy_.rules[d.pin_rule];
      bool covered = Held(file, now_ns_) &&
                     (file.pin_until_ns == 0 ||
                      (d.pin_until_ns != 0 && file.pin_until_ns >= d.pin_until_ns)) &&
                     (file.immutable || !rule.immutable);
      if (!covered && manual) {
        Action action = Base(Action::Kind::kRefuse, d.pin_rule, i);
        action.reason = "pin refused: " + ManualPinText(file);
        Add(d.pin_rule, std::move(action));
      } else if (!covered) {
        Action action = Base(Action::Kind::kPin, d.pin_rule, i);
        action.to = rule.to;
        action.pin_until_ns = d.pin_until_ns;
        action.immutable = rule.immutable;
        Add(d.pin_rule, std::move(action));
      }
    }
  }
  // Grouped by rule in file order, generations in number order, files in
  // snapshot order: deterministic, and cheap for plans of a million actions.
  size_t total = 0;
  for (const std::vector<Action>& group : by_rule_) total += group.size();
  Plan plan;
  plan.reserve(total);
  auto by_generation = [](const Action& a, const Action& b) {
    if (a.series != b.series) return a.series < b.series;
    return a.generation < b.generation;
  };
  for (std::vector<Action>& group : by_rule_) {
    if (!std::is_sorted(group.begin(), group.end(), by_generation)) {
      std::stable_sort(group.begin(), group.end(), by_generation);
    }
    std::move(group.begin(), group.end(), std::back_inserter(plan));
    group = {};  // release as we go: plans can be large
  }
  return plan;
}

}  // namespace

Plan Evaluate(const Policy& policy, const Snapshot& snapshot, int64_t now_ns) {
  return Evaluator(policy, snapshot, now_ns).Run();
}

}  // namespace tierfs

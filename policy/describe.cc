// DescribePlan: the dry-run listing an admin reads before trusting a policy.
#include <map>

#include "policy/policy.h"
#include "policy/units.h"

namespace tierfs {

const char* ActionKindName(Action::Kind kind) {
  switch (kind) {
    case Action::Kind::kMigrate:
      return "migrate";
    case Action::Kind::kThin:
      return "thin";
    case Action::Kind::kPin:
      return "pin";
    case Action::Kind::kRefuse:
      return "refuse";
  }
  return "?";
}

std::string DescribePlan(const Plan& plan) {
  if (plan.empty()) return "nothing to do\n";
  std::string out;
  size_t begin = 0;
  while (begin < plan.size()) {
    size_t end = begin;
    std::map<std::string, std::pair<size_t, uint64_t>> totals;  // kind -> count, bytes
    while (end < plan.size() && plan[end].rule == plan[begin].rule) {
      auto& total = totals[ActionKindName(plan[end].kind)];
      ++total.first;
      total.second += plan[end].bytes;
      ++end;
    }
    out += "rule \"" + plan[begin].rule + "\":";
    for (const auto& [kind, total] : totals) {
      out +=
          " " + std::to_string(total.first) + " " + kind + " (" + FormatBytes(total.second) + ")";
    }
    for (size_t i = begin; i < end; ++i) {
      if (plan[i].kind != Action::Kind::kRefuse) {
        out += "\n  because " + plan[i].reason;
        break;
      }
    }
    out += "\n";
    for (size_t i = begin; i < end; ++i) {
      const Action& action = plan[i];
      out += "  " + std::string(ActionKindName(action.kind)) + " " + action.path;
      if (action.kind == Action::Kind::kMigrate && action.to) {
        out += std::string(" -> ") + TierName(*action.to);
      }
      if (action.kind == Action::Kind::kPin) {
        if (action.to) out += std::string(" on ") + TierName(*action.to);
        out +=
            action.pin_until_ns == 0 ? " indefinitely" : " until " + FormatUtc(action.pin_until_ns);
        if (action.immutable) out += ", immutable";
      }
      if (action.generation)
        out += " [" + action.series + " #" + std::to_string(*action.generation) + "]";
      if (action.bytes > 0) out += " " + FormatBytes(action.bytes);
      if (action.kind == Action::Kind::kRefuse) out += ": " + action.reason;
      out += "\n";
    }
    begin = end;
  }
  return out;
}

}  // namespace tierfs

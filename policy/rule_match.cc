// Rule conditions; see rule_match.h.
#include "policy/rule_match.h"

#include <algorithm>

#include "policy/units.h"

namespace tierfs {

namespace {

bool MatchesCommon(const Rule& rule, uint64_t size, int64_t last_write_ns, int64_t last_access_ns,
                   uint32_t uid, int64_t now_ns) {
  if (rule.min_size && size < *rule.min_size) return false;
  if (rule.max_size && size > *rule.max_size) return false;
  if (rule.older_than_ns && now_ns - last_write_ns < *rule.older_than_ns) return false;
  if (rule.idle_for_ns && now_ns - std::max(last_access_ns, last_write_ns) < *rule.idle_for_ns) {
    return false;
  }
  if (!rule.owner_name.empty() && !rule.owner_uid) return false;  // unresolved: matches nothing
  if (rule.owner_uid && uid != *rule.owner_uid) return false;
  return true;
}

}  // namespace

bool RuleMatchesFile(const Rule& rule, const FileFacts& file, bool in_series, int64_t now_ns) {
  if (rule.in_series && *rule.in_series != in_series) return false;
  if (rule.path && !rule.path->Match(file.path, nullptr)) return false;
  return MatchesCommon(rule, file.is_dir ? 0 : file.size, file.mtime_ns, file.atime_ns, file.uid,
                       now_ns);
}

bool RuleMatchesGeneration(const Rule& rule, const Generation& gen, const Snapshot& snapshot,
                           int64_t now_ns) {
  if (!rule.any_series &&
      std::find(rule.series.begin(), rule.series.end(), gen.series) == rule.series.end()) {
    return false;
  }
  if (rule.in_series == false) return false;
  if (rule.path) {
    bool any_root = std::any_of(gen.roots.begin(), gen.roots.end(), [&](size_t root) {
      return rule.path->Match(snapshot[root].path, nullptr);
    });
    if (!any_root) return false;
  }
  if (!MatchesCommon(rule, gen.bytes, gen.last_write_ns, gen.last_access_ns,
                     snapshot[gen.roots.front()].uid, now_ns)) {
    return false;
  }
  // keep_last and every_kth choose complete generations to keep. An older
  // incomplete one does match older_than_newest, so that a thin rule meets
  // the safety check and the refusal reaches the audit journal.
  if ((rule.keep_last || rule.every_kth) && !gen.complete) return false;
  if (rule.keep_last && gen.newer_complete >= *rule.keep_last) return false;
  if (rule.older_than_newest && gen.newer_complete < *rule.older_than_newest) return false;
  if (rule.every_kth) {
    // By number, not by position: thinning other generations must not
    // shift which ones are "every K-th".
    uint64_t index = gen.save_interval == 0 ? 0 : gen.number / gen.save_interval;
    if (index % *rule.every_kth != 0) return false;
  }
  return true;
}

int64_t PinUntil(const Rule& rule, int64_t last_write_ns) {
  if (rule.pin_until_ns) return *rule.pin_until_ns;
  // A far-future end saturates: a wrapped (negative) end would pin nothing.
  if (rule.pin_for_ns) return SaturatingAdd(last_write_ns, *rule.pin_for_ns);
  return 0;
}

std::string DescribeRule(const Rule& rule, const Policy& policy) {
  std::string out;
  auto add = [&out](const std::string& part) { out += (out.empty() ? "" : " ") + part; };
  if (rule.any_series) add("series=*");
  if (!rule.series.empty()) {
    std::string names;
    for (size_t index : rule.series)
      names += (names.empty() ? "" : ",") + policy.series[index].name;
    add("series=" + names);
  }
  if (rule.in_series) add(*rule.in_series ? "in_series" : "not in a series");
  if (rule.path) add("path=" + rule.path->text());
  if (rule.min_size) add("min_size=" + FormatBytes(*rule.min_size));
  if (rule.max_size) add("max_size=" + FormatBytes(*rule.max_size));
  if (rule.older_than_ns) add("older_than=" + FormatDuration(*rule.older_than_ns));
  if (rule.idle_for_ns) add("idle_for=" + FormatDuration(*rule.idle_for_ns));
  if (rule.owner_uid)
    add("owner=" + std::to_string(*rule.owner_uid));
  else if (!rule.owner_name.empty())
    add("owner=" + rule.owner_name);
  if (rule.keep_last) add("keep_last=" + std::to_string(*rule.keep_last));
  if (rule.every_kth) add("every_kth=" + std::to_string(*rule.every_kth));
  if (rule.older_than_newest) add("older_than_newest=" + std::to_string(*rule.older_than_newest));
  if (out.empty()) out = "every file";
  switch (rule.action) {
    case Rule::Action::kMigrate:
      return out + " -> migrate to " + TierName(*rule.to);
    case Rule::Action::kThin:
      return out + " -> thin";
    case Rule::Action::kExclude:
      return out + " -> exclude";
    case Rule::Action::kPin:
      out += " -> pin";
      if (rule.to) out += std::string(" on ") + TierName(*rule.to);
      if (rule.pin_for_ns) out += " for " + FormatDuration(*rule.pin_for_ns);
      if (rule.immutable) out += " immutable";
      return out;
  }
  return out;
}

}  // namespace tierfs

// Whether a rule's conditions hold for a file or a generation, and a short
// description of a rule for plans and refusals. Internal to policy/.
#pragma once

#include <string>

#include "policy/policy.h"

namespace tierfs {

// For rules that judge files (Rule::judges_generations() false).
bool RuleMatchesFile(const Rule& rule, const FileFacts& file, bool in_series, int64_t now_ns);
// For rules that judge generations as a unit.
bool RuleMatchesGeneration(const Rule& rule, const Generation& gen, const Snapshot& snapshot,
                           int64_t now_ns);
// The end of a pin this rule sets: 0 = indefinitely; measured from `last_write_ns`
// for "for". A pin that already ended (<= now) is no pin at all.
int64_t PinUntil(const Rule& rule, int64_t last_write_ns);
// "series=hf keep_last=3 -> migrate to ssd".
std::string DescribeRule(const Rule& rule, const Policy& policy);

}  // namespace tierfs

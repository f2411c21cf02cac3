// The [[series]] and [[rule]] section parsers. Internal to policy/.
#pragma once

#include <vector>

#include "policy/policy.h"
#include "policy/toml_context.h"

namespace tierfs {

// Parses one [[series]] table and appends it to *series.
Status ParseSeries(const TomlContext& context, const toml::value& table,
                   std::vector<Series>* series);
// Parses one [[rule]] table (series must already be parsed) and appends it.
Status ParseRule(const TomlContext& context, const toml::value& table,
                 const std::vector<Series>& series, std::vector<Rule>* rules);
// A size: a string like "10GiB" or an integer number of bytes.
Status GetSize(const TomlContext& context, std::string_view key, const toml::value& v,
               uint64_t* bytes);

}  // namespace tierfs

// [[rule]]: conditions, generation selectors and an action. Rules that could
// never match, or whose arguments do not fit their action, are refused here
// so an admin learns at --check-policy time, not after a month of no effect.
#include <algorithm>

#include "policy/parse_sections.h"
#include "policy/units.h"

namespace tierfs {

namespace {

Status ParseAction(const TomlContext& context, const toml::value& v, Rule::Action* action) {
  std::string text;
  Status st = context.GetString("action", v, &text);
  if (!st.ok()) return st;
  if (text == "migrate")
    *action = Rule::Action::kMigrate;
  else if (text == "thin")
    *action = Rule::Action::kThin;
  else if (text == "pin")
    *action = Rule::Action::kPin;
  else if (text == "exclude")
    *action = Rule::Action::kExclude;
  else {
    return context.At(
        v, "action must be \"migrate\", \"thin\", \"pin\" or \"exclude\", not \"" + text + "\"");
  }
  return Status::Ok();
}

Status ParseTier(const TomlContext& context, const toml::value& v, TierId* tier) {
  std::string text;
  Status st = context.GetString("to", v, &text);
  if (!st.ok()) return st;
  if (text == "ssd")
    *tier = TierId::kSsd;
  else if (text == "hdd")
    *tier = TierId::kHdd;
  else
    return context.At(v, "unknown tier \"" + text + "\" (tiers are \"ssd\" and \"hdd\")");
  return Status::Ok();
}

Status GetDuration(const TomlContext& context, std::string_view key, const toml::value& v,
                   int64_t* ns) {
  if (!v.is_string()) {
    return context.At(v, std::string(key) +
                             " must be a duration string like \"90d\" or "
                             "\"1h30m\", not " +
                             TomlTypeName(v));
  }
  std::string why;
  if (!ParseDuration(v.as_string().str, ns, &why))
    return context.At(v, std::string(key) + ": " + why);
  return Status::Ok();
}

Status GetDate(const TomlContext& context, const toml::value& v, int64_t* ns) {
  if (v.is_offset_datetime()) {
    const toml::offset_datetime& dt = v.as_offset_datetime();
    int64_t seconds = DaysFromCivil(dt.date.year, dt.date.month + 1u, dt.date.day) * 86400 +
                      dt.time.hour * 3600 + dt.time.minute * 60 + dt.time.second -
                      (dt.offset.hour * 3600 + dt.offset.minute * 60);
    int64_t fraction =
        dt.time.millisecond * 1'000'000ll + dt.time.microsecond * 1'000ll + dt.time.nanosecond;
    std::string why;
    if (!DateToNs(seconds, fraction, toml::format(v), ns, &why))
      return context.At(v, "until: " + why);
    return Status::Ok();
  }
  if (v.is_local_date()) {
    const toml::local_date& date = v.as_local_date();
    std::string why;
    if (!DateToNs(DaysFromCivil(date.year, date.month + 1u, date.day) * 86400, 0, toml::format(v),
                  ns, &why)) {
      return context.At(v, "until: " + why);
    }
    return Status::Ok();
  }
  if (v.is_local_datetime()) {
    return context.At(v,
                      "until has no UTC offset (append Z or e.g. +02:00): the daemon's time "
                      "zone need not be yours");
  }
  if (!v.is_string()) {
    return context.At(v, "until must be a date like 2027-01-01T00:00:00Z, not " + TomlTypeName(v));
  }
  std::string why;
  if (!ParseRfc3339(v.as_string().str, ns, &why)) return context.At(v, "until: " + why);
  return Status::Ok();
}

Status GetCount(const TomlContext& context, std::string_view key, const toml::value& v, int64_t min,
                std::optional<uint32_t>* out) {
  int64_t value = 0;
  if (v.is_integer() && v.as_integer() < min) {
    return context.At(v, std::string(key) + " = " + std::to_string(v.as_integer()) +
                             " selects nothing; the smallest useful value is " +
                             std::to_string(min));
  }
  Status st = context.GetInteger(key, v, min, 1'000'000, &value);
  if (st.ok()) *out = static_cast<uint32_t>(value);
  return st;
}

Status ParseSeriesCondition(const TomlContext& context, const toml::value& v,
                            const std::vector<Series>& all_series, Rule* rule) {
  std::vector<std::pair<std::string, const toml::value*>> names;
  Status st = context.GetStrings("series", v, &names);
  if (!st.ok()) return st;
  for (const auto& [name, where] : names) {
    if (name == "*") {
      if (names.size() > 1) return context.At(*where, "series = \"*\" must stand alone");
      rule->any_series = true;
      continue;
    }
    // An init capture: clang before 16 (make thread-check) cannot capture a
    // structured binding.
    auto it = std::find_if(all_series.begin(), all_series.end(),
                           [&name = name](const Series& s) { return s.name == name; });
    if (it == all_series.end()) {
      std::string known;
      for (const Series& s : all_series) known += (known.empty() ? "" : ", ") + s.name;
      return context.At(*where, "rule \"" + rule->name + "\" can never match: no series named \"" +
                                    name + "\" (defined: " + (known.empty() ? "none" : known) +
                                    "; [[series]] must come before the rules that use them)");
    }
    rule->series.push_back(static_cast<size_t>(it - all_series.begin()));
  }
  return Status::Ok();
}

// Whether a condition of the rule leaves some file out. A size of 0 or an
// age of 0s holds for every file, so it does not count.
bool Limits(const Rule& rule) {
  return rule.path || rule.any_series || !rule.series.empty() || rule.in_series ||
         (rule.min_size && *rule.min_size > 0) || rule.max_size ||
         (rule.older_than_ns && *rule.older_than_ns > 0) ||
         (rule.idle_for_ns && *rule.idle_for_ns > 0) || rule.owner_uid || !rule.owner_name.empty();
}

// Checks that need the whole rule: required keys, arguments that fit the
// action, and conditions that contradict each other.
Status CheckRule(const TomlContext& context, const toml::value& table, const Rule& rule,
                 const std::vector<Rule>& rules, bool has_action,
                 const std::vector<std::pair<std::string, const toml::value*>>& entries) {
  auto where = [&](std::string_view key) -> const toml::value& {
    for (const auto& [name, value] : entries) {
      if (name == key) return *value;
    }
    return table;
  };
  auto fail = [&](std::string_view key, const std::string& reason) {
    return key.empty() ? context.At(table, reason) : context.AtKey(where(key), key, reason);
  };
  if (rule.name.empty()) return fail("", "[[rule]] needs a name");
  for (const Rule& other : rules) {
    if (other.name == rule.name) {
      return fail("name", "rule name \"" + rule.name + "\" is used twice (first on line " +
                              std::to_string(other.line) + ")");
    }
  }
  const std::string label = "rule \"" + rule.name + "\": ";
  if (!has_action)
    return fail("", label +
                        "needs action = \"migrate\", \"thin\", \"pin\" or "
                        "\"exclude\"");
  bool migrate = rule.action == Rule::Action::kMigrate, pin = rule.action == Rule::Action::kPin;
  if (migrate && !rule.to) return fail("action", label + "migrate needs to = \"ssd\" or \"hdd\"");
  if (rule.to && !migrate && !pin) return fail("to", label + "to only applies to migrate and pin");
  if (!pin && (rule.pin_for_ns || rule.pin_until_ns)) {
    return fail(rule.pin_for_ns ? "for" : "until", label + "for/until only apply to pin");
  }
  if (!pin && rule.immutable) return fail("immutable", label + "immutable only applies to pin");
  if (rule.pin_for_ns && rule.pin_until_ns) {
    return fail("until", label + "give either for or until, not both");
  }
  if (rule.min_size && rule.max_size && *rule.min_size > *rule.max_size) {
    return fail("max_size", label + "can never match: min_size is larger than max_size");
  }
  bool selects = rule.keep_last || rule.every_kth || rule.older_than_newest;
  if (selects && !rule.any_series && rule.series.empty()) {
    return fail(rule.keep_last   ? "keep_last"
                : rule.every_kth ? "every_kth"
                                 : "older_than_newest",
                label + "generation selectors need series = \"<name>\" (or \"*\" for any series)");
  }
  if (rule.in_series == false && (rule.any_series || !rule.series.empty())) {
    return fail("in_series", label + "can never match: in_series = false with a series");
  }
  if (rule.keep_last && rule.older_than_newest && *rule.older_than_newest >= *rule.keep_last) {
    return fail("older_than_newest", label + "can never match: the newest " +
                                         std::to_string(*rule.keep_last) + " never have " +
                                         std::to_string(*rule.older_than_newest) + " newer ones");
  }
  if (rule.keep_last && rule.action == Rule::Action::kThin) {
    return fail("keep_last", label +
                                 "keep_last names generations to keep; thin them with "
                                 "older_than_newest instead");
  }
  if (rule.action == Rule::Action::kThin && !Limits(rule)) {
    return fail("action", label +
                              "a thin rule without a condition deletes every file of the mount; "
                              "limit it with path, series, in_series, min_size, max_size, "
                              "older_than, idle_for or owner (to thin everything on purpose, "
                              "write path = \"**\")");
  }
  return Status::Ok();
}

}  // namespace

Status ParseRule(const TomlContext& context, const toml::value& table,
                 const std::vector<Series>& series, std::vector<Rule>* rules) {
  Status st =
      context.CheckKeys(table, "[[rule]]",
                        {"name", "action", "path", "series", "in_series", "min_size", "max_size",
                         "older_than", "idle_for", "owner", "keep_last", "every_kth",
                         "older_than_newest", "to", "for", "until", "immutable"});
  if (!st.ok()) return st;
  Rule rule;
  rule.line = table.location().line();
  bool has_action = false;
  auto entries = TomlContext::Entries(table);
  // The name first, so every later message can say which rule.
  for (const auto& [key, value] : entries) {
    if (key == "name" && !(st = context.GetString(key, *value, &rule.name)).ok()) return st;
  }
  for (const auto& [key, value] : entries) {
    const toml::value& v = *value;
    if (key == "action") {
      st = ParseAction(context, v, &rule.action);
      has_action = true;
    } else if (key == "path") {
      std::string text;
      PathPattern pattern;
      if ((st = context.GetString(key, v, &text)).ok()) {
        st = PathPattern::Compile(text, PathPattern::GenRule::kForbidden, &pattern);
        if (!st.ok())
          st = context.At(v, st.message());
        else
          rule.path = std::move(pattern);
      }
    } else if (key == "series") {
      st = ParseSeriesCondition(context, v, series, &rule);
    } else if (key == "in_series") {
      bool flag = false;
      if ((st = context.GetBool(key, v, &flag)).ok()) rule.in_series = flag;
    } else if (key == "min_size" || key == "max_size") {
      uint64_t bytes = 0;
      if ((st = GetSize(context, key, v, &bytes)).ok()) {
        (key == "min_size" ? rule.min_size : rule.max_size) = bytes;
      }
    } else if (key == "older_than" || key == "idle_for") {
      int64_t ns = 0;
      if ((st = GetDuration(context, key, v, &ns)).ok()) {
        (key == "older_than" ? rule.older_than_ns : rule.idle_for_ns) = ns;
      }
    } else if (key == "owner") {
      int64_t uid = 0;
      if (v.is_string() && !v.as_string().str.empty()) {
        rule.owner_name = v.as_string().str;
      } else if ((st = context.GetInteger(key, v, 0, UINT32_MAX - 1, &uid)).ok()) {
        rule.owner_uid = static_cast<uint32_t>(uid);
      }
    } else if (key == "keep_last" || key == "every_kth") {
      st = GetCount(context, key, v, 1, key == "keep_last" ? &rule.keep_last : &rule.every_kth);
    } else if (key == "older_than_newest") {
      // 0 would select every generation, the newest included: what series
      // alone says, and in a thin rule a way to write "thin them all".
      if (v.is_integer() && v.as_integer() == 0) {
        st = context.At(v,
                        "older_than_newest = 0 selects every generation, the newest too, as "
                        "series alone does; the smallest useful value is 1 (older_than_newest = "
                        "K selects generations with at least K newer complete ones)");
      } else {
        st = GetCount(context, key, v, 1, &rule.older_than_newest);
      }
    } else if (key == "to") {
      TierId tier = TierId::kSsd;
      if ((st = ParseTier(context, v, &tier)).ok()) rule.to = tier;
    } else if (key == "for") {
      int64_t ns = 0;
      if ((st = GetDuration(context, key, v, &ns)).ok()) {
        if (ns <= 0) st = context.At(v, "for must be longer than 0s");
        rule.pin_for_ns = ns;
      }
    } else if (key == "until") {
      int64_t ns = 0;
      if ((st = GetDate(context, v, &ns)).ok()) rule.pin_until_ns = ns;
    } else if (key == "immutable") {
      st = context.GetBool(key, v, &rule.immutable);
    }
    if (!st.ok()) return st;
  }
  if (!(st = CheckRule(context, table, rule, *rules, has_action, entries)).ok()) return st;
  rules->push_back(std::move(rule));
  return Status::Ok();
}

}  // namespace tierfs

// Located errors for the policy parser; see toml_context.h.
#include "policy/toml_context.h"

#include <algorithm>
#include <cerrno>

namespace tierfs {

namespace {

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (end == text.size()) break;
    pos = end + 1;
  }
  return lines;
}

// Edit distance, to suggest "older_than" for "older_then".
size_t Distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// One "N | text" excerpt of a toml11 message and the marker line under it.
struct Excerpt {
  uint32_t line = 0;
  std::string_view text;
  uint32_t marker_column = 0;  // 1-based within text
  std::string_view comment;
};

std::vector<Excerpt> ParseExcerpts(std::string_view what) {
  std::vector<Excerpt> excerpts;
  std::vector<std::string_view> lines = SplitLines(what);
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    std::string_view line = lines[i];
    size_t bar = line.find(" | ");
    if (bar == std::string_view::npos) continue;
    std::string_view number = line.substr(0, bar);
    while (!number.empty() && number.front() == ' ') number.remove_prefix(1);
    if (number.empty() || number.size() > 9 ||
        !std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    std::string_view marker = lines[i + 1];
    if (marker.size() < bar + 3 || marker.substr(bar, 3) != " | ") continue;
    std::string_view marks = marker.substr(bar + 3);
    size_t first = marks.find_first_of("^~");
    if (first == std::string_view::npos) continue;
    Excerpt excerpt;
    excerpt.line = static_cast<uint32_t>(std::stoul(std::string(number)));
    excerpt.text = line.substr(bar + 3);
    excerpt.marker_column = static_cast<uint32_t>(first + 1);
    size_t comment = marks.find_first_not_of("^~-", first);
    if (comment != std::string_view::npos) {
      excerpt.comment = marks.substr(comment);
      while (!excerpt.comment.empty() && excerpt.comment.front() == ' ') {
        excerpt.comment.remove_prefix(1);
      }
    }
    excerpts.push_back(excerpt);
  }
  return excerpts;
}

// "[error] toml::parse_table: invalid line format" -> "invalid line format".
std::string Headline(std::string_view what) {
  std::string_view first = what.substr(0, what.find('\n'));
  if (first.substr(0, 8) == "[error] ") first.remove_prefix(8);
  if (first.substr(0, 6) == "toml::") {
    size_t colon = first.find(": ");
    if (colon != std::string_view::npos) first.remove_prefix(colon + 2);
  }
  while (!first.empty() && (first.back() == ' ' || first.back() == '.')) first.remove_suffix(1);
  return first.empty() ? "TOML syntax error" : std::string(first);
}

}  // namespace

std::string TomlTypeName(const toml::value& v) {
  switch (v.type()) {
    case toml::value_t::boolean:
      return "a boolean";
    case toml::value_t::integer:
      return "an integer";
    case toml::value_t::floating:
      return "a float";
    case toml::value_t::string:
      return "a string";
    case toml::value_t::offset_datetime:
    case toml::value_t::local_datetime:
    case toml::value_t::local_date:
    case toml::value_t::local_time:
      return "a date/time";
    case toml::value_t::array:
      return "an array";
    case toml::value_t::table:
      return "a table";
    default:
      return "nothing";
  }
}

Status TomlContext::AtPosition(uint32_t line, uint32_t column, const std::string& reason) const {
  return Status::Error(EINVAL, file_name_ + ":" + std::to_string(std::max<uint32_t>(line, 1)) +
                                   ":" + std::to_string(std::max<uint32_t>(column, 1)) + ": " +
                                   reason);
}

Status TomlContext::At(const toml::value& v, const std::string& reason) const {
  toml::source_location location = v.location();
  return AtPosition(location.line(), location.column(), reason);
}

Status TomlContext::AtKey(const toml::value& v, std::string_view key,
                          const std::string& reason) const {
  toml::source_location location = v.location();
  const std::string& line = location.line_str();
  size_t value_start = location.column() > 0 ? location.column() - 1 : 0;
  size_t found = line.rfind(key, std::min(value_start, line.size()));
  if (key.empty() || found == std::string::npos) found = line.find(key);
  if (key.empty() || found == std::string::npos) return At(v, reason);
  return AtPosition(location.line(), static_cast<uint32_t>(found + 1), reason);
}

std::vector<std::pair<std::string, const toml::value*>> TomlContext::Entries(
    const toml::value& table) {
  std::vector<std::pair<std::string, const toml::value*>> entries;
  for (const auto& [key, value] : table.as_table()) entries.emplace_back(key, &value);
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    toml::source_location la = a.second->location(), lb = b.second->location();
    if (la.line() != lb.line()) return la.line() < lb.line();
    if (la.column() != lb.column()) return la.column() < lb.column();
    return a.first < b.first;
  });
  return entries;
}

Status TomlContext::CheckKeys(const toml::value& table, std::string_view where,
                              std::initializer_list<std::string_view> allowed) const {
  for (const auto& [key, value] : Entries(table)) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string reason = "unknown key \"" + key + "\" in " + std::string(where);
    std::string_view best;
    size_t best_distance = 3;
    for (std::string_view candidate : allowed) {
      size_t distance = Distance(key, candidate);
      if (distance < best_distance) best = candidate, best_distance = distance;
    }
    if (!best.empty()) reason += " (did you mean \"" + std::string(best) + "\"?)";
    return AtKey(*value, key, reason);
  }
  return Status::Ok();
}

Status TomlContext::GetString(std::string_view key, const toml::value& v, std::string* out) const {
  if (!v.is_string()) {
    return At(v, std::string(key) + " must be a string, not " + TomlTypeName(v));
  }
  *out = v.as_string().str;
  return Status::Ok();
}

Status TomlContext::GetStrings(std::string_view key, const toml::value& v,
                               std::vector<std::pair<std::string, const toml::value*>>* out) const {
  out->clear();
  if (v.is_string()) {
    out->emplace_back(v.as_string().str, &v);
    return Status::Ok();
  }
  if (!v.is_array()) {
    return At(
        v, std::string(key) + " must be a string or an array of strings, not " + TomlTypeName(v));
  }
  for (const toml::value& item : v.as_array()) {
    if (!item.is_string()) {
      return At(item, std::string(key) + " must hold strings, not " + TomlTypeName(item));
    }
    out->emplace_back(item.as_string().str, &item);
  }
  if (out->empty()) return At(v, std::string(key) + " must not be empty");
  return Status::Ok();
}

Status TomlContext::GetBool(std::string_view key, const toml::value& v, bool* out) const {
  if (!v.is_boolean()) {
    return At(v, std::string(key) + " must be true or false, not " + TomlTypeName(v));
  }
  *out = v.as_boolean();
  return Status::Ok();
}

Status TomlContext::GetInteger(std::string_view key, const toml::value& v, int64_t min, int64_t max,
                               int64_t* out) const {
  if (!v.is_integer()) {
    return At(v, std::string(key) + " must be an integer, not " + TomlTypeName(v));
  }
  int64_t value = v.as_integer();
  if (value < min || value > max) {
    // toml11 reads a number past 64 bits as the extreme it passed.
    const char* beyond = value == INT64_MAX ? " or more" : value == INT64_MIN ? " or less" : "";
    return At(v, std::string(key) + " must be between " + std::to_string(min) + " and " +
                     std::to_string(max) + ", not " + std::to_string(value) + beyond);
  }
  *out = value;
  return Status::Ok();
}

Status StatusFromTomlError(const TomlContext& context, const std::string& source,
                           const toml::exception& error) {
  std::string_view what = error.what();
  std::string reason = Headline(what);
  std::vector<std::string_view> source_lines = SplitLines(source);
  std::vector<Excerpt> excerpts = ParseExcerpts(what);
  // The last excerpt is where toml11 saw the problem ("defined twice" after
  // "already defined here").
  for (auto it = excerpts.rbegin(); it != excerpts.rend(); ++it) {
    std::string with_comment = reason;
    if (!it->comment.empty()) with_comment += " (" + std::string(it->comment) + ")";
    if (it->line >= 1 && it->line <= source_lines.size() &&
        source_lines[it->line - 1] == it->text) {
      return context.AtPosition(it->line, it->marker_column, with_comment);
    }
    // An excerpt of a re-parsed fragment (toml11 does this for dates): find it.
    if (it->text.size() >= 4) {
      for (size_t i = 0; i < source_lines.size(); ++i) {
        size_t offset = source_lines[i].find(it->text);
        if (offset == std::string_view::npos) continue;
        return context.AtPosition(static_cast<uint32_t>(i + 1),
                                  static_cast<uint32_t>(offset + it->marker_column), with_comment);
      }
    }
  }
  const toml::source_location& location = error.location();
  return context.AtPosition(location.line(), location.column(), reason);
}

}  // namespace tierfs

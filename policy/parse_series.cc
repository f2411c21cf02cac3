// [[series]]: which paths are checkpoint generations and when they are complete.
#include <algorithm>

#include "policy/parse_sections.h"
#include "policy/units.h"

namespace tierfs {

namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

// A file name a signal refers to: a plain name, or "../name" for the
// containing directory. Anything else could escape the checkpoint tree.
bool IsSignalFileName(std::string_view name) {
  if (name.substr(0, 3) == "../") name.remove_prefix(3);
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos;
}

Status ParseSignal(const TomlContext& context, const std::string& text, const toml::value& where,
                   CompletionSignal* signal) {
  size_t colon = text.find(':');
  std::string kind = text.substr(0, colon);
  std::string argument = colon == std::string::npos ? "" : text.substr(colon + 1);
  const std::string usage =
      " (use \"rename\", \"marker:<file>\", \"absent:<file>\", \"pointer:<file>\" or "
      "\"quiet:<duration>\")";
  if (kind == "rename") {
    if (colon != std::string::npos) return context.At(where, "\"rename\" takes no argument");
    signal->kind = CompletionSignal::Kind::kRename;
    return Status::Ok();
  }
  if (kind == "quiet") {
    std::string why;
    if (!ParseDuration(argument, &signal->quiet_ns, &why))
      return context.At(where, "complete: " + why);
    signal->kind = CompletionSignal::Kind::kQuiet;
    return Status::Ok();
  }
  if (kind == "marker" || kind == "metadata") {
    signal->kind = CompletionSignal::Kind::kMarker;
  } else if (kind == "absent") {
    signal->kind = CompletionSignal::Kind::kAbsent;
  } else if (kind == "pointer") {
    signal->kind = CompletionSignal::Kind::kPointer;
  } else {
    return context.At(where, "unknown completeness signal \"" + text + "\"" + usage);
  }
  size_t start = 0;
  while (start <= argument.size()) {
    size_t bar = argument.find('|', start);
    if (bar == std::string::npos) bar = argument.size();
    std::string name = argument.substr(start, bar - start);
    if (!IsSignalFileName(name)) {
      return context.At(where, "complete: \"" + text +
                                   "\" needs a file name (no \"/\" except a "
                                   "leading \"../\")");
    }
    if (signal->kind == CompletionSignal::Kind::kPointer && name.find('/') != std::string::npos) {
      return context.At(where,
                        "complete: a pointer file lives next to the generations; write "
                        "just its name");
    }
    signal->files.push_back(name);
    start = bar + 1;
  }
  if (signal->files.size() > 1 && signal->kind != CompletionSignal::Kind::kMarker) {
    return context.At(where, "complete: only marker: accepts alternatives separated by \"|\"");
  }
  return Status::Ok();
}

Status ParseSeriesKind(const TomlContext& context, const toml::value& v, Series::Kind* kind) {
  std::string text;
  Status st = context.GetString("kind", v, &text);
  if (!st.ok()) return st;
  if (text == "dir")
    *kind = Series::Kind::kDir;
  else if (text == "file")
    *kind = Series::Kind::kFile;
  else if (text == "any")
    *kind = Series::Kind::kAny;
  else
    return context.At(v, "kind must be \"dir\", \"file\" or \"any\", not \"" + text + "\"");
  return Status::Ok();
}

}  // namespace

Status ParseSeries(const TomlContext& context, const toml::value& table,
                   std::vector<Series>* all_series) {
  Status st = context.CheckKeys(
      table, "[[series]]",
      {"name", "pattern", "kind", "complete", "pointers", "exclude_names", "span_owners"});
  if (!st.ok()) return st;
  Series series;
  series.kind = Series::Kind::kAny;
  bool has_name = false, has_pattern = false, has_complete = false;
  std::vector<std::pair<std::string, const toml::value*>> items;
  for (const auto& [key, value] : TomlContext::Entries(table)) {
    if (key == "name") {
      if (!(st = context.GetString(key, *value, &series.name)).ok()) return st;
      if (series.name.empty() || !std::all_of(series.name.begin(), series.name.end(), IsNameChar)) {
        return context.At(*value, "series name must be letters, digits, \"_\", \"-\" or \".\"");
      }
      for (const Series& other : *all_series) {
        if (other.name == series.name) {
          return context.At(*value, "series \"" + series.name + "\" is defined twice");
        }
      }
      has_name = true;
    } else if (key == "pattern") {
      if (!(st = context.GetStrings(key, *value, &items)).ok()) return st;
      for (const auto& [text, where] : items) {
        PathPattern pattern;
        st = PathPattern::Compile(text, PathPattern::GenRule::kRequired, &pattern);
        if (!st.ok()) return context.At(*where, st.message());
        series.patterns.push_back(std::move(pattern));
      }
      has_pattern = true;
    } else if (key == "kind") {
      if (!(st = ParseSeriesKind(context, *value, &series.kind)).ok()) return st;
    } else if (key == "span_owners") {
      if (!(st = context.GetBool(key, *value, &series.span_owners)).ok()) return st;
    } else if (key == "complete") {
      if (!(st = context.GetStrings(key, *value, &items)).ok()) return st;
      for (const auto& [text, where] : items) {
        CompletionSignal signal;
        if (!(st = ParseSignal(context, text, *where, &signal)).ok()) return st;
        bool second_pointer = signal.kind == CompletionSignal::Kind::kPointer &&
                              std::any_of(series.complete.begin(), series.complete.end(),
                                          [](const CompletionSignal& s) {
                                            return s.kind == CompletionSignal::Kind::kPointer;
                                          });
        if (second_pointer) return context.At(*where, "complete: only one pointer: per series");
        series.complete.push_back(std::move(signal));
      }
      has_complete = true;
    } else if (key == "pointers") {
      if (!(st = context.GetStrings(key, *value, &items)).ok()) return st;
      for (const auto& [text, where] : items) {
        if (text.empty() || text.find('/') != std::string::npos || text == "." || text == "..") {
          return context.At(*where, "pointers: \"" + text +
                                        "\" must be a file name next to "
                                        "the generations (no \"/\")");
        }
        series.pointers.push_back(text);
      }
    } else if (key == "exclude_names") {
      if (!(st = context.GetStrings(key, *value, &items)).ok()) return st;
      for (const auto& [text, where] : items) {
        PathPattern pattern;
        st = PathPattern::Compile(text, PathPattern::GenRule::kForbidden, &pattern);
        if (st.ok() && (text.find('/') != std::string::npos || text == "**")) {
          st =
              Status::Error(EINVAL, "exclude_names holds entry names, not paths: \"" + text + "\"");
        }
        if (!st.ok()) return context.At(*where, st.message());
        series.exclude_names.push_back(std::move(pattern));
      }
    }
  }
  if (!has_name) return context.At(table, "[[series]] needs a name");
  if (!has_pattern) return context.At(table, "series \"" + series.name + "\" needs a pattern");
  if (!has_complete) {
    return context.At(table, "series \"" + series.name +
                                 "\" needs complete = ... (when is a generation finished?)");
  }
  all_series->push_back(std::move(series));
  return Status::Ok();
}

}  // namespace tierfs

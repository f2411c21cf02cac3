// ParsePolicy / LoadPolicy: the top level of the policy file, [tiers],
// [throttle], [scrub] and [pins]. toml11 throws; everything is caught here and turned into a
// located Status, so no exception leaves this file.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>

#include "policy/parse_sections.h"
#include "policy/policy.h"
#include "policy/units.h"

namespace tierfs {

namespace {

constexpr size_t kMaxPolicyBytes = 1 << 20;
constexpr int kMaxNesting = 32;

// toml11 parses arrays and inline tables recursively; a hostile or corrupt
// file of a million "[" would overflow the stack. Policies nest two deep.
Status CheckNesting(const TomlContext& context, const std::string& text) {
  int depth = 0;
  uint32_t line = 1, column = 0;
  char quote = 0;
  bool comment = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    ++column;
    if (c == '\n') {
      ++line, column = 0, comment = false;
      if (quote == '\'' || quote == '"') {
        // A single-line string cannot span lines; multi-line ones are rare
        // in policies and their brackets only make this check conservative.
        bool multiline = i >= 3 && text.compare(i - 3, 3, std::string(3, quote)) == 0;
        if (!multiline) quote = 0;
      }
      continue;
    }
    if (comment) continue;
    if (quote) {
      if (c == '\\' && quote == '"')
        ++i, ++column;
      else if (c == quote)
        quote = 0;
      continue;
    }
    if (c == '#')
      comment = true;
    else if (c == '"' || c == '\'')
      quote = c;
    else if (c == '[' || c == '{') {
      if (++depth > kMaxNesting) {
        return context.AtPosition(line, column,
                                  "nesting deeper than " + std::to_string(kMaxNesting) + " levels");
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return Status::Ok();
}

// TOML files are UTF-8. toml11 3.7 aborts on an assertion for some invalid
// sequences (e.g. a 0xFF byte in a literal string), so check first.
Status CheckUtf8(const TomlContext& context, const std::string& text) {
  uint32_t line = 1, column = 1;
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t length = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xE  ? 3
                    : (c >> 3) == 0x1E ? 4
                                       : 0;
    bool valid = length > 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) {
      valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    }
    if (valid && length > 1) {
      uint32_t code = c & (0xFF >> (length + 1));
      for (size_t k = 1; k < length; ++k) code = (code << 6) | (text[i + k] & 0x3F);
      static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
      valid = code >= kSmallest[length] && code <= 0x10FFFF && (code < 0xD800 || code > 0xDFFF);
    }
    if (!valid) return context.AtPosition(line, column, "not UTF-8 (TOML files must be UTF-8)");
    if (c == '\n') ++line, column = 0;
    ++column;
    i += length;
  }
  return Status::Ok();
}

Status GetFraction(const TomlContext& context, std::string_view key, const toml::value& v,
                   double* out) {
  std::string why;
  if (v.is_floating()) {
    *out = v.as_floating();
  } else if (v.is_string()) {
    if (!ParseFraction(v.as_string().str, out, &why))
      return context.At(v, std::string(key) + ": " + why);
  } else {
    return context.At(v, std::string(key) +
                             " must be a fraction (0.90) or a percentage (\"90%\"), not " +
                             TomlTypeName(v));
  }
  if (!(*out > 0.0 && *out <= 1.0)) {
    return context.At(v, std::string(key) + " must be above 0 and at most 1 (100%)");
  }
  return Status::Ok();
}

Status ParseTiers(const TomlContext& context, const toml::value& table, Policy* policy) {
  if (!table.is_table()) return context.At(table, "tiers must be a table ([tiers])");
  Status st = context.CheckKeys(table, "[tiers]", {"ssd_high_watermark", "ssd_low_watermark"});
  if (!st.ok()) return st;
  const toml::value* low_value = nullptr;
  for (const auto& [key, value] : TomlContext::Entries(table)) {
    double* target = key == "ssd_high_watermark" ? &policy->limits.watermarks.high
                                                 : &policy->limits.watermarks.low;
    if (key == "ssd_low_watermark") low_value = value;
    if (!(st = GetFraction(context, key, *value, target)).ok()) return st;
  }
  if (policy->limits.watermarks.low >= policy->limits.watermarks.high) {
    const toml::value& where = low_value != nullptr ? *low_value : table;
    return context.At(where, "ssd_low_watermark must be below ssd_high_watermark");
  }
  return Status::Ok();
}

// A rate: a size per second, "64MiB/s" (the "/s" may be left out) or a
// number of bytes; above 0.
Status GetBandwidth(const TomlContext& context, const std::string& key, const toml::value& value,
                    uint64_t* bytes_per_sec) {
  if (value.is_string()) {
    // "256MiB/s" reads naturally; accept the "/s".
    std::string text = value.as_string().str;
    if (text.size() > 2 && text.compare(text.size() - 2, 2, "/s") == 0)
      text.resize(text.size() - 2);
    std::string why;
    if (!ParseSize(text, bytes_per_sec, &why)) return context.At(value, key + ": " + why);
  } else {
    Status st = GetSize(context, key, value, bytes_per_sec);
    if (!st.ok()) return st;
  }
  if (*bytes_per_sec == 0) return context.At(value, key + " must be above 0");
  return Status::Ok();
}

Status ParseThrottle(const TomlContext& context, const toml::value& table, Policy* policy) {
  if (!table.is_table()) return context.At(table, "throttle must be a table ([throttle])");
  Status st = context.CheckKeys(table, "[throttle]", {"move_bandwidth", "max_moves"});
  if (!st.ok()) return st;
  for (const auto& [key, value] : TomlContext::Entries(table)) {
    if (key == "max_moves") {
      int64_t moves = 0;
      if (!(st = context.GetInteger(key, *value, 1, 1024, &moves)).ok()) return st;
      policy->limits.max_moves = static_cast<unsigned>(moves);
      continue;
    }
    if (!(st = GetBandwidth(context, key, *value, &policy->limits.move_bytes_per_sec)).ok())
      return st;
  }
  return Status::Ok();
}

// [scrub]: interval ("7d"; "0" or "off": no scrub) and bandwidth.
Status ParseScrub(const TomlContext& context, const toml::value& table, Policy* policy) {
  if (!table.is_table()) return context.At(table, "scrub must be a table ([scrub])");
  Status st = context.CheckKeys(table, "[scrub]", {"interval", "bandwidth"});
  if (!st.ok()) return st;
  for (const auto& [key, value] : TomlContext::Entries(table)) {
    if (key == "bandwidth") {
      if (!(st = GetBandwidth(context, key, *value, &policy->scrub.bytes_per_sec)).ok()) return st;
      continue;
    }
    if (value->is_integer() && value->as_integer() == 0) {
      policy->scrub.interval_ns = 0;
      continue;
    }
    if (!value->is_string())
      return context.At(*value, "interval must be a duration like \"7d\", or \"off\", not " +
                                    TomlTypeName(*value));
    const std::string text = value->as_string().str;
    if (text == "0" || text == "off") {
      policy->scrub.interval_ns = 0;
      continue;
    }
    std::string why;
    if (!ParseDuration(text, &policy->scrub.interval_ns, &why))
      return context.At(*value, "interval: " + why + " (\"0\" or \"off\" turns the scrub off)");
  }
  return Status::Ok();
}

// [pins]: max_user_immutable, the longest immutable pin a user other than
// root may set ("30d"; "0" or 0: none at all). There is no "unlimited":
// an immutable hold nobody may remove is what this key exists to bound
// (the admin who wants years writes years).
Status ParsePins(const TomlContext& context, const toml::value& table, Policy* policy) {
  if (!table.is_table()) return context.At(table, "pins must be a table ([pins])");
  Status st = context.CheckKeys(table, "[pins]", {"max_user_immutable"});
  if (!st.ok()) return st;
  for (const auto& [key, value] : TomlContext::Entries(table)) {
    const std::string forbid = " (\"0\" forbids immutable pins by users other than root)";
    if (value->is_integer() && value->as_integer() == 0) {
      policy->pins.max_user_immutable_ns = 0;
      continue;
    }
    if (!value->is_string())
      return context.At(*value, std::string(key) + " must be a duration like \"30d\", not " +
                                    TomlTypeName(*value) + forbid);
    const std::string text = value->as_string().str;
    if (text == "0") {
      policy->pins.max_user_immutable_ns = 0;
      continue;
    }
    std::string why;
    if (!ParseDuration(text, &policy->pins.max_user_immutable_ns, &why))
      return context.At(*value, std::string(key) + ": " + why + forbid);
  }
  return Status::Ok();
}

// [[series]] and [[rule]] must be arrays of tables. Each table's error is
// noted and the next table still parsed, so a check reports them all.
void ForEachTable(const TomlContext& context, const toml::value& v, std::string_view key,
                  const std::function<Status(const toml::value&)>& parse,
                  std::vector<Status>* errors) {
  if (!v.is_array()) {
    errors->push_back(context.AtKey(v, key,
                                    std::string(key) + " must be written as [[" + std::string(key) +
                                        "]] (an array of tables), not " + TomlTypeName(v)));
    return;
  }
  for (const toml::value& item : v.as_array()) {
    Status st = item.is_table()
                    ? parse(item)
                    : context.At(item, "each " + std::string(key) + " must be a table, not " +
                                           TomlTypeName(item));
    if (!st.ok()) errors->push_back(st);
  }
}

// A series that failed to parse still has its name, so the rules that use
// it report their own mistakes rather than "no series named".
void KeepSeriesName(const toml::value& item, std::vector<Series>* series) {
  if (!item.is_table()) return;
  const auto& t = item.as_table();
  auto it = t.find("name");
  if (it == t.end() || !it->second.is_string()) return;
  const std::string name = it->second.as_string().str;
  for (const Series& s : *series)
    if (s.name == name) return;
  Series placeholder;
  placeholder.name = name;
  series->push_back(std::move(placeholder));
}

// Every section is parsed even after an error in another (errors in file
// order of sections: keys, [tiers], [throttle], [scrub], [pins], [[series]],
// [[rule]]);
// within one table, the first error ends that table.
void ParseDocument(const TomlContext& context, const toml::value& root, Policy* policy,
                   std::vector<Status>* errors) {
  auto note = [&](const Status& st) {
    if (!st.ok()) errors->push_back(st);
  };
  note(context.CheckKeys(root,
                         "the policy (sections: [tiers], [throttle], [scrub], [pins], "
                         "[[series]], [[rule]])",
                         {"tiers", "throttle", "scrub", "pins", "series", "rule"}));
  const auto& table = root.as_table();
  if (auto it = table.find("tiers"); it != table.end())
    note(ParseTiers(context, it->second, policy));
  if (auto it = table.find("throttle"); it != table.end())
    note(ParseThrottle(context, it->second, policy));
  if (auto it = table.find("scrub"); it != table.end())
    note(ParseScrub(context, it->second, policy));
  if (auto it = table.find("pins"); it != table.end()) note(ParsePins(context, it->second, policy));
  if (auto it = table.find("series"); it != table.end()) {
    ForEachTable(
        context, it->second, "series",
        [&](const toml::value& item) {
          Status st = ParseSeries(context, item, &policy->series);
          if (!st.ok()) KeepSeriesName(item, &policy->series);
          return st;
        },
        errors);
  }
  if (auto it = table.find("rule"); it != table.end()) {
    ForEachTable(
        context, it->second, "rule",
        [&](const toml::value& item) {
          return ParseRule(context, item, policy->series, &policy->rules);
        },
        errors);
  }
}

}  // namespace

Status GetSize(const TomlContext& context, std::string_view key, const toml::value& v,
               uint64_t* bytes) {
  if (v.is_integer()) {
    if (v.as_integer() < 0) return context.At(v, std::string(key) + " must not be negative");
    *bytes = static_cast<uint64_t>(v.as_integer());
    return Status::Ok();
  }
  if (!v.is_string()) {
    return context.At(v,
                      std::string(key) + " must be a size like \"10GiB\", not " + TomlTypeName(v));
  }
  std::string why;
  if (!ParseSize(v.as_string().str, bytes, &why))
    return context.At(v, std::string(key) + ": " + why);
  return Status::Ok();
}

Status ParsePolicy(const std::string& text, const std::string& name_for_errors, Policy* out) {
  Policy policy;
  std::vector<Status> errors;
  ParsePolicyAll(text, name_for_errors, &policy, &errors);
  if (!errors.empty()) return errors.front();
  *out = std::move(policy);
  return Status::Ok();
}

void ParsePolicyAll(const std::string& text, const std::string& name_for_errors, Policy* out,
                    std::vector<Status>* errors) {
  TomlContext context(name_for_errors);
  if (text.size() > kMaxPolicyBytes) {
    errors->push_back(context.AtPosition(1, 1, "policy file larger than 1 MiB"));
    return;
  }
  Status st = CheckUtf8(context, text);
  if (st.ok()) st = CheckNesting(context, text);
  if (!st.ok()) {
    errors->push_back(st);
    return;
  }
  // A syntax error ends the reading: toml11 has no recovery.
  try {
    std::istringstream stream(text);
    toml::value root = toml::parse(stream, name_for_errors);
    ParseDocument(context, root, out, errors);
  } catch (const toml::exception& error) {
    errors->push_back(StatusFromTomlError(context, text, error));
  } catch (const std::exception& error) {
    errors->push_back(
        context.AtPosition(1, 1, std::string("cannot parse policy: ") + error.what()));
  }
}

Status LoadPolicy(const std::string& path, Policy* out) {
  std::string text;
  Status st = ReadPolicyFile(path, &text);
  return st.ok() ? ParsePolicy(text, path, out) : st;
}

Status ReadPolicyFile(const std::string& path, std::string* out) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (the policy thread
  // would hang, and the daemon with it). A symlink to a regular file is fine.
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return Status::Errno(errno, "open policy " + path);
  struct stat st_buf;
  if (fstat(fd, &st_buf) != 0) {
    Status st = Status::Errno(errno, "stat policy " + path);
    close(fd);
    return st;
  }
  // Only a regular file: a directory parses as nothing (an empty policy),
  // a FIFO blocks and /dev/zero never ends.
  if (!S_ISREG(st_buf.st_mode)) {
    close(fd);
    const char* kind = S_ISDIR(st_buf.st_mode)    ? "a directory"
                       : S_ISFIFO(st_buf.st_mode) ? "a FIFO"
                       : S_ISCHR(st_buf.st_mode)  ? "a character device"
                       : S_ISBLK(st_buf.st_mode)  ? "a block device"
                       : S_ISSOCK(st_buf.st_mode) ? "a socket"
                                                  : "of another type";
    return Status::Error(EINVAL, "policy " + path + " is " + kind + ", not a regular file");
  }
  const std::string too_big = "policy " + path + " is larger than 1 MiB";
  if (uint64_t(st_buf.st_size) > kMaxPolicyBytes) {
    close(fd);
    return Status::Error(EFBIG, too_big);
  }
  // The size may change under us (or be 0 for /proc files): read at most
  // one byte past the limit, whatever fstat said.
  std::string text(kMaxPolicyBytes + 1, '\0');
  size_t have = 0;
  while (have < text.size()) {
    ssize_t got = read(fd, text.data() + have, text.size() - have);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      Status st = Status::Errno(errno, "read policy " + path);
      close(fd);
      return st;
    }
    if (got == 0) break;
    have += size_t(got);
  }
  close(fd);
  if (have > kMaxPolicyBytes) return Status::Error(EFBIG, too_big);
  text.resize(have);
  *out = std::move(text);
  return Status::Ok();
}

Status ResolveOwnerNames(const std::function<bool(const std::string&, uint32_t*)>& lookup,
                         Policy* policy) {
  for (Rule& rule : policy->rules) {
    if (rule.owner_name.empty() || rule.owner_uid) continue;
    uint32_t uid = 0;
    if (!lookup(rule.owner_name, &uid)) {
      return Status::Error(ENOENT, "rule \"" + rule.name + "\" (line " + std::to_string(rule.line) +
                                       "): unknown user \"" + rule.owner_name + "\"");
    }
    rule.owner_uid = uid;
  }
  return Status::Ok();
}

}  // namespace tierfs

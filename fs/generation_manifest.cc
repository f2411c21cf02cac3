#include "fs/generation_manifest.h"
#include "meta/text_format.h"

#include <xxhash.h>

#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>

namespace tierfs {

namespace {

// "/runs/a/checkpoint-500" -> "runs%2Fa%2Fcheckpoint-500.json": one flat,
// readable name per generation root; a long one is hashed (NAME_MAX).
std::string FileNameFor(const std::string& root) {
  std::string name;
  for (char c : root.substr(root.find_first_not_of('/') == std::string::npos
                                ? root.size()
                                : root.find_first_not_of('/'))) {
    if (c == '/')
      name += "%2F";
    else if (c == '%')
      name += "%25";
    else
      name += c;
  }
  if (name.empty() || name.size() > 200) name = "h" + Hex64(XXH3_64bits(root.data(), root.size()));
  return name + ".json";
}

}  // namespace

bool ArchivedGenerationManifest(const Policy& policy, const Snapshot& snapshot, const Generation& g,
                                std::string* name, std::string* text) {
  if (!g.complete || g.roots.empty()) return false;
  nlohmann::json entries = nlohmann::json::array();
  std::set<std::string> rules;
  int64_t since = 0, until = 0;
  bool forever = false, immutable = false;
  uint64_t bytes = 0, files = 0;
  for (size_t i : g.members) {
    const FileFacts& f = snapshot[i];
    nlohmann::json e = {{"path", f.path}, {"ino", f.ino}};
    if (f.is_dir) {
      e["type"] = "directory";
    } else if (f.is_symlink) {
      e["type"] = "symlink";
      e["target"] = f.symlink_target;
    } else {
      // A regular file not yet archived keeps the whole generation out.
      if (f.tier != TierId::kHdd || !f.pinned || f.manual_pin || f.checksum == 0) return false;
      e["type"] = "file";
      e["size"] = f.size;
      e["xxh3"] = Hex64(f.checksum);
      bytes += f.size;
      ++files;
      rules.insert(f.pin_rule);
      if (since == 0 || (f.pin_since_ns != 0 && f.pin_since_ns < since)) since = f.pin_since_ns;
      if (f.pin_until_ns == 0)
        forever = true;
      else if (f.pin_until_ns > until)
        until = f.pin_until_ns;
      immutable = immutable || f.immutable;
    }
    entries.push_back(std::move(e));
  }
  if (files == 0) return false;  // nothing kept: no manifest
  nlohmann::json roots = nlohmann::json::array();
  for (size_t i : g.roots) roots.push_back(snapshot[i].path);
  const nlohmann::json m = {
      {"format", "tierfs generation manifest 1"},
      {"series", policy.series[g.series].name},
      {"generation", g.number},
      {"instance", g.instance_dir},
      {"roots", roots},
      {"kept_by", rules},
      {"kept_since", since ? nlohmann::json(UtcSeconds(since)) : nlohmann::json(nullptr)},
      {"kept_until", forever ? nlohmann::json(nullptr) : nlohmann::json(UtcSeconds(until))},
      {"immutable", immutable},
      {"files", files},
      {"bytes", bytes},
      {"entries", entries}};
  // Series names are [A-Za-z0-9._-]: only "." and ".." need escaping.
  std::string series = policy.series[g.series].name;
  if (series[0] == '.') series = "%2E" + series.substr(1);
  *name = series + "/" + FileNameFor(roots[0].get<std::string>());
  *text = m.dump(2) + "\n";
  return true;
}

}  // namespace tierfs

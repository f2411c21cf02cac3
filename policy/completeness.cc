// Completeness and pointers of checkpoint generations; see completeness.h.
#include "policy/completeness.h"

#include <algorithm>
#include <cctype>
#include <numeric>

#include "policy/units.h"

namespace tierfs {

std::string_view ParentOf(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return "/";
  return path.substr(0, slash);
}

std::string_view BaseName(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string Join(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (out.empty() || out.back() != '/') out += '/';
  out += name;
  return out;
}

namespace {

bool IsDigits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "{stem}": the name without a trailing alphabetic extension (".ckpt",
// ".nemo"), so "x-consumed_samples=8.0" keeps its ".0".
std::string Stem(std::string_view name) {
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == name.size()) return std::string(name);
  std::string_view extension = name.substr(dot + 1);
  bool alphabetic = std::all_of(extension.begin(), extension.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  });
  return std::string(alphabetic ? name.substr(0, dot) : name);
}

std::string Expand(std::string_view name_template, std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name_template.size();) {
    if (name_template.compare(i, 6, "{name}") == 0) {
      out += name, i += 6;
    } else if (name_template.compare(i, 6, "{stem}") == 0) {
      out += Stem(name), i += 6;
    } else {
      out += name_template[i++];
    }
  }
  return out;
}

// Where a marker/absent file of generation root `root` lives.
std::string SignalPath(const FileFacts& root, std::string_view instance_dir,
                       const std::string& file) {
  std::string_view name = BaseName(root.path);
  if (file.compare(0, 3, "../") == 0) return Join(instance_dir, Expand(file.substr(3), name));
  return Join(root.is_dir ? std::string_view(root.path) : instance_dir, Expand(file, name));
}

bool MatchesSeries(const Series& series, std::string_view path, uint64_t* number) {
  std::vector<std::string_view> components;
  SplitPath(path, &components);
  for (const PathPattern& pattern : series.patterns) {
    if (pattern.MatchComponents(components, number)) return true;
  }
  return false;
}

// The generation number a pointer file names: its content ("global_step1200",
// "1200") or symlink target ("epoch=3-step=400.ckpt"), read as an entry name
// of the series, or else as a bare number (Megatron's tracker).
std::optional<uint64_t> PointedNumber(const Series& series, const FileFacts& pointer,
                                      std::string_view instance_dir) {
  std::string_view text = pointer.is_symlink ? pointer.symlink_target : pointer.content;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  std::string_view name = BaseName(text);
  if (name.empty()) return std::nullopt;
  uint64_t number = 0;
  if (MatchesSeries(series, Join(instance_dir, name), &number)) return number;
  if (!pointer.is_symlink && IsDigits(name) && name.size() <= 19) {
    return std::stoull(std::string(name));
  }
  return std::nullopt;
}

std::string CompletenessProblem(const Series& series, const Instance& instance,
                                const Generation& gen, const Snapshot& snapshot,
                                const PathIndex& by_path, std::optional<uint64_t> pointer_number,
                                int64_t now_ns) {
  for (size_t member : gen.members) {
    if (snapshot[member].open) return "being written: " + snapshot[member].path + " is open";
  }
  for (const CompletionSignal& signal : series.complete) {
    switch (signal.kind) {
      case CompletionSignal::Kind::kRename:
        break;
      case CompletionSignal::Kind::kMarker:
        for (size_t root : gen.roots) {
          bool found = std::any_of(signal.files.begin(), signal.files.end(), [&](const auto& f) {
            return by_path.count(SignalPath(snapshot[root], instance.dir, f)) > 0;
          });
          if (!found)
            return "no completion marker " +
                   SignalPath(snapshot[root], instance.dir, signal.files[0]);
        }
        break;
      case CompletionSignal::Kind::kAbsent:
        for (size_t root : gen.roots) {
          std::string path = SignalPath(snapshot[root], instance.dir, signal.files[0]);
          if (by_path.count(path) > 0) return "unfinished: " + path + " exists";
        }
        break;
      case CompletionSignal::Kind::kPointer:
        if (!pointer_number) {
          return "pointer " + Join(instance.dir, signal.files[0]) + " missing or names nothing";
        }
        if (gen.number > *pointer_number) {
          return "newer than " + std::to_string(*pointer_number) + ", the generation " +
                 Join(instance.dir, signal.files[0]) + " names";
        }
        break;
      case CompletionSignal::Kind::kQuiet:
        if (now_ns - gen.last_write_ns < signal.quiet_ns) {
          return "written " + FormatDuration(now_ns - gen.last_write_ns) + " ago (quiet period " +
                 FormatDuration(signal.quiet_ns) + ")";
        }
        break;
    }
  }
  return "";
}

}  // namespace

void JudgeInstance(const Series& series, const Instance& instance, const Snapshot& snapshot,
                   const PathIndex& by_path, int64_t now_ns, std::vector<Generation>* gens) {
  // Pointer files: the completion pointer (DeepSpeed `latest`, Megatron's
  // tracker) and protective ones (Lightning `last.ckpt`).
  std::optional<uint64_t> completion_number;
  std::vector<std::string> pointer_names = series.pointers;
  for (const CompletionSignal& signal : series.complete) {
    if (signal.kind == CompletionSignal::Kind::kPointer) pointer_names.push_back(signal.files[0]);
  }
  std::vector<std::pair<uint64_t, std::string>> named;
  for (const std::string& name : pointer_names) {
    std::string path = Join(instance.dir, name);
    auto it = by_path.find(path);
    if (it == by_path.end()) continue;
    std::optional<uint64_t> number = PointedNumber(series, snapshot[it->second], instance.dir);
    if (!number) continue;
    named.emplace_back(*number, path);
    for (const CompletionSignal& signal : series.complete) {
      if (signal.kind == CompletionSignal::Kind::kPointer && signal.files[0] == name) {
        completion_number = number;
      }
    }
  }
  uint64_t interval = 0;
  for (size_t index : instance.generations) {
    Generation& gen = (*gens)[index];
    gen.incomplete_reason =
        CompletenessProblem(series, instance, gen, snapshot, by_path, completion_number, now_ns);
    gen.complete = gen.incomplete_reason.empty();
    for (const auto& [number, path] : named) {
      if (number == gen.number) gen.named_by = path;
    }
    interval = std::gcd(interval, gen.number);
  }
  // Generations are numbered, not named: checkpoint-9000 precedes checkpoint-10000.
  std::vector<size_t> order = instance.generations;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return (*gens)[a].number > (*gens)[b].number; });
  const std::vector<uint32_t> newer = CountSuperseding(*gens, order, snapshot);
  for (size_t k = 0; k < order.size(); ++k) {
    Generation& gen = (*gens)[order[k]];
    gen.newer_complete = newer[k];
    gen.save_interval = interval;
    gen.newest_complete = gen.complete && newer[k] == 0;
  }
}

uint64_t CreatedAt(const Generation& gen, const Snapshot& snapshot) {
  uint64_t first = UINT64_MAX;
  for (size_t root : gen.roots) first = std::min(first, snapshot[root].ino);
  return first;
}

std::vector<uint32_t> CountSuperseding(const std::vector<Generation>& gens,
                                       const std::vector<size_t>& order, const Snapshot& snapshot) {
  // Ranks of the creation orders, for a Fenwick tree over them: one pass in
  // descending number counts, for each generation, the complete ones already
  // passed (larger numbers) that were also created later. O(n log n): an
  // instance that pins every 5th generation for 90 days holds tens of
  // thousands.
  std::vector<uint64_t> created(order.size());
  for (size_t k = 0; k < order.size(); ++k) created[k] = CreatedAt(gens[order[k]], snapshot);
  std::vector<uint64_t> ranks = created;
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  std::vector<uint32_t> tree(ranks.size() + 1, 0);
  uint32_t passed = 0;
  std::vector<uint32_t> out(order.size());
  for (size_t k = 0; k < order.size(); ++k) {
    const size_t rank = size_t(std::upper_bound(ranks.begin(), ranks.end(), created[k]) -
                               ranks.begin());  // 1-based: ranks <= created[k]
    uint32_t not_later = 0;
    for (size_t i = rank; i > 0; i -= i & -i) not_later += tree[i];
    out[k] = passed - not_later;
    if (!gens[order[k]].complete) continue;
    for (size_t i = rank; i < tree.size(); i += i & -i) tree[i]++;
    passed++;
  }
  return out;
}

// The files completeness and pointers depend on, found in one pass.
PathIndex FindSignalFiles(const Policy& policy, const Snapshot& snapshot,
                          const std::vector<Generation>& gens, const InstanceMap& instances) {
  std::unordered_map<std::string, bool> needed;
  for (const auto& [key, instance] : instances) {
    const Series& series = policy.series[instance.series];
    for (const std::string& name : series.pointers) needed[Join(instance.dir, name)] = true;
    for (const CompletionSignal& signal : series.complete) {
      if (signal.kind == CompletionSignal::Kind::kPointer) {
        needed[Join(instance.dir, signal.files[0])] = true;
      }
      if (signal.kind != CompletionSignal::Kind::kMarker &&
          signal.kind != CompletionSignal::Kind::kAbsent) {
        continue;
      }
      for (size_t g : instance.generations) {
        for (size_t root : gens[g].roots) {
          for (const std::string& file : signal.files) {
            needed[SignalPath(snapshot[root], instance.dir, file)] = true;
          }
        }
      }
    }
  }
  PathIndex found;
  for (size_t i = 0; i < snapshot.size() && !needed.empty(); ++i) {
    if (needed.count(snapshot[i].path) > 0) {
      found.emplace(snapshot[i].path, i);
    }
  }
  return found;
}

}  // namespace tierfs

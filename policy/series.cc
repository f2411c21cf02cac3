// RecognizeGenerations: which entries are checkpoint generations, which
// series instance each belongs to, and which generations are complete.
#include <algorithm>
#include <cctype>
#include <map>
#include <numeric>
#include <unordered_map>

#include "policy/policy.h"
#include "policy/units.h"

namespace tierfs {

namespace {

using PathIndex = std::unordered_map<std::string_view, size_t>;

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

struct Instance {
  size_t series = 0;
  std::string dir;
  std::vector<size_t> generations;
};

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
  uint32_t newer_complete = 0;
  for (size_t index : order) {
    Generation& gen = (*gens)[index];
    gen.newer_complete = newer_complete;
    gen.save_interval = interval;
    if (gen.complete) {
      gen.newest_complete = newer_complete == 0;
      ++newer_complete;
    }
  }
}

// Which generation each entry lies in. Memoised per directory, and the
// last directory is remembered: snapshots list siblings together, so most
// of a million files cost no hash lookup at all.
class MembershipIndex {
 public:
  explicit MembershipIndex(size_t entries) : root_generation_(entries, -1) {}
  void AddRoot(size_t index, std::string_view path, int generation) {
    root_generation_[index] = generation;
    memo_[path] = generation;
  }
  int GenerationOf(size_t index, std::string_view path) {
    if (root_generation_[index] >= 0) return root_generation_[index];
    std::string_view parent = ParentOf(path);
    if (parent != last_parent_) last_parent_ = parent, last_generation_ = DirGeneration(parent);
    return last_generation_;
  }

 private:
  int DirGeneration(std::string_view dir) {
    std::vector<std::string_view> unknown;
    int result = -1;
    for (;;) {
      auto it = memo_.find(dir);
      if (it != memo_.end()) {
        result = it->second;
        break;
      }
      unknown.push_back(dir);
      if (dir == "/") break;
      dir = ParentOf(dir);
    }
    for (std::string_view path : unknown) memo_[path] = result;
    return result;
  }
  std::vector<int> root_generation_;
  std::unordered_map<std::string_view, int> memo_;
  std::string_view last_parent_ = "\0";  // matches no real directory
  int last_generation_ = -1;
};

// The files completeness and pointers depend on, found in one pass.
PathIndex FindSignalFiles(const Policy& policy, const Snapshot& snapshot,
                          const std::vector<Generation>& gens,
                          const std::map<std::pair<size_t, std::string>, Instance>& instances) {
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

}  // namespace

std::vector<Generation> RecognizeGenerations(const Policy& policy, const Snapshot& snapshot,
                                             int64_t now_ns) {
  std::vector<Generation> gens;
  if (policy.series.empty()) return gens;

  // 1. Entries some series pattern claims (first series in file order wins).
  struct Candidate {
    size_t index;
    size_t series;
    uint64_t number;
    bool dropped;
  };
  std::vector<Candidate> candidates;
  std::vector<std::string_view> components;
  for (size_t i = 0; i < snapshot.size(); ++i) {
    const FileFacts& facts = snapshot[i];
    if (facts.is_symlink) continue;  // a link is a pointer, never a generation
    SplitPath(facts.path, &components);
    if (components.empty()) continue;
    for (size_t s = 0; s < policy.series.size(); ++s) {
      const Series& series = policy.series[s];
      if ((series.kind == Series::Kind::kDir && !facts.is_dir) ||
          (series.kind == Series::Kind::kFile && facts.is_dir)) {
        continue;
      }
      uint64_t number = 0;
      bool matched =
          std::any_of(series.patterns.begin(), series.patterns.end(),
                      [&](const PathPattern& p) { return p.MatchComponents(components, &number); });
      if (!matched) continue;
      bool excluded =
          std::any_of(series.exclude_names.begin(), series.exclude_names.end(),
                      [&](const PathPattern& p) { return p.MatchName(components.back()); });
      if (excluded) continue;
      candidates.push_back({i, s, number, false});
      break;
    }
  }
  if (candidates.empty()) return gens;

  // 2. Nested matches: the series listed first wins, and within one series
  // the outer match. So global_step500/ inside hf's checkpoint-500/ is part
  // of that generation, while Lightning checkpoints inside a "version_0/"
  // that orbax's "*_{gen}" also matches stay Lightning generations.
  std::unordered_map<std::string_view, size_t> candidate_at;
  for (size_t c = 0; c < candidates.size(); ++c) {
    candidate_at.emplace(snapshot[candidates[c].index].path, c);
  }
  for (Candidate& inner : candidates) {
    std::string_view path = snapshot[inner.index].path;
    for (std::string_view up = ParentOf(path); up != "/"; up = ParentOf(up)) {
      auto it = candidate_at.find(up);
      if (it == candidate_at.end()) continue;
      Candidate& outer = candidates[it->second];
      (outer.series <= inner.series ? inner : outer).dropped = true;
    }
  }

  // 3. Group roots into generations and instances.
  MembershipIndex membership(snapshot.size());
  std::map<std::tuple<size_t, std::string, uint64_t>, size_t> generation_index;
  std::map<std::pair<size_t, std::string>, Instance> instances;
  for (const Candidate& candidate : candidates) {
    if (candidate.dropped) continue;
    const std::string& path = snapshot[candidate.index].path;
    std::string instance_dir(ParentOf(path));
    auto key = std::make_tuple(candidate.series, instance_dir, candidate.number);
    auto [slot, inserted] = generation_index.emplace(key, gens.size());
    if (inserted) {
      Generation gen;
      gen.series = candidate.series;
      gen.instance_dir = instance_dir;
      gen.number = candidate.number;
      gens.push_back(std::move(gen));
      Instance& instance = instances[{candidate.series, instance_dir}];
      instance.series = candidate.series;
      instance.dir = instance_dir;
      instance.generations.push_back(slot->second);
    }
    gens[slot->second].roots.push_back(candidate.index);
    membership.AddRoot(candidate.index, path, static_cast<int>(slot->second));
  }

  // 4. Members: every entry at or below a root.
  for (size_t i = 0; i < snapshot.size(); ++i) {
    const FileFacts& facts = snapshot[i];
    int g = membership.GenerationOf(i, facts.path);
    if (g < 0) continue;
    Generation& gen = gens[g];
    gen.members.push_back(i);
    if (!facts.is_dir && !facts.is_symlink) gen.bytes += facts.size;
    gen.last_write_ns = std::max(gen.last_write_ns, facts.mtime_ns);
    gen.last_access_ns = std::max({gen.last_access_ns, facts.atime_ns, facts.mtime_ns});
  }

  // 5. Completeness, pointers and order within each instance.
  PathIndex signal_files = FindSignalFiles(policy, snapshot, gens, instances);
  for (const auto& [key, instance] : instances) {
    JudgeInstance(policy.series[instance.series], instance, snapshot, signal_files, now_ns, &gens);
  }
  return gens;
}

}  // namespace tierfs

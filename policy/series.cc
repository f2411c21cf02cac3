// RecognizeGenerations: which entries are checkpoint generations and which
// series instance each belongs to (completeness: completeness.cc).
#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>

#include "policy/completeness.h"
#include "policy/policy.h"

namespace tierfs {

namespace {

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

// Sets newer_complete_of_others: per directory of a series that does not
// span owners, the complete generations of other owners with larger numbers
// and created later (what the ownership bound keeps from superseding a
// generation; CountSuperseding's rule).
void CountNewerOfOtherOwners(const InstanceMap& instances, const Snapshot& snapshot,
                             std::vector<Generation>* gens) {
  struct Dir {
    size_t instances = 0;  // one per owner
    std::vector<size_t> generations;
  };
  std::map<std::pair<size_t, std::string_view>, Dir> by_dir;
  for (const auto& [key, instance] : instances) {
    Dir& dir = by_dir[{instance.series, instance.dir}];
    dir.instances++;
    dir.generations.insert(dir.generations.end(), instance.generations.begin(),
                           instance.generations.end());
  }
  for (const auto& [key, dir] : by_dir) {
    if (dir.instances < 2) continue;  // the usual case: one owner per directory
    for (size_t g : dir.generations) {
      Generation& gen = (*gens)[g];
      for (size_t o : dir.generations) {
        const Generation& other = (*gens)[o];
        if (other.complete && other.owner != gen.owner && other.number > gen.number &&
            CreatedAt(other, snapshot) > CreatedAt(gen, snapshot)) {
          gen.newer_complete_of_others++;
          gen.newer_owner = other.owner;
        }
      }
    }
  }
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

  // 3. Group roots into generations and instances. An instance holds one
  // owner's generations unless its series spans owners: in a shared sticky
  // directory, one user's newer generations must not supersede another's.
  MembershipIndex membership(snapshot.size());
  std::map<std::tuple<size_t, std::string, uint64_t, uint32_t>, size_t> generation_index;
  InstanceMap instances;
  for (const Candidate& candidate : candidates) {
    if (candidate.dropped) continue;
    const std::string& path = snapshot[candidate.index].path;
    std::string instance_dir(ParentOf(path));
    const uint32_t uid = snapshot[candidate.index].uid;
    const uint32_t owner = policy.series[candidate.series].span_owners ? 0 : uid;
    auto key = std::make_tuple(candidate.series, instance_dir, candidate.number, owner);
    auto [slot, inserted] = generation_index.emplace(key, gens.size());
    if (inserted) {
      Generation gen;
      gen.series = candidate.series;
      gen.instance_dir = instance_dir;
      gen.number = candidate.number;
      gen.owner = uid;
      gens.push_back(std::move(gen));
      Instance& instance = instances[{candidate.series, instance_dir, owner}];
      instance.series = candidate.series;
      instance.dir = instance_dir;
      instance.owner = owner;
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
  CountNewerOfOtherOwners(instances, snapshot, &gens);
  return gens;
}

}  // namespace tierfs

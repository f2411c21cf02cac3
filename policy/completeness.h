// Completeness and pointers of checkpoint generations: the second half of
// RecognizeGenerations, once generations and their members are known.
// Internal to policy/.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policy/policy.h"

namespace tierfs {

using PathIndex = std::unordered_map<std::string_view, size_t>;

// One series instance: a series, the directory holding its generations and,
// unless the series spans owners, the uid owning them.
struct Instance {
  size_t series = 0;
  std::string dir;
  uint32_t owner = 0;
  std::vector<size_t> generations;
};

using InstanceMap = std::map<std::tuple<size_t, std::string, uint32_t>, Instance>;

std::string_view ParentOf(std::string_view path);
std::string_view BaseName(std::string_view path);
std::string Join(std::string_view dir, std::string_view name);

// Finds, in one pass over `snapshot`, the marker, absent and pointer files
// the instances' completeness signals and pointers refer to.
PathIndex FindSignalFiles(const Policy& policy, const Snapshot& snapshot,
                          const std::vector<Generation>& gens, const InstanceMap& instances);
// Sets complete, named_by, newest_complete, newer_complete and save_interval
// of the instance's generations.
void JudgeInstance(const Series& series, const Instance& instance, const Snapshot& snapshot,
                   const PathIndex& signal_files, int64_t now_ns, std::vector<Generation>* gens);

// When a generation came into being: the smallest inode number of its roots.
// Inode numbers only grow (meta/store.h Create) and a rename keeps them, so
// renaming an old generation to a larger number does not make it newer.
uint64_t CreatedAt(const Generation& gen, const Snapshot& snapshot);
// For each generation of `order` (indexes into `gens`, in descending
// number), the complete generations that supersede it: a larger number and
// created later. A user who may rename another's generations but not delete
// them (a group-writable directory) would otherwise make the policy thin
// the owner's newest ones by renaming an old one to a large number.
std::vector<uint32_t> CountSuperseding(const std::vector<Generation>& gens,
                                       const std::vector<size_t>& order, const Snapshot& snapshot);

}  // namespace tierfs

#include "fs/inode_table.h"

namespace tierfs {

void InodeTable::Ref(uint64_t ino, uint64_t parent, std::string_view name) {
  MutexLock lock(&mu_);
  Entry& e = entries_[ino];
  e.lookups++;
  if (parent != 0 && (e.parent != parent || e.name != name)) {
    e.parent = parent;
    e.name = name;
  }
}

void InodeTable::Rename(uint64_t ino, uint64_t parent, std::string_view name) {
  MutexLock lock(&mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return;
  it->second.parent = parent;
  it->second.name = name;
}

std::string InodeTable::KnownPath(uint64_t ino) {
  constexpr uint64_t kRoot = 1;
  constexpr int kMaxDepth = 4096;  // a loop in stale names must not hang us
  MutexLock lock(&mu_);
  std::vector<const std::string*> names;
  for (int depth = 0; ino != kRoot; ++depth) {
    auto it = entries_.find(ino);
    if (depth == kMaxDepth || it == entries_.end() || it->second.parent == 0) return "";
    names.push_back(&it->second.name);
    ino = it->second.parent;
  }
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) path += "/" + **it;
  return path.empty() ? "/" : path;
}

bool InodeTable::Forget(uint64_t ino, uint64_t n) {
  MutexLock lock(&mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return false;
  it->second.lookups = it->second.lookups > n ? it->second.lookups - n : 0;
  if (it->second.lookups > 0) return false;
  const bool orphan = it->second.orphan;
  entries_.erase(it);
  return orphan;
}

bool InodeTable::MarkOrphan(uint64_t ino) {
  MutexLock lock(&mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return true;
  it->second.orphan = true;
  return false;
}

std::shared_ptr<LiveState> InodeTable::Live(uint64_t ino) {
  MutexLock lock(&mu_);
  auto& live = entries_[ino].live;
  if (!live) live = std::make_shared<LiveState>();
  return live;
}

std::shared_ptr<LiveState> InodeTable::FindLive(uint64_t ino) {
  MutexLock lock(&mu_);
  auto it = entries_.find(ino);
  return it == entries_.end() ? nullptr : it->second.live;
}

bool InodeTable::OpenForWriting(uint64_t ino) {
  MutexLock lock(&mu_);
  auto it = entries_.find(ino);
  return it != entries_.end() && it->second.live && it->second.live->writers.load() > 0;
}

bool InodeTable::MayWriteThroughMapping(uint64_t ino) {
  MutexLock lock(&mu_);
  auto it = entries_.find(ino);
  return it != entries_.end() && it->second.live && it->second.live->mapping_writers.load() > 0;
}

bool InodeTable::BusySince(uint64_t ino, uint64_t since) {
  MutexLock lock(&mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end() || !it->second.live) return false;
  const LiveState& live = *it->second.live;
  return live.writers.load() > 0 || live.passthrough_handles.load() > 0 ||
         live.last_write.load() > since;
}

std::vector<uint64_t> InodeTable::OpenInodes() {
  MutexLock lock(&mu_);
  std::vector<uint64_t> out;
  for (const auto& [ino, e] : entries_)
    if (e.live && e.live->handles.load() > 0) out.push_back(ino);
  return out;
}

int64_t InodeTable::LastOpen(uint64_t ino) {
  MutexLock lock(&mu_);
  auto it = entries_.find(ino);
  return it == entries_.end() || !it->second.live ? 0 : it->second.live->last_open_ns.load();
}

}  // namespace tierfs

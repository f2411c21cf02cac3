#include "fs/inode_table.h"

namespace tierfs {

void InodeTable::Ref(uint64_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_[ino].lookups++;
}

bool InodeTable::Forget(uint64_t ino, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return false;
  it->second.lookups = it->second.lookups > n ? it->second.lookups - n : 0;
  if (it->second.lookups > 0) return false;
  const bool orphan = it->second.orphan;
  entries_.erase(it);
  return orphan;
}

bool InodeTable::MarkOrphan(uint64_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return true;
  it->second.orphan = true;
  return false;
}

std::shared_ptr<LiveState> InodeTable::Live(uint64_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& live = entries_[ino].live;
  if (!live) live = std::make_shared<LiveState>();
  return live;
}

bool InodeTable::BusySince(uint64_t ino, uint64_t since) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end() || !it->second.live) return false;
  const LiveState& live = *it->second.live;
  return live.writers.load() > 0 || live.passthrough_handles.load() > 0 ||
         live.last_write.load() > since;
}

std::vector<uint64_t> InodeTable::OpenInodes() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> out;
  for (const auto& [ino, e] : entries_)
    if (e.live && e.live->handles.load() > 0) out.push_back(ino);
  return out;
}

int64_t InodeTable::LastOpen(uint64_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  return it == entries_.end() || !it->second.live ? 0 : it->second.live->last_open_ns.load();
}

}  // namespace tierfs

// WriteSizes: how big the files written through the mount ended up, by the
// shape of their path, so that a writer the kernel serves itself (FUSE
// passthrough, which cannot spill to the HDD tier) is promised the room its
// file will take (fs/space.h PromiseRoom). Checkpoints repeat themselves:
// run/step-200/rank_3.distcp is as big as run/step-100/rank_3.distcp was,
// so runs of digits are one character of the shape. The last size seen of
// each of the 4096 most recently written shapes is kept, in memory only.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <cctype>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "meta/mutex.h"

namespace tierfs {

class WriteSizes {
 public:
  // "/run/step-#/rank_#.distcp" for "/run/step-200/rank_3.distcp".
  static std::string Shape(std::string_view path) {
    std::string out;
    for (size_t i = 0; i < path.size(); ++i) {
      const bool digit = std::isdigit(static_cast<unsigned char>(path[i]));
      if (!digit) {
        out += path[i];
      } else if (i == 0 || !std::isdigit(static_cast<unsigned char>(path[i - 1]))) {
        out += '#';
      }
    }
    return out;
  }
  // A file at `path` was written and is `size` bytes now. Unknown paths
  // ("") are not kept.
  void Record(std::string_view path, uint64_t size) {
    if (path.empty()) return;
    std::string shape = Shape(path);
    MutexLock lock(&mu_);
    auto [it, added] = sizes_.insert_or_assign(shape, size);
    if (!added) return;
    order_.push_back(std::move(shape));
    if (order_.size() > kShapes) {
      sizes_.erase(order_.front());
      order_.pop_front();
    }
  }
  // The last size recorded for a file of `path`'s shape.
  std::optional<uint64_t> Expect(std::string_view path) {
    if (path.empty()) return std::nullopt;
    const std::string shape = Shape(path);
    MutexLock lock(&mu_);
    auto it = sizes_.find(shape);
    if (it == sizes_.end()) return std::nullopt;
    return it->second;
  }

 private:
  static constexpr size_t kShapes = 4096;
  Mutex mu_;
  std::unordered_map<std::string, uint64_t> sizes_ GUARDED_BY(mu_);
  std::deque<std::string> order_ GUARDED_BY(mu_);  // oldest first, to forget
};

}  // namespace tierfs

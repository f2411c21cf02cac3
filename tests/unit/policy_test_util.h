// Helpers for the policy unit tests: build snapshots of checkpoint trees and
// summarise plans per generation.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "policy/policy.h"

namespace tierfs {
namespace testing_util {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
// A fixed "now" (2026-11-25T00:00:00Z) so tests never read the clock.
constexpr int64_t kNow = 1795564800 * kSecond;

// A snapshot under construction. Parent directories are added on demand.
class Tree {
 public:
  FileFacts& Dir(const std::string& path, int64_t age = kDay) { return Add(path, true, 0, age); }
  FileFacts& File(const std::string& path, uint64_t size = 1 << 20, int64_t age = kDay) {
    return Add(path, false, size, age);
  }
  FileFacts& Text(const std::string& path, const std::string& content, int64_t age = kDay) {
    FileFacts& f = Add(path, false, content.size(), age);
    f.content = content;
    return f;
  }
  FileFacts& Symlink(const std::string& path, const std::string& target, int64_t age = kDay) {
    FileFacts& f = Add(path, false, target.size(), age);
    f.is_symlink = true;
    f.symlink_target = target;
    return f;
  }
  FileFacts& At(const std::string& path) {
    for (FileFacts& f : snapshot_) {
      if (f.path == path) return f;
    }
    ADD_FAILURE() << "no " << path;
    return snapshot_.front();
  }
  const Snapshot& snapshot() const { return snapshot_; }

 private:
  FileFacts& Add(const std::string& path, bool is_dir, uint64_t size, int64_t age) {
    size_t slash = path.rfind('/');
    if (slash != 0 && slash != std::string::npos && !Has(path.substr(0, slash))) {
      Add(path.substr(0, slash), true, 0, age);
    }
    FileFacts f;
    f.path = path;
    f.ino = snapshot_.size() + 2;
    f.is_dir = is_dir;
    f.size = size;
    f.mtime_ns = f.atime_ns = kNow - age;
    f.uid = 1000;
    snapshot_.push_back(f);
    return snapshot_.back();
  }
  bool Has(const std::string& path) const {
    for (const FileFacts& f : snapshot_) {
      if (f.path == path) return true;
    }
    return false;
  }
  Snapshot snapshot_;
};

inline Policy DefaultPolicy() {
  Policy policy;
  Status st = ParsePolicy(DefaultPolicyText(), "default", &policy);
  EXPECT_TRUE(st.ok()) << st.message();
  return policy;
}

// generation -> the set of action kinds the plan has for it ("migrate", "pin", ...).
inline std::map<uint64_t, std::set<std::string>> KindsByGeneration(const Plan& plan) {
  std::map<uint64_t, std::set<std::string>> out;
  for (const Action& action : plan) {
    if (action.generation) out[*action.generation].insert(ActionKindName(action.kind));
  }
  return out;
}

inline const Action* FindAction(const Plan& plan, Action::Kind kind, const std::string& path) {
  for (const Action& action : plan) {
    if (action.kind == kind && action.path == path) return &action;
  }
  return nullptr;
}

}  // namespace testing_util
}  // namespace tierfs

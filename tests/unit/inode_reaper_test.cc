// Unit tests of fs/inode_reaper: forgotten inodes are freed in batches on
// the reaper's thread, at once when it does not run, and none is left
// queued by Stop.
#include "fs/inode_reaper.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace tierfs {
namespace {

// Records the batches the reaper frees.
struct Freed {
  std::mutex mu;
  std::vector<std::vector<uint64_t>> batches;
  std::thread::id last_thread;
  InodeReaper::FreeBatch Callback() {
    return [this](const std::vector<uint64_t>& inos) {
      std::lock_guard<std::mutex> lock(mu);
      batches.push_back(inos);
      last_thread = std::this_thread::get_id();
    };
  }
  std::vector<uint64_t> All() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<uint64_t> all;
    for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
    std::sort(all.begin(), all.end());
    return all;
  }
  size_t Batches() {
    std::lock_guard<std::mutex> lock(mu);
    return batches.size();
  }
};

std::vector<uint64_t> Range(uint64_t from, uint64_t to) {
  std::vector<uint64_t> v;
  for (uint64_t i = from; i < to; ++i) v.push_back(i);
  return v;
}

TEST(InodeReaperTest, NotRunningFreesAtOnceOnTheCallersThread) {
  Freed freed;
  InodeReaper reaper(freed.Callback());
  reaper.Add(7);
  EXPECT_EQ(std::vector<uint64_t>{7}, freed.All());
  EXPECT_EQ(std::this_thread::get_id(), freed.last_thread);
  reaper.Start();
  reaper.Stop();
  reaper.Add(8);  // after Stop, too
  EXPECT_EQ((std::vector<uint64_t>{7, 8}), freed.All());
}

TEST(InodeReaperTest, InodesQueuedTogetherAreFreedInFewBatches) {
  Freed freed;
  InodeReaper reaper(freed.Callback());
  reaper.Start();
  for (uint64_t ino = 100; ino < 300; ++ino) reaper.Add(ino);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (freed.All().size() < 200 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(Range(100, 300), freed.All());
  // 200 FORGETs within microseconds: one batch, a few on a loaded machine,
  // never one transaction each.
  EXPECT_LE(freed.Batches(), 10u);
  EXPECT_NE(std::this_thread::get_id(), freed.last_thread);
  reaper.Stop();
}

TEST(InodeReaperTest, StopFreesEverythingQueued) {
  Freed freed;
  {
    InodeReaper reaper(freed.Callback());
    reaper.Start();
    for (uint64_t ino = 1; ino <= 50; ++ino) reaper.Add(ino);
    reaper.Stop();
    EXPECT_EQ(Range(1, 51), freed.All());
    reaper.Start();  // again, and left to the destructor
    reaper.Add(51);
  }
  EXPECT_EQ(Range(1, 52), freed.All());
}

}  // namespace
}  // namespace tierfs

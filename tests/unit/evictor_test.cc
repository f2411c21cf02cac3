// The evictor's choices (least recently used first, just enough to get
// below the low watermark), its backoff while the HDD tier is unusable, and
// the watermark syntax.
#include "tiering/evictor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace tierfs {
namespace {

TEST(EvictorTest, PicksOldestFirstUntilBelowTarget) {
  std::vector<EvictionCandidate> all = {
      {1, 100, 30, ""}, {2, 100, 10, ""}, {3, 100, 20, ""}, {4, 100, 40, ""}, {5, 100, 5, ""}};
  auto picked = PickEvictions(all, 1000, 800);
  ASSERT_EQ(3u, picked.size());  // 1000 -> 900 -> 800 -> 700
  EXPECT_EQ(5u, picked[0].ino);
  EXPECT_EQ(2u, picked[1].ino);
  EXPECT_EQ(3u, picked[2].ino);
  EXPECT_TRUE(PickEvictions(all, 700, 800).empty());
  EXPECT_EQ(5u, PickEvictions(all, 100000, 10).size());  // all, when not enough
}

struct FakeTiers {
  std::atomic<uint64_t> used{95};
  uint64_t capacity = 100;
  Status hdd = Status::Ok();
  std::vector<uint64_t> moved;
  EvictorHooks Hooks() {
    EvictorHooks h;
    h.usage = [this](uint64_t* u, uint64_t* c) {
      *u = used;
      *c = capacity;
      return Status::Ok();
    };
    h.hdd_health = [this] { return hdd; };
    h.candidates = [](std::vector<EvictionCandidate>* out) {
      *out = {{7, 10, 2, ""}, {8, 10, 1, ""}, {9, 10, 3, ""}};
      return Status::Ok();
    };
    h.move_to_hdd = [this](const EvictionCandidate& c) {
      const uint64_t ino = c.ino;
      if (!hdd.ok()) return hdd;
      moved.push_back(ino);
      used -= 10;
      return Status::Ok();
    };
    return h;
  }
};

TEST(EvictorTest, MovesOnlyAboveHighAndStopsBelowLow) {
  FakeTiers t;
  Evictor e(t.Hooks(), Watermarks{0.9, 0.75});
  EXPECT_EQ(3, e.RunOnce());  // 95 -> 85 -> 75 -> 65: below the low watermark
  EXPECT_EQ((std::vector<uint64_t>{8, 7, 9}), t.moved);
  t.used = 80;  // between low and high: nothing to do
  EXPECT_EQ(0, e.RunOnce());
}

TEST(EvictorTest, AnUnusableHddTierStopsMovesWithoutFailingAnything) {
  FakeTiers t;
  t.hdd = Status::Error(EIO, "hdd tier /x is unreachable");
  Evictor e(t.Hooks(), Watermarks{0.9, 0.75});
  EXPECT_EQ(0, e.RunOnce());
  EXPECT_TRUE(t.moved.empty());
  t.hdd = Status::Ok();
  EXPECT_EQ(3, e.RunOnce());
}

TEST(EvictorTest, BackgroundThreadReactsToPoke) {
  FakeTiers t;
  Evictor e(t.Hooks(), Watermarks{0.9, 0.75}, std::chrono::milliseconds(60000));
  e.Start();
  e.Poke();
  for (int i = 0; i < 200 && t.used > 65; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  e.Stop();
  EXPECT_EQ(65u, t.used);
}

// A tier above its high watermark with nothing that may move (other data
// fills it) is said once and then looked at with backoff; before, a pass
// every interval logged "moving 0 files" into that full filesystem.
TEST(EvictorTest, NothingToMoveBacksOffInsteadOfPassingEveryInterval) {
  FakeTiers t;
  std::atomic<int> passes{0};
  EvictorHooks h = t.Hooks();
  const auto usage = h.usage;
  h.usage = [&](uint64_t* u, uint64_t* c) {
    passes++;
    return usage(u, c);
  };
  h.candidates = [](std::vector<EvictionCandidate>* out) {
    out->clear();
    return Status::Ok();
  };
  Evictor e(h, Watermarks{0.9, 0.75}, std::chrono::milliseconds(10));
  e.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  e.Stop();
  EXPECT_LE(passes.load(), 3) << "passes in 500 ms at a 10 ms interval";
  EXPECT_GE(passes.load(), 1);
}

}  // namespace
}  // namespace tierfs

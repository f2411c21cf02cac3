// What the mover's unit tests share: a temporary directory holding an LMDB
// state and two directory tiers (namespace "test"), without a mount, and
// helpers to look at objects, placement, journal records and temporaries.
// A test whose tiers make their calls through a test Io (tiering/fault_io.h,
// tiering/crash_io.h) overrides IoFor.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "meta/store.h"
#include "tiering/io.h"
#include "tiering/tier.h"

namespace tierfs {

// Bytes that differ chunk to chunk, so a misplaced chunk cannot go unseen.
inline std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    s[i] = char(x >> 24);
  }
  return s;
}

// The content of `path`; `exists` says whether it could be opened.
inline std::string Slurp(const std::string& path, bool* exists) {
  std::ifstream f(path, std::ios::binary);
  *exists = bool(f);
  std::stringstream ss;
  if (f) ss << f.rdbuf();
  return ss.str();
}

class TierPairFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tierfs-tiers-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    for (const char* d : {"ssd", "hdd", "state"}) std::filesystem::create_directory(dir_ + "/" + d);
    OpenAll();
  }
  void TearDown() override {
    store_.reset();
    ssd_.reset();
    hdd_.reset();
    std::filesystem::remove_all(dir_);
  }
  // The Io tier `id` makes its object calls through (null: PosixIo).
  virtual std::shared_ptr<Io> IoFor(TierId) { return nullptr; }
  // Also what a restart does: everything reopened from disk.
  void OpenAll() {
    store_.reset();
    ssd_.reset();
    hdd_.reset();
    Status st = Store::Open(dir_ + "/state", &store_);
    ASSERT_TRUE(st.ok()) << st.message();
    st = Tier::Open(TierId::kSsd, dir_ + "/ssd", "test", &ssd_, IoFor(TierId::kSsd));
    ASSERT_TRUE(st.ok()) << st.message();
    st = Tier::Open(TierId::kHdd, dir_ + "/hdd", "test", &hdd_, IoFor(TierId::kHdd));
    ASSERT_TRUE(st.ok()) << st.message();
  }
  std::string Object(const Tier& t, uint64_t ino, bool* exists) {
    return Slurp(t.ObjectPath(ino), exists);
  }
  TierId Placement(uint64_t ino) {
    Inode n;
    EXPECT_TRUE(store_->GetInode(ino, &n).ok());
    return n.tier;
  }
  // Move journal records left.
  size_t Records() {
    std::vector<Store::MoveRecord> recs;
    EXPECT_TRUE(store_->ListMoves(&recs).ok());
    return recs.size();
  }
  // Temporary objects (*.moving) left on either tier.
  int Temps() {
    int n = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_))
      n += e.path().extension() == ".moving";
    return n;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Tier> ssd_, hdd_;
};

}  // namespace tierfs

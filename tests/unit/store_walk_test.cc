// Unit tests of Store::WalkBelow: the one tree walk (meta/store.h).
#include <gtest/gtest.h>
#include <pthread.h>

#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "meta/store.h"
#include "tests/unit/store_fixture.h"

namespace tierfs {
namespace {

class StoreWalkTest : public StoreFixture {
 protected:
  Inode Make(uint64_t parent, const std::string& name, uint32_t mode,
             const std::string& target = "") {
    NewNode node;
    node.mode = mode;
    node.symlink_target = target;
    Inode n;
    Status st = store_->Create(parent, name, node, &n);
    EXPECT_TRUE(st.ok()) << st.message();
    return n;
  }

  // What one visit saw, copied out (the entry's pointers die with the visit).
  struct Seen {
    uint64_t parent = 0;
    std::string name;
    std::string path;
    uint64_t ino = 0;
    std::string symlink_target;
    std::string hold_rule;  // "" when none
  };
  Status Walk(uint64_t ino, const std::string& path, std::vector<Seen>* out) {
    return store_->WalkBelow(ino, path, [&](const Store::TreeEntry& e) {
      out->push_back(
          {e.parent, e.name, e.path, e.inode->ino, e.symlink_target, e.hold ? e.hold->rule : ""});
      return Status::Ok();
    });
  }
};

TEST_F(StoreWalkTest, VisitsTheStartThenEverythingBelowParentsBeforeChildren) {
  Inode top = Make(kRootIno, "top", S_IFDIR | 0755);
  Inode a = Make(top.ino, "a", S_IFDIR | 0755);
  Inode x = Make(a.ino, "x", S_IFREG | 0644);
  Inode y = Make(a.ino, "y", S_IFLNK | 0777, "x");
  Inode b = Make(top.ino, "b", S_IFDIR | 0755);
  Inode z = Make(b.ino, "z", S_IFDIR | 0755);
  Inode f = Make(top.ino, "f", S_IFREG | 0644);
  Make(kRootIno, "outside", S_IFREG | 0644);
  Store::Hold hold;
  hold.rule = "keep";
  ASSERT_TRUE(store_->SetHold(x.ino, hold).ok());

  std::vector<Seen> seen;
  Status st = Walk(top.ino, "/top", &seen);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(7u, seen.size());
  // The start: its own path, no parent or name (it may have several).
  EXPECT_EQ(top.ino, seen[0].ino);
  EXPECT_EQ(0u, seen[0].parent);
  EXPECT_EQ("", seen[0].name);
  EXPECT_EQ("/top", seen[0].path);

  std::map<std::string, Seen> by_path;
  std::set<uint64_t> visited;
  for (const Seen& s : seen) {
    if (s.parent != 0) {
      EXPECT_TRUE(visited.count(s.parent)) << s.path << " came before its parent";
      EXPECT_EQ(s.name, s.path.substr(s.path.rfind('/') + 1));
    }
    visited.insert(s.ino);
    by_path[s.path] = s;
  }
  const std::map<std::string, std::pair<uint64_t, uint64_t>> want = {
      {"/top", {0, top.ino}},       {"/top/a", {top.ino, a.ino}}, {"/top/a/x", {a.ino, x.ino}},
      {"/top/a/y", {a.ino, y.ino}}, {"/top/b", {top.ino, b.ino}}, {"/top/b/z", {b.ino, z.ino}},
      {"/top/f", {top.ino, f.ino}}};
  ASSERT_EQ(want.size(), by_path.size());
  for (const auto& [path, parent_ino] : want) {
    ASSERT_TRUE(by_path.count(path)) << path;
    EXPECT_EQ(parent_ino.first, by_path[path].parent) << path;
    EXPECT_EQ(parent_ino.second, by_path[path].ino) << path;
  }
  EXPECT_EQ("x", by_path["/top/a/y"].symlink_target);
  EXPECT_EQ("keep", by_path["/top/a/x"].hold_rule);
  EXPECT_EQ("", by_path["/top/f"].hold_rule);
}

TEST_F(StoreWalkTest, PathsJoinWithOneSlashAndAnEmptyPathGivesRelativePaths) {
  Inode d = Make(kRootIno, "d", S_IFDIR | 0755);
  Make(d.ino, "f", S_IFREG | 0644);
  for (const auto& [start, want] : std::vector<std::pair<std::string, std::string>>{
           {"", "f"}, {"/", "/f"}, {"/d", "/d/f"}, {"d/", "d/f"}}) {
    std::vector<Seen> seen;
    ASSERT_TRUE(Walk(d.ino, start, &seen).ok());
    ASSERT_EQ(2u, seen.size()) << start;
    EXPECT_EQ(start, seen[0].path);
    EXPECT_EQ(want, seen[1].path) << "below '" << start << "'";
  }
}

// A chain 10000 directories deep, walked on a thread with a 256 KiB stack:
// a walk that recursed per level would overflow it.
TEST_F(StoreWalkTest, ADeepChainIsWalkedWithoutRecursion) {
  constexpr int kDepth = 10000;
  uint64_t dir = kRootIno;
  for (int i = 0; i < kDepth; ++i) dir = Make(dir, "d", S_IFDIR | 0755).ino;
  const uint64_t deepest = dir;

  struct Run {
    Store* store = nullptr;
    Status st;
    size_t visits = 0;
    std::string last_path;
    uint64_t last_ino = 0;
  } run;
  run.store = store_.get();
  pthread_attr_t attr;
  ASSERT_EQ(0, pthread_attr_init(&attr));
  ASSERT_EQ(0, pthread_attr_setstacksize(&attr, 256 << 10));
  pthread_t thread;
  ASSERT_EQ(0, pthread_create(
                   &thread, &attr,
                   [](void* arg) -> void* {
                     auto* r = static_cast<Run*>(arg);
                     r->st = r->store->WalkBelow(kRootIno, "", [&](const Store::TreeEntry& e) {
                       r->visits++;
                       r->last_path = e.path;
                       r->last_ino = e.inode->ino;
                       return Status::Ok();
                     });
                     return nullptr;
                   },
                   &run));
  ASSERT_EQ(0, pthread_join(thread, nullptr));
  pthread_attr_destroy(&attr);
  ASSERT_TRUE(run.st.ok()) << run.st.message();
  EXPECT_EQ(size_t(kDepth) + 1, run.visits);
  EXPECT_EQ(deepest, run.last_ino);
  EXPECT_EQ(size_t(2 * kDepth - 1), run.last_path.size());  // "d/d/.../d"
}

TEST_F(StoreWalkTest, AVisitorErrorStopsTheWalkAndIsReturned) {
  Inode d = Make(kRootIno, "d", S_IFDIR | 0755);
  for (const char* name : {"a", "b", "c", "e"}) Make(d.ino, name, S_IFREG | 0644);
  int visits = 0;
  Status st = store_->WalkBelow(d.ino, "/d", [&](const Store::TreeEntry& e) {
    if (++visits == 3) return Status::Error(EINTR, "stop at " + e.path);
    return Status::Ok();
  });
  EXPECT_EQ(EINTR, st.err());
  EXPECT_EQ("stop at /d/b", st.message());
  EXPECT_EQ(3, visits);

  // An error on the start itself: nothing below is read.
  visits = 0;
  st = store_->WalkBelow(d.ino, "/d", [&](const Store::TreeEntry&) {
    ++visits;
    return Status::Error(EPERM, "no");
  });
  EXPECT_EQ(EPERM, st.err());
  EXPECT_EQ(1, visits);
}

TEST_F(StoreWalkTest, AFileAsTheStartIsVisitedAlone) {
  Inode f = Make(kRootIno, "f", S_IFREG | 0644);
  Inode l = Make(kRootIno, "l", S_IFLNK | 0777, "f");
  std::vector<Seen> seen;
  Status st = Walk(f.ino, "/f", &seen);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(1u, seen.size());
  EXPECT_EQ(f.ino, seen[0].ino);
  EXPECT_EQ("/f", seen[0].path);
  seen.clear();
  ASSERT_TRUE(Walk(l.ino, "/l", &seen).ok());
  ASSERT_EQ(1u, seen.size());
  EXPECT_EQ("f", seen[0].symlink_target);
}

TEST_F(StoreWalkTest, AMissingStartIsENOENTAndNothingIsVisited) {
  std::vector<Seen> seen;
  Status st = Walk(987654, "/gone", &seen);
  EXPECT_EQ(ENOENT, st.err());
  EXPECT_NE(std::string::npos, st.message().find("987654")) << st.message();
  EXPECT_TRUE(seen.empty());
}

TEST_F(StoreWalkTest, ARemovedDirectoryIsVisitedAloneAndAMissingChildIsEIO) {
  Inode gone = Make(kRootIno, "gone", S_IFDIR | 0755);
  Removed removed;
  ASSERT_TRUE(store_->Rmdir(kRootIno, "gone", &removed).ok());
  std::vector<Seen> seen;
  ASSERT_TRUE(Walk(gone.ino, "", &seen).ok());
  EXPECT_EQ(1u, seen.size());

  // A damaged state: an entry naming an inode that is not there.
  Inode d = Make(kRootIno, "d", S_IFDIR | 0755);
  Inode f = Make(d.ino, "f", S_IFREG | 0644);
  ASSERT_TRUE(store_->DeleteInode(f.ino).ok());
  seen.clear();
  Status st = Walk(d.ino, "/d", &seen);
  EXPECT_EQ(EIO, st.err());
  EXPECT_NE(std::string::npos, st.message().find("/d/f")) << st.message();
}

TEST_F(StoreWalkTest, OneSnapshotWritersAreNeitherBlockedNorSeen) {
  Inode d = Make(kRootIno, "d", S_IFDIR | 0755);
  Inode sub = Make(d.ino, "sub", S_IFDIR | 0755);
  Make(sub.ino, "f", S_IFREG | 0644);
  std::vector<std::string> paths;
  Status st = store_->WalkBelow(d.ino, "/d", [&](const Store::TreeEntry& e) {
    if (e.parent == 0) {  // before anything below is read
      std::thread([&] {
        Removed r;
        EXPECT_TRUE(store_->Unlink(sub.ino, "f", &r).ok());
        Make(d.ino, "late", S_IFREG | 0644);
      }).join();
    }
    paths.push_back(e.path);
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ((std::vector<std::string>{"/d", "/d/sub", "/d/sub/f"}), paths);
}

}  // namespace
}  // namespace tierfs

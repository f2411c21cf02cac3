// Unit tests of fs/inode_table: the names the kernel knows inodes by
// (KnownPath through renames and forgets), lookup counts and orphans, and
// the live state moves respect.
#include "fs/inode_table.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace tierfs {
namespace {

constexpr uint64_t kRoot = 1;

TEST(InodeTableTest, KnownPathFollowsLookupsAndRenames) {
  InodeTable t;
  t.Ref(2, kRoot, "a");
  t.Ref(3, 2, "b");
  t.Ref(4, 3, "c");
  EXPECT_EQ("/a/b/c", t.KnownPath(4));
  EXPECT_EQ("/a", t.KnownPath(2));
  EXPECT_EQ("/", t.KnownPath(kRoot));
  // Renaming a directory renames everything below it.
  t.Rename(2, kRoot, "x");
  EXPECT_EQ("/x/b/c", t.KnownPath(4));
  // Moving a file to another directory.
  t.Rename(4, kRoot, "top");
  EXPECT_EQ("/top", t.KnownPath(4));
  // A later lookup by another name (a hard link) is the name used.
  t.Ref(4, 3, "link");
  EXPECT_EQ("/x/b/link", t.KnownPath(4));
  // A lookup without a parent (0: the kernel gave none) keeps the name.
  t.Ref(4, 0, "");
  EXPECT_EQ("/x/b/link", t.KnownPath(4));
}

TEST(InodeTableTest, KnownPathIsEmptyWhenALinkOfTheChainIsUnknown) {
  InodeTable t;
  EXPECT_EQ("", t.KnownPath(7));  // never looked up
  t.Ref(2, kRoot, "a");
  t.Ref(3, 2, "b");
  t.Ref(4, 3, "c");
  // The kernel forgets the middle directory (its lookups drop to 0).
  EXPECT_FALSE(t.Forget(3, 1));
  EXPECT_EQ("", t.KnownPath(4));
  EXPECT_EQ("/a", t.KnownPath(2));
  // Renaming an inode the table does not know does not make it known.
  t.Rename(3, 2, "b");
  EXPECT_EQ("", t.KnownPath(4));
  // Known again.
  t.Ref(3, 2, "b2");
  EXPECT_EQ("/a/b2/c", t.KnownPath(4));
}

TEST(InodeTableTest, KnownPathOfALoopInStaleNamesEnds) {
  InodeTable t;
  t.Ref(2, 3, "a");
  t.Ref(3, 2, "b");
  EXPECT_EQ("", t.KnownPath(2));
}

TEST(InodeTableTest, ForgetCountsLookupsAndFreesOrphansOnTheLast) {
  InodeTable t;
  t.Ref(5, kRoot, "f");
  t.Ref(5, kRoot, "f");
  EXPECT_FALSE(t.MarkOrphan(5));  // the kernel still references it
  EXPECT_FALSE(t.Forget(5, 1));
  EXPECT_TRUE(t.Forget(5, 1));   // the last reference of an orphan: free it
  EXPECT_FALSE(t.Forget(5, 1));  // unknown now
  EXPECT_TRUE(t.MarkOrphan(5));  // not referenced: free it at once
  // A referenced inode that is not an orphan is not freed by its last forget.
  t.Ref(6, kRoot, "g");
  EXPECT_FALSE(t.Forget(6, 3));
  EXPECT_EQ("", t.KnownPath(6));
}

TEST(InodeTableTest, BusySinceSeesWritersPassthroughAndLaterWrites) {
  InodeTable t;
  EXPECT_FALSE(t.BusySince(9, 0));  // unknown
  auto live = t.Live(9);
  const uint64_t since = t.epoch();
  EXPECT_FALSE(t.BusySince(9, since));
  live->writers++;
  EXPECT_TRUE(t.BusySince(9, since));
  live->writers--;
  live->passthrough_handles++;
  EXPECT_TRUE(t.BusySince(9, since));
  live->passthrough_handles--;
  EXPECT_FALSE(t.BusySince(9, since));
  const uint64_t e = t.NoteWrite(*live);
  EXPECT_GT(e, since);
  EXPECT_TRUE(t.BusySince(9, since));
  EXPECT_FALSE(t.BusySince(9, e));
  // The same state for every caller while referenced.
  EXPECT_EQ(live.get(), t.Live(9).get());
}

TEST(InodeTableTest, OpenInodesAndLastOpen) {
  InodeTable t;
  t.Live(2)->handles++;
  t.Live(3);
  t.Live(4)->handles++;
  t.Live(4)->last_open_ns = 1234;
  auto open = t.OpenInodes();
  std::sort(open.begin(), open.end());
  EXPECT_EQ((std::vector<uint64_t>{2, 4}), open);
  EXPECT_EQ(1234, t.LastOpen(4));
  EXPECT_EQ(0, t.LastOpen(3));
  EXPECT_EQ(0, t.LastOpen(99));
}

TEST(InodeTableTest, FindLiveNeverCreatesAnEntry) {
  InodeTable t;
  EXPECT_EQ(nullptr, t.FindLive(8));
  EXPECT_TRUE(t.MarkOrphan(8));  // still unknown: the caller frees it now
  auto live = t.Live(8);
  EXPECT_EQ(live.get(), t.FindLive(8).get());
}

}  // namespace
}  // namespace tierfs

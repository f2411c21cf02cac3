// Unit tests of fs/tree_ops: what the policy engine does to the tree
// (RemovePath and its refusals, deferral around a locked request, moves,
// holds, limits), without a mount: no session, so no kernel notification.
#include "fs/tree_ops.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <map>

#include "fs/holds.h"
#include "fs/space.h"
#include "tests/unit/fs_units_fixture.h"

namespace tierfs {
namespace {

uint64_t Xxh3(const std::string& s) {
  return XXH3_64bits(s.data(), s.size());
}

class TreeOpsTest : public FsUnitsFixture {
 protected:
  void SetUp() override {
    FsUnitsFixture::SetUp();
    if (HasFatalFailure()) return;
    holds_ = std::make_unique<Holds>(*store_);
    space_ = std::make_unique<Space>(*store_, tiers(), table_, *placement_, Watermarks{});
    TreeOps::Parts parts;
    parts.store = store_.get();
    parts.tiers = tiers();
    parts.table = &table_;
    parts.placement = placement_.get();
    parts.holds = holds_.get();
    parts.space = space_.get();
    parts.options = &options_;
    parts.audit = [this](const std::vector<AuditRecord>& recs) {
      std::lock_guard<std::mutex> lock(audit_mu_);
      audit_.insert(audit_.end(), recs.begin(), recs.end());
    };
    // As the daemon does (Context::OnRemoved): the last link gone, the inode
    // is freed now unless the kernel still references it.
    parts.on_removed = [this](const Removed& r) {
      removed_.push_back(r);
      if (after_removed_) after_removed_(r);
      if (r.ino != 0 && r.nlink == 0 && table_.MarkOrphan(r.ino)) freed_.push_back(r.ino);
    };
    ops_ = std::make_unique<TreeOps>(std::move(parts));
  }
  void TearDown() override {
    ops_.reset();
    space_.reset();
    holds_.reset();
    FsUnitsFixture::TearDown();
  }
  bool Exists(uint64_t parent, const std::string& name) {
    Inode n;
    return store_->Lookup(parent, name, &n).ok();
  }

  Options options_;
  std::unique_ptr<Holds> holds_;
  std::unique_ptr<Space> space_;
  std::unique_ptr<TreeOps> ops_;
  std::vector<Removed> removed_;
  std::vector<uint64_t> freed_;                        // inodes on_removed would free at once
  std::function<void(const Removed&)> after_removed_;  // a test's doing meanwhile
};

// /gen/a (content), /gen/sub/b (content), /gen/sub/empty (no object yet).
struct Generation {
  uint64_t gen, sub, a, b, empty;
  std::string a_content, b_content;
};

TEST_F(TreeOpsTest, RemovePathRemovesATreeChildrenFirstAndListsItsFilesWithChecksums) {
  Generation g;
  g.gen = MakeDir(kRootIno, "gen");
  g.sub = MakeDir(g.gen, "sub");
  g.a = MakeFile(g.gen, "a", g.a_content = Pattern(3000, 5));
  g.b = MakeFile(g.sub, "b", g.b_content = Pattern(70000, 6));
  g.empty = MakeFile(g.sub, "empty", "");
  const uint64_t keep = MakeFile(kRootIno, "keep", "x");
  std::vector<RemovedFile> files;
  Status st = ops_->RemovePath("/gen", g.gen, &files);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_FALSE(Exists(kRootIno, "gen"));
  EXPECT_TRUE(Exists(kRootIno, "keep"));
  Inode n;
  EXPECT_TRUE(store_->GetInode(keep, &n).ok());

  std::map<std::string, RemovedFile> by_path;
  for (const RemovedFile& f : files) by_path[f.path] = f;
  ASSERT_EQ(3u, files.size());
  ASSERT_EQ(3u, by_path.size());
  EXPECT_EQ(g.a, by_path["/gen/a"].ino);
  EXPECT_EQ(g.a_content.size(), by_path["/gen/a"].bytes);
  EXPECT_EQ(Xxh3(g.a_content), by_path["/gen/a"].checksum);
  EXPECT_EQ(g.b, by_path["/gen/sub/b"].ino);
  EXPECT_EQ(g.b_content.size(), by_path["/gen/sub/b"].bytes);
  EXPECT_EQ(Xxh3(g.b_content), by_path["/gen/sub/b"].checksum);
  EXPECT_EQ(0u, by_path["/gen/sub/empty"].bytes);
  EXPECT_EQ(Xxh3(""), by_path["/gen/sub/empty"].checksum);

  // Every entry removed once, each child before its directory.
  std::vector<uint64_t> order;
  for (const Removed& r : removed_) order.push_back(r.ino);
  ASSERT_EQ(5u, order.size());
  auto pos = [&](uint64_t ino) {
    return std::find(order.begin(), order.end(), ino) - order.begin();
  };
  for (uint64_t ino : {g.gen, g.sub, g.a, g.b, g.empty}) EXPECT_LT(pos(ino), 5) << ino;
  EXPECT_LT(pos(g.b), pos(g.sub));
  EXPECT_LT(pos(g.empty), pos(g.sub));
  EXPECT_LT(pos(g.sub), pos(g.gen));
  EXPECT_LT(pos(g.a), pos(g.gen));
  for (const Removed& r : removed_) EXPECT_EQ(0u, r.nlink) << r.ino;
  EXPECT_EQ(5u, freed_.size());  // the kernel references none of them
}

// The default policy's course: a generation migrates to the HDD tier, and is
// thinned later, with no lookup by the kernel in between (after a remount,
// or once the kernel forgot it). Its inode must be freed when thinned: the
// move used to leave an entry in the InodeTable, so MarkOrphan waited for a
// Forget that never came, and the object stayed on the HDD tier until the
// next mount.
TEST_F(TreeOpsTest, AFileMovedThenThinnedIsFreedAtOnce) {
  const uint64_t gen = MakeDir(kRootIno, "gen");
  const uint64_t f = MakeFile(gen, "f", Pattern(4096, 7));
  ASSERT_TRUE(ops_->Move(gen, TierId::kHdd, "to-hdd", "/gen").ok());
  ASSERT_EQ(TierId::kHdd, Placement(f));
  std::vector<RemovedFile> files;
  Status st = ops_->RemovePath("/gen", gen, &files);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_NE(std::find(freed_.begin(), freed_.end(), f), freed_.end())
      << "inode " << f << " left waiting for a forget";
  // A file the kernel does reference waits for its last forget.
  const uint64_t dir = MakeDir(kRootIno, "dir");
  const uint64_t g = MakeFile(dir, "g", "bytes");
  table_.Ref(g, dir, "g");
  ASSERT_TRUE(ops_->Move(g, TierId::kHdd, "to-hdd", "/dir/g").ok());
  ASSERT_TRUE(ops_->RemovePath("/dir/g", g, &files).ok());
  EXPECT_EQ(std::find(freed_.begin(), freed_.end(), g), freed_.end());
  EXPECT_TRUE(table_.Forget(g, 1));
}

// A rule moves a file to the SSD tier only while the tier stays below its
// high watermark after it: the evictor (above the high watermark)
// and a keep-newest-on-ssd rule traded the same files back and forth for
// ever when the newest generations were larger than the tier allowed.
TEST_F(TreeOpsTest, ARuleMovesToSsdOnlyBelowTheHighWatermark) {
  const uint64_t f = MakeFile(kRootIno, "f", Pattern(4096, 8));
  ASSERT_TRUE(ops_->Move(f, TierId::kHdd, "to-hdd", "/f").ok());
  space_->SetWatermarks(Watermarks{2e-9, 1e-9});  // any byte is past it
  Status st = ops_->Move(f, TierId::kSsd, "keep-newest-on-ssd", "/f");
  EXPECT_EQ(EBUSY, st.err()) << st.message();
  EXPECT_NE(std::string::npos, st.message().find("high watermark")) << st.message();
  EXPECT_EQ(TierId::kHdd, Placement(f));
  space_->SetWatermarks(Watermarks{0.999, 0.99});
  st = ops_->Move(f, TierId::kSsd, "keep-newest-on-ssd", "/f");
  EXPECT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(TierId::kSsd, Placement(f));
}

// A file created in the generation while it is being removed (after the
// snapshot) makes its directory's rmdir fail: what was removed by then is
// gone, and `files` must list exactly that, so that each is audited. It
// used to list every file of the snapshot, removed or not.
TEST_F(TreeOpsTest, APartlyFailedRemovalListsOnlyTheFilesItRemoved) {
  const uint64_t gen = MakeDir(kRootIno, "gen");
  MakeFile(gen, "a", "aaa");
  const uint64_t sub = MakeDir(gen, "sub");
  const uint64_t b = MakeFile(sub, "b", "bbb");
  // Children first, in reverse walk order: /gen/sub/b, /gen/sub, /gen/a, /gen.
  after_removed_ = [&](const Removed& r) {
    if (r.ino == b) MakeFile(sub, "late", "new");
  };
  std::vector<RemovedFile> files;
  Status st = ops_->RemovePath("/gen", gen, &files);
  EXPECT_EQ(ENOTEMPTY, st.err()) << st.message();
  EXPECT_FALSE(Exists(sub, "b"));
  EXPECT_TRUE(Exists(gen, "a"));
  ASSERT_EQ(1u, files.size());
  EXPECT_EQ("/gen/sub/b", files[0].path);
  EXPECT_EQ(b, files[0].ino);
  EXPECT_EQ(Xxh3("bbb"), files[0].checksum);
}

TEST_F(TreeOpsTest, RemovePathOfAFileKeepsAHardLinkOutside) {
  const uint64_t gen = MakeDir(kRootIno, "gen");
  const uint64_t f = MakeFile(gen, "f", "data");
  Inode linked;
  ASSERT_TRUE(store_->Link(f, kRootIno, "outside", &linked).ok());
  std::vector<RemovedFile> files;
  ASSERT_TRUE(ops_->RemovePath("/gen", gen, &files).ok());
  ASSERT_EQ(1u, files.size());
  EXPECT_EQ("/gen/f", files[0].path);
  EXPECT_TRUE(Exists(kRootIno, "outside"));
  bool exists = false;
  EXPECT_EQ("data", Object(*ssd_, f, &exists));
  const auto it =
      std::find_if(removed_.begin(), removed_.end(), [&](const Removed& r) { return r.ino == f; });
  ASSERT_NE(it, removed_.end());
  EXPECT_EQ(1u, it->nlink);
}

TEST_F(TreeOpsTest, RemovePathRefusesAnOpenFileAndRemovesNothing) {
  const uint64_t gen = MakeDir(kRootIno, "gen");
  MakeFile(gen, "a", "a");
  const uint64_t open = MakeFile(gen, "open", "o");
  table_.Live(open)->handles++;
  std::vector<RemovedFile> files;
  Status st = ops_->RemovePath("/gen", gen, &files);
  EXPECT_EQ(EBUSY, st.err());
  EXPECT_NE(std::string::npos, st.message().find("/gen/open")) << st.message();
  EXPECT_EQ(std::string::npos, st.message().find("deferred:")) << st.message();
  EXPECT_TRUE(Exists(gen, "a"));
  EXPECT_TRUE(Exists(gen, "open"));
  EXPECT_TRUE(files.empty());
  EXPECT_TRUE(removed_.empty());
}

TEST_F(TreeOpsTest, RemovePathRefusesAHeldFileNamingTheRule) {
  const uint64_t gen = MakeDir(kRootIno, "gen");
  MakeFile(gen, "a", "a");
  const uint64_t held = MakeFile(gen, "held", "h");
  Store::Hold h;
  h.rule = "keep-best";
  h.until_ns = NowNs() + int64_t(3600) * 1000000000;
  ASSERT_TRUE(store_->SetHold(held, h).ok());
  std::vector<RemovedFile> files;
  Status st = ops_->RemovePath("/gen", gen, &files);
  EXPECT_EQ(EPERM, st.err());
  EXPECT_NE(std::string::npos, st.message().find("'keep-best'")) << st.message();
  EXPECT_TRUE(Exists(gen, "a"));
  EXPECT_TRUE(removed_.empty());
  // An expired hold no longer protects it.
  h.until_ns = NowNs() - 1;
  ASSERT_TRUE(store_->SetHold(held, h).ok());
  st = ops_->RemovePath("/gen", gen, &files);
  EXPECT_TRUE(st.ok()) << st.message();
  EXPECT_FALSE(Exists(kRootIno, "gen"));
}

TEST_F(TreeOpsTest, RemovePathOfAStalePathIsEstale) {
  const uint64_t gen = MakeDir(kRootIno, "gen");
  const uint64_t other = MakeDir(kRootIno, "other");
  std::vector<RemovedFile> files;
  // The name now leads to another inode (a rename since the scan).
  EXPECT_EQ(ESTALE, ops_->RemovePath("/gen", other, &files).err());
  // The name is gone.
  EXPECT_EQ(ESTALE, ops_->RemovePath("/missing", gen, &files).err());
  EXPECT_EQ(ESTALE, ops_->RemovePath("/gen/x/y", gen, &files).err());
  EXPECT_TRUE(Exists(kRootIno, "gen"));
  EXPECT_TRUE(Exists(kRootIno, "other"));
  EXPECT_TRUE(removed_.empty());
}

TEST_F(TreeOpsTest, RemovePathRefusesTheRoot) {
  MakeFile(kRootIno, "f", "x");
  std::vector<RemovedFile> files;
  EXPECT_EQ(EINVAL, ops_->RemovePath("/", kRootIno, &files).err());
  EXPECT_EQ(EINVAL, ops_->RemovePath("", kRootIno, &files).err());
  EXPECT_TRUE(Exists(kRootIno, "f"));
}

TEST_F(TreeOpsTest, RemovePathIsDeferredWhileALockedRequestRunsOnItsParentOrBelow) {
  const uint64_t dir = MakeDir(kRootIno, "run");
  const uint64_t gen = MakeDir(dir, "gen");
  const uint64_t f = MakeFile(gen, "f", "x");
  for (uint64_t locked : {dir, gen, f}) {
    ASSERT_TRUE(ops_->BeginLockedRequest(locked, "setxattr").ok());
    std::vector<RemovedFile> files;
    Status st = ops_->RemovePath("/run/gen", gen, &files);
    EXPECT_EQ(EBUSY, st.err()) << locked;
    EXPECT_EQ(0u, st.message().rfind("deferred:", 0)) << st.message();
    EXPECT_NE(std::string::npos, st.message().find("inode " + std::to_string(locked)))
        << st.message();
    EXPECT_TRUE(Exists(dir, "gen"));
    EXPECT_TRUE(removed_.empty());
    EXPECT_TRUE(files.empty());  // nothing was removed
    ops_->EndLockedRequest(locked);
  }
  // A locked request elsewhere does not hold the removal back.
  const uint64_t elsewhere = MakeDir(kRootIno, "elsewhere");
  ASSERT_TRUE(ops_->BeginLockedRequest(elsewhere, "setxattr").ok());
  std::vector<RemovedFile> files;
  Status st = ops_->RemovePath("/run/gen", gen, &files);
  EXPECT_TRUE(st.ok()) << st.message();
  ops_->EndLockedRequest(elsewhere);
  EXPECT_FALSE(Exists(dir, "gen"));
  // Nothing is left marked as being notified: a request on the parent runs.
  EXPECT_TRUE(ops_->BeginLockedRequest(dir, "setxattr").ok());
  ops_->EndLockedRequest(dir);
}

// Any request in flight on the parent or below (the kernel may hold its
// lock: a create, a lookup, a rename) defers the removal too: a kill -9 while
// the notification waited for that lock left the daemon unkillable.
TEST_F(TreeOpsTest, RemovePathIsDeferredWhileAnyRequestRunsOnItsParentOrBelow) {
  const uint64_t dir = MakeDir(kRootIno, "run");
  const uint64_t gen = MakeDir(dir, "gen");
  const uint64_t f = MakeFile(gen, "f", "x");
  for (uint64_t busy : {dir, gen, f}) {
    ops_->EnterRequest(busy);
    std::vector<RemovedFile> files;
    Status st = ops_->RemovePath("/run/gen", gen, &files);
    EXPECT_EQ(EBUSY, st.err()) << busy;
    EXPECT_EQ(0u, st.message().rfind("deferred: a request", 0)) << st.message();
    EXPECT_TRUE(Exists(dir, "gen"));
    EXPECT_TRUE(files.empty());
    ops_->ExitRequest(busy);
  }
  std::vector<RemovedFile> files;
  Status st = ops_->RemovePath("/run/gen", gen, &files);
  EXPECT_TRUE(st.ok()) << st.message();
  EXPECT_FALSE(Exists(dir, "gen"));
}

// The other half of the handshake: while a removal tells the kernel (here,
// between its removals), a request that would hold a lock it needs must
// reply at once instead of starting.
TEST_F(TreeOpsTest, ALockedRequestIsRefusedWhileARemovalNotifiesItsInodes) {
  const uint64_t dir = MakeDir(kRootIno, "run");
  const uint64_t gen = MakeDir(dir, "gen");
  MakeFile(gen, "f", "x");
  const uint64_t other = MakeDir(kRootIno, "other");
  std::vector<Status> during;
  after_removed_ = [&](const Removed&) {
    for (uint64_t ino : {dir, gen, other}) {
      Status st = ops_->BeginLockedRequest(ino, "setxattr");
      if (st.ok()) ops_->EndLockedRequest(ino);
      during.push_back(st);
    }
  };
  std::vector<RemovedFile> files;
  ASSERT_TRUE(ops_->RemovePath("/run/gen", gen, &files).ok());
  ASSERT_EQ(6u, during.size());  // two removals, three requests each
  for (size_t i = 0; i < during.size(); i += 3) {
    EXPECT_EQ(EBUSY, during[i].err()) << "the parent";
    EXPECT_NE(std::string::npos, during[i].message().find("retry")) << during[i].message();
    EXPECT_EQ(EBUSY, during[i + 1].err()) << "the generation";
    EXPECT_TRUE(during[i + 2].ok()) << "elsewhere: " << during[i + 2].message();
  }
  // Done: requests run again.
  EXPECT_TRUE(ops_->BeginLockedRequest(dir, "setxattr").ok());
  ops_->EndLockedRequest(dir);
}

TEST_F(TreeOpsTest, MoveOfADirectoryMovesItsFilesAndOfAFileTheFile) {
  const uint64_t dir = MakeDir(kRootIno, "d");
  const uint64_t a = MakeFile(dir, "a", "aaa");
  const uint64_t b = MakeFile(kRootIno, "b", "bbb");
  Status st = ops_->Move(dir, TierId::kHdd, "rule-x", "/d");
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(TierId::kHdd, Placement(a));
  EXPECT_EQ(TierId::kSsd, Placement(b));
  st = ops_->Move(b, TierId::kHdd, "rule-x", "/b");
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(TierId::kHdd, Placement(b));
  // Already there: nothing more is recorded.
  ASSERT_TRUE(ops_->Move(b, TierId::kHdd, "rule-x", "/b").ok());
  const auto recs = AuditRecords();
  ASSERT_EQ(2u, recs.size());
  EXPECT_EQ("/d/a", recs[0].path);
  EXPECT_EQ("/b", recs[1].path);
  for (const AuditRecord& r : recs) EXPECT_EQ("rule-x", r.rule);
}

TEST_F(TreeOpsTest, HoldsGoThroughTheHoldsUnit) {
  const uint64_t dir = MakeDir(kRootIno, "d");
  const uint64_t f = MakeFile(dir, "f", "x");
  Store::Hold h;
  h.rule = "pin";
  h.immutable = true;
  h.until_ns = NowNs() + int64_t(3600) * 1000000000;
  int changed = 0;
  ASSERT_TRUE(ops_->HoldTree(dir, h, &changed).ok());
  EXPECT_EQ(2, changed);
  // Counted by the unit that checks mutability.
  EXPECT_EQ(EPERM, holds_->CheckMutable(f, "write").err());
  std::vector<AuditRecord> records;
  EXPECT_EQ(2, ops_->ExpireHolds(h.until_ns + 1, &records));
  EXPECT_EQ(2u, records.size());
  EXPECT_TRUE(holds_->CheckMutable(f, "write").ok());
}

TEST_F(TreeOpsTest, SetLimitsTakesThePolicysLimitsUnlessTheCommandLineGaveThem) {
  TierLimits policy;
  policy.watermarks = {0.5, 0.3};
  policy.max_moves = 7;
  policy.move_bytes_per_sec = 1000;
  ops_->SetLimits(policy);
  EXPECT_EQ(7u, placement_->max_moves());
  EXPECT_DOUBLE_EQ(0.5, space_->watermarks().high);
  // The command line's win.
  options_.max_moves = 3;
  options_.watermarks = Watermarks{0.8, 0.6};
  ops_->SetLimits(policy);
  EXPECT_EQ(3u, placement_->max_moves());
  EXPECT_DOUBLE_EQ(0.8, space_->watermarks().high);
}

TEST(EffectiveLimitsTest, OptionsGivenWinFieldByField) {
  TierLimits policy;
  policy.watermarks = {0.5, 0.3};
  policy.move_bytes_per_sec = 1000;
  policy.max_moves = 7;
  Options options;
  TierLimits got = EffectiveLimits(options, policy);
  EXPECT_DOUBLE_EQ(0.5, got.watermarks.high);
  EXPECT_DOUBLE_EQ(0.3, got.watermarks.low);
  EXPECT_EQ(1000u, got.move_bytes_per_sec);
  EXPECT_EQ(7u, got.max_moves);
  options.move_bytes_per_sec = 0;  // given as unlimited: still given
  got = EffectiveLimits(options, policy);
  EXPECT_EQ(0u, got.move_bytes_per_sec);
  EXPECT_EQ(7u, got.max_moves);
  EXPECT_DOUBLE_EQ(0.5, got.watermarks.high);
  options.watermarks = Watermarks{0.95, 0.85};
  options.max_moves = 1;
  got = EffectiveLimits(options, policy);
  EXPECT_DOUBLE_EQ(0.95, got.watermarks.high);
  EXPECT_DOUBLE_EQ(0.85, got.watermarks.low);
  EXPECT_EQ(1u, got.max_moves);
}

}  // namespace
}  // namespace tierfs

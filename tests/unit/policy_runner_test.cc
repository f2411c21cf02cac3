// Unit tests of fs/policy_runner driven through a fake EngineTree (a small
// in-memory tree): what the runner asks of the tree for a plan, and what it
// audits. No Store, no mount.
#include "fs/policy_runner.h"

#include <gtest/gtest.h>
#include <linux/limits.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <optional>

namespace tierfs {
namespace {

constexpr int64_t kDayNs = int64_t(86400) * 1000000000;

// An in-memory tree: entries in the order Walk visits them (each directory
// before its children), removals as the daemon's TreeOps would report them.
class FakeTree : public EngineTree {
 public:
  FakeTree() { Add("/", true, 0); }
  uint64_t Add(const std::string& path, bool dir, uint64_t size) {
    Entry e;
    e.path = path;
    e.inode.ino = entries_.size() + 1;
    e.inode.mode = dir ? (S_IFDIR | 0755) : (S_IFREG | 0644);
    e.inode.size = size;
    e.inode.uid = 1000;
    e.inode.mtime_ns = e.inode.atime_ns = e.inode.ctime_ns = NowNs() - kDayNs;
    entries_.push_back(e);
    return e.inode.ino;
  }
  // The file at `path` as a move to the HDD tier and a retention rule
  // leave it: on HDD, with a checksum, held by rule `rule`.
  void Archive(const std::string& path, const std::string& rule) {
    for (Entry& e : entries_) {
      if (e.path != path) continue;
      e.inode.tier = TierId::kHdd;
      e.inode.checksum = 0xabc0 + e.inode.ino;
      Store::Hold h;
      h.rule = rule;
      h.since_ns = NowNs();
      e.hold = h;
    }
  }
  uint64_t Ino(const std::string& path) const {
    for (const Entry& e : entries_)
      if (e.path == path) return e.inode.ino;
    return 0;
  }

  Status Walk(const std::function<Status(const Store::TreeEntry&)>& visit) override {
    for (const Entry& e : entries_) {
      if (e.path == "/") continue;
      Store::TreeEntry t;
      const size_t slash = e.path.rfind('/');
      t.parent = Ino(slash == 0 ? "/" : e.path.substr(0, slash));
      t.name = e.path.substr(slash + 1);
      t.path = e.path;
      t.inode = &e.inode;
      t.hold = e.hold ? &*e.hold : nullptr;
      Status st = visit(t);
      if (!st.ok()) return st;
    }
    return Status::Ok();
  }
  std::vector<uint64_t> OpenInodes() override { return {}; }
  int64_t LastOpen(uint64_t) override { return 0; }
  Status ReadPointer(const Inode&, size_t, std::string* out) override {
    out->clear();
    return Status::Ok();
  }
  Status Move(uint64_t ino, TierId to, const std::string&, const std::string& path) override {
    moves.push_back(path);
    for (Entry& e : entries_)
      if (e.inode.ino == ino) e.inode.tier = to;
    return Status::Ok();
  }
  // As TreeOps does: refusals first, then `before` with what will go,
  // then the removal (with `fail_after_first`, only the first file goes).
  Status RemovePath(const std::string& path, uint64_t ino, const BeforeRemoving& before,
                    std::vector<RemovedFile>* files) override {
    files->clear();
    removals.push_back(path);
    if (!refuse_with.ok()) return refuse_with;
    if (Ino(path) != ino) return Status::Error(ESTALE, path + " no longer names it");
    std::vector<Entry> kept;
    std::vector<RemovedFile> going;
    for (const Entry& e : entries_) {
      const bool below = e.path == path || e.path.rfind(path + "/", 0) == 0;
      if (!below) kept.push_back(e);
      if (below && e.inode.is_reg())
        going.push_back(RemovedFile{e.path, e.inode.ino, e.inode.size, 0x1000 + e.inode.ino});
    }
    if (before) {
      Status st = before(going);
      if (!st.ok()) return st;
    }
    if (!fail_after_first.ok()) {
      files->push_back(going.front());
      std::erase_if(entries_, [&](const Entry& e) { return e.path == going.front().path; });
      return fail_after_first;
    }
    *files = going;
    entries_ = std::move(kept);
    return Status::Ok();
  }
  Status HoldTree(uint64_t, const Store::Hold&, int* changed) override {
    *changed = 0;
    return Status::Ok();
  }
  int ExpireHolds(int64_t, std::vector<AuditRecord>*) override { return 0; }
  void Audit(const std::vector<AuditRecord>& records) override {
    audited.insert(audited.end(), records.begin(), records.end());
  }
  Status Journal(const std::vector<AuditRecord>& records) override {
    if (!journal_error.ok()) return journal_error;
    Audit(records);
    return Status::Ok();
  }
  void SetLimits(const TierLimits&) override {}
  Status WriteManifest(const std::string& name, const std::string& text) override {
    if (!manifest_error.ok()) return manifest_error;
    manifests[name] = text;
    return Status::Ok();
  }
  std::map<std::string, std::string> manifests;
  Status manifest_error;  // what WriteManifest answers instead, when set

  std::vector<std::string> moves, removals;
  std::vector<AuditRecord> audited;
  Status refuse_with;       // what RemovePath answers instead of removing, when set
  Status fail_after_first;  // what it answers after removing one file, when set
  Status journal_error;     // what Journal answers instead of journaling, when set

 private:
  struct Entry {
    std::string path;
    Inode inode;
    std::optional<Store::Hold> hold;
  };
  std::vector<Entry> entries_;
};

Policy PolicyOf(const std::string& text) {
  Policy policy;
  Status st = ParsePolicy(text, "test.toml", &policy);
  EXPECT_TRUE(st.ok()) << st.message();
  return policy;
}

// Three generations of two files each; the policy thins all but the newest.
const std::string kThinOld =
    "[[series]]\nname = \"hf\"\npattern = \"**/checkpoint-{gen}\"\ncomplete = \"rename\"\n"
    "[[rule]]\nname = \"thin-old\"\nseries = \"*\"\nolder_than_newest = 1\naction = \"thin\"\n";

void ThreeGenerations(FakeTree* tree) {
  tree->Add("/r", true, 0);
  for (int g : {100, 200, 300}) {
    const std::string dir = "/r/checkpoint-" + std::to_string(g);
    tree->Add(dir, true, 0);
    tree->Add(dir + "/model.bin", false, 1000 + g);
    tree->Add(dir + "/optimizer.pt", false, 2000 + g);
  }
}

std::vector<AuditRecord> OfAction(const std::vector<AuditRecord>& recs, const std::string& a) {
  std::vector<AuditRecord> out;
  for (const AuditRecord& r : recs)
    if (r.action == a) out.push_back(r);
  return out;
}

TEST(PolicyRunnerTest, AThinRemovesThePathAndAuditsEachFileAndTheAction) {
  FakeTree tree;
  ThreeGenerations(&tree);
  PolicyRunner runner(tree, PolicyOf(kThinOld), "", int64_t(60) * 1000000000);
  EXPECT_EQ(2, runner.RunOnce());
  std::vector<std::string> removed = tree.removals;
  std::sort(removed.begin(), removed.end());
  EXPECT_EQ((std::vector<std::string>{"/r/checkpoint-100", "/r/checkpoint-200"}), removed);
  EXPECT_EQ(0u, tree.Ino("/r/checkpoint-100"));
  EXPECT_NE(0u, tree.Ino("/r/checkpoint-300/model.bin"));

  const auto thin = OfAction(tree.audited, "thin");
  ASSERT_EQ(6u, thin.size());  // per generation: two files, then the action
  for (int g : {100, 200}) {
    const std::string dir = "/r/checkpoint-" + std::to_string(g);
    std::map<std::string, AuditRecord> by_path;
    for (const AuditRecord& r : thin)
      if (r.path.rfind(dir, 0) == 0) by_path[r.path] = r;
    ASSERT_EQ(3u, by_path.size()) << dir;
    for (const char* f : {"/model.bin", "/optimizer.pt"}) {
      const AuditRecord& r = by_path[dir + f];
      EXPECT_EQ("thin-old", r.rule);
      EXPECT_EQ("hf", r.series);
      EXPECT_EQ(g, r.generation);
      EXPECT_TRUE(r.has_checksum);
      EXPECT_EQ(0x1000 + r.ino, r.checksum);
      EXPECT_NE(0u, r.ino);
      EXPECT_EQ(0u, tree.Ino(dir + f));  // gone from the tree
      EXPECT_EQ("part of " + dir, r.detail);
      EXPECT_EQ("ok", r.result);
    }
    EXPECT_EQ(uint64_t(1000 + g), by_path[dir + "/model.bin"].bytes);
    const AuditRecord& action = by_path[dir];
    EXPECT_EQ("ok", action.result);
    EXPECT_EQ(uint64_t(3000 + 2 * g), action.bytes);
    EXPECT_NE(std::string::npos, action.detail.find("2 files removed")) << action.detail;
  }
  // Each action's record comes after its files' records.
  for (size_t i : {0, 3}) {
    const std::string dir = thin[i + 2].path;
    EXPECT_EQ("part of " + dir, thin[i].detail);
    EXPECT_EQ("part of " + dir, thin[i + 1].detail);
    EXPECT_NE(0u, thin[i + 2].detail.rfind("part of", 0)) << thin[i + 2].detail;
  }
  for (const AuditRecord& r : thin) EXPECT_EQ(std::string::npos, r.path.find("checkpoint-300"));
}

// Paths no system call can name are left out of the scan: each snapshot
// entry keeps its whole path, so a chain of directories made by mkdir and
// chdir cost memory as its depth squared (20,000 levels: 665 MB resident).
TEST(PolicyRunnerTest, EntriesDeeperThanPathMaxAreLeftOutOfTheScan) {
  FakeTree tree;
  ThreeGenerations(&tree);
  std::string deep = "/d";
  while (deep.size() < PATH_MAX + 100) {
    tree.Add(deep, true, 0);
    deep += "/d";
  }
  tree.Add(deep + "/f", false, 1);
  PolicyRunner runner(tree, PolicyOf(kThinOld), "", int64_t(60) * 1000000000);
  std::shared_ptr<const Policy> policy;
  Snapshot snap;
  ASSERT_TRUE(runner.Inspect(&policy, &snap).ok());
  size_t longest = 0;
  for (const FileFacts& f : snap) longest = std::max(longest, f.path.size());
  EXPECT_LT(longest, size_t(PATH_MAX));
  EXPECT_EQ(snap.size(), 1 + 9 + (PATH_MAX - 1) / 2) << "every entry of a shorter path is kept";
  EXPECT_EQ(2, runner.RunOnce());  // the rules still run on the rest
}

TEST(PolicyRunnerTest, ADeferredThinIsNotAuditedAndHappensAtTheNextScan) {
  FakeTree tree;
  ThreeGenerations(&tree);
  PolicyRunner runner(tree, PolicyOf(kThinOld), "", int64_t(60) * 1000000000);
  tree.refuse_with = Status::Error(EBUSY, "deferred: a setxattr request is in progress");
  EXPECT_EQ(0, runner.RunOnce());
  EXPECT_EQ(2u, tree.removals.size());
  EXPECT_TRUE(OfAction(tree.audited, "thin").empty());
  for (const AuditRecord& r : OfAction(tree.audited, "refuse"))
    EXPECT_EQ(std::string::npos, r.result.find("deferred")) << r.path;
  // Again deferred: still nothing.
  EXPECT_EQ(0, runner.RunOnce());
  EXPECT_TRUE(OfAction(tree.audited, "thin").empty());
  // The request ended: the next scan thins and audits.
  tree.refuse_with = Status::Ok();
  EXPECT_EQ(2, runner.RunOnce());
  EXPECT_EQ(6u, OfAction(tree.audited, "thin").size());
}

TEST(PolicyRunnerTest, ARefusedThinIsAuditedOnceAsARefusalWithoutFiles) {
  FakeTree tree;
  ThreeGenerations(&tree);
  PolicyRunner runner(tree, PolicyOf(kThinOld), "", int64_t(60) * 1000000000);
  tree.refuse_with = Status::Error(EBUSY, "/r/checkpoint-100/model.bin (inode 5) is open");
  EXPECT_EQ(0, runner.RunOnce());
  EXPECT_TRUE(OfAction(tree.audited, "thin").empty());
  std::vector<AuditRecord> refused;
  for (const AuditRecord& r : OfAction(tree.audited, "refuse"))
    if (r.rule == "thin-old") refused.push_back(r);
  ASSERT_EQ(2u, refused.size());
  for (const AuditRecord& r : refused) {
    EXPECT_EQ(tree.refuse_with.message(), r.result);
    EXPECT_TRUE(r.path == "/r/checkpoint-100" || r.path == "/r/checkpoint-200") << r.path;
    EXPECT_FALSE(r.has_checksum);
  }
  // A stale path (ESTALE) is a failed thin, not a refusal.
  tree.refuse_with = Status::Error(ESTALE, "no longer names it");
  tree.audited.clear();
  EXPECT_EQ(0, runner.RunOnce());
  const auto thin = OfAction(tree.audited, "thin");
  ASSERT_EQ(2u, thin.size());
  for (const AuditRecord& r : thin) EXPECT_EQ("no longer names it", r.result);
}

// A removal that fails part way (a file created in the generation meanwhile)
// after its records were journaled: the file that went keeps its record; the
// one still there, and the action, get a second record saying the first did
// not happen (recover's replay honours the later one).
TEST(PolicyRunnerTest, FilesAFailedThinLeftAreAuditedAsNotRemoved) {
  FakeTree tree;
  ThreeGenerations(&tree);
  PolicyRunner runner(tree, PolicyOf(kThinOld), "", int64_t(60) * 1000000000);
  tree.fail_after_first = Status::Error(ENOTEMPTY, "directory not empty");
  EXPECT_EQ(0, runner.RunOnce());
  for (int g : {100, 200}) {
    const std::string dir = "/r/checkpoint-" + std::to_string(g);
    std::map<std::string, std::vector<std::string>> results;  // path -> results, in order
    for (const AuditRecord& r : OfAction(tree.audited, "thin"))
      if (r.path.rfind(dir, 0) == 0) results[r.path].push_back(r.result);
    ASSERT_EQ(3u, results.size()) << dir;
    const std::string gone = tree.Ino(dir + "/model.bin") == 0 ? "/model.bin" : "/optimizer.pt";
    const std::string left = gone == "/model.bin" ? "/optimizer.pt" : "/model.bin";
    EXPECT_EQ(std::vector<std::string>{"ok"}, results[dir + gone]);
    EXPECT_EQ((std::vector<std::string>{"ok", "not removed: directory not empty"}),
              results[dir + left]);
    EXPECT_EQ((std::vector<std::string>{"ok", "directory not empty"}), results[dir]);
    EXPECT_NE(0u, tree.Ino(dir + left));
  }
}

// The journal cannot take the records (its filesystem is full): nothing is
// removed, nothing is reported as thinned, and the next scan tries again.
TEST(PolicyRunnerTest, AThinTheJournalCannotRecordRemovesNothing) {
  FakeTree tree;
  ThreeGenerations(&tree);
  PolicyRunner runner(tree, PolicyOf(kThinOld), "", int64_t(60) * 1000000000);
  tree.journal_error = Status::Error(ENOSPC, "append to audit.jsonl: No space left on device");
  EXPECT_EQ(0, runner.RunOnce());
  EXPECT_EQ(2u, tree.removals.size());
  EXPECT_NE(0u, tree.Ino("/r/checkpoint-100/model.bin"));
  EXPECT_NE(0u, tree.Ino("/r/checkpoint-200/optimizer.pt"));
  EXPECT_TRUE(tree.audited.empty());
  tree.journal_error = Status::Ok();
  EXPECT_EQ(2, runner.RunOnce());
  EXPECT_EQ(0u, tree.Ino("/r/checkpoint-100"));
  EXPECT_EQ(6u, OfAction(tree.audited, "thin").size());
}

TEST(PolicyRunnerTest, AMigrationMovesThroughTheTree) {
  FakeTree tree;
  ThreeGenerations(&tree);
  const std::string text =
      "[[series]]\nname = \"hf\"\npattern = \"**/checkpoint-{gen}\"\ncomplete = \"rename\"\n"
      "[[rule]]\nname = \"to-hdd\"\nseries = \"*\"\nolder_than_newest = 1\n"
      "action = \"migrate\"\nto = \"hdd\"\n";
  PolicyRunner runner(tree, PolicyOf(text), "", int64_t(60) * 1000000000);
  EXPECT_GE(runner.RunOnce(), 2);
  EXPECT_TRUE(tree.removals.empty());
  EXPECT_FALSE(tree.moves.empty());
  for (const std::string& p : tree.moves)
    EXPECT_TRUE(p.rfind("/r/checkpoint-100", 0) == 0 || p.rfind("/r/checkpoint-200", 0) == 0) << p;
  // Moves audit themselves (fs/placement.h): the runner adds no record.
  EXPECT_TRUE(OfAction(tree.audited, "move").empty());
}

// A kept generation's manifest is its record on the HDD tier. When the
// tier fails the write (a network filesystem that dropped), the next scans
// try again until it is written; the failure is audited once, the success
// then too. Before, a failed manifest counted as written and came back only
// at the next start of the daemon.
TEST(PolicyRunnerTest, AManifestTheHddTierFailedIsWrittenAtALaterScan) {
  FakeTree tree;
  tree.Add("/r", true, 0);
  tree.Add("/r/checkpoint-100", true, 0);
  tree.Add("/r/checkpoint-100/model.bin", false, 4096);
  tree.Archive("/r/checkpoint-100/model.bin", "retain-every-5th");
  PolicyRunner runner(tree, PolicyOf(kThinOld), "", int64_t(60) * 1000000000);
  tree.manifest_error = Status::Error(ENOTCONN, "manifest directory: Transport endpoint");
  runner.RunOnce();
  runner.RunOnce();
  EXPECT_TRUE(tree.manifests.empty());
  std::vector<AuditRecord> recs = OfAction(tree.audited, "manifest");
  ASSERT_EQ(1u, recs.size());
  EXPECT_NE("ok", recs[0].result);

  tree.manifest_error = Status::Ok();
  runner.RunOnce();
  ASSERT_EQ(1u, tree.manifests.size());
  EXPECT_NE(std::string::npos, tree.manifests.begin()->second.find("retain-every-5th"));
  recs = OfAction(tree.audited, "manifest");
  ASSERT_EQ(2u, recs.size());
  EXPECT_EQ("ok", recs[1].result);
  runner.RunOnce();  // unchanged: not written again
  EXPECT_EQ(2u, OfAction(tree.audited, "manifest").size());
}

}  // namespace
}  // namespace tierfs

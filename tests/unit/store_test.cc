// Unit tests of meta/Store: the namespace rules without a mount.
#include "meta/store.h"

#include <gtest/gtest.h>
#include <linux/fs.h>
#include <linux/limits.h>
#include <sys/xattr.h>

#include <map>
#include <thread>

#include "tests/unit/store_fixture.h"

namespace tierfs {
namespace {

class StoreTest : public StoreFixture {
 protected:
  Inode Make(uint64_t parent, const std::string& name, uint32_t mode) {
    NewNode node;
    node.mode = mode;
    Inode n;
    Status st = store_->Create(parent, name, node, &n);
    EXPECT_TRUE(st.ok()) << st.message();
    return n;
  }
  Inode Get(uint64_t ino) {
    Inode n;
    Status st = store_->GetInode(ino, &n);
    EXPECT_TRUE(st.ok()) << st.message();
    return n;
  }
};

TEST_F(StoreTest, RootExistsAndCreateAssignsFreshInodes) {
  EXPECT_TRUE(Get(kRootIno).is_dir());
  Inode a = Make(kRootIno, "a", S_IFREG | 0644);
  Inode b = Make(kRootIno, "b", S_IFREG | 0600);
  EXPECT_NE(a.ino, b.ino);
  EXPECT_GT(a.ino, kRootIno);
  Inode found;
  ASSERT_TRUE(store_->Lookup(kRootIno, "b", &found).ok());
  EXPECT_EQ(found.ino, b.ino);
  EXPECT_EQ(found.mode, uint32_t(S_IFREG | 0600));
  NewNode again;
  again.mode = S_IFREG | 0644;
  EXPECT_EQ(store_->Create(kRootIno, "a", again, &found).err(), EEXIST);
  EXPECT_EQ(store_->Lookup(kRootIno, "zz", &found).err(), ENOENT);
}

TEST_F(StoreTest, AStateOfAnotherFormatIsRefused) {
  std::string format;
  ASSERT_TRUE(store_->GetMeta("format", &format).ok());
  // Written as the uint64_t it is read as.
  const uint64_t future = 2;
  ASSERT_TRUE(
      store_->PutMeta("format", std::string(reinterpret_cast<const char*>(&future), sizeof future))
          .ok());
  store_.reset();
  std::unique_ptr<Store> again;
  Status st = Store::Open(dir_, &again);
  EXPECT_EQ(EINVAL, st.err()) << st.message();
  EXPECT_NE(std::string::npos, st.message().find("format 2")) << st.message();
}

TEST_F(StoreTest, DirectoryLinkCountsFollowSubdirectories) {
  Inode d = Make(kRootIno, "d", S_IFDIR | 0755);
  EXPECT_EQ(Get(kRootIno).nlink, 3u);
  Make(d.ino, "sub", S_IFDIR | 0755);
  Make(d.ino, "f", S_IFREG | 0644);
  EXPECT_EQ(Get(d.ino).nlink, 3u);
  Removed r;
  EXPECT_EQ(store_->Rmdir(kRootIno, "d", &r).err(), ENOTEMPTY);
  EXPECT_EQ(store_->Unlink(d.ino, "sub", &r).err(), EISDIR);
  EXPECT_EQ(store_->Rmdir(d.ino, "f", &r).err(), ENOTDIR);
  ASSERT_TRUE(store_->Rmdir(d.ino, "sub", &r).ok());
  EXPECT_EQ(r.nlink, 0u);
  EXPECT_EQ(Get(d.ino).nlink, 2u);
}

TEST_F(StoreTest, HardLinksShareTheInodeAndOrphanAtZero) {
  Inode f = Make(kRootIno, "f", S_IFREG | 0644);
  Inode linked;
  ASSERT_TRUE(store_->Link(f.ino, kRootIno, "g", &linked).ok());
  EXPECT_EQ(linked.nlink, 2u);
  Removed r;
  ASSERT_TRUE(store_->Unlink(kRootIno, "f", &r).ok());
  EXPECT_EQ(r.ino, f.ino);
  EXPECT_EQ(r.nlink, 1u);
  std::vector<uint64_t> orphans;
  ASSERT_TRUE(store_->ListOrphans(&orphans).ok());
  EXPECT_TRUE(orphans.empty());
  ASSERT_TRUE(store_->Unlink(kRootIno, "g", &r).ok());
  EXPECT_EQ(r.nlink, 0u);
  ASSERT_TRUE(store_->ListOrphans(&orphans).ok());
  EXPECT_EQ(orphans, std::vector<uint64_t>{f.ino});
  ASSERT_TRUE(store_->DeleteInode(f.ino).ok());
  Inode gone;
  EXPECT_EQ(store_->GetInode(f.ino, &gone).err(), ENOENT);
  ASSERT_TRUE(store_->ListOrphans(&orphans).ok());
  EXPECT_TRUE(orphans.empty());
}

// The reaper's batch (fs/inode_reaper.h): several orphans in one transaction.
TEST_F(StoreTest, DeleteInodesRemovesEveryOrphanOfTheBatch) {
  std::vector<uint64_t> inos;
  for (const char* name : {"a", "b", "c"}) {
    inos.push_back(Make(kRootIno, name, S_IFREG | 0644).ino);
    Removed r;
    ASSERT_TRUE(store_->Unlink(kRootIno, name, &r).ok());
  }
  Inode kept = Make(kRootIno, "kept", S_IFREG | 0644);
  std::vector<uint64_t> orphans;
  ASSERT_TRUE(store_->ListOrphans(&orphans).ok());
  EXPECT_EQ(inos, orphans);
  ASSERT_TRUE(store_->DeleteInodes(inos).ok());
  Inode gone;
  for (uint64_t ino : inos) EXPECT_EQ(store_->GetInode(ino, &gone).err(), ENOENT);
  ASSERT_TRUE(store_->ListOrphans(&orphans).ok());
  EXPECT_TRUE(orphans.empty());
  EXPECT_TRUE(store_->GetInode(kept.ino, &gone).ok());
}

TEST_F(StoreTest, RenameReplacesAtomicallyAndHonoursFlags) {
  Inode a = Make(kRootIno, "a", S_IFREG | 0644);
  Inode b = Make(kRootIno, "b", S_IFREG | 0644);
  Removed r;
  EXPECT_EQ(store_->Rename(kRootIno, "a", kRootIno, "b", RENAME_NOREPLACE, &r).err(), EEXIST);
  ASSERT_TRUE(store_->Rename(kRootIno, "a", kRootIno, "b", 0, &r).ok());
  EXPECT_EQ(r.ino, b.ino);
  EXPECT_EQ(r.nlink, 0u);
  Inode found;
  ASSERT_TRUE(store_->Lookup(kRootIno, "b", &found).ok());
  EXPECT_EQ(found.ino, a.ino);
  EXPECT_EQ(store_->Lookup(kRootIno, "a", &found).err(), ENOENT);
  EXPECT_EQ(store_->Rename(kRootIno, "a", kRootIno, "c", RENAME_EXCHANGE, &r).err(), ENOENT);
}

TEST_F(StoreTest, ExchangeOfDirectoryAndFileAcrossParentsFixesLinkCounts) {
  Inode d1 = Make(kRootIno, "d1", S_IFDIR | 0755);
  Inode d2 = Make(kRootIno, "d2", S_IFDIR | 0755);
  Inode sub = Make(d1.ino, "x", S_IFDIR | 0755);
  Inode file = Make(d2.ino, "y", S_IFREG | 0644);
  Removed r;
  ASSERT_TRUE(store_->Rename(d1.ino, "x", d2.ino, "y", RENAME_EXCHANGE, &r).ok());
  Inode found;
  ASSERT_TRUE(store_->Lookup(d1.ino, "x", &found).ok());
  EXPECT_EQ(found.ino, file.ino);
  ASSERT_TRUE(store_->Lookup(d2.ino, "y", &found).ok());
  EXPECT_EQ(found.ino, sub.ino);
  EXPECT_EQ(Get(d1.ino).nlink, 2u);
  EXPECT_EQ(Get(d2.ino).nlink, 3u);
}

TEST_F(StoreTest, RenameTypeMismatchesAndNonEmptyTarget) {
  Inode d = Make(kRootIno, "d", S_IFDIR | 0755);
  Make(kRootIno, "e", S_IFDIR | 0755);
  Make(kRootIno, "f", S_IFREG | 0644);
  Make(d.ino, "inner", S_IFREG | 0644);
  Removed r;
  EXPECT_EQ(store_->Rename(kRootIno, "f", kRootIno, "d", 0, &r).err(), EISDIR);
  EXPECT_EQ(store_->Rename(kRootIno, "d", kRootIno, "f", 0, &r).err(), ENOTDIR);
  EXPECT_EQ(store_->Rename(kRootIno, "e", kRootIno, "d", 0, &r).err(), ENOTEMPTY);
  ASSERT_TRUE(store_->Rename(kRootIno, "d", kRootIno, "e", 0, &r).ok());
  EXPECT_EQ(Get(kRootIno).nlink, 3u);  // root, ".", and the surviving directory
}

TEST_F(StoreTest, XattrsFollowCreateReplaceSemantics) {
  Inode f = Make(kRootIno, "f", S_IFREG | 0644);
  EXPECT_EQ(store_->SetXattr(f.ino, "user.a", "1", XATTR_REPLACE).err(), ENODATA);
  ASSERT_TRUE(store_->SetXattr(f.ino, "user.a", "1", XATTR_CREATE).ok());
  EXPECT_EQ(store_->SetXattr(f.ino, "user.a", "2", XATTR_CREATE).err(), EEXIST);
  ASSERT_TRUE(store_->SetXattr(f.ino, "user.b", std::string("x\0y", 3), 0).ok());
  std::string v;
  ASSERT_TRUE(store_->GetXattr(f.ino, "user.b", &v).ok());
  EXPECT_EQ(v, std::string("x\0y", 3));
  std::vector<std::string> names;
  ASSERT_TRUE(store_->ListXattr(f.ino, &names).ok());
  EXPECT_EQ(names, (std::vector<std::string>{"user.a", "user.b"}));
  ASSERT_TRUE(store_->RemoveXattr(f.ino, "user.a").ok());
  EXPECT_EQ(store_->RemoveXattr(f.ino, "user.a").err(), ENODATA);
}

// A POSIX ACL and the mode it implies change in one transaction
// (fs/posix_acl.h): both or neither.
// listxattr(2) returns at most 64 KiB of names: one more name is ENOSPC (a
// user had stored more, and listxattr, getfattr -d and cp -a then failed).
TEST_F(StoreTest, XattrNamesStopWhereListxattrEnds) {
  Inode f = Make(kRootIno, "f", S_IFREG | 0644);
  const auto name = [](int i) {
    std::string n = "user." + std::to_string(i) + "-";
    return n + std::string(250 - n.size(), 'n');  // 251 bytes with its NUL
  };
  const int fit = XATTR_LIST_MAX / 251;
  for (int i = 0; i < fit; ++i) ASSERT_TRUE(store_->SetXattr(f.ino, name(i), "v", 0).ok()) << i;
  Status st = store_->SetXattr(f.ino, name(fit), "v", 0);
  EXPECT_EQ(st.err(), ENOSPC) << st.message();
  EXPECT_NE(st.message().find(name(fit)), std::string::npos) << st.message();
  // An existing name may still change, and a removal makes room.
  EXPECT_TRUE(store_->SetXattr(f.ino, name(0), "longer value", 0).ok());
  ASSERT_TRUE(store_->RemoveXattr(f.ino, name(1)).ok());
  EXPECT_TRUE(store_->SetXattr(f.ino, name(fit), "v", 0).ok());
}

TEST_F(StoreTest, UpdateWithXattrChangesBothOrNeither) {
  Inode f = Make(kRootIno, "f", S_IFREG | 0600);
  const auto set_acl = [](Inode& i, std::optional<std::string>* v) {
    i.mode = S_IFREG | 0640;
    v->emplace("acl");
    return Status::Ok();
  };
  Inode out;
  ASSERT_TRUE(store_->UpdateWithXattr(f.ino, "system.posix_acl_access", set_acl, &out).ok());
  EXPECT_EQ(out.mode, uint32_t(S_IFREG | 0640));
  std::string v;
  ASSERT_TRUE(store_->GetXattr(f.ino, "system.posix_acl_access", &v).ok());
  EXPECT_EQ(v, "acl");
  // A refusal changes nothing, though the mutation had begun.
  const auto refuse = [](Inode& i, std::optional<std::string>* v) {
    i.mode = S_IFREG | 0777;
    v->reset();
    return Status::Error(EPERM, "no");
  };
  EXPECT_EQ(store_->UpdateWithXattr(f.ino, "system.posix_acl_access", refuse, nullptr).err(),
            EPERM);
  EXPECT_EQ(Get(f.ino).mode, uint32_t(S_IFREG | 0640));
  ASSERT_TRUE(store_->GetXattr(f.ino, "system.posix_acl_access", &v).ok());
  // nullopt removes it; removing what is absent is no error.
  const auto remove = [](Inode&, std::optional<std::string>* v) {
    v->reset();
    return Status::Ok();
  };
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(store_->UpdateWithXattr(f.ino, "system.posix_acl_access", remove, nullptr).ok());
  EXPECT_EQ(store_->GetXattr(f.ino, "system.posix_acl_access", &v).err(), ENODATA);
  EXPECT_EQ(store_->UpdateWithXattr(12345, "x", remove, nullptr).err(), ENOENT);
}

TEST_F(StoreTest, ANodeIsCreatedWithItsXattrs) {
  NewNode node;
  node.mode = S_IFDIR | 0775;
  node.xattrs = {{"system.posix_acl_access", "a"}, {"system.posix_acl_default", "d"}};
  Inode d;
  ASSERT_TRUE(store_->Create(kRootIno, "d", node, &d).ok());
  std::vector<std::string> names;
  ASSERT_TRUE(store_->ListXattr(d.ino, &names).ok());
  EXPECT_EQ(names,
            (std::vector<std::string>{"system.posix_acl_access", "system.posix_acl_default"}));
  std::string v;
  ASSERT_TRUE(store_->GetXattr(d.ino, "system.posix_acl_default", &v).ok());
  EXPECT_EQ(v, "d");
}

TEST_F(StoreTest, EverythingSurvivesReopen) {
  Inode d = Make(kRootIno, "dir", S_IFDIR | 0700);
  NewNode link;
  link.mode = S_IFLNK | 0777;
  link.symlink_target = "../target";
  Inode l;
  ASSERT_TRUE(store_->Create(d.ino, "link", link, &l).ok());
  ASSERT_TRUE(store_->SetXattr(d.ino, "user.k", "v", 0).ok());
  ASSERT_TRUE(store_->Sync().ok());
  Reopen();
  Inode found;
  ASSERT_TRUE(store_->Lookup(d.ino, "link", &found).ok());
  EXPECT_EQ(found.ino, l.ino);
  std::string target;
  ASSERT_TRUE(store_->ReadSymlink(l.ino, &target).ok());
  EXPECT_EQ(target, "../target");
  std::vector<DirEntry> entries;
  ASSERT_TRUE(store_->ListDir(kRootIno, &entries, nullptr).ok());
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].name, "dir");
  // Inode numbers keep growing after a reopen: none is reused.
  EXPECT_GT(Make(kRootIno, "new", S_IFREG | 0644).ino, l.ino);
}

TEST_F(StoreTest, WalkTreeSeesOneConsistentStateWithPathsHoldsAndTargets) {
  Inode d = Make(kRootIno, "run", S_IFDIR | 0755);
  Inode f = Make(d.ino, "model.bin", S_IFREG | 0644);
  NewNode link;
  link.mode = S_IFLNK | 0777;
  link.symlink_target = "run/model.bin";
  Inode l;
  ASSERT_TRUE(store_->Create(kRootIno, "last", link, &l).ok());
  Store::Hold hold;
  hold.rule = "keep";
  hold.immutable = true;
  ASSERT_TRUE(store_->SetHold(f.ino, hold).ok());

  std::map<std::string, Store::TreeEntry> seen;
  std::map<std::string, std::string> held;
  bool wrote_during_walk = false;
  Status st = store_->WalkTree([&](const Store::TreeEntry& e) {
    if (!wrote_during_walk) {
      // A writer in another thread is not blocked, and not seen.
      std::thread([&] { Make(kRootIno, "late", S_IFREG | 0644); }).join();
      wrote_during_walk = true;
    }
    seen[e.path] = e;
    if (e.hold) held[e.path] = e.hold->rule;
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(3u, seen.size());
  EXPECT_EQ(0u, seen.count("/late"));
  EXPECT_EQ("run/model.bin", seen["/last"].symlink_target);
  EXPECT_EQ((std::map<std::string, std::string>{{"/run/model.bin", "keep"}}), held);
  ASSERT_TRUE(store_->Lookup(kRootIno, "late", &l).ok()) << "the write committed";

  // A visitor's error ends the walk.
  int visits = 0;
  st = store_->WalkTree([&](const Store::TreeEntry&) {
    ++visits;
    return Status::Error(EINTR, "stop");
  });
  EXPECT_EQ(EINTR, st.err());
  EXPECT_EQ(1, visits);
}

}  // namespace
}  // namespace tierfs

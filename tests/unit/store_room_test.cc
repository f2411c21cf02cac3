// Unit tests of the room a full LMDB map keeps for removals (StoreOptions
// map_size, Store::CheckRoom): growth fails with ENOSPC naming the state,
// every kind of removal and change still works, and nothing is lost.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "meta/store.h"

namespace tierfs {
namespace {

class StoreRoomTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tierfs-storeroom-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    StoreOptions opt;
    opt.map_size = 1 << 20;
    Status st = Store::Open(dir_, &store_, opt);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  Status Make(uint64_t parent, const std::string& name, mode_t mode, Inode* n) {
    NewNode node;
    node.mode = mode;
    return store_->Create(parent, name, node, n);
  }
  // Creates files with long names in `dir` until a create fails.
  std::vector<std::string> Fill(uint64_t dir, Status* last) {
    std::vector<std::string> names;
    for (int i = 0; i < 100000; ++i) {
      const std::string name = std::to_string(i) + std::string(200, 'y');
      Inode n;
      *last = Make(dir, name, S_IFREG | 0644, &n);
      if (!last->ok()) break;
      names.push_back(name);
    }
    return names;
  }
  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreRoomTest, FullMapRefusesGrowthButEveryRemovalWorks) {
  Inode keep, d;
  ASSERT_TRUE(Make(kRootIno, "keep", S_IFREG | 0644, &keep).ok());
  ASSERT_TRUE(store_->SetXattr(keep.ino, "user.a", std::string(100, 'a'), 0).ok());
  ASSERT_TRUE(Make(kRootIno, "d", S_IFDIR | 0755, &d).ok());
  Status last;
  const std::vector<std::string> names = Fill(d.ino, &last);
  ASSERT_EQ(ENOSPC, last.err()) << last.message();
  EXPECT_GT(names.size(), 100u);
  EXPECT_NE(std::string::npos, last.message().find("LMDB state in " + dir_)) << last.message();
  EXPECT_NE(std::string::npos, last.message().find("--map-size")) << last.message();
  // Growth of every kind is refused.
  Inode n;
  EXPECT_EQ(ENOSPC, store_->Link(keep.ino, kRootIno, "link", &n).err());
  EXPECT_EQ(ENOSPC, store_->SetXattr(keep.ino, "user.b", "x", 0).err());
  EXPECT_EQ(ENOSPC, Make(kRootIno, "sub", S_IFDIR | 0755, &n).err());
  // Changes and removals all work.
  Status st = store_->Rename(kRootIno, "keep", kRootIno, "kept", 0, nullptr);
  ASSERT_TRUE(st.ok()) << st.message();
  st = store_->Update(
      keep.ino,
      [](Inode& i) {
        i.size = 5;
        return Status::Ok();
      },
      nullptr);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_TRUE(store_->RemoveXattr(keep.ino, "user.a").ok());
  for (const std::string& name : names) {
    Removed r;
    st = store_->Unlink(d.ino, name, &r);
    ASSERT_TRUE(st.ok()) << name.substr(0, 8) << ": " << st.message();
    if (r.nlink == 0) {
      ASSERT_TRUE(store_->DeleteInode(r.ino).ok());
    }
  }
  Removed r;
  st = store_->Rmdir(kRootIno, "d", &r);
  ASSERT_TRUE(st.ok()) << st.message();
  // The room came back.
  st = Make(kRootIno, "after", S_IFREG | 0644, &n);
  ASSERT_TRUE(st.ok()) << st.message();
  Reopen();
  ASSERT_TRUE(store_->Lookup(kRootIno, "kept", &n).ok());
  EXPECT_EQ(keep.ino, n.ino);
  EXPECT_EQ(5u, n.size);
  EXPECT_TRUE(store_->Lookup(kRootIno, "after", &n).ok());
  EXPECT_EQ(ENOENT, store_->Lookup(kRootIno, "d", &n).err());
}

}  // namespace
}  // namespace tierfs

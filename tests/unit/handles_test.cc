// Unit tests of fs/handles: the I/O-mode rules of open files (Admit), the
// counts they keep in LiveState, objects opened lazily and reopened after a
// move (ObjectOf), and the check that an object still has its bytes
// (CheckObjectIntact). No mount: passthrough is never accepted by a kernel
// here, so the passthrough rules are driven through LiveState.
#include "fs/handles.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/fs_units_fixture.h"

namespace tierfs {
namespace {

class HandlesTest : public FsUnitsFixture {
 protected:
  void SetUp() override {
    FsUnitsFixture::SetUp();
    if (HasFatalFailure()) return;
    handles_ = std::make_unique<Handles>(*store_, tiers(), table_, *placement_, true);
  }
  void TearDown() override {
    handles_.reset();
    FsUnitsFixture::TearDown();
  }
  Inode Get(uint64_t ino) {
    Inode n;
    Status st = store_->GetInode(ino, &n);
    EXPECT_TRUE(st.ok()) << st.message();
    return n;
  }
  // A handle of `ino` opened with `flags` and admitted; its mode in `mode`.
  FileHandle* Open(uint64_t ino, int flags, IoMode* mode, Handles* h = nullptr) {
    h = h ? h : handles_.get();
    FileHandle* fh = h->New(Get(ino), flags);
    int backing = -1;
    *mode = h->Admit(*fh, flags, true, &backing);
    return fh;
  }

  std::unique_ptr<Handles> handles_;
};

TEST_F(HandlesTest, NewAndDeleteCountHandlesAndWriters) {
  const uint64_t ino = MakeFile(kRootIno, "f", "abc");
  IoMode mode;
  FileHandle* r = Open(ino, O_RDONLY, &mode);
  FileHandle* w = Open(ino, O_RDWR, &mode);
  auto live = table_.Live(ino);
  EXPECT_EQ(live.get(), r->live.get());
  EXPECT_EQ(2u, live->handles.load());
  EXPECT_EQ(1u, live->writers.load());
  EXPECT_EQ(2u, live->other_handles);
  EXPECT_GT(live->last_open_ns.load(), 0);
  EXPECT_FALSE(r->writable);
  EXPECT_TRUE(w->writable);
  // A writer makes the file busy for moves.
  EXPECT_EQ(EBUSY, placement_->Move(ino, TierId::kHdd, "manual").err());
  handles_->Delete(w);
  EXPECT_EQ(1u, live->handles.load());
  EXPECT_EQ(0u, live->writers.load());
  EXPECT_EQ(1u, live->other_handles);
  handles_->Delete(r);
  EXPECT_EQ(0u, live->handles.load());
  EXPECT_EQ(0u, live->other_handles);
  EXPECT_TRUE(table_.OpenInodes().empty());
}

TEST_F(HandlesTest, AdmitChoosesDirectForWriteOnlyAndCachedOtherwise) {
  const uint64_t ino = MakeFile(kRootIno, "f", "abc");
  IoMode mode;
  FileHandle* wo = Open(ino, O_WRONLY, &mode);
  EXPECT_EQ(IoMode::kDirect, mode);
  EXPECT_EQ(IoMode::kDirect, wo->mode);
  FileHandle* rw = Open(ino, O_RDWR, &mode);
  EXPECT_EQ(IoMode::kCached, mode);
  // Read-only while passthrough is not active (no kernel offered it).
  FileHandle* ro = Open(ino, O_RDONLY, &mode);
  EXPECT_EQ(IoMode::kCached, mode);
  EXPECT_EQ(3u, wo->live->other_handles);
  EXPECT_EQ(0u, wo->live->passthrough_handles.load());
  for (FileHandle* fh : {wo, rw, ro}) handles_->Delete(fh);
  EXPECT_EQ(0u, table_.Live(ino)->other_handles);
}

TEST_F(HandlesTest, CachedWritesKeepWriteOnlyOpensInThePageCache) {
  Handles cached(*store_, tiers(), table_, *placement_, false);
  const uint64_t ino = MakeFile(kRootIno, "f", "abc");
  IoMode mode;
  FileHandle* wo = Open(ino, O_WRONLY, &mode, &cached);
  EXPECT_EQ(IoMode::kCached, mode);
  cached.Delete(wo);
}

TEST_F(HandlesTest, PassthroughTheKernelRefusesFallsBackToCached) {
  // Accepted in INIT, but there is no device to register a backing file
  // with: the open is served by tierfs, through the page cache.
  handles_->passthrough().Accept();
  const uint64_t ino = MakeFile(kRootIno, "f", "abc");
  IoMode mode;
  FileHandle* ro = Open(ino, O_RDONLY, &mode);
  EXPECT_EQ(IoMode::kCached, mode);
  EXPECT_EQ(0u, ro->live->passthrough_handles.load());
  EXPECT_EQ(-1, ro->live->backing_id);
  EXPECT_EQ(-1, ro->live->backing_fd);
  EXPECT_EQ(1u, ro->live->other_handles);
  handles_->Delete(ro);
}

TEST_F(HandlesTest, WhilePassthroughHandlesAreOpenEveryOpenJoinsThem) {
  const uint64_t ino = MakeFile(kRootIno, "f", "abc");
  auto live = table_.Live(ino);
  // One handle already reads through backing file 7 (as StartPassthrough
  // leaves it).
  live->passthrough_handles = 1;
  live->backing_id = 7;
  live->backing_fd = open("/dev/null", O_RDONLY);
  ASSERT_GE(live->backing_fd, 0);
  IoMode mode;
  FileHandle* fh[3];
  const int flags[3] = {O_RDONLY, O_WRONLY, O_RDWR};
  for (int i = 0; i < 3; ++i) {
    FileHandle* h = handles_->New(Get(ino), flags[i]);
    int backing = -1;
    mode = handles_->Admit(*h, flags[i], false, &backing);
    EXPECT_EQ(IoMode::kPassthrough, mode) << i;  // even write-only: the kernel takes nothing else
    EXPECT_EQ(7, backing);
    EXPECT_EQ(7, h->backing_id);
    // tierfs sees no write of a passthrough handle: release records the size.
    EXPECT_EQ(h->writable, h->wrote) << i;
    fh[i] = h;
  }
  EXPECT_EQ(4u, live->passthrough_handles.load());
  EXPECT_EQ(0u, live->other_handles);
  // Passthrough makes the file busy for moves and spills.
  EXPECT_EQ(EBUSY, placement_->Move(ino, TierId::kHdd, "manual").err());
  for (FileHandle* h : fh) handles_->Delete(h);
  EXPECT_EQ(1u, live->passthrough_handles.load());
  EXPECT_EQ(7, live->backing_id);  // the first handle still reads through it
  // The last passthrough handle's release ends the inode's passthrough.
  live->passthrough_handles = 0;
  FileHandle* last = handles_->New(Get(ino), O_RDONLY);
  live->passthrough_handles = 1;  // admitted as passthrough before
  last->mode = IoMode::kPassthrough;
  handles_->Delete(last);
  EXPECT_EQ(0u, live->passthrough_handles.load());
  EXPECT_EQ(-1, live->backing_id);
  EXPECT_EQ(-1, live->backing_fd);
  // Afterwards the ordinary rules apply again.
  FileHandle* ro = Open(ino, O_RDONLY, &mode);
  EXPECT_EQ(IoMode::kCached, mode);
  handles_->Delete(ro);
}

TEST_F(HandlesTest, ObjectOfCreatesTheObjectOnlyWhenAskedTo) {
  const uint64_t ino = MakeFile(kRootIno, "new", "");
  IoMode mode;
  FileHandle* fh = Open(ino, O_RDWR, &mode);
  struct stat st_obj;
  EXPECT_EQ(ENOENT, ssd_->StatObject(ino, &st_obj).err());  // no I/O at open
  Status st;
  EXPECT_EQ(nullptr, handles_->ObjectOf(*fh, false, &st));
  EXPECT_EQ(ENOENT, st.err());
  EXPECT_EQ(ENOENT, ssd_->StatObject(ino, &st_obj).err());
  st = Status::Ok();
  const ObjectRef object = handles_->ObjectOf(*fh, true, &st);
  ASSERT_NE(nullptr, object) << st.message();
  EXPECT_EQ(TierId::kSsd, object->tier);
  EXPECT_TRUE(ssd_->StatObject(ino, &st_obj).ok());
  EXPECT_TRUE(fh->live->object_name_unsynced.load());  // its fan-out dir is not synced yet
  // The same object while placement stays.
  EXPECT_EQ(object, handles_->ObjectOf(*fh, false, &st));
  handles_->Delete(fh);
}

TEST_F(HandlesTest, ObjectOfReopensAfterTheFileMovedAndTheOldObjectClosesWithItsLastUser) {
  const std::string content = Pattern(20000, 9);
  const uint64_t ino = MakeFile(kRootIno, "f", content);
  table_.Ref(ino, kRootIno, "f");
  IoMode mode;
  FileHandle* fh = Open(ino, O_RDONLY, &mode);
  Status st;
  // A request in flight that holds the object.
  ObjectRef before = handles_->ObjectOf(*fh, false, &st);
  ASSERT_NE(nullptr, before) << st.message();
  EXPECT_EQ(TierId::kSsd, before->tier);
  const int old_fd = before->fd;
  // A reader does not hold a move back.
  st = placement_->Move(ino, TierId::kHdd, "manual");
  ASSERT_TRUE(st.ok()) << st.message();
  const ObjectRef now = handles_->ObjectOf(*fh, false, &st);
  ASSERT_NE(nullptr, now) << st.message();
  const int after = now->fd;
  EXPECT_NE(old_fd, after);
  EXPECT_EQ(TierId::kHdd, now->tier);
  EXPECT_EQ(TierId::kHdd, fh->tier.load());
  // The old object stays open while the request uses it, unlinked from
  // its tier, and is closed (its blocks freed) when the request is done,
  // though the file is still open.
  struct stat old_obj;
  ASSERT_EQ(0, fstat(old_fd, &old_obj));
  EXPECT_EQ(0u, old_obj.st_nlink);
  before.reset();
  errno = 0;
  EXPECT_EQ(-1, fcntl(old_fd, F_GETFD));
  EXPECT_EQ(EBADF, errno);
  // It is the HDD tier's object, with the bytes.
  struct stat a, b;
  ASSERT_EQ(0, fstat(after, &a));
  ASSERT_EQ(0, stat(hdd_->ObjectPath(ino).c_str(), &b));
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_dev, b.st_dev);
  std::string got(content.size(), '\0');
  ASSERT_EQ(ssize_t(content.size()), pread(after, got.data(), got.size(), 0));
  EXPECT_TRUE(got == content);
  handles_->Delete(fh);
}

TEST_F(HandlesTest, CheckObjectIntactFindsMissingAndShortObjects) {
  const uint64_t ok = MakeFile(kRootIno, "ok", "0123456789");
  EXPECT_TRUE(handles_->CheckObjectIntact(ok).ok());
  const uint64_t empty = MakeFile(kRootIno, "empty", "");
  EXPECT_TRUE(handles_->CheckObjectIntact(empty).ok());  // no object, no bytes: fine

  const uint64_t missing = MakeFile(kRootIno, "missing", "0123456789");
  ASSERT_TRUE(ssd_->RemoveObject(missing).ok());
  Status st = handles_->CheckObjectIntact(missing);
  EXPECT_EQ(EIO, st.err());
  EXPECT_NE(std::string::npos, st.message().find("missing")) << st.message();
  EXPECT_NE(std::string::npos, st.message().find(ssd_->ObjectPath(missing))) << st.message();

  const uint64_t shorter = MakeFile(kRootIno, "short", "0123456789");
  WriteObject(*ssd_, shorter, "0123");
  st = handles_->CheckObjectIntact(shorter);
  EXPECT_EQ(EIO, st.err());
  EXPECT_NE(std::string::npos, st.message().find("truncated")) << st.message();

  // Longer than recorded is legitimate (written, then killed before release).
  const uint64_t longer = MakeFile(kRootIno, "long", "0123");
  WriteObject(*ssd_, longer, "0123456789");
  EXPECT_TRUE(handles_->CheckObjectIntact(longer).ok());

  // While a writer has it open, LMDB's size lags: no verdict.
  table_.Live(missing)->writers++;
  EXPECT_TRUE(handles_->CheckObjectIntact(missing).ok());
  table_.Live(missing)->writers--;

  // On the HDD tier, the HDD tier's object is checked.
  const uint64_t on_hdd = MakeFile(kRootIno, "hdd", "0123456789", TierId::kHdd);
  EXPECT_TRUE(handles_->CheckObjectIntact(on_hdd).ok());
  ASSERT_TRUE(hdd_->RemoveObject(on_hdd).ok());
  EXPECT_EQ(EIO, handles_->CheckObjectIntact(on_hdd).err());
}

}  // namespace
}  // namespace tierfs

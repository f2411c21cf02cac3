// Context::FreeInode racing a move of the same inode: whichever goes first,
// no object of the freed inode may be left on either tier. The crash
// campaign found an HDD object no inode named after a thinning removed a
// file that a tree move was moving: the freeing read the tier (SSD), the
// move switched to the HDD tier, and the freeing then removed the SSD object
// and the inode, leaving the move's copy behind for good.
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "fs/context.h"
#include "fs/policy_runner.h"
#include "tests/unit/tier_pair_fixture.h"

namespace tierfs {
namespace {

// Once armed, the next unlink says it was reached, then waits for `go`
// (at most 2 s: with the fix, a freeing that holds the placement lock may
// wait here while the move waits for that lock).
class GatedUnlinkIo : public IoWrapper {
 public:
  using IoWrapper::IoWrapper;
  int UnlinkAt(int dir_fd, const char* path, int flags) override {
    if (armed.exchange(false)) {
      reached.set_value();
      go.wait_for(std::chrono::seconds(2));
    }
    return IoWrapper::UnlinkAt(dir_fd, path, flags);
  }
  std::atomic<bool> armed{false};
  std::promise<void> reached;
  std::shared_future<void> go;
};

class FreeInodeRaceTest : public TierPairFixture {
 protected:
  std::shared_ptr<Io> IoFor(TierId id) override { return id == TierId::kSsd ? ssd_io_ : nullptr; }
  std::shared_ptr<GatedUnlinkIo> ssd_io_ =
      std::make_shared<GatedUnlinkIo>(std::make_shared<PosixIo>());
};

TEST_F(FreeInodeRaceTest, AnInodeFreedWhileItsMoveSwitchesLeavesNoObjectBehind) {
  NewNode node;
  node.mode = S_IFREG | 0644;
  node.tier = TierId::kSsd;
  Inode n;
  ASSERT_TRUE(store_->Create(kRootIno, "f", node, &n).ok());
  const std::string content = Pattern(100000, 9);
  Status st;
  int fd = ssd_->OpenObject(n.ino, O_WRONLY | O_CREAT | O_TRUNC, &st);
  ASSERT_GE(fd, 0) << st.message();
  ASSERT_EQ(ssize_t(content.size()), write(fd, content.data(), content.size()));
  close(fd);
  ASSERT_TRUE(store_
                  ->Update(
                      n.ino,
                      [&](Inode& i) {
                        i.size = content.size();
                        return Status::Ok();
                      },
                      nullptr)
                  .ok());
  Options opt;
  Policy policy;
  ASSERT_TRUE(LoadPolicyFile("", &policy).ok());
  Context ctx(opt, std::move(store_), std::move(ssd_), std::move(hdd_), nullptr, std::move(policy));

  // The move cannot switch while the test holds the placement lock.
  std::unique_lock<std::mutex> hold(ctx.placement().Lock(n.ino));
  auto move = std::async(std::launch::async,
                         [&] { return ctx.placement().Move(n.ino, TierId::kHdd, "manual"); });
  while (!ctx.placement().IsMoving(n.ino)) std::this_thread::yield();
  // Meanwhile the file's last link goes (a thinning) and the inode is freed.
  Removed removed;
  ASSERT_TRUE(ctx.store().Unlink(kRootIno, "f", &removed).ok());
  std::promise<void> go;
  ssd_io_->go = go.get_future().share();
  std::future<void> reached = ssd_io_->reached.get_future();
  ssd_io_->armed = true;
  auto freeing = std::async(std::launch::async, [&] { ctx.FreeInode(n.ino); });
  // Before the fix the freeing read the tier without the lock and is now
  // about to remove the SSD object; with it, it waits for the lock.
  reached.wait_for(std::chrono::milliseconds(500));
  hold.unlock();
  Status moved = move.get();
  go.set_value();
  freeing.get();
  EXPECT_TRUE(moved.ok() || moved.err() == ECANCELED) << moved.message();

  struct stat sb;
  EXPECT_FALSE(ctx.tier(TierId::kHdd).StatObject(n.ino, &sb).ok())
      << "the move's copy outlived the inode";
  EXPECT_FALSE(ctx.tier(TierId::kSsd).StatObject(n.ino, &sb).ok());
  Inode gone;
  EXPECT_EQ(ENOENT, ctx.store().GetInode(n.ino, &gone).err());
  EXPECT_EQ(0, Temps());
}

}  // namespace
}  // namespace tierfs

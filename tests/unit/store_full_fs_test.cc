// Unit test of a full state filesystem (not a full map: store_room_test):
// the LMDB map is writable (Store::Open), so a page LMDB adds in a hole of
// a full filesystem would kill the daemon with SIGBUS. MapAllocation keeps
// the blocks past the last page allocated, so creates are refused with
// ENOSPC and every removal still works; what the removals freed is then
// used again. Runs the store in a child process
// on a small tmpfs of its own, so a SIGBUS fails the test instead of
// killing it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "meta/store.h"

namespace tierfs {
namespace {

constexpr uint64_t kReserve = 4 << 20;  // the daemon's least (fs/space.cc MetaReserve)

// The child's work; its exit code says what failed (0: all as promised).
int FillAndRemove(const std::string& dir) {
  std::unique_ptr<Store> store;
  if (!Store::Open(dir + "/state", &store).ok()) return 10;
  // As the daemon at mount (Space::Start), while there is room.
  if (!store->ReserveSpace(kReserve).ok()) return 19;
  // The rest of the filesystem taken by data, as a full SSD tier does.
  const int filler = open((dir + "/filler").c_str(), O_CREAT | O_WRONLY, 0600);
  if (filler < 0) return 11;
  std::vector<char> chunk(1 << 16, 'x');
  while (write(filler, chunk.data(), chunk.size()) > 0) {
  }
  if (errno != ENOSPC) return 12;
  close(filler);
  // Creates as the daemon makes them: the reserve first (Space::CheckMetaSpace).
  std::vector<std::string> names;
  int refused = 0;
  for (int i = 0; i < 20000 && refused < 50; ++i) {
    const std::string name = std::to_string(i) + std::string(200, 'n');
    Status st = store->ReserveSpace(kReserve);
    NewNode node;
    node.mode = S_IFREG | 0644;
    Inode n;
    if (st.ok()) st = store->Create(kRootIno, name, node, &n);
    if (st.ok()) {
      st = store->SetXattr(n.ino, "user.x", std::string(100, 'v'), 0);
      if (!st.ok() && st.err() != ENOSPC) return 13;
      names.push_back(name);
    } else if (st.err() == ENOSPC) {
      ++refused;
    } else {
      return 14;
    }
  }
  if (refused == 0 || names.empty()) return 15;  // the filesystem never filled
  for (const std::string& name : names) {
    Removed r;
    if (!store->Unlink(kRootIno, name, &r).ok()) return 16;
    if (r.nlink == 0 && !store->DeleteInode(r.ino).ok()) return 17;
  }
  if (!store->Sync().ok()) return 18;
  // The filesystem is still full of data, but the removals freed LMDB pages
  // that its next transactions reuse: creates work again (they were refused
  // for ever while the reserve was counted only past LMDB's last page).
  for (int i = 0; i < 200; ++i) {
    if (!store->ReserveSpace(kReserve).ok()) return 20;
    NewNode node;
    node.mode = S_IFREG | 0644;
    Inode n;
    if (!store->Create(kRootIno, "again" + std::to_string(i), node, &n).ok()) return 21;
  }
  return 0;
}

TEST(StoreFullFsTest, FullStateFilesystemRefusesCreatesRemovesWithoutSigbusAndReusesWhatWasFreed) {
  char tmpl[] = "/tmp/tierfs-fullfs-test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  if (mount("tierfs-test-state", dir.c_str(), "tmpfs", 0, "size=16m") != 0) {
    const int err = errno;
    std::filesystem::remove_all(dir);
    GTEST_SKIP() << "mount tmpfs: " << strerror(err) << " (needs root)";
  }
  ASSERT_EQ(0, mkdir((dir + "/state").c_str(), 0700));
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(FillAndRemove(dir));
  int status = 0;
  ASSERT_EQ(pid, waitpid(pid, &status, 0));
  umount2(dir.c_str(), MNT_DETACH);
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(WIFSIGNALED(status))
      << "the store died of signal " << WTERMSIG(status) << " (SIGBUS is " << SIGBUS << ")";
  EXPECT_EQ(0, WEXITSTATUS(status)) << "see FillAndRemove for what this code means";
}

}  // namespace
}  // namespace tierfs

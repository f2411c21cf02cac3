// Helpers for tests that take the HDD tier away or make it read-only under
// a mounted tierfs, and that look at (or damage) objects on the tiers.
#pragma once

#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"
#include "tiering/tier.h"

namespace tierfs_test {

// Where tier directory `tier_root` keeps inode `ino`'s object. The one
// place tests name objects: update it when object naming changes.
inline std::string ObjectPath(const std::string& tier_root, ino_t ino) {
  return ObjectPathOn(tier_root, ino);
}

// Size of the object, -1 when there is none.
inline int64_t ObjectSize(const std::string& tier_root, ino_t ino) {
  struct stat st;
  return stat(ObjectPath(tier_root, ino).c_str(), &st) == 0 ? int64_t(st.st_size) : -1;
}

// The HDD tier (a tmpfs of its own) read-only while this lives.
class HddReadOnly {
 public:
  explicit HddReadOnly(const std::string& hdd) : hdd_(hdd) {
    // EBUSY while the daemon still has an object open for writing.
    ok_ = WaitFor(
        [&] { return mount(nullptr, hdd_.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0; },
        10);
    EXPECT_TRUE(ok_) << "remount " << hdd_ << " read-only: " << strerror(errno);
  }
  ~HddReadOnly() { End(); }
  // Writable again.
  void End() {
    if (ok_) {
      EXPECT_EQ(0, mount(nullptr, hdd_.c_str(), nullptr, MS_REMOUNT, nullptr))
          << "remount " << hdd_ << " read-write: " << strerror(errno);
    }
    ok_ = false;
  }
  bool ok() const { return ok_; }

 private:
  std::string hdd_;
  bool ok_ = false;
};

// The HDD tier directory covered by an empty tmpfs while this lives, as
// when the disk is unmounted or replaced: the tier fails its health check.
class HddGone {
 public:
  explicit HddGone(const std::string& hdd) : hdd_(hdd) {
    ok_ = mount("tierfs-test-gone", hdd_.c_str(), "tmpfs", 0, "size=1m") == 0;
    EXPECT_TRUE(ok_) << "mount over " << hdd_ << ": " << strerror(errno);
  }
  ~HddGone() {
    if (ok_) {
      EXPECT_EQ(0, umount2(hdd_.c_str(), MNT_DETACH)) << strerror(errno);
    }
  }
  bool ok() const { return ok_; }

 private:
  std::string hdd_;
  bool ok_ = false;
};

inline MountOptions TmpfsTiers() {
  MountOptions o;
  o.ssd_tmpfs_mb = 64;
  o.hdd_tmpfs_mb = 64;
  return o;
}

class TierFaultTest : public MountTest {
 protected:
  TierFaultTest() : MountTest(TmpfsTiers()) {}
  // Writes `rel` and moves it to the HDD tier through the mount.
  void MakeHddResident(const std::string& rel, const std::string& data) {
    ASSERT_EQ(0, WriteFile(P(rel), data));
    // EBUSY until the kernel's asynchronous release of the writer arrives.
    int err = 0;
    WaitFor([&] { return (err = SetTier(P(rel), "hdd")) != EBUSY; }, 10);
    ASSERT_EQ(0, err);
    ASSERT_EQ("hdd", GetTier(P(rel)));
    ASSERT_EQ(int64_t(data.size()), ObjectSize(fs_.hdd(), Ino(P(rel))));
  }
};

}  // namespace tierfs_test

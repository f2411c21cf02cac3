// What the unit tests of the daemon's units (fs/placement.h, fs/holds.h,
// fs/handles.h, fs/tree_ops.h) share: a real Store and two real Tiers in a
// temporary directory (TierPairFixture), an InodeTable, a Placement whose
// audit callback collects the records, and helpers that make files,
// directories and objects without a mount.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fs/inode_table.h"
#include "fs/placement.h"
#include "meta/audit.h"
#include "tests/unit/tier_pair_fixture.h"

namespace tierfs {

class FsUnitsFixture : public TierPairFixture {
 protected:
  void SetUp() override {
    TierPairFixture::SetUp();
    if (HasFatalFailure()) return;
    // Unthrottled: the tests move small files and must not wait.
    TierLimits limits;
    limits.move_bytes_per_sec = 0;
    placement_ = std::make_unique<tierfs::Placement>(
        *store_, tiers(), table_,
        [this](const AuditRecord& rec) {
          std::lock_guard<std::mutex> lock(audit_mu_);
          audit_.push_back(rec);
        },
        limits);
  }
  void TearDown() override {
    placement_.reset();
    TierPairFixture::TearDown();
  }
  Tiers tiers() { return Tiers{ssd_.get(), hdd_.get()}; }

  // A regular file `name` in `parent` whose object on `tier` holds `content`
  // (no object when `content` is empty).
  uint64_t MakeFile(uint64_t parent, const std::string& name, const std::string& content,
                    TierId tier = TierId::kSsd) {
    NewNode node;
    node.mode = S_IFREG | 0644;
    node.tier = tier;
    Inode n;
    Status st = store_->Create(parent, name, node, &n);
    EXPECT_TRUE(st.ok()) << st.message();
    if (!content.empty()) {
      WriteObject(tier == TierId::kSsd ? *ssd_ : *hdd_, n.ino, content);
      st = store_->Update(
          n.ino,
          [&](Inode& i) {
            i.size = content.size();
            return Status::Ok();
          },
          nullptr);
      EXPECT_TRUE(st.ok()) << st.message();
    }
    return n.ino;
  }
  uint64_t MakeDir(uint64_t parent, const std::string& name) {
    NewNode node;
    node.mode = S_IFDIR | 0755;
    Inode n;
    Status st = store_->Create(parent, name, node, &n);
    EXPECT_TRUE(st.ok()) << st.message();
    return n.ino;
  }
  void WriteObject(const Tier& t, uint64_t ino, const std::string& content) {
    Status st;
    int fd = t.OpenObject(ino, O_WRONLY | O_CREAT | O_TRUNC, &st);
    ASSERT_GE(fd, 0) << st.message();
    ASSERT_EQ(pwrite(fd, content.data(), content.size(), 0), ssize_t(content.size()));
    close(fd);
  }
  std::vector<AuditRecord> AuditRecords() {
    std::lock_guard<std::mutex> lock(audit_mu_);
    return audit_;
  }

  InodeTable table_;
  std::unique_ptr<tierfs::Placement> placement_;
  std::mutex audit_mu_;
  std::vector<AuditRecord> audit_;  // guarded by audit_mu_
};

}  // namespace tierfs

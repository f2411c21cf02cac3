// The FUSE operations of `tierfs view` (fs/view.h) over a built ViewTree
// (fs/view_tree.h): lookup, getattr, readlink, readdir, open, verified
// read, statfs and the read-only extended attributes user.tierfs.tier and
// user.tierfs.object (files) and user.tierfs.view (the root: JSON of the
// namespace, snapshot, build time and counts). Every change is refused (the mount is read-only;
// an open for writing is EROFS here too).
// Thread-safety: a tree is never changed once served (a refresh replaces
// it whole, under the mutex); block sums learned at a first open are shared
// under the mutex; one handle's reads share its cached block under the
// handle's mutex.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fs/view_tree.h"
#include "meta/mutex.h"

namespace tierfs {

class ViewFs {
 public:
  // `refresh`: whether the tree is replaced while mounted (Replace), so
  // the kernel may keep entries, attributes and file pages for
  // `cache_timeout_s` only, and no page cache across opens.
  ViewFs(std::shared_ptr<const ViewTree> tree, std::string hdd_dir, bool refresh,
         double cache_timeout_s);
  // The operations; the session's userdata must be this ViewFs.
  static const fuse_lowlevel_ops& Ops();

  // The tree served now; a request keeps the one it started with (an open
  // file, the one it was opened in).
  std::shared_ptr<const ViewTree> tree() const EXCLUDES(mu_);
  // Serves `tree` from now on (a refresh). Inode numbers mean the same file
  // in both (fs/view_tree.h); what left the tree is ENOENT from then on.
  void Replace(std::shared_ptr<const ViewTree> tree) EXCLUDES(mu_);
  bool refresh() const { return refresh_; }
  // Whether INIT negotiated FUSE_POSIX_ACL: the kernel then enforces the
  // tree's ACLs; without it a file with an ACL is shown to its owner alone.
  bool acls() const { return acls_.load(std::memory_order_relaxed); }
  void set_acls(bool on) { acls_.store(on, std::memory_order_relaxed); }
  double cache_timeout_s() const { return cache_timeout_s_; }

  // The block sums `node`'s reads verify against (null: served unverified;
  // valid while the caller holds the tree `node` belongs to),
  // hashing the whole object first when only its checksum is known. EIO
  // when the object does not hash to it; errno of the failing read.
  int SumsFor(const ViewNode& node, int fd, std::shared_ptr<const std::vector<uint64_t>>* out)
      EXCLUDES(mu_);
  const std::string& hdd_dir() const { return hdd_dir_; }

 private:
  const std::string hdd_dir_;
  const bool refresh_;
  const double cache_timeout_s_;
  std::atomic<bool> acls_{false};
  mutable Mutex mu_;
  std::shared_ptr<const ViewTree> tree_ GUARDED_BY(mu_);
  // Sums learned by hashing whole files, by inode and checksum.
  std::map<std::pair<uint64_t, uint64_t>, std::shared_ptr<const std::vector<uint64_t>>> sums_
      GUARDED_BY(mu_);
};

// The node `ino` of `tree`, or null.
const ViewNode* FindNode(const ViewTree& tree, uint64_t ino);

}  // namespace tierfs

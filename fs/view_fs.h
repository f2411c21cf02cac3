// The FUSE operations of `tierfs view` (fs/view.h) over a built ViewTree
// (fs/view_tree.h): lookup, getattr, readlink, readdir, open, verified
// read, statfs and the read-only extended attributes user.tierfs.tier and
// user.tierfs.object. Every change is refused (the mount is read-only;
// an open for writing is EROFS here too).
// Thread-safety: the tree is not changed once served; block sums learned
// at a first open are shared under a mutex; one handle's reads share its
// cached block under the handle's mutex.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fs/view_tree.h"
#include "meta/mutex.h"

namespace tierfs {

class ViewFs {
 public:
  ViewFs(ViewTree tree, std::string hdd_dir);
  // The operations; the session's userdata must be this ViewFs.
  static const fuse_lowlevel_ops& Ops();
  const ViewTree& tree() const { return tree_; }

  // Exposed for the operations (fs/view_fs.cc).
  const ViewNode* Find(fuse_ino_t ino) const;
  // The block sums `node`'s reads verify against (null: served unverified),
  // hashing the whole object first when only its checksum is known. EIO
  // when the object does not hash to it; errno of the failing read.
  int SumsFor(const ViewNode& node, int fd, std::shared_ptr<const std::vector<uint64_t>>* out)
      EXCLUDES(mu_);
  const std::string& hdd_dir() const { return hdd_dir_; }

 private:
  ViewTree tree_;
  std::string hdd_dir_;
  Mutex mu_;
  std::map<uint64_t, std::shared_ptr<const std::vector<uint64_t>>> sums_ GUARDED_BY(mu_);
};

}  // namespace tierfs

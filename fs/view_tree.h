// The tree `tierfs view` serves (fs/view.h): a namespace of the capacity
// tier as another node sees it, built from what that tier holds alone,
// without writing to it.
//
// The names come from the namespace's newest snapshot of the state
// (fs/snapshot.h), copied to a scratch directory and read there; the
// bytes from the objects (HDD/ns/NAME/objects/xx/<ino>), as recover
// settles them (fs/recover.h), but in memory:
//   - a file of the snapshot whose object is on the tier is shown with the
//     object's size and mtime, under every name the snapshot gives it;
//   - a file of the snapshot without an object (its bytes only on the
//     owner's SSD tier, or removed since) is left out (`ssd_only`);
//   - an object the snapshot does not know (archived after it) is shown
//     under its identity's path (tiering/identity.h), directories made as
//     needed, or as /recovered/<ino> when that name is taken or unknown;
//     one the audit journal's HDD copy says was thinned or deleted since
//     the snapshot is left out (`removed`), as is one without an identity
//     (`unplaced`).
// Each shown file carries the checksum that vouches for its bytes: the
// identity's while the object's size and mtime are the ones it recorded,
// else the snapshot's while they agree with the snapshot; 0 (served
// unverified) otherwise. Block sums come with it from the snapshot when
// they belong to that checksum.
// Inode numbers are the snapshot's and the objects' own; directories made
// from identity paths get numbers above 2^62 from their paths, so a tree
// built again (a refresh) gives every file and directory the same number.
// Errors (nothing is built): EINVAL for a bad namespace or none to choose;
// the errno of the failing call naming the path (the snapshot, the copy).
// An unreadable object is skipped and counted, never fatal.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "meta/status.h"

namespace tierfs {

struct ViewNode {
  uint64_t ino = 0;
  uint32_t mode = 0, uid = 0, gid = 0, nlink = 1;
  uint64_t size = 0;
  int64_t atime_ns = 0, mtime_ns = 0, ctime_ns = 0;
  std::string object;          // regular files: the object's path on the tier
  std::string symlink_target;  // symlinks
  uint64_t checksum = 0;       // regular files: xxh3 of the bytes, 0 unknown
  std::vector<uint64_t> sums;  // block sums of `checksum` (meta/block_sums.h), may be empty
  std::string path;            // the first name, for messages
  // POSIX ACLs (xattr bytes, "" for none): the snapshot's, or for a file
  // archived after it the access ACL its identity recorded. The view serves
  // them, so the kernel restricts the bytes as the owner's mount did.
  std::string access_acl, default_acl;
  // Its other extended attributes (tiering/identity.h IsArchivedXattr): the
  // snapshot's, or the identity's when it is newer or the only record.
  std::map<std::string, std::string> xattrs;
  std::map<std::string, uint64_t> children;  // directories: name -> ino
};

struct ViewTree {
  std::string ns;                      // the namespace's name
  std::string ns_dir;                  // HDD/ns/NAME
  std::string snapshot;                // the snapshot used, "" for none
  int64_t built_ns = 0;                // when it was built
  std::map<uint64_t, ViewNode> nodes;  // by inode; the root is kRootIno
  // Counts of what is not shown, for the log.
  uint64_t ssd_only = 0, removed = 0, unplaced = 0;
};

// Builds the tree of namespace `ns` ("" when the tier holds only one) of
// the capacity tier at `hdd_dir`; the snapshot is copied into `scratch_dir`
// (which must exist) and removed from there before returning.
Status BuildViewTree(const std::string& hdd_dir, const std::string& ns,
                     const std::string& scratch_dir, ViewTree* out);

}  // namespace tierfs

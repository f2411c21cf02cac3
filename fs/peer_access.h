// Whether a caller may read or search an inode, decided as the kernel
// decides for the mount: the inode's access ACL when the mount enforces
// ACLs and it has one (fs/posix_acl.h), else the permission bits of the
// caller's class; root may always. A caller is a ControlPeer: a control
// socket client (fs/control.h) or the caller of a FUSE request
// (PeerOfRequest), so tierctl's answers and the user.tierfs.* attributes
// hide the same things.
#pragma once

#include <vector>

#include "fs/context.h"  // FUSE_USE_VERSION, then fuse_lowlevel.h
#include "fs/control.h"
#include "meta/inode.h"

namespace tierfs {

// Whether `peer` may read `d`: list it (a directory, as ls would) or read
// its bytes (a file; what a checksum of them needs).
bool MayRead(Context& c, const Inode& d, const ControlPeer& peer);
// Whether `peer` may search directory `d`.
bool MaySearch(Context& c, const Inode& d, const ControlPeer& peer);

// The caller of `req`: uid, gid, pid and, for a user other than root, its
// supplementary groups (which root's checks never need).
ControlPeer PeerOfRequest(fuse_req_t req);
// The supplementary groups of the caller of `req` (fuse_req_getgroups,
// however many there are); empty when the kernel cannot tell.
std::vector<gid_t> CallerGroups(fuse_req_t req);

}  // namespace tierfs

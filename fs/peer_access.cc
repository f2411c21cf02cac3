#include "fs/peer_access.h"

#include <vector>

#include "fs/posix_acl.h"

namespace tierfs {

namespace {

// Whether `peer` gets all of `want` (4 read, 1 search) on `n`.
bool PeerMay(Context& c, const Inode& n, const ControlPeer& peer, unsigned want) {
  if (peer.uid == 0) return true;
  std::string raw;
  posix_acl::Acl acl;
  if (c.acls() && c.store().GetXattr(n.ino, posix_acl::kAccessXattr, &raw).ok() &&
      posix_acl::Parse(raw, &acl).ok())
    return posix_acl::Permits(
        acl, n.uid, n.gid, peer.uid, [&](uint32_t gid) { return peer.InGroup(gid); }, want);
  const unsigned bits = peer.uid == n.uid     ? n.mode >> 6
                        : peer.InGroup(n.gid) ? n.mode >> 3
                                              : n.mode;
  return (bits & want) == want;
}

}  // namespace

bool MaySearch(Context& c, const Inode& d, const ControlPeer& peer) {
  return PeerMay(c, d, peer, 1);
}

bool MayRead(Context& c, const Inode& d, const ControlPeer& peer) {
  return PeerMay(c, d, peer, 4);
}

std::vector<gid_t> CallerGroups(fuse_req_t req) {
  std::vector<gid_t> groups(64);
  int n = fuse_req_getgroups(req, int(groups.size()), groups.data());
  if (n > int(groups.size())) {
    groups.resize(size_t(n));
    n = fuse_req_getgroups(req, int(groups.size()), groups.data());
  }
  groups.resize(n > 0 ? size_t(n) : 0);
  return groups;
}

ControlPeer PeerOfRequest(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  ControlPeer peer;
  peer.pid = ctx->pid;
  peer.uid = ctx->uid;
  peer.gid = ctx->gid;
  if (peer.uid != 0) peer.groups = CallerGroups(req);
  return peer;
}

}  // namespace tierfs

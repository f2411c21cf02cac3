// The audit record of a user's deletion of kept data: an unlink, an rmdir
// or a rename that replaces an entry, whose inode a hold retains (a pin by
// rule or by hand, a retention rule; not a placement-only hold: Holds::
// Retains). Ordinary deletions write nothing (training jobs delete a lot).
//
// The record is written BEFORE the entry goes (write-ahead): a deletion of
// kept data that the journal cannot record is refused (EIO naming the path
// and the journal's error), the way a thin that cannot hash what it would
// delete is refused, so no kept byte goes unrecorded. If the removal then
// fails (rare: the kernel serialises the entry's operations, so only the
// policy engine can race it), a second record says the deletion did not
// happen.
//
// Record: action "delete" (the last link: the bytes go) or "unlink" (other
// links remain: no bytes go; detail names the links left), uid and pid of
// the caller, path (the parent's known path + the name), inode, bytes and
// xxh3 (the inode's recorded checksum when it vouches for the bytes, else
// the object hashed before it goes), generation when set, the hold's rule.
//
// A truncate that discards bytes of such an inode (an open with O_TRUNC, a
// setattr to a smaller size: truncate(1), ftruncate(2), `: > file`) is
// audited the same way, write-ahead and refused with EIO when its record
// cannot be written: action "truncate", uid and pid, path, inode, the bytes
// that were there and their xxh3, "new_size", the hold's rule. An immutable
// hold refuses the truncate before it gets here (fs/op_table.h). A file
// with no hold pays nothing new while no retaining hold exists in the mount
// (Holds::MayRetain), else one lookup of its hold when a truncate would cut
// bytes (LMDB's size above the new one, or a writer has it open).
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "fs/context.h"

namespace tierfs {

struct PendingDelete {
  bool audited = false;  // a record was written
  AuditRecord rec;
};

// Before `op` ("unlink", "rmdir", "rename over") removes `name` in `parent`
// for the caller of `req`. An error means: do not delete.
Status AuditDeleteBefore(Context& c, fuse_req_t req, uint64_t parent, const char* name,
                         const char* op, PendingDelete* out);
// After the removal: when it failed, records that the deletion did not happen.
void AuditDeleteAfter(Context& c, const PendingDelete& p, const Status& removal);

// Before `op` ("O_TRUNC open", "truncate") cuts regular file `n` (as read by
// the op) to `new_size` bytes for the caller of `req`. An error means: do
// not truncate.
Status AuditTruncateBefore(Context& c, fuse_req_t req, const Inode& n, uint64_t new_size,
                           const char* op, PendingDelete* out);
// After the truncate: when it failed, records that it did not happen.
// Returns `result`, for the op to return.
Status AuditTruncateAfter(Context& c, const PendingDelete& p, const Status& result);

}  // namespace tierfs

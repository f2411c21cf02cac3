// The FUSE operation table's one convention (mergerfs style: one op a
// function, the glue replies). An op is a function returning Status:
//  - on success it has sent its own reply (entry, attr, buf, open, the
//    write count, or fuse_reply_err(req, 0));
//  - on failure it returns the error and has NOT replied: Op<> replies
//    -errno, once, and logs an unexpected error (OpFailed) naming the op,
//    the inode, the tier of a regular file and its path. A network
//    filesystem's transport errors from a tier (ENOTCONN, ESTALE,
//    ETIMEDOUT, ...) reach the application as EIO.
// An exception escaping an op still means "not replied yet": fs/op_guard.h
// wraps this table (DaemonOps in fs/daemon.cc) and replies for it.
//
// Every registration also declares what the op changes, and Op<> asks Holds
// (fs/holds.h) about that before the op runs: no op that changes a file can
// forget the immutability check, and the ops themselves never call it.
//   ops->setattr = Op<SetAttr, "setattr", ChangesInode>;
// forget and forget_multi never reply with an error and stay plain void
// functions.
#pragma once

#define FUSE_USE_VERSION 312
#include <fcntl.h>
#include <fuse_lowlevel.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <optional>
#include <type_traits>

#include "fs/context.h"
#include "fs/metrics.h"

namespace tierfs {

// An op's name as a template argument (the log and CheckMutable's `what`).
template <size_t N>
struct OpName {
  constexpr OpName(const char (&s)[N]) { std::copy_n(s, N, text); }
  char text[N];
};

// user.tierfs.*: tierfs's own control attributes (fs/ops_xattr.cc). They
// read and steer placement; setting one changes no data of the file.
inline bool IsTierfsXattr(const char* name) {
  return std::strncmp(name, "user.tierfs.", 12) == 0;
}

// Holds' mutability checks on behalf of the request's caller, whose
// refusals are audited (fs/refusal_audit.h).
struct HoldCheck {
  Holds& holds;
  Holds::Caller by;
  Status CheckMutable(uint64_t ino, const char* what) { return holds.CheckMutable(ino, what, &by); }
  Status CheckEntryMutable(uint64_t parent, const char* name, const char* what) {
    return holds.CheckEntryMutable(parent, name, what, &by);
  }
};

// What an op changes, for immutable holds. Each Check takes the op's
// arguments after the request (and binds the ones it needs by type, so a
// declaration that does not fit the op does not compile).
//
// Changes nothing a hold protects: lookups, reads, listings, statfs.
struct ReadsOnly {
  template <typename... A>
  static Status Check(HoldCheck&, const char*, A...) {
    return Status::Ok();
  }
  template <typename... A>
  static uint64_t SecondDir(A...) {
    return 0;  // none
  }
};
// A new inode (create, mknod, mkdir, symlink): a hold protects the bytes,
// attributes and names of what it holds, not the directories' room for new
// entries. (link gives the held inode a name and a link count: ChangesInode.)
struct AddsNames : ReadsOnly {};
// Writes through an open handle (write, fallocate, copy_file_range, and the
// size a writer's fsync or release records): its open for writing was
// checked (ChangesIfOpenWrites).
struct WritesThroughHandle : ReadsOnly {};
// The inode argument: its attributes (setattr).
struct ChangesInode : ReadsOnly {
  template <typename... A>
  static Status Check(HoldCheck& h, const char* op, fuse_ino_t ino, A...) {
    return h.CheckMutable(ino, op);
  }
};
// The inode `name` in `parent` names (unlink, rmdir).
struct ChangesEntry : ReadsOnly {
  template <typename... A>
  static Status Check(HoldCheck& h, const char* op, fuse_ino_t parent, const char* name, A...) {
    return h.CheckEntryMutable(parent, name, op);
  }
};
// Both names of a rename: the one that moves and the one it replaces.
struct ChangesBothEntries {
  // The directory a request also locks besides its first inode's.
  static uint64_t SecondDir(fuse_ino_t, const char*, fuse_ino_t new_parent, const char*, unsigned) {
    return new_parent;
  }
  static Status Check(HoldCheck& h, const char* op, fuse_ino_t parent, const char* name,
                      fuse_ino_t new_parent, const char* new_name, unsigned) {
    Status st = h.CheckEntryMutable(parent, name, op);
    if (st.ok()) st = h.CheckEntryMutable(new_parent, new_name, "rename over");
    return st;
  }
};
// open: the inode, when the flags say it will be written or truncated
// (O_TRUNC empties it whatever the access mode).
struct ChangesIfOpenWrites : ReadsOnly {
  static Status Check(HoldCheck& h, const char*, fuse_ino_t ino, fuse_file_info* fi) {
    if ((fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & O_TRUNC)) return Status::Ok();
    return h.CheckMutable(ino, "open for writing");
  }
};
// setxattr, removexattr: the inode's extended attributes, unless `name` is
// one of tierfs's own (moving a file or reloading the policy is no change
// of its data).
struct ChangesXattr : ReadsOnly {
  template <typename... A>
  static Status Check(HoldCheck& h, const char* op, fuse_ino_t ino, const char* name, A...) {
    return IsTierfsXattr(name) ? Status::Ok() : h.CheckMutable(ino, op);
  }
};

// Replies -errno to a failed op; logs errors that are not an ordinary
// answer (ENOENT, EEXIST, EPERM, ENOSPC, ...) with `op`, inode `ino` (the
// op's first inode argument), its tier when it is a regular file, and its
// path when it has one. Replies last.
void OpFailed(Context& c, fuse_req_t req, const char* op, std::optional<uint64_t> ino,
              const Status& st);

// The first fuse_ino_t argument of an op (ino, parent, or ino_in): every
// Status op has one before any other 64-bit unsigned argument.
template <typename... A>
std::optional<uint64_t> FirstIno(A... args) {
  std::optional<uint64_t> ino;
  auto take = [&](auto a) {
    if constexpr (std::is_same_v<decltype(a), fuse_ino_t>)
      if (!ino) ino = a;
  };
  (take(args), ...);
  return ino;
}

// Counts a request on `ino` (0: none; no inode is 0) for its lifetime
// (TreeOps::EnterRequest).
class InFlight {
 public:
  InFlight(TreeOps& t, uint64_t ino) : t_(t), ino_(ino) {
    if (ino_ != 0) t_.EnterRequest(ino_);
  }
  ~InFlight() {
    if (ino_ != 0) t_.ExitRequest(ino_);
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  TreeOps& t_;
  const uint64_t ino_;
};

// Observes an op's latency into its histogram when it goes (after the
// reply, also when an exception leaves the op).
class OpTimer {
 public:
  explicit OpTimer(OpStats& s) : s_(s), start_(std::chrono::steady_clock::now()) {}
  ~OpTimer() {
    s_.latency.Observe(std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::steady_clock::now() - start_)
                           .count());
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;
  OpStats& stats() { return s_; }

 private:
  OpStats& s_;
  const std::chrono::steady_clock::time_point start_;
};

template <auto Fn, OpName kName, typename Changes>
struct StatusOp;

template <typename... A, Status (*Fn)(fuse_req_t, A...), OpName kName, typename Changes>
struct StatusOp<Fn, kName, Changes> {
  static void Call(fuse_req_t req, A... args) {
    Context& c = Ctx(req);
    static constexpr size_t kIndex = OpIndex(kName.text);
    static_assert(kIndex < kOpCount, "an op missing from kOpNames (fs/metrics.h)");
    // Counted and timed here, lock-free, including the checks below.
    OpTimer timer(c.metrics().op(kIndex));
    // While it runs, the kernel may hold these inodes' locks (TreeOps::EnterRequest).
    InFlight first(c.tree_ops(), FirstIno(args...).value_or(0));
    InFlight second(c.tree_ops(), Changes::SecondDir(args...));
    const fuse_ctx* ctx = fuse_req_ctx(req);
    HoldCheck check{c.holds(), {int64_t(ctx->uid), int64_t(ctx->pid)}};
    Status st = Changes::Check(check, kName.text, args...);
    if (st.ok()) st = Fn(req, args...);
    if (!st.ok()) {
      timer.stats().Failed(st.err());
      OpFailed(c, req, kName.text, FirstIno(args...), st);
    }
  }
};

// The libfuse entry for Status op `Fn`, named `kName`, changing `Changes`.
template <auto Fn, OpName kName, typename Changes>
inline constexpr auto Op = &StatusOp<Fn, kName, Changes>::Call;

}  // namespace tierfs

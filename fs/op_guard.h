// OpGuard: no exception ends the daemon. Every FUSE operation is wrapped in
// a try/catch that turns an exception escaping it (std::bad_alloc, a
// std::system_error from a failed thread start, ...) into an error reply to
// that one request: ENOMEM for bad_alloc, EIO for anything else, logged
// with the operation's name. Without it the exception would reach libfuse's
// C worker loop and std::terminate the process: the mount dies.
//
// The rule that makes this safe: an operation replies last. Nothing that
// can throw runs after its fuse_reply_* call, so an exception always means
// "not replied yet" and the guard's reply is the only one. Operations that
// never reply with an error (forget, forget_multi, retrieve_reply) get
// fuse_reply_none instead, once, for the same reason.
//
// `Traits` supplies the table to wrap and the reply functions:
//   static const fuse_lowlevel_ops& Inner();   // built once, never changed
//   static void ReplyErr(fuse_req_t, int err);
//   static void ReplyNone(fuse_req_t);
//   static void Log(const char* op, const char* what, int err);
// so a unit test can drive the guard without a kernel (tests/unit).
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <cerrno>
#include <exception>
#include <new>

namespace tierfs {

template <typename Fn>
struct OpGuardOf;

template <typename... A>
struct OpGuardOf<void (*)(fuse_req_t, A...)> {
  // `Name::Get()` names the operation in the log. `kNoReply`: the operation
  // has no error reply (forget, forget_multi, retrieve_reply).
  template <typename Traits, auto Member, typename Name, bool kNoReply>
  static void Call(fuse_req_t req, A... args) {
    // Each handler logs and replies while the exception (and the text its
    // what() points into) is still alive.
    try {
      (Traits::Inner().*Member)(req, args...);
    } catch (const std::bad_alloc& e) {
      Fail<Traits, Name, kNoReply>(req, ENOMEM, e.what());
    } catch (const std::exception& e) {
      Fail<Traits, Name, kNoReply>(req, EIO, e.what());
    } catch (...) {
      Fail<Traits, Name, kNoReply>(req, EIO, "unknown exception");
    }
  }
  template <typename Traits, typename Name, bool kNoReply>
  static void Fail(fuse_req_t req, int err, const char* what) {
    Traits::Log(Name::Get(), what, kNoReply ? 0 : err);
    if (kNoReply) {
      Traits::ReplyNone(req);
    } else {
      Traits::ReplyErr(req, err);
    }
  }
};

// Fills `out` with guarded versions of every operation Traits::Inner() has
// (and copies init and destroy, which get no request to answer).
template <typename Traits>
void GuardOps(fuse_lowlevel_ops* out) {
  const fuse_lowlevel_ops& in = Traits::Inner();
  *out = {};
  out->init = in.init;
  out->destroy = in.destroy;
#define TIERFS_GUARD_OP(op, no_reply)                                                          \
  if (in.op) {                                                                                 \
    struct Name {                                                                              \
      static const char* Get() { return #op; }                                                 \
    };                                                                                         \
    out->op = &OpGuardOf<decltype(in.op)>::template Call<Traits, &fuse_lowlevel_ops::op, Name, \
                                                         no_reply>;                            \
  }
  TIERFS_GUARD_OP(lookup, false)
  TIERFS_GUARD_OP(forget, true)
  TIERFS_GUARD_OP(getattr, false)
  TIERFS_GUARD_OP(setattr, false)
  TIERFS_GUARD_OP(readlink, false)
  TIERFS_GUARD_OP(mknod, false)
  TIERFS_GUARD_OP(mkdir, false)
  TIERFS_GUARD_OP(unlink, false)
  TIERFS_GUARD_OP(rmdir, false)
  TIERFS_GUARD_OP(symlink, false)
  TIERFS_GUARD_OP(rename, false)
  TIERFS_GUARD_OP(link, false)
  TIERFS_GUARD_OP(open, false)
  TIERFS_GUARD_OP(read, false)
  TIERFS_GUARD_OP(write, false)
  TIERFS_GUARD_OP(flush, false)
  TIERFS_GUARD_OP(release, false)
  TIERFS_GUARD_OP(fsync, false)
  TIERFS_GUARD_OP(opendir, false)
  TIERFS_GUARD_OP(readdir, false)
  TIERFS_GUARD_OP(releasedir, false)
  TIERFS_GUARD_OP(fsyncdir, false)
  TIERFS_GUARD_OP(statfs, false)
  TIERFS_GUARD_OP(setxattr, false)
  TIERFS_GUARD_OP(getxattr, false)
  TIERFS_GUARD_OP(listxattr, false)
  TIERFS_GUARD_OP(removexattr, false)
  TIERFS_GUARD_OP(access, false)
  TIERFS_GUARD_OP(create, false)
  TIERFS_GUARD_OP(getlk, false)
  TIERFS_GUARD_OP(setlk, false)
  TIERFS_GUARD_OP(bmap, false)
  TIERFS_GUARD_OP(ioctl, false)
  TIERFS_GUARD_OP(poll, false)
  TIERFS_GUARD_OP(write_buf, false)
  TIERFS_GUARD_OP(retrieve_reply, true)
  TIERFS_GUARD_OP(forget_multi, true)
  TIERFS_GUARD_OP(flock, false)
  TIERFS_GUARD_OP(fallocate, false)
  TIERFS_GUARD_OP(readdirplus, false)
  TIERFS_GUARD_OP(copy_file_range, false)
  TIERFS_GUARD_OP(lseek, false)
#undef TIERFS_GUARD_OP
}

}  // namespace tierfs

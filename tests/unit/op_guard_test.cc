// fs/op_guard.h: an exception escaping an operation becomes one error reply
// (ENOMEM for bad_alloc, EIO otherwise), forget-like operations get one
// fuse_reply_none, and an operation that returns normally gets no reply
// from the guard. The requests are tokens the fake replies only record.
#include "fs/op_guard.h"

#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

namespace tierfs {
namespace {

struct Reply {
  fuse_req_t req;
  int err;  // -1: fuse_reply_none
};

// What the fake reply functions and the log saw (one test at a time).
std::vector<Reply>& Replies() {
  static std::vector<Reply> r;
  return r;
}
std::vector<std::string>& Logged() {
  static std::vector<std::string> l;
  return l;
}

fuse_req_t Req(int n) {
  static char tokens[8];
  return reinterpret_cast<fuse_req_t>(&tokens[n]);
}

struct TestOps {
  static const fuse_lowlevel_ops& Inner() {
    static const fuse_lowlevel_ops ops = [] {
      fuse_lowlevel_ops o = {};
      o.lookup = [](fuse_req_t, fuse_ino_t, const char*) { throw std::bad_alloc(); };
      o.getattr = [](fuse_req_t, fuse_ino_t, fuse_file_info*) {
        throw std::system_error(EAGAIN, std::generic_category(), "thread start");
      };
      o.unlink = [](fuse_req_t, fuse_ino_t, const char*) { throw 42; };
      // Replies itself (last) and returns: the guard adds nothing.
      o.readlink = [](fuse_req_t req, fuse_ino_t) { Replies().push_back({req, 0}); };
      o.forget = [](fuse_req_t, fuse_ino_t, uint64_t) { throw std::runtime_error("forget"); };
      o.forget_multi = [](fuse_req_t, size_t, fuse_forget_data*) { throw std::bad_alloc(); };
      return o;
    }();
    return ops;
  }
  static void ReplyErr(fuse_req_t req, int err) { Replies().push_back({req, err}); }
  static void ReplyNone(fuse_req_t req) { Replies().push_back({req, -1}); }
  static void Log(const char* op, const char* what, int err) {
    Logged().push_back(std::string(op) + ": " + what + " " + std::to_string(err));
  }
};

class OpGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Replies().clear();
    Logged().clear();
    GuardOps<TestOps>(&ops_);
  }
  fuse_lowlevel_ops ops_;
};

TEST_F(OpGuardTest, OnlyTheOperationsThereAreGuarded) {
  EXPECT_NE(nullptr, ops_.lookup);
  EXPECT_NE(nullptr, ops_.forget);
  EXPECT_EQ(nullptr, ops_.write);
  EXPECT_EQ(nullptr, ops_.init);
}

TEST_F(OpGuardTest, BadAllocIsEnomem) {
  ops_.lookup(Req(1), 1, "name");
  ASSERT_EQ(1u, Replies().size());
  EXPECT_EQ(Req(1), Replies()[0].req);
  EXPECT_EQ(ENOMEM, Replies()[0].err);
  ASSERT_EQ(1u, Logged().size());
  EXPECT_EQ(0u, Logged()[0].find("lookup: "));
}

TEST_F(OpGuardTest, SystemErrorAndUnknownExceptionsAreEio) {
  ops_.getattr(Req(2), 1, nullptr);
  ops_.unlink(Req(3), 1, "x");
  ASSERT_EQ(2u, Replies().size());
  EXPECT_EQ(Req(2), Replies()[0].req);
  EXPECT_EQ(EIO, Replies()[0].err);
  EXPECT_EQ(Req(3), Replies()[1].req);
  EXPECT_EQ(EIO, Replies()[1].err);
  ASSERT_EQ(2u, Logged().size());
  EXPECT_NE(std::string::npos, Logged()[0].find("getattr: thread start"));
  EXPECT_EQ(0u, Logged()[1].find("unlink: "));
}

TEST_F(OpGuardTest, AnOperationThatRepliesIsLeftAlone) {
  ops_.readlink(Req(4), 1);
  ASSERT_EQ(1u, Replies().size());
  EXPECT_EQ(0, Replies()[0].err);
  EXPECT_TRUE(Logged().empty());
}

TEST_F(OpGuardTest, ForgetsGetOneReplyNone) {
  ops_.forget(Req(5), 1, 1);
  ops_.forget_multi(Req(6), 0, nullptr);
  ASSERT_EQ(2u, Replies().size());
  EXPECT_EQ(-1, Replies()[0].err);
  EXPECT_EQ(-1, Replies()[1].err);
}

}  // namespace
}  // namespace tierfs

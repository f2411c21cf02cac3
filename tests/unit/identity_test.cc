// Unit tests of the identity a move writes on an HDD object
// (tiering/identity.h): the xattr, the sidecar where the tier refuses user
// xattrs, and a failed write that fails the move with the file left on SSD.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "tests/unit/tier_pair_fixture.h"
#include "tiering/fault_io.h"
#include "tiering/identity.h"
#include "tiering/mover.h"

namespace tierfs {
namespace {

class IdentityTest : public TierPairFixture {
 protected:
  uint64_t MakeFile(const std::string& name, const std::string& content) {
    NewNode node;
    node.mode = S_IFREG | 0640;
    node.uid = 1234;
    node.gid = 5678;
    Inode n;
    Status st = store_->Create(kRootIno, name, node, &n);
    EXPECT_TRUE(st.ok()) << st.message();
    std::ofstream(ssd_->ObjectPath(n.ino), std::ios::binary) << content;
    return n.ino;
  }
  Status Move(uint64_t ino, MoveResult* result = nullptr) {
    MoveOptions opt;
    opt.path = "/run/checkpoint-5/model.bin";
    return MoveObject(*store_, *ssd_, *hdd_, ino, opt, nullptr, result);
  }
  std::shared_ptr<Io> IoFor(TierId id) override { return id == TierId::kSsd ? nullptr : hdd_io_; }
  std::shared_ptr<FaultIo> hdd_io_ = std::make_shared<FaultIo>(std::make_shared<PosixIo>());
};

// The one rule recover and view share for placing a file by its identity.
TEST(SplitArchivedPathTest, UsablePathsSplitAndOthersAreRefused) {
  auto split = [](const std::string& path, bool truncated = false) {
    ObjectIdentity id;
    id.path = path;
    id.path_truncated = truncated;
    std::vector<std::string> dirs;
    std::string name;
    if (!SplitArchivedPath(id, &dirs, &name)) return std::string("refused");
    std::string out;
    for (const auto& d : dirs) out += d + "|";
    return out + name;
  };
  EXPECT_EQ("a|b|c", split("/a/b/c"));
  EXPECT_EQ("top", split("/top"));
  EXPECT_EQ("a|b", split("//a//b"));
  EXPECT_EQ("refused", split(""));
  EXPECT_EQ("refused", split("/"));
  EXPECT_EQ("refused", split("relative/x"));
  EXPECT_EQ("refused", split("/a/b/"));
  EXPECT_EQ("refused", split("/a/../etc/x"));
  EXPECT_EQ("refused", split("/a/.."));
  EXPECT_EQ("refused", split("/a/./x"));
  EXPECT_EQ("refused", split("/a/b", true));
}

TEST_F(IdentityTest, MoveToHddWritesTheIdentityXattr) {
  const std::string content = Pattern(200000, 7);
  const uint64_t ino = MakeFile("f", content);
  MoveResult result;
  Status st = Move(ino, &result);
  ASSERT_TRUE(st.ok()) << st.message();
  char buf[4096];
  const ssize_t n = getxattr(hdd_->ObjectPath(ino).c_str(), kIdentityXattr, buf, sizeof buf);
  ASSERT_GT(n, 0) << "no " << kIdentityXattr << " on " << hdd_->ObjectPath(ino);
  ObjectIdentity id;
  st = DecodeIdentity(std::string(buf, size_t(n)), &id);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ("test", id.ns);
  EXPECT_EQ(ino, id.ino);
  EXPECT_EQ("/run/checkpoint-5/model.bin", id.path);
  EXPECT_FALSE(id.path_truncated);
  EXPECT_EQ(content.size(), id.size);
  EXPECT_EQ(uint32_t(S_IFREG | 0640), id.mode);
  EXPECT_EQ(1234u, id.uid);
  EXPECT_EQ(5678u, id.gid);
  EXPECT_EQ(result.checksum, id.xxh3);
  EXPECT_NE(0, id.mtime_ns);
  EXPECT_FALSE(std::filesystem::exists(hdd_->ObjectPath(ino) + ".id")) << "sidecar with xattrs";
}

TEST_F(IdentityTest, ATierWithoutUserXattrsGetsASidecar) {
  const std::string content = Pattern(5000, 8);
  const uint64_t ino = MakeFile("f", content);
  hdd_io_->AddRule({IoOp::kSetxattr, 1, true, ENOTSUP, false});
  Status st = Move(ino);
  ASSERT_TRUE(st.ok()) << st.message();
  const std::string object = hdd_->ObjectPath(ino);
  EXPECT_TRUE(std::filesystem::exists(object + ".id"));
  EXPECT_FALSE(std::filesystem::exists(object + ".id.tmp"));
  ObjectIdentity id;
  st = ReadIdentity(object, &id);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(ino, id.ino);
  EXPECT_EQ(content.size(), id.size);
  // The sidecar goes with its object.
  st = hdd_->RemoveObject(ino);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_FALSE(std::filesystem::exists(object + ".id"));
}

TEST_F(IdentityTest, AFailedIdentityFailsTheMoveAndTheFileStaysOnSsd) {
  const std::string content = Pattern(70000, 9);
  const uint64_t ino = MakeFile("f", content);
  hdd_io_->AddRule({IoOp::kSetxattr, 1, false, EIO, false});
  Status st = Move(ino);
  EXPECT_EQ(EIO, st.err()) << st.message();
  EXPECT_NE(std::string::npos, st.message().find("identity")) << st.message();
  EXPECT_EQ(TierId::kSsd, Placement(ino));
  bool exists = false;
  EXPECT_TRUE(Object(*ssd_, ino, &exists) == content);
  EXPECT_TRUE(exists);
  Object(*hdd_, ino, &exists);
  EXPECT_FALSE(exists) << "copy left on hdd";
  EXPECT_EQ(0, Temps());
  EXPECT_EQ(0u, Records());
}

// The access ACL travels with the archived bytes (a view or a recovery
// restricts them as the mount did); one too long is replaced by a flag.
TEST_F(IdentityTest, TheAccessAclIsRecordedAndATooLongOneFlagged) {
  const uint64_t ino = MakeFile("f", "x");
  const std::string acl("\x02\x00\x00\x00\x01\x00\x06\x00\xff\xff\xff\xff", 12);
  ASSERT_TRUE(store_->SetXattr(ino, kAccessAclXattr, acl, 0).ok());
  ASSERT_TRUE(Move(ino).ok());
  char buf[4096];
  const ssize_t n = getxattr(hdd_->ObjectPath(ino).c_str(), kIdentityXattr, buf, sizeof buf);
  ASSERT_GT(n, 0);
  ObjectIdentity id;
  ASSERT_TRUE(DecodeIdentity(std::string(buf, size_t(n)), &id).ok());
  EXPECT_EQ(acl, id.access_acl);
  EXPECT_FALSE(id.acl_unknown);

  id.path = "/ckpt/" + std::string(200, 'p');
  id.access_acl = std::string(8 * 300, '\x07');  // 300 entries
  ObjectIdentity back;
  const std::string text = EncodeIdentity(id);
  EXPECT_LE(text.size(), kMaxIdentityBytes);
  ASSERT_TRUE(DecodeIdentity(text, &back).ok());
  EXPECT_TRUE(back.acl_unknown);
  EXPECT_EQ("", back.access_acl);
  EXPECT_EQ(id.path, back.path);
  EXPECT_EQ(EINVAL, DecodeIdentity(R"({"namespace":"n","ino":1,"size":0,"mode":0,)"
                                   R"("xxh3":"0","acl":"0g"})",
                                   &back)
                        .err());
}

// The file's extended attributes travel with the archived bytes (not
// tierfs's own, not system.*), binary ones in hex; more than their room is
// a flag, never a part of them.
TEST_F(IdentityTest, XattrsAreRecordedAndTooManyFlagged) {
  const uint64_t ino = MakeFile("f", "x");
  const std::string binary("\x00\xff\x80note", 7);
  ASSERT_TRUE(store_->SetXattr(ino, "user.checkpoint.sha", "abc123", 0).ok());
  ASSERT_TRUE(store_->SetXattr(ino, "trusted.bin", binary, 0).ok());
  ASSERT_TRUE(store_->SetXattr(ino, std::string("user.\xff"), "v", 0).ok());
  ASSERT_TRUE(store_->SetXattr(ino, "user.tierfs.stale", "no", 0).ok());
  ASSERT_TRUE(store_->SetXattr(ino, "system.posix_acl_default", "no", 0).ok());
  ASSERT_TRUE(Move(ino).ok());
  ObjectIdentity id;
  Status st = ReadIdentity(hdd_->ObjectPath(ino), &id);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_TRUE(id.xattrs_recorded);
  EXPECT_FALSE(id.xattrs_unknown);
  const std::map<std::string, std::string> want = {
      {"user.checkpoint.sha", "abc123"}, {"trusted.bin", binary}, {"user.\xff", "v"}};
  EXPECT_EQ(want, id.xattrs);

  // Over the room: flagged, none recorded, and the path keeps its room.
  id.path = "/ckpt/" + std::string(200, 'p');
  id.xattrs["user.big"] = std::string(kMaxIdentityXattrBytes, 'b');
  const std::string text = EncodeIdentity(id);
  EXPECT_LE(text.size(), kMaxIdentityBytes);
  ObjectIdentity back;
  ASSERT_TRUE(DecodeIdentity(text, &back).ok());
  EXPECT_TRUE(back.xattrs_unknown);
  EXPECT_FALSE(back.xattrs_recorded);
  EXPECT_TRUE(back.xattrs.empty());
  EXPECT_EQ(id.path, back.path);
}

// An identity an older tierfs wrote (v1, no xattrs) is read, and says
// nothing of the attributes: a reader must not take it for "none".
TEST(IdentityFormatTest, AVersionOneIdentityRecordsNoXattrs) {
  ObjectIdentity id;
  Status st = DecodeIdentity(R"({"v":1,"namespace":"n","ino":7,"path":"/a","size":3,)"
                             R"("mode":33188,"uid":1,"gid":2,"mtime_ns":5,"ctime_ns":6,)"
                             R"("xxh3":"ff","archived_ns":8})",
                             &id);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(7u, id.ino);
  EXPECT_FALSE(id.xattrs_recorded);
  EXPECT_FALSE(id.xattrs_unknown);
  // And one without any: v1 still, so an older reader sees what it knows.
  EXPECT_NE(std::string::npos, EncodeIdentity(id).find("\"v\":1,"));
}

TEST_F(IdentityTest, ALongPathIsCutAndFlagged) {
  ObjectIdentity id;
  id.ns = "n";
  id.ino = 9;
  id.path = "/" + std::string(10000, 'a');
  id.xxh3 = 0xfeedface12345678ull;
  const std::string text = EncodeIdentity(id);
  EXPECT_LE(text.size(), kMaxIdentityBytes);
  ObjectIdentity back;
  Status st = DecodeIdentity(text, &back);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_TRUE(back.path_truncated);
  EXPECT_EQ(0u, id.path.find(back.path));
  EXPECT_GT(back.path.size(), 1000u);
  EXPECT_EQ(id.xxh3, back.xxh3);
}

}  // namespace
}  // namespace tierfs

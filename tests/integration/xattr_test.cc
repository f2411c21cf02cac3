// Extended attributes: set/get/list/remove, flags, sizes, persistence.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

int SetX(const std::string& p, const std::string& name, const std::string& value, int flags = 0) {
  return Err(lsetxattr(p.c_str(), name.c_str(), value.data(), value.size(), flags));
}

// Value of `name`, or "<errno N>".
std::string GetX(const std::string& p, const std::string& name) {
  ssize_t n = lgetxattr(p.c_str(), name.c_str(), nullptr, 0);
  if (n < 0) return "<errno " + std::to_string(errno) + ">";
  std::string v(n + 16, '\0');
  n = lgetxattr(p.c_str(), name.c_str(), v.data(), v.size());
  if (n < 0) return "<errno " + std::to_string(errno) + ">";
  v.resize(n);
  return v;
}

// Names listed for `p`, sorted, without the daemon's own user.tierfs.* ones.
std::vector<std::string> ListX(const std::string& p) {
  std::vector<std::string> names;
  ssize_t n = llistxattr(p.c_str(), nullptr, 0);
  if (n < 0) return {"<errno " + std::to_string(errno) + ">"};
  std::string buf(n + 256, '\0');
  n = llistxattr(p.c_str(), buf.data(), buf.size());
  if (n < 0) return {"<errno " + std::to_string(errno) + ">"};
  for (size_t i = 0; i < static_cast<size_t>(n);) {
    std::string name(buf.c_str() + i);
    i += name.size() + 1;
    if (name.rfind("user.tierfs.", 0) == 0) continue;
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

class XattrTest : public MountTest {};

TEST_F(XattrTest, SetGetListRemove) {
  std::string f = P("f");
  ASSERT_EQ(0, WriteFile(f, "data"));
  EXPECT_EQ(std::vector<std::string>{}, ListX(f));
  EXPECT_EQ("<errno " + std::to_string(ENODATA) + ">", GetX(f, "user.missing"));
  ASSERT_EQ(0, SetX(f, "user.a", "alpha"));
  ASSERT_EQ(0, SetX(f, "user.b", std::string("bin\0ary\xff", 8)));
  ASSERT_EQ(0, SetX(f, "user.empty", ""));
  ASSERT_EQ(0, SetX(f, "trusted.t", "root only"));
  EXPECT_EQ("alpha", GetX(f, "user.a"));
  EXPECT_EQ(std::string("bin\0ary\xff", 8), GetX(f, "user.b"));
  EXPECT_EQ("", GetX(f, "user.empty"));
  EXPECT_EQ("root only", GetX(f, "trusted.t"));
  std::vector<std::string> want = {"trusted.t", "user.a", "user.b", "user.empty"};
  EXPECT_EQ(want, ListX(f));
  // Overwrite with a shorter and a longer value.
  ASSERT_EQ(0, SetX(f, "user.a", "A"));
  EXPECT_EQ("A", GetX(f, "user.a"));
  std::string big = Pattern(3000, 3);
  ASSERT_EQ(0, SetX(f, "user.a", big));
  EXPECT_EQ(big, GetX(f, "user.a"));
  ASSERT_EQ(0, Err(lremovexattr(f.c_str(), "user.a")));
  EXPECT_EQ(ENODATA, Err(lremovexattr(f.c_str(), "user.a")));
  EXPECT_EQ("<errno " + std::to_string(ENODATA) + ">", GetX(f, "user.a"));
  want = {"trusted.t", "user.b", "user.empty"};
  EXPECT_EQ(want, ListX(f));
  // Data is untouched, and xattrs are per inode: visible through a hard link.
  std::string data;
  ASSERT_EQ(0, ReadFile(f, &data));
  EXPECT_EQ("data", data);
  ASSERT_EQ(0, link(f.c_str(), P("hard").c_str()));
  EXPECT_EQ("", GetX(P("hard"), "user.empty"));
  // A new inode under an old name starts without attributes.
  ASSERT_EQ(0, unlink(f.c_str()));
  ASSERT_EQ(0, unlink(P("hard").c_str()));
  ASSERT_EQ(0, WriteFile(f, "again"));
  EXPECT_EQ(std::vector<std::string>{}, ListX(f));
}

TEST_F(XattrTest, CreateAndReplaceFlags) {
  std::string f = P("f");
  ASSERT_EQ(0, WriteFile(f, ""));
  EXPECT_EQ(ENODATA, SetX(f, "user.x", "v", XATTR_REPLACE));
  ASSERT_EQ(0, SetX(f, "user.x", "v1", XATTR_CREATE));
  EXPECT_EQ(EEXIST, SetX(f, "user.x", "v2", XATTR_CREATE));
  EXPECT_EQ("v1", GetX(f, "user.x"));
  ASSERT_EQ(0, SetX(f, "user.x", "v3", XATTR_REPLACE));
  EXPECT_EQ("v3", GetX(f, "user.x"));
}

TEST_F(XattrTest, SizeQueryAndErange) {
  std::string f = P("f");
  ASSERT_EQ(0, WriteFile(f, ""));
  ASSERT_EQ(0, SetX(f, "user.long", "0123456789"));
  EXPECT_EQ(10, lgetxattr(f.c_str(), "user.long", nullptr, 0));
  char small[4];
  EXPECT_EQ(-1, lgetxattr(f.c_str(), "user.long", small, sizeof small));
  EXPECT_EQ(ERANGE, errno);
  char exact[10];
  EXPECT_EQ(10, lgetxattr(f.c_str(), "user.long", exact, sizeof exact));
  EXPECT_EQ("0123456789", std::string(exact, 10));

  ssize_t list_size = llistxattr(f.c_str(), nullptr, 0);
  ASSERT_GE(list_size, static_cast<ssize_t>(sizeof("user.long")));
  std::string buf(list_size, '\0');
  EXPECT_EQ(list_size, llistxattr(f.c_str(), buf.data(), buf.size()));
  EXPECT_NE(std::string::npos, buf.find(std::string("user.long\0", 10)));
  EXPECT_EQ(-1, llistxattr(f.c_str(), buf.data(), 3));
  EXPECT_EQ(ERANGE, errno);

  // Via a file descriptor, too.
  int fd = open(f.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(10, fgetxattr(fd, "user.long", nullptr, 0));
  EXPECT_EQ(0, fsetxattr(fd, "user.fd", "x", 1, 0));
  close(fd);
  EXPECT_EQ("x", GetX(f, "user.fd"));
}

TEST_F(XattrTest, OnDirectoriesAndCtime) {
  std::string d = P("dir");
  ASSERT_EQ(0, mkdir(d.c_str(), 0755));
  ASSERT_EQ(0, SetX(d, "user.dir", "dirvalue"));
  EXPECT_EQ("dirvalue", GetX(d, "user.dir"));
  EXPECT_EQ(std::vector<std::string>{"user.dir"}, ListX(d));
  ASSERT_EQ(0, SetX(fs_.mnt(), "user.root", "r"));
  EXPECT_EQ("r", GetX(fs_.mnt(), "user.root"));
  // The directory's entries are unaffected.
  ASSERT_EQ(0, WriteFile(d + "/child", "c"));
  EXPECT_EQ(std::vector<std::string>{"child"}, ListDir(d));
  struct stat st0 {
  }, st1{};
  ASSERT_EQ(0, stat(d.c_str(), &st0));
  usleep(20000);
  ASSERT_EQ(0, SetX(d, "user.dir2", "v"));
  ASSERT_EQ(0, stat(d.c_str(), &st1));
  EXPECT_GT(st1.st_ctim.tv_sec * 1000000000LL + st1.st_ctim.tv_nsec,
            st0.st_ctim.tv_sec * 1000000000LL + st0.st_ctim.tv_nsec)
      << "setxattr changes ctime";
}

TEST_F(XattrTest, PersistAcrossRemount) {
  ASSERT_EQ(0, WriteFile(P("f"), "x"));
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0755));
  std::string bin = Pattern(1000, 9);
  ASSERT_EQ(0, SetX(P("f"), "user.one", "1"));
  ASSERT_EQ(0, SetX(P("f"), "user.bin", bin));
  ASSERT_EQ(0, SetX(P("f"), "user.gone", "g"));
  ASSERT_EQ(0, Err(lremovexattr(P("f").c_str(), "user.gone")));
  ASSERT_EQ(0, SetX(P("d"), "user.d", "dd"));
  Remount();
  EXPECT_EQ("1", GetX(P("f"), "user.one"));
  EXPECT_EQ(bin, GetX(P("f"), "user.bin"));
  EXPECT_EQ("dd", GetX(P("d"), "user.d"));
  std::vector<std::string> want = {"user.bin", "user.one"};
  EXPECT_EQ(want, ListX(P("f")));
}

TEST_F(XattrTest, UnprivilegedUserNamespaceRules) {
  ASSERT_EQ(0, mkdir(P("pub").c_str(), 0777));
  ASSERT_EQ(0, chmod(P("pub").c_str(), 0777));
  std::string f = P("pub/f");
  ASSERT_EQ(0, WriteFile(f, "x"));
  ASSERT_EQ(0, chmod(f.c_str(), 0644));
  ASSERT_EQ(0, SetX(f, "user.v", "val"));
  ASSERT_EQ(0, SetX(f, "trusted.hidden", "t"));
  const Creds kUser{12345, 12345, {}};
  std::string out;
  EXPECT_EQ(0, RunAs(
                   kUser,
                   [&](std::string* o) {
                     *o = GetX(f, "user.v");
                     return 0;
                   },
                   &out));
  EXPECT_EQ("val", out) << "readable with read permission";
  EXPECT_EQ(EACCES, RunAs(kUser, [&] { return SetX(f, "user.w", "no"); }))
      << "writing user.* needs write permission";
  EXPECT_EQ(0, RunAs(
                   kUser,
                   [&](std::string* o) {
                     for (const auto& n : ListX(f)) *o += n + ";";
                     return 0;
                   },
                   &out));
  EXPECT_EQ("user.v;", out) << "trusted.* is invisible to unprivileged users";
}

}  // namespace
}  // namespace tierfs_test

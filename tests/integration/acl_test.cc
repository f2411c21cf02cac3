// POSIX ACLs (fs/posix_acl.h): what setfacl and getfacl show on ext4, the
// kernel enforcing them, the mode following them, inheritance replacing the
// umask, and --no-acl refusing them. The expected values were taken from an
// ext4 filesystem (mounted with its default acl option) on the same kernel.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

constexpr char kAccess[] = "system.posix_acl_access";
constexpr char kDefault[] = "system.posix_acl_default";

// getfacl's short form: entries only, numeric ids, no "# file:" header.
std::string GetFacl(const std::string& path) {
  CommandResult r = RunCommand({"getfacl", "-cn", path}, 10);
  return r.exit_code == 0 ? r.out : "<getfacl exit " + std::to_string(r.exit_code) + ": " + r.err;
}

int SetFacl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"setfacl"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, 10).exit_code;
}

mode_t Mode(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : mode_t(-1);
}

// errno of getxattr(path, name), 0 when it has the attribute.
int HasXattr(const std::string& path, const char* name) {
  return Err(lgetxattr(path.c_str(), name, nullptr, 0));
}

int ReadAs(uid_t uid, const std::string& path) {
  return RunAs(Creds{uid, uid, {}}, [&] {
    std::string got;
    return ReadFile(path, &got);
  });
}

class AclTest : public MountTest {};

TEST_F(AclTest, AnAccessAclIsEnforcedAndTheModeFollowsIt) {
  ASSERT_EQ(0, chmod(P("").c_str(), 0755));
  const std::string denied = P("denied"), granted = P("granted");
  ASSERT_EQ(0, WriteFile(denied, "secret", 0644));
  ASSERT_EQ(0, WriteFile(granted, "shared", 0600));
  ASSERT_EQ(0, SetFacl({"-m", "u:12345:---", denied}));
  ASSERT_EQ(0, SetFacl({"-m", "u:12345:r", granted}));
  // Other may read "denied", but the named entry wins; "granted" is the
  // owner's alone by its mode, but the named entry lets 12345 read.
  EXPECT_EQ(EACCES, ReadAs(12345, denied));
  EXPECT_EQ(0, ReadAs(12346, denied));
  EXPECT_EQ(0, ReadAs(12345, granted));
  EXPECT_EQ(EACCES, ReadAs(12346, granted));
  // The group bits are the mask's.
  EXPECT_EQ(0644u, Mode(denied));
  EXPECT_EQ(0640u, Mode(granted));
  EXPECT_EQ("user::rw-\nuser:12345:r--\ngroup::---\nmask::r--\nother::---\n\n", GetFacl(granted));
  // chmod rewrites the mask: 12345's r is no longer effective.
  ASSERT_EQ(0, chmod(granted.c_str(), 0600));
  EXPECT_EQ("user::rw-\nuser:12345:r--\t#effective:---\ngroup::---\nmask::---\nother::---\n\n",
            GetFacl(granted));
  EXPECT_EQ(EACCES, ReadAs(12345, granted));
  // Kept across a remount: the kernel's cached ACLs are gone, LMDB's stay.
  Remount();
  EXPECT_EQ(EACCES, ReadAs(12345, denied));
  EXPECT_EQ(0600u, Mode(granted));
  ASSERT_EQ(0, chmod(granted.c_str(), 0640));
  EXPECT_EQ(0, ReadAs(12345, granted));
}

TEST_F(AclTest, AnAclTheModeSaysIsNotKeptAndRemovingNoneSucceeds) {
  const std::string f = P("f");
  ASSERT_EQ(0, WriteFile(f, "x", 0600));
  // Owner, group and other only: the mode says it all.
  ASSERT_EQ(0, SetFacl({"--set", "u::rw,g::r,o::r", f}));
  EXPECT_EQ(0644u, Mode(f));
  EXPECT_EQ(ENODATA, HasXattr(f, kAccess));
  // setfacl -x keeps a mask, so the ACL is kept (as on ext4).
  ASSERT_EQ(0, SetFacl({"-m", "u:5:r", f}));
  ASSERT_EQ(0, SetFacl({"-x", "u:5", f}));
  EXPECT_EQ(0, HasXattr(f, kAccess));
  EXPECT_EQ("user::rw-\ngroup::r--\nmask::r--\nother::r--\n\n", GetFacl(f));
  // Removing it, and removing what is not there, succeed; the mode stays.
  EXPECT_EQ(0, SetFacl({"-b", f}));
  EXPECT_EQ(ENODATA, HasXattr(f, kAccess));
  EXPECT_EQ(0, SetFacl({"-b", f}));
  EXPECT_EQ(0, Err(lremovexattr(f.c_str(), kAccess)));
  EXPECT_EQ(0644u, Mode(f));
  // Default ACLs are for directories.
  EXPECT_NE(0, SetFacl({"-d", "-m", "u:5:r", f}));
  EXPECT_EQ(ENODATA, HasXattr(f, kDefault));
}

TEST_F(AclTest, ADefaultAclIsInheritedInsteadOfTheUmask) {
  const std::string d = P("d");
  ASSERT_EQ(0, mkdir(d.c_str(), 0755));
  ASSERT_EQ(0, SetFacl({"-d", "-m", "u:1234:rwx", d}));
  ASSERT_EQ(0, mkdir(P("plain").c_str(), 0755));
  const mode_t old_umask = umask(077);
  const int file = Err(close(creat((d + "/x").c_str(), 0666)));
  const int dir = Err(mkdir((d + "/sub").c_str(), 0777));
  const int plain_file = Err(close(creat(P("plain/x").c_str(), 0666)));
  const int plain_dir = Err(mkdir(P("plain/sub").c_str(), 0777));
  const int link = Err(symlink("x", (d + "/l").c_str()));
  umask(old_umask);
  ASSERT_EQ(0, file);
  ASSERT_EQ(0, dir);
  ASSERT_EQ(0, plain_file);
  ASSERT_EQ(0, plain_dir);
  ASSERT_EQ(0, link);
  // The default ACL masked by the mode asked for; no umask.
  EXPECT_EQ(0664u, Mode(d + "/x"));
  EXPECT_EQ(
      "user::rw-\nuser:1234:rwx\t#effective:rw-\ngroup::r-x\t#effective:r--\nmask::rw-\n"
      "other::r--\n\n",
      GetFacl(d + "/x"));
  EXPECT_EQ(0775u, Mode(d + "/sub"));
  const std::string inherited_default =
      "default:user::rwx\ndefault:user:1234:rwx\ndefault:group::r-x\ndefault:mask::rwx\n"
      "default:other::r-x\n\n";
  EXPECT_EQ("user::rwx\nuser:1234:rwx\ngroup::r-x\nmask::rwx\nother::r-x\n" + inherited_default,
            GetFacl(d + "/sub"));
  EXPECT_EQ(0777u, Mode(d + "/l"));
  // Without a default ACL the umask applies, as before.
  EXPECT_EQ(0600u, Mode(P("plain/x")));
  EXPECT_EQ(0700u, Mode(P("plain/sub")));
  EXPECT_EQ(ENODATA, HasXattr(P("plain/x"), kAccess));
  // The named user the default ACL lets in can write the new file.
  ASSERT_EQ(0, chmod(P("").c_str(), 0755));
  EXPECT_EQ(0, RunAs(Creds{1234, 1234, {}}, [&] { return WriteFile(d + "/x", "by 1234"); }));
}

// As ext4 (posix_acl_update_mode): a caller outside the file's group loses
// its set-group-ID bit by setting an access ACL; one in the group keeps it.
TEST_F(AclTest, SettingAnAclOutsideTheGroupDropsSetgid) {
  ASSERT_EQ(0, chmod(P("").c_str(), 0755));
  const std::string outside = P("outside"), inside = P("inside");
  for (const auto& [path, gid] : {std::pair{outside, gid_t(0)}, std::pair{inside, gid_t(1234)}}) {
    ASSERT_EQ(0, WriteFile(path, "x"));
    ASSERT_EQ(0, chown(path.c_str(), 1234, gid));
    ASSERT_EQ(0, chmod(path.c_str(), 02775));
  }
  for (const std::string& path : {outside, inside})
    EXPECT_EQ(0, RunAs(Creds{1234, 1234, {}}, [&] {
                return RunCommand({"setfacl", "-m", "u:999:r", path}, 10).exit_code;
              }));
  EXPECT_EQ(0775u, Mode(outside));
  EXPECT_EQ(02775u, Mode(inside));
}

// The kernel's own rule, passed on with FUSE_SETXATTR_EXT: CAP_FSETID, not
// being root, keeps set-group-ID (ext4: 2775 for the first, 775 for the
// second, with the same setpriv commands).
TEST_F(AclTest, CapFsetidNotRootDecidesWhetherSetgidStays) {
  ASSERT_EQ(0, chmod(P("").c_str(), 0755));
  const std::string capable = P("capable"), rootless = P("rootless");
  for (const auto& [path, gid] : {std::pair{capable, gid_t(0)}, std::pair{rootless, gid_t(4321)}}) {
    ASSERT_EQ(0, WriteFile(path, "x"));
    ASSERT_EQ(0, chown(path.c_str(), 1234, gid));
    ASSERT_EQ(0, chmod(path.c_str(), 02775));
  }
  // Outside group 0, with CAP_FSETID.
  EXPECT_EQ(0, RunCommand({"setpriv", "--reuid=1234", "--regid=1234", "--clear-groups",
                           "--inh-caps=+fsetid", "--ambient-caps=+fsetid", "setfacl", "-m",
                           "u:999:r", capable},
                          10)
                   .exit_code);
  // Root outside group 4321, without CAP_FSETID.
  EXPECT_EQ(0, RunCommand({"setpriv", "--inh-caps=-fsetid", "--bounding-set=-fsetid", "setfacl",
                           "-m", "u:999:r", rootless},
                          10)
                   .exit_code);
  EXPECT_EQ(02775u, Mode(capable));
  EXPECT_EQ(0775u, Mode(rootless));
  EXPECT_NE(std::string::npos, GetFacl(capable).find("user:999:r--"));
}

// --no-acl: refused, as on a filesystem mounted noacl, and the mode bits
// alone hold (the kernel checks nothing else).
MountOptions NoAcl() {
  MountOptions o;
  o.extra_args = {"--no-acl"};
  return o;
}

class NoAclTest : public MountTest {
 protected:
  NoAclTest() : MountTest(NoAcl()) {}
};

TEST_F(NoAclTest, AclsAreRefusedNotStoredUnenforced) {
  ASSERT_EQ(0, mkdir(P("pub").c_str(), 0755));
  const std::string f = P("pub/f");
  ASSERT_EQ(0, WriteFile(f, "secret", 0644));
  EXPECT_NE(0, SetFacl({"-m", "u:12345:---", f}));
  EXPECT_NE(0, SetFacl({"-d", "-m", "u:12345:---", P("pub")}));
  EXPECT_EQ(EOPNOTSUPP, HasXattr(f, kAccess));
  EXPECT_EQ(EOPNOTSUPP, Err(lremovexattr(f.c_str(), kAccess)));
  EXPECT_EQ(0, ReadAs(12345, f));
  // The umask applies as the kernel applied it.
  const mode_t old_umask = umask(077);
  const int rc = Err(mkdir(P("pub/sub").c_str(), 0777));
  umask(old_umask);
  ASSERT_EQ(0, rc);
  EXPECT_EQ(0700u, Mode(P("pub/sub")));
}

}  // namespace
}  // namespace tierfs_test

// tierctl export PATH DEST: a tree copied out as plain files with a
// manifest and SHA256SUMS an auditor checks with coreutils alone; a file
// whose bytes differ from the checksum tierfs recorded is refused, not
// exported as if it were good. Root runs it over trees and into places
// other users can change while it runs: the races of a red-team test are
// made certain by stopping tierctl (ptrace) just before it makes DEST/zzz.
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/tier_fault_util.h"
#include "tests/integration/tierctl_util.h"

namespace tierfs_test {
namespace {

using nlohmann::json;

class ExportTest : public TierFaultTest {
 protected:
  void TearDown() override {
    RunCommand({"rm", "-rf", Out("")}, 30);
    TierFaultTest::TearDown();
  }
  static std::string Out(const std::string& name) {
    return "/tmp/tierfs-export-test-" + std::to_string(getpid()) + (name.empty() ? "" : "/" + name);
  }
  static void FlipByte(const std::string& path, off_t off) {
    const int fd = open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0) << path;
    char b = 0;
    ASSERT_EQ(1, pread(fd, &b, 1, off));
    b = char(~b);
    ASSERT_EQ(1, pwrite(fd, &b, 1, off));
    close(fd);
  }
  // The manifest's entry for `path`, null when absent.
  static json Entry(const json& manifest, const std::string& path) {
    for (const json& e : manifest["entries"])
      if (e["path"] == path) return e;
    return nullptr;
  }
  static json Manifest(const std::string& dest) {
    std::string text;
    EXPECT_EQ(0, ReadFile(dest + "/MANIFEST.json", &text)) << dest;
    return json::parse(text, nullptr, false);
  }
  // The NUL-terminated string at `addr` in process `pid`.
  static std::string PeekString(pid_t pid, uint64_t addr) {
    std::string s;
    for (;;) {
      char buf[256];
      const size_t n = sizeof buf - (addr + s.size()) % sizeof buf;  // never across a page
      iovec local{buf, n}, remote{reinterpret_cast<void*>(addr + s.size()), n};
      if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != ssize_t(n)) return s;
      const size_t len = strnlen(buf, n);
      s.append(buf, len);
      if (len < n) return s;
    }
  }
  // tierctl with `args`, traced: `before_mkdir` gets the path of each
  // mkdir/mkdirat it is about to make (as passed: a whole path or one
  // name) while tierctl is stopped there.
  CommandResult TierctlStoppedAtMkdir(const std::vector<std::string>& args,
                                      const std::function<void(const std::string&)>& before_mkdir) {
    std::vector<std::string> argv = {TierctlBin()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (std::string& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    const std::string out = Out("tierctl.out"), err = Out("tierctl.err");
    const pid_t pid = fork();
    if (pid == 0) {
      dup2(open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600), 1);
      dup2(open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600), 2);
      ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
      raise(SIGSTOP);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    CommandResult r;
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status)) return r;
    ptrace(PTRACE_SETOPTIONS, pid, nullptr,
           PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACEEXEC);
    int deliver = 0;
    for (;;) {
      ptrace(PTRACE_SYSCALL, pid, nullptr, reinterpret_cast<void*>(intptr_t(deliver)));
      deliver = 0;
      if (waitpid(pid, &status, 0) != pid) break;
      if (WIFEXITED(status) || WIFSIGNALED(status)) {
        r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (WSTOPSIG(status) == (SIGTRAP | 0x80)) {
        __ptrace_syscall_info info{};
        if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, reinterpret_cast<void*>(sizeof info), &info) > 0 &&
            info.op == PTRACE_SYSCALL_INFO_ENTRY) {
#ifdef SYS_mkdir
          if (info.entry.nr == SYS_mkdir) before_mkdir(PeekString(pid, info.entry.args[0]));
#endif
          if (info.entry.nr == SYS_mkdirat) before_mkdir(PeekString(pid, info.entry.args[1]));
        }
      } else if (WSTOPSIG(status) != SIGTRAP) {
        deliver = WSTOPSIG(status);  // its own signals, passed on
      }
    }
    r.out = SlurpFile(out);
    r.err = SlurpFile(err);
    return r;
  }
  static bool EndsWith(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  }
};

TEST_F(ExportTest, TreeWithManifestAndChecksumsThatCoreutilsVerify) {
  const std::string big = Pattern(3 << 20, 41), small = "{\"step\": 1}\n";
  ASSERT_EQ(0, mkdir(P("ckpt").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("ckpt/step-1").c_str(), 0750));
  MakeHddResident("ckpt/step-1/model.bin", big);
  ASSERT_EQ(0, WriteFile(P("ckpt/step-1/trainer_state.json"), small));
  ASSERT_EQ(0, symlink("step-1", P("ckpt/latest").c_str()));
  ASSERT_EQ(0, RunCommand({"mkdir", "-p", Out("")}, 10).exit_code);

  const CommandResult r = Tierctl({"export", P("ckpt"), Out("a")});
  ASSERT_EQ(0, r.exit_code) << r.out << r.err;
  // Files closed a moment ago may still be hashed (fs/block_hasher.h):
  // how many were verified varies, that none failed does not.
  EXPECT_NE(std::string::npos, r.out.find(" 0 failed")) << r.out;
  std::string got;
  ASSERT_EQ(0, ReadFile(Out("a/step-1/model.bin"), &got));
  EXPECT_TRUE(got == big) << "the exported bytes differ";
  ASSERT_EQ(0, ReadFile(Out("a/step-1/trainer_state.json"), &got));
  EXPECT_EQ(small, got);
  char target[64] = {};
  ASSERT_GT(readlink(Out("a/latest").c_str(), target, sizeof target - 1), 0);
  EXPECT_STREQ("step-1", target);
  struct stat st;
  ASSERT_EQ(0, stat(Out("a/step-1").c_str(), &st));
  EXPECT_EQ(0750u, st.st_mode & 07777) << "directory modes are kept";

  // An auditor with coreutils alone.
  const CommandResult sums =
      RunCommand({"sh", "-c", "cd " + Out("a") + " && sha256sum -c --strict SHA256SUMS"}, 30);
  EXPECT_EQ(0, sums.exit_code) << sums.out << sums.err;
  EXPECT_NE(std::string::npos, sums.out.find("step-1/model.bin: OK")) << sums.out;

  std::string text;
  ASSERT_EQ(0, ReadFile(Out("a/MANIFEST.json"), &text));
  const json m = json::parse(text, nullptr, false);
  ASSERT_TRUE(m.is_object()) << text;
  const json model = Entry(m, "step-1/model.bin");
  ASSERT_TRUE(model.is_object()) << text;
  EXPECT_EQ("hdd", model["tier"]);
  EXPECT_EQ(true, model["verified"]) << "checked against the checksum its move recorded";
  EXPECT_EQ(model["xxh3"], model["recorded_xxh3"]);
  EXPECT_EQ(uint64_t(big.size()), model["size"].get<uint64_t>());
  EXPECT_EQ("0644", model["mode"]);
  EXPECT_EQ("symlink", Entry(m, "latest")["type"]);

  // DEST must be new or empty; DEST inside PATH is refused before anything
  // is created in the mount.
  EXPECT_EQ(1, Tierctl({"export", P("ckpt"), Out("a")}).exit_code);
  EXPECT_EQ(1, Tierctl({"export", P("ckpt"), P("ckpt/out")}).exit_code);
  EXPECT_NE(0, access(P("ckpt/out").c_str(), F_OK)) << "created inside the exported tree";
  EXPECT_EQ(2, Tierctl({"export", P("ckpt")}).exit_code);
}

TEST_F(ExportTest, AFileThatNoLongerMatchesItsChecksumIsNotExportedAsGood) {
  const std::string data = Pattern(1 << 20, 42);
  MakeHddResident("kept.bin", data);
  ASSERT_EQ(0, WriteFile(P("other.txt"), "fine\n"));
  const std::string object = ObjectPath(fs_.hdd(), Ino(P("kept.bin")));
  ASSERT_TRUE(fs_.Unmount());  // and the mount's page cache of the file with it
  FlipByte(object, 4096);
  ASSERT_TRUE(fs_.Mount());
  ASSERT_EQ(0, RunCommand({"mkdir", "-p", Out("")}, 10).exit_code);

  const CommandResult r = Tierctl({"export", P(""), Out("b")});
  EXPECT_EQ(1, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.err.find("kept.bin")) << r.err;
  std::string sums;
  ASSERT_EQ(0, ReadFile(Out("b/SHA256SUMS"), &sums));
  // Listed with a sum no bytes have: checking the copy later fails on it
  // (before, it was left out, and the incomplete copy checked clean).
  EXPECT_NE(std::string::npos, sums.find(std::string(64, '0') + "  kept.bin")) << sums;
  EXPECT_NE(std::string::npos, sums.find("other.txt")) << sums;
  const CommandResult check =
      RunCommand({"sh", "-c", "cd " + Out("b") + " && sha256sum -c SHA256SUMS"}, 30);
  EXPECT_NE(0, check.exit_code) << check.out;
  EXPECT_NE(std::string::npos, check.out.find("kept.bin: FAILED")) << check.out;
  std::string text;
  ASSERT_EQ(0, ReadFile(Out("b/MANIFEST.json"), &text));
  const json kept = Entry(json::parse(text, nullptr, false), "kept.bin");
  ASSERT_TRUE(kept.is_object()) << text;
  // Refused either by tierfs's verified read (EIO) or by the comparison.
  EXPECT_TRUE(kept.contains("error") || kept["verified"] == false) << kept.dump();
}

// DEST must not exist, or be an empty directory of the caller's: a symlink
// there was followed (the export went wherever it pointed), and another
// user's empty directory was taken, into which they could plant symlinks.
TEST_F(ExportTest, DestMustBeNewOrAnEmptyDirectoryOfTheCallers) {
  ASSERT_EQ(0, mkdir(P("t").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("t/f"), "data\n"));
  ASSERT_EQ(
      0, RunCommand({"mkdir", "-p", Out("elsewhere"), Out("theirs"), Out("mine")}, 10).exit_code);
  ASSERT_EQ(0, symlink(Out("elsewhere").c_str(), Out("link").c_str()));
  ASSERT_EQ(0, chown(Out("theirs").c_str(), 12345, 12345));
  ASSERT_EQ(0, WriteFile(Out("file"), "x"));

  CommandResult r = Tierctl({"export", P("t"), Out("link")});
  EXPECT_EQ(1, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.err.find(Out("link") + " is a symbolic link")) << r.err;
  EXPECT_TRUE(ListDir(Out("elsewhere")).empty()) << "exported through DEST's symlink";
  r = Tierctl({"export", P("t"), Out("theirs")});
  EXPECT_EQ(1, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.err.find("owned by uid 12345")) << r.err;
  EXPECT_TRUE(ListDir(Out("theirs")).empty());
  r = Tierctl({"export", P("t"), Out("file")});
  EXPECT_EQ(1, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.err.find(Out("file") + " is not a directory")) << r.err;
  r = Tierctl({"export", P("t"), Out("mine")});
  EXPECT_EQ(0, r.exit_code) << r.out << r.err;
  EXPECT_EQ(0, access(Out("mine/f").c_str(), F_OK));
}

// The red team's race: a user who may write next to DEST puts DEST/zzz ->
// /victim after DEST/aaa appears and before export makes zzz. The old
// export took the existing name, filled /victim and chmodded it 0777.
TEST_F(ExportTest, ASymlinkPutInDestDuringTheExportIsNeverFollowed) {
  ASSERT_EQ(0, mkdir(P("mx").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("mx/aaa"), Pattern(1 << 20, 7)));
  ASSERT_EQ(0, mkdir(P("mx/zzz").c_str(), 0777));
  ASSERT_EQ(0, chmod(P("mx/zzz").c_str(), 0777));
  ASSERT_EQ(0, WriteFile(P("mx/zzz/planted"), "the user's file\n"));
  ASSERT_EQ(0, RunCommand({"mkdir", "-p", Out("victim")}, 10).exit_code);
  ASSERT_EQ(0, chmod(Out("victim").c_str(), 0755));

  bool planted = false;
  const CommandResult r =
      TierctlStoppedAtMkdir({"export", P("mx"), Out("d")}, [&](const std::string& path) {
        if (!planted && EndsWith(path, "zzz"))
          planted = symlink(Out("victim").c_str(), Out("d/zzz").c_str()) == 0;
      });
  ASSERT_TRUE(planted) << r.out << r.err;
  EXPECT_EQ(1, r.exit_code) << r.out << r.err;
  EXPECT_NE(std::string::npos, r.err.find(Out("d/zzz"))) << "names the path: " << r.err;
  struct stat st;
  ASSERT_EQ(0, stat(Out("victim").c_str(), &st));
  EXPECT_EQ(0755u, st.st_mode & 07777) << "the symlink's target was chmodded";
  EXPECT_TRUE(ListDir(Out("victim")).empty()) << "files were made in the symlink's target";
  ASSERT_EQ(0, lstat(Out("d/zzz").c_str(), &st));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  const json m = Manifest(Out("d"));
  ASSERT_TRUE(m.is_object());
  EXPECT_EQ(1u, m["summary"]["failed"].get<uint64_t>()) << m.dump();
  EXPECT_TRUE(Entry(m, "aaa").is_object());
}

// A directory being exported is renamed and a symlink to a root-only
// directory put in its place, just before export makes its copy: the old
// export then read the directory by name and copied root's file.
TEST_F(ExportTest, ASourceDirectorySwappedForASymlinkCopiesNothingFromOutside) {
  ASSERT_EQ(0, mkdir(P("mx").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("mx/aaa"), "a\n"));
  ASSERT_EQ(0, mkdir(P("mx/zzz").c_str(), 0777));
  ASSERT_EQ(0, WriteFile(P("mx/zzz/inside"), "the user's file\n"));
  ASSERT_EQ(0, RunCommand({"mkdir", "-p", Out("rootonly")}, 10).exit_code);
  ASSERT_EQ(0, chmod(Out("rootonly").c_str(), 0700));
  ASSERT_EQ(0, WriteFile(Out("rootonly/secret"), "root's secret\n"));

  bool swapped = false;
  const CommandResult r =
      TierctlStoppedAtMkdir({"export", P("mx"), Out("d")}, [&](const std::string& path) {
        if (!swapped && EndsWith(path, "zzz"))
          swapped = rename(P("mx/zzz").c_str(), P("mx/moved").c_str()) == 0 &&
                    symlink(Out("rootonly").c_str(), P("mx/zzz").c_str()) == 0;
      });
  ASSERT_TRUE(swapped) << r.out << r.err;
  EXPECT_NE(0, access(Out("d/zzz/secret").c_str(), F_OK)) << "copied from outside the mount";
  std::string sums;
  ASSERT_EQ(0, ReadFile(Out("d/SHA256SUMS"), &sums)) << r.out << r.err;
  EXPECT_EQ(std::string::npos, sums.find("secret")) << sums;
  const json m = Manifest(Out("d"));
  ASSERT_TRUE(m.is_object());
  EXPECT_TRUE(Entry(m, "zzz/secret").is_null()) << m.dump();
  // What is copied is the directory that was there when export opened it.
  std::string got;
  EXPECT_EQ(0, ReadFile(Out("d/zzz/inside"), &got));
  EXPECT_EQ("the user's file\n", got);
}

// A name that is not UTF-8 made the manifest's dump throw (exit 134, no
// MANIFEST.json, no SHA256SUMS). It is recorded with U+FFFD for each bad
// byte plus its exact bytes in hex; SHA256SUMS escapes newlines and
// backslashes as sha256sum does, and `sha256sum -c` takes every line.
TEST_F(ExportTest, NamesThatAreNotUtf8OrHoldANewlineAreRecordedExactly) {
  ASSERT_EQ(0, mkdir(P("n").c_str(), 0755));
  ASSERT_EQ(0, WriteFile(P("n/z\xff"), "ff\n"));
  ASSERT_EQ(0, WriteFile(P("n/a\nb\\c"), "newline\n"));
  ASSERT_EQ(0, WriteFile(P("n/plain"), "plain\n"));
  ASSERT_EQ(0, symlink("t\xfe", P("n/link").c_str()));
  ASSERT_EQ(0, RunCommand({"mkdir", "-p", Out("")}, 10).exit_code);

  const CommandResult r = Tierctl({"export", P("n"), Out("n")});
  ASSERT_EQ(0, r.exit_code) << r.out << r.err;
  std::string got;
  ASSERT_EQ(0, ReadFile(Out("n/z\xff"), &got));
  EXPECT_EQ("ff\n", got);
  const json m = Manifest(Out("n"));
  ASSERT_TRUE(m.is_object());
  const json z = Entry(m, "z\xef\xbf\xbd");
  ASSERT_TRUE(z.is_object()) << m.dump();
  EXPECT_EQ("7aff", z["path_hex"]);
  EXPECT_FALSE(Entry(m, "plain").contains("path_hex"));
  EXPECT_TRUE(Entry(m, "a\nb\\c").is_object()) << m.dump();
  EXPECT_EQ("74fe", Entry(m, "link")["target_hex"]);
  const CommandResult sums =
      RunCommand({"sh", "-c", "cd " + Out("n") + " && sha256sum -c --strict SHA256SUMS"}, 30);
  EXPECT_EQ(0, sums.exit_code) << sums.out << sums.err;
  EXPECT_NE(std::string::npos, sums.out.find("\\a\\nb\\\\c: OK")) << sums.out;
}

}  // namespace
}  // namespace tierfs_test

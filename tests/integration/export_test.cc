// tierctl export PATH DEST: a tree copied out as plain files with a
// manifest and SHA256SUMS an auditor checks with coreutils alone; a file
// whose bytes differ from the checksum tierfs recorded is refused, not
// exported as if it were good.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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
  EXPECT_EQ(std::string::npos, sums.find("kept.bin")) << sums;
  EXPECT_NE(std::string::npos, sums.find("other.txt")) << sums;
  std::string text;
  ASSERT_EQ(0, ReadFile(Out("b/MANIFEST.json"), &text));
  const json kept = Entry(json::parse(text, nullptr, false), "kept.bin");
  ASSERT_TRUE(kept.is_object()) << text;
  // Refused either by tierfs's verified read (EIO) or by the comparison.
  EXPECT_TRUE(kept.contains("error") || kept["verified"] == false) << kept.dump();
}

}  // namespace
}  // namespace tierfs_test

// Model-based test: thousands of random namespace and data operations over a
// small name space, applied to tierfs and to FsModel, comparing every result
// and, periodically and across remounts and a kill -9, the whole tree. The
// same runner on a local directory checks the model itself against the kernel.
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/fs_model.h"
#include "tests/integration/mount_fixture.h"

namespace tierfs_test {
namespace {

constexpr int kOps = 3000;
constexpr int kCheckEvery = 500;
const char kNames[] = "abcdef";
const char kLinkPrefix[] = "/nonexistent-tierfs-model/";

std::string ErrName(int e) {
  if (e == 0) return "success";
  const char* n = strerrorname_np(e);
  return n != nullptr ? n : std::to_string(e);
}

struct FsNode {
  Kind kind = Kind::kDir;
  std::string data, target;
  ino_t ino = 0;
  nlink_t nlink = 0;
};

void ScanTree(const std::string& root, const std::string& rel, std::map<std::string, FsNode>* out) {
  for (const auto& name : ListDir(rel.empty() ? root : root + "/" + rel)) {
    std::string r = rel.empty() ? name : rel + "/" + name;
    std::string p = root + "/" + r;
    struct stat st {};
    FsNode n;
    if (lstat(p.c_str(), &st) != 0) {
      n.kind = Kind::kReg;
      n.data = "<lstat failed: " + ErrName(errno) + ">";
      (*out)[r] = n;
      continue;
    }
    n.ino = st.st_ino;
    n.nlink = st.st_nlink;
    if (S_ISDIR(st.st_mode)) {
      n.kind = Kind::kDir;
    } else if (S_ISLNK(st.st_mode)) {
      n.kind = Kind::kSym;
      char buf[4096];
      ssize_t len = readlink(p.c_str(), buf, sizeof buf);
      n.target = std::string(buf, len > 0 ? len : 0);
    } else {
      n.kind = Kind::kReg;
      if (ReadFile(p, &n.data) != 0) n.data = "<read failed>";
      if (static_cast<off_t>(n.data.size()) != st.st_size) n.data += "<size mismatch>";
    }
    (*out)[r] = n;
    if (n.kind == Kind::kDir) ScanTree(root, r, out);
  }
}

class ModelRunner {
 public:
  ModelRunner(std::string root, uint64_t seed) : root_(std::move(root)), rng_(seed) {}

  // Runs ops [begin, end); false after the first result that differs.
  bool Run(int begin, int end) {
    for (int i = begin; i < end; i++) {
      std::string desc;
      int want = 0, got = 0;
      Step(&desc, &want, &got);
      history_.push_back("#" + std::to_string(i) + " " + desc + " -> " + ErrName(got));
      if (history_.size() > 15) history_.pop_front();
      if (got == 0) succeeded_++;
      max_entries_ = std::max(max_entries_, model_.tree().size());
      if (want != got) {
        ADD_FAILURE() << "op #" << i << " " << desc << ": tierfs returned " << ErrName(got)
                      << ", Linux returns " << ErrName(want) << "\nrecent ops:\n"
                      << History();
        return false;
      }
    }
    return true;
  }

  std::string Stats() const {
    return std::to_string(succeeded_) + " ops succeeded, up to " + std::to_string(max_entries_) +
           " entries";
  }

  // Compares the whole tree with the model; with `same_inos`, also checks
  // that every path kept the inode number it had at the previous comparison.
  bool Compare(const std::string& when, bool same_inos = false) {
    std::map<std::string, FsNode> fs;
    ScanTree(root_, "", &fs);
    std::ostringstream errs;
    int n = 0;
    auto fail = [&](const std::string& what) {
      if (n++ < 20) errs << "  " << what << "\n";
    };
    for (const auto& [p, node] : fs) {
      auto it = last_inos_.find(p);
      if (same_inos && it != last_inos_.end() && it->second != node.ino) {
        fail("inode number of " + p + " changed from " + std::to_string(it->second) + " to " +
             std::to_string(node.ino));
      }
    }
    last_inos_.clear();
    for (const auto& [p, node] : fs) last_inos_[p] = node.ino;
    const auto& tree = model_.tree();
    for (const auto& [p, e] : tree)
      if (!fs.count(p)) fail("missing on tierfs: " + p);
    for (const auto& [p, node] : fs)
      if (!tree.count(p)) fail("unexpected on tierfs: " + p);
    std::map<const ModelObj*, int> links;
    for (const auto& [p, e] : tree)
      if (e.obj) links[e.obj.get()]++;
    std::map<const ModelObj*, ino_t> obj_ino;
    std::map<ino_t, std::string> ino_path;
    for (const auto& [p, e] : tree) {
      auto it = fs.find(p);
      if (it == fs.end()) continue;
      const FsNode& f = it->second;
      if (f.kind != e.kind) {
        fail("wrong type: " + p);
        continue;
      }
      if (e.kind == Kind::kDir) {
        nlink_t want = 2 + model_.SubdirCount(p);
        if (f.nlink != want) {
          fail("nlink of dir " + p + " is " + std::to_string(f.nlink) + ", want " +
               std::to_string(want));
        }
        continue;
      }
      if (e.kind == Kind::kReg && f.data != e.obj->data) {
        size_t i = 0;
        while (i < f.data.size() && i < e.obj->data.size() && f.data[i] == e.obj->data[i]) i++;
        fail("content of " + p + ": size " + std::to_string(f.data.size()) + " want " +
             std::to_string(e.obj->data.size()) + ", first difference at " + std::to_string(i));
      }
      if (e.kind == Kind::kSym && f.target != e.obj->target) fail("symlink target of " + p);
      if (f.nlink != static_cast<nlink_t>(links[e.obj.get()])) {
        fail("nlink of " + p + " is " + std::to_string(f.nlink) + ", want " +
             std::to_string(links[e.obj.get()]));
      }
      auto [oi, new_obj] = obj_ino.emplace(e.obj.get(), f.ino);
      if (!new_obj && oi->second != f.ino) fail("hard links with different inodes: " + p);
      if (new_obj) {
        auto [pi, new_ino] = ino_path.emplace(f.ino, p);
        if (!new_ino) fail("separate files share inode: " + p + " and " + pi->second);
      }
    }
    if (n > 0) {
      ADD_FAILURE() << "tree differs from the model " << when << " (" << n << " problems):\n"
                    << errs.str() << "recent ops:\n"
                    << History();
    }
    return n == 0;
  }

 private:
  std::string Full(const std::string& rel) const { return root_ + "/" + rel; }
  std::string History() const {
    std::string s;
    for (const auto& h : history_) s += "  " + h + "\n";
    return s;
  }
  size_t Below(size_t n) { return rng_() % n; }
  std::string RandomPath() {
    int depth = 1 + Below(3);
    std::string p;
    for (int i = 0; i < depth; i++) {
      if (i > 0) p += "/";
      p += kNames[Below(6)];
    }
    return p;
  }
  std::string ExistingPath() {
    const auto& t = model_.tree();
    if (t.empty() || Below(10) < 3) return RandomPath();
    auto it = t.begin();
    std::advance(it, Below(t.size()));
    return it->first;
  }
  // A fresh-looking name inside an existing directory, at most 3 levels deep.
  std::string ChildOfDir() {
    std::vector<std::string> dirs = model_.Dirs();
    const std::string& d = dirs[Below(dirs.size())];
    if (std::count(d.begin(), d.end(), '/') >= 2 || Below(10) < 3) return RandomPath();
    return (d.empty() ? "" : d + "/") + kNames[Below(6)];
  }

  void Step(std::string* desc, int* want, int* got) {
    size_t w = Below(100);
    if (w < 14) {
      std::string p = ChildOfDir();
      *desc = "create " + p;
      *want = model_.Create(p);
      *got = OpenErr(Full(p), O_CREAT | O_EXCL | O_WRONLY, 0644);
    } else if (w < 34) {
      std::string p = ExistingPath();
      size_t off = Below(16384), len = 1 + Below(4096);
      std::string data = Pattern(len, rng_());
      *desc = "write " + p + " @" + std::to_string(off) + "+" + std::to_string(len);
      *want = model_.Write(p, off, data);
      int fd = open(Full(p).c_str(), O_WRONLY | O_CLOEXEC);
      *got = fd < 0 ? errno : PwriteAll(fd, data.data(), len, off);
      if (fd >= 0 && close(fd) != 0 && *got == 0) *got = errno;
    } else if (w < 42) {
      std::string p = ExistingPath();
      size_t len = Below(20000);
      *desc = "truncate " + p + " " + std::to_string(len);
      *want = model_.Truncate(p, len);
      *got = Err(truncate(Full(p).c_str(), len));
    } else if (w < 57) {
      std::string a = ExistingPath();
      std::string b = Below(2) ? ExistingPath() : ChildOfDir();
      unsigned flags = Below(5) == 0 ? RENAME_NOREPLACE : 0;
      *desc = "rename " + a + " " + b + (flags ? " NOREPLACE" : "");
      *want = model_.Rename(a, b, flags);
      *got =
          Err(syscall(SYS_renameat2, AT_FDCWD, Full(a).c_str(), AT_FDCWD, Full(b).c_str(), flags));
    } else if (w < 67) {
      std::string p = ExistingPath();
      *desc = "unlink " + p;
      *want = model_.Unlink(p);
      *got = Err(unlink(Full(p).c_str()));
    } else if (w < 77) {
      std::string p = ChildOfDir();
      *desc = "mkdir " + p;
      *want = model_.Mkdir(p);
      *got = Err(mkdir(Full(p).c_str(), 0755));
    } else if (w < 84) {
      std::string p = ExistingPath();
      *desc = "rmdir " + p;
      *want = model_.Rmdir(p);
      *got = Err(rmdir(Full(p).c_str()));
    } else if (w < 93) {
      std::string a = ExistingPath();
      std::string b = ChildOfDir();
      *desc = "link " + a + " " + b;
      *want = model_.Link(a, b);
      *got = Err(linkat(AT_FDCWD, Full(a).c_str(), AT_FDCWD, Full(b).c_str(), 0));
    } else {
      std::string p = ChildOfDir();
      std::string target = kLinkPrefix + std::string(1, kNames[Below(6)]);
      *desc = "symlink " + target + " " + p;
      *want = model_.Symlink(target, p);
      *got = Err(symlink(target.c_str(), Full(p).c_str()));
    }
  }

  std::string root_;
  std::mt19937_64 rng_;
  FsModel model_;
  std::deque<std::string> history_;
  std::map<std::string, ino_t> last_inos_;
  int succeeded_ = 0;
  size_t max_entries_ = 0;
};

class ModelTest : public MountTest, public ::testing::WithParamInterface<uint64_t> {};

TEST_P(ModelTest, RandomOpsMatchModel) {
  SCOPED_TRACE("seed " + std::to_string(GetParam()));
  ModelRunner runner(fs_.mnt(), GetParam());
  for (int done = 0; done < kOps; done += kCheckEvery) {
    ASSERT_TRUE(runner.Run(done, done + kCheckEvery));
    std::string after = "after op #" + std::to_string(done + kCheckEvery - 1);
    ASSERT_TRUE(runner.Compare(after));
    if (done + kCheckEvery == kOps / 2) {
      Remount();
      ASSERT_TRUE(runner.Compare(after + " and a clean remount", true));
    } else if (done + 2 * kCheckEvery == kOps) {
      sync();
      fs_.Kill9();
      ASSERT_TRUE(fs_.Mount());
      ASSERT_TRUE(runner.Compare(after + ", sync() and kill -9", true));
    }
  }
  std::cout << "seed " << GetParam() << ": " << runner.Stats() << std::endl;
}

INSTANTIATE_TEST_SUITE_P(Seeds, ModelTest, ::testing::Values<uint64_t>(1, 2, 3));

// The same runner on a local directory: proves the model matches the kernel,
// so a ModelTest failure points at tierfs.
class ModelReferenceTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ModelReferenceTest, ModelMatchesLocalFilesystem) {
  SCOPED_TRACE("seed " + std::to_string(GetParam()));
  char tmpl[] = "/tmp/tierfs-model-ref.XXXXXX";
  ASSERT_NE(nullptr, mkdtemp(tmpl));
  std::string root = tmpl;
  {
    ModelRunner runner(root, GetParam());
    for (int done = 0; done < kOps; done += kCheckEvery) {
      if (!runner.Run(done, done + kCheckEvery) || !runner.Compare("on the local fs")) break;
    }
    std::cout << "seed " << GetParam() << ": " << runner.Stats() << std::endl;
  }
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
}

INSTANTIATE_TEST_SUITE_P(Seeds, ModelReferenceTest, ::testing::Values<uint64_t>(1, 2, 3));

}  // namespace
}  // namespace tierfs_test

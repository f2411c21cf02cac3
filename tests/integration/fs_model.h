// FsModel: an in-memory model of a directory tree with Linux's semantics
// (as root) for the operations the model test performs, including which
// errno each failing call returns.
//
// Paths are relative to the tree's root ("a", "a/b"); the root itself is "".
// Symlink targets are expected to point outside the tree to nothing, so
// following one always fails with ENOENT. Each mutating call returns the
// errno Linux would give (0 on success) and applies the change on success.
// Not thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace tierfs_test {

enum class Kind { kDir, kReg, kSym };

// A non-directory inode; hard links share one.
struct ModelObj {
  Kind kind = Kind::kReg;
  std::string data;    // kReg
  std::string target;  // kSym
};

struct ModelEntry {
  Kind kind = Kind::kDir;
  std::shared_ptr<ModelObj> obj;  // null for directories
};

class FsModel {
 public:
  int Create(const std::string& p);
  int Write(const std::string& p, size_t off, const std::string& data);
  int Truncate(const std::string& p, size_t len);
  // flags: 0 or RENAME_NOREPLACE.
  int Rename(const std::string& from, const std::string& to, unsigned flags);
  int Unlink(const std::string& p);
  int Mkdir(const std::string& p);
  int Rmdir(const std::string& p);
  int Link(const std::string& from, const std::string& to);
  int Symlink(const std::string& target, const std::string& p);

  const std::map<std::string, ModelEntry>& tree() const { return tree_; }
  // All directories, the root ("") first.
  std::vector<std::string> Dirs() const;
  // Number of subdirectories of directory `p`.
  int SubdirCount(const std::string& p) const;

  static std::string Parent(const std::string& p);

 private:
  // errno of resolving the directory that contains `p`, or 0.
  int WalkParent(const std::string& p) const;
  const ModelEntry* Get(const std::string& p) const;
  bool IsEmptyDir(const std::string& p) const;
  // errno of opening `p` for writing without O_CREAT, or 0.
  int OpenForWrite(const std::string& p) const;

  std::map<std::string, ModelEntry> tree_;
};

}  // namespace tierfs_test

#include "tests/integration/fs_model.h"

#include <linux/fs.h>

#include <cerrno>

namespace tierfs_test {

std::string FsModel::Parent(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? "" : p.substr(0, slash);
}

const ModelEntry* FsModel::Get(const std::string& p) const {
  auto it = tree_.find(p);
  return it == tree_.end() ? nullptr : &it->second;
}

int FsModel::WalkParent(const std::string& p) const {
  std::string parent = Parent(p);
  if (parent.empty()) return 0;
  size_t pos = 0;
  for (;;) {
    size_t slash = parent.find('/', pos);
    std::string prefix = slash == std::string::npos ? parent : parent.substr(0, slash);
    const ModelEntry* e = Get(prefix);
    if (e == nullptr) return ENOENT;
    if (e->kind == Kind::kSym) return ENOENT;  // dangling target
    if (e->kind == Kind::kReg) return ENOTDIR;
    if (slash == std::string::npos) return 0;
    pos = slash + 1;
  }
}

bool FsModel::IsEmptyDir(const std::string& p) const {
  auto lb = tree_.lower_bound(p + "/");
  return lb == tree_.end() || lb->first.compare(0, p.size() + 1, p + "/") != 0;
}

std::vector<std::string> FsModel::Dirs() const {
  std::vector<std::string> dirs = {""};
  for (const auto& [path, e] : tree_)
    if (e.kind == Kind::kDir) dirs.push_back(path);
  return dirs;
}

int FsModel::SubdirCount(const std::string& p) const {
  int n = 0;
  for (const auto& [path, e] : tree_)
    if (e.kind == Kind::kDir && Parent(path) == p) n++;
  return n;
}

int FsModel::OpenForWrite(const std::string& p) const {
  if (int e = WalkParent(p)) return e;
  const ModelEntry* e = Get(p);
  if (e == nullptr) return ENOENT;
  if (e->kind == Kind::kDir) return EISDIR;
  if (e->kind == Kind::kSym) return ENOENT;
  return 0;
}

int FsModel::Create(const std::string& p) {
  if (int e = WalkParent(p)) return e;
  if (Get(p) != nullptr) return EEXIST;
  auto obj = std::make_shared<ModelObj>();
  obj->kind = Kind::kReg;
  tree_[p] = ModelEntry{Kind::kReg, obj};
  return 0;
}

int FsModel::Write(const std::string& p, size_t off, const std::string& data) {
  if (int e = OpenForWrite(p)) return e;
  std::string& d = tree_[p].obj->data;
  if (d.size() < off + data.size()) d.resize(off + data.size(), '\0');
  d.replace(off, data.size(), data);
  return 0;
}

int FsModel::Truncate(const std::string& p, size_t len) {
  if (int e = OpenForWrite(p)) return e;
  tree_[p].obj->data.resize(len, '\0');
  return 0;
}

int FsModel::Rename(const std::string& from, const std::string& to, unsigned flags) {
  if (int e = WalkParent(from)) return e;
  if (int e = WalkParent(to)) return e;
  const ModelEntry* src = Get(from);
  if (src == nullptr) return ENOENT;
  const ModelEntry* dst = Get(to);
  if ((flags & RENAME_NOREPLACE) && dst != nullptr) return EEXIST;
  // Source must not be an ancestor of the target's directory.
  std::string to_parent = Parent(to);
  if (to_parent == from || to_parent.compare(0, from.size() + 1, from + "/") == 0) return EINVAL;
  // Target must not be an ancestor of the source.
  if (dst != nullptr && from.compare(0, to.size() + 1, to + "/") == 0) return ENOTEMPTY;
  if (from == to) return 0;
  if (dst != nullptr && src->obj != nullptr && src->obj == dst->obj) return 0;
  if (dst != nullptr) {
    bool src_dir = src->kind == Kind::kDir, dst_dir = dst->kind == Kind::kDir;
    if (src_dir && !dst_dir) return ENOTDIR;
    if (!src_dir && dst_dir) return EISDIR;
    if (dst_dir && !IsEmptyDir(to)) return ENOTEMPTY;
    tree_.erase(to);
  }
  // Move `from` and everything below it.
  std::map<std::string, ModelEntry> moved;
  for (auto it = tree_.begin(); it != tree_.end();) {
    const std::string& k = it->first;
    if (k == from || k.compare(0, from.size() + 1, from + "/") == 0) {
      moved[to + k.substr(from.size())] = it->second;
      it = tree_.erase(it);
    } else {
      ++it;
    }
  }
  tree_.insert(moved.begin(), moved.end());
  return 0;
}

int FsModel::Unlink(const std::string& p) {
  if (int e = WalkParent(p)) return e;
  const ModelEntry* e = Get(p);
  if (e == nullptr) return ENOENT;
  if (e->kind == Kind::kDir) return EISDIR;
  tree_.erase(p);
  return 0;
}

int FsModel::Mkdir(const std::string& p) {
  if (int e = WalkParent(p)) return e;
  if (Get(p) != nullptr) return EEXIST;
  tree_[p] = ModelEntry{Kind::kDir, nullptr};
  return 0;
}

int FsModel::Rmdir(const std::string& p) {
  if (int e = WalkParent(p)) return e;
  const ModelEntry* e = Get(p);
  if (e == nullptr) return ENOENT;
  if (e->kind != Kind::kDir) return ENOTDIR;
  if (!IsEmptyDir(p)) return ENOTEMPTY;
  tree_.erase(p);
  return 0;
}

int FsModel::Link(const std::string& from, const std::string& to) {
  if (int e = WalkParent(from)) return e;
  const ModelEntry* src = Get(from);
  if (src == nullptr) return ENOENT;
  if (int e = WalkParent(to)) return e;
  if (Get(to) != nullptr) return EEXIST;
  if (src->kind == Kind::kDir) return EPERM;
  ModelEntry copy = *src;
  tree_[to] = copy;
  return 0;
}

int FsModel::Symlink(const std::string& target, const std::string& p) {
  if (int e = WalkParent(p)) return e;
  if (Get(p) != nullptr) return EEXIST;
  auto obj = std::make_shared<ModelObj>();
  obj->kind = Kind::kSym;
  obj->target = target;
  tree_[p] = ModelEntry{Kind::kSym, obj};
  return 0;
}

}  // namespace tierfs_test

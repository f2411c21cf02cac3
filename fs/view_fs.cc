// The operations of `tierfs view` (fs/view_fs.h).
#include "fs/view_fs.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <tuple>

#include "meta/block_sums.h"
#include "meta/inode.h"
#include "meta/store.h"
#include "meta/text_format.h"

namespace tierfs {

namespace {

struct FileHandle {
  std::shared_ptr<const ViewTree> tree;  // keeps `node` alive across a refresh
  int fd = -1;                           // -1 for an empty file without an object
  // The object opened O_DIRECT, for reads of whole blocks: they come from
  // the medium into the buffer that is hashed and replied (-1 where the
  // tier refuses O_DIRECT: `fd` then).
  int direct_fd = -1;
  const ViewNode* node = nullptr;
  std::shared_ptr<const std::vector<uint64_t>> sums;  // null: unverified
  // The last verified block: a reader asking less than a block at a time
  // reads and hashes each block once.
  Mutex mu;
  uint64_t block GUARDED_BY(mu) = UINT64_MAX;
  size_t block_len GUARDED_BY(mu) = 0;
  std::unique_ptr<char[]> bytes GUARDED_BY(mu);
};

struct DirHandle {
  std::vector<std::tuple<std::string, uint64_t, uint32_t>> entries;  // name, ino, mode
};

ViewFs& Fs(fuse_req_t req) {
  return *static_cast<ViewFs*>(fuse_req_userdata(req));
}

// Reads `len` bytes at `off` unless the file ends first: the count, or -errno.
ssize_t PreadFull(int fd, char* buf, size_t len, uint64_t off) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n = pread(fd, buf + done, len - done, off_t(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) break;
    done += size_t(n);
  }
  return ssize_t(done);
}

void Fill(const ViewNode& v, bool acls, struct stat* s) {
  *s = {};
  s->st_ino = v.ino;
  s->st_mode = v.mode;
  if (!acls && !v.access_acl.empty()) s->st_mode &= ~mode_t(077);  // see ViewFs::acls
  s->st_nlink = v.nlink;
  s->st_uid = v.uid;
  s->st_gid = v.gid;
  s->st_size = off_t(S_ISLNK(v.mode) ? v.symlink_target.size() : v.size);
  s->st_blocks = blkcnt_t((uint64_t(s->st_size) + 511) / 512);
  s->st_blksize = 4096;
  s->st_atim = NsTimespec(v.atime_ns);
  s->st_mtim = NsTimespec(v.mtime_ns);
  s->st_ctim = NsTimespec(v.ctime_ns);
}

void Init(void* userdata, fuse_conn_info* conn) {
  auto want = [conn](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  // The owner's ACLs, enforced by the kernel (no umask to mind: read-only).
  want(FUSE_CAP_POSIX_ACL);
  static_cast<ViewFs*>(userdata)->set_acls(conn->want & FUSE_CAP_POSIX_ACL);
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_CACHE_SYMLINKS);
  conn->max_read = uint32_t(kSumBlockBytes);
  conn->max_readahead = uint32_t(4 * kSumBlockBytes);
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ViewFs& fs = Fs(req);
  const std::shared_ptr<const ViewTree> tree = fs.tree();
  const ViewNode* dir = FindNode(*tree, parent);
  if (!dir) return (void)fuse_reply_err(req, ENOENT);
  if (!S_ISDIR(dir->mode)) return (void)fuse_reply_err(req, ENOTDIR);
  fuse_entry_param e = {};
  e.entry_timeout = fs.cache_timeout_s();
  auto child = dir->children.find(name);
  const ViewNode* node = child == dir->children.end() ? nullptr : FindNode(*tree, child->second);
  if (!node) return (void)fuse_reply_entry(req, &e);  // a cached negative entry
  e.ino = node->ino;
  e.generation = 1;
  e.attr_timeout = fs.cache_timeout_s();
  Fill(*node, fs.acls(), &e.attr);
  fuse_reply_entry(req, &e);
}

void Getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  ViewFs& fs = Fs(req);
  const std::shared_ptr<const ViewTree> tree = fs.tree();
  // Through an open file (the kernel sends its handle for regular files
  // only): the file as it was opened, even when a refresh since left it out.
  const ViewNode* node =
      fi ? reinterpret_cast<const FileHandle*>(fi->fh)->node : FindNode(*tree, ino);
  if (!node) return (void)fuse_reply_err(req, ENOENT);
  struct stat s;
  Fill(*node, fs.acls(), &s);
  fuse_reply_attr(req, &s, fs.cache_timeout_s());
}

void Readlink(fuse_req_t req, fuse_ino_t ino) {
  const std::shared_ptr<const ViewTree> tree = Fs(req).tree();
  const ViewNode* node = FindNode(*tree, ino);
  if (!node) return (void)fuse_reply_err(req, ENOENT);
  if (!S_ISLNK(node->mode)) return (void)fuse_reply_err(req, EINVAL);
  fuse_reply_readlink(req, node->symlink_target.c_str());
}

void Opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  ViewFs& fs = Fs(req);
  const std::shared_ptr<const ViewTree> tree = fs.tree();
  const ViewNode* node = FindNode(*tree, ino);
  if (!node) return (void)fuse_reply_err(req, ENOENT);
  if (!S_ISDIR(node->mode)) return (void)fuse_reply_err(req, ENOTDIR);
  auto dir = std::make_unique<DirHandle>();
  dir->entries.emplace_back(".", node->ino, node->mode);
  dir->entries.emplace_back("..", kRootIno, S_IFDIR);  // the kernel answers ".." itself
  for (const auto& [name, child] : node->children)
    if (const ViewNode* c = FindNode(*tree, child))
      dir->entries.emplace_back(name, c->ino, c->mode);
  fi->fh = reinterpret_cast<uint64_t>(dir.release());
  fi->cache_readdir = !fs.refresh();
  fi->keep_cache = !fs.refresh();
  fuse_reply_open(req, fi);
}

void Readdir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  const auto* dir = reinterpret_cast<const DirHandle*>(fi->fh);
  std::vector<char> buf(size);
  size_t used = 0;
  for (size_t i = size_t(off); i < dir->entries.size(); ++i) {
    const auto& [name, ino, mode] = dir->entries[i];
    struct stat s = {};
    s.st_ino = ino;
    s.st_mode = mode;
    const size_t need =
        fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &s, off_t(i + 1));
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void Releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<DirHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  ViewFs& fs = Fs(req);
  std::shared_ptr<const ViewTree> tree = fs.tree();
  const ViewNode* node = FindNode(*tree, ino);
  if (!node) return (void)fuse_reply_err(req, ENOENT);
  if (S_ISDIR(node->mode)) return (void)fuse_reply_err(req, EISDIR);
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
    return (void)fuse_reply_err(req, EROFS);
  auto h = std::make_unique<FileHandle>();
  h->tree = std::move(tree);
  h->node = node;
  if (!node->object.empty()) {
    h->fd = open(node->object.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (h->fd < 0) {
      const int err = errno;
      spdlog::error("view: open {} (object {}): {}{}", node->path, node->object, strerror(err),
                    err == ENOENT ? " (moved back, thinned or deleted by its owner since the "
                                    "view was built; --refresh or a new mount shows the "
                                    "namespace as it is)"
                                  : "");
      return (void)fuse_reply_err(req, EIO);
    }
    const int err = fs.SumsFor(*node, h->fd, &h->sums);
    if (err != 0) {
      close(h->fd);
      return (void)fuse_reply_err(req, err);
    }
    if (!h->sums)
      spdlog::info("view: {} (object {}) is served unverified: no checksum vouches for it",
                   node->path, node->object);
    else
      h->direct_fd = open(node->object.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC | O_NOFOLLOW);
  }
  // A refreshed view may serve other bytes under this inode at the next
  // open (the owner rewrote the file): the page cache starts afresh then.
  fi->keep_cache = !fs.refresh();
  fi->fh = reinterpret_cast<uint64_t>(h.release());
  fuse_reply_open(req, fi);
}

constexpr size_t kDirectAlign = 4096;

struct FreeAligned {
  void operator()(char* p) const { free(p); }
};

// Whole blocks [start, start + len) (start on a block boundary, len whole
// blocks or up to the end of the file): read into one aligned buffer, each
// block checked, replied from that buffer. No lock: the kernel's parallel
// readahead requests load at once.
void ReadWholeBlocks(fuse_req_t req, const FileHandle& h, uint64_t start, size_t len) {
  const size_t room = (len + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
  std::unique_ptr<char, FreeAligned> buf(static_cast<char*>(aligned_alloc(kDirectAlign, room)));
  if (!buf) return (void)fuse_reply_err(req, ENOMEM);
  // O_DIRECT reads whole pages: a short last block is read as its pages,
  // and the file's end makes the count short. A filesystem that takes the
  // flag at open but not the read (EINVAL) is read through the page cache.
  ssize_t n = h.direct_fd >= 0 ? PreadFull(h.direct_fd, buf.get(), room, start) : -EINVAL;
  if (n == -EINVAL) n = PreadFull(h.fd, buf.get(), room, start);
  if (n < 0) return (void)fuse_reply_err(req, int(-n));
  for (size_t done = 0; done < len; done += kSumBlockBytes) {
    const uint64_t b = (start + done) / kSumBlockBytes;
    const size_t block_len = std::min<size_t>(kSumBlockBytes, len - done);
    if (size_t(n) < done + block_len || b >= h.sums->size() ||
        XXH3_64bits(buf.get() + done, block_len) != (*h.sums)[b]) {
      spdlog::error(
          "view: {} (object {}): block {} does not match its recorded checksum{}; read refused "
          "(EIO)",
          h.node->path, h.node->object, b,
          size_t(n) < done + block_len ? " (the object is shorter than recorded)" : "");
      return (void)fuse_reply_err(req, EIO);
    }
  }
  fuse_reply_buf(req, buf.get(), len);
}

// Copies [start, start + len) of the file into `out` through the handle's
// cached block, each block read and checked once: 0, or the errno to reply.
int CopyVerified(FileHandle& h, uint64_t start, char* out, size_t len) {
  const uint64_t file_size = h.node->size;
  MutexLock lock(&h.mu);
  if (!h.bytes) h.bytes.reset(new char[kSumBlockBytes]);
  for (uint64_t pos = start; pos < start + len;) {
    const uint64_t b = pos / kSumBlockBytes, block_start = b * kSumBlockBytes;
    if (h.block != b) {
      h.block = UINT64_MAX;
      const size_t want = size_t(std::min<uint64_t>(kSumBlockBytes, file_size - block_start));
      const ssize_t n = PreadFull(h.fd, h.bytes.get(), want, block_start);
      if (n < 0) return int(-n);
      if (size_t(n) != want || b >= h.sums->size() ||
          XXH3_64bits(h.bytes.get(), want) != (*h.sums)[b]) {
        spdlog::error(
            "view: {} (object {}): block {} does not match its recorded checksum{}; read "
            "refused (EIO)",
            h.node->path, h.node->object, b,
            size_t(n) != want ? " (the object is shorter than recorded)" : "");
        return EIO;
      }
      h.block = b;
      h.block_len = want;
    }
    const size_t in = size_t(pos - block_start);
    const size_t take = size_t(std::min<uint64_t>(h.block_len - in, start + len - pos));
    memcpy(out + (pos - start), h.bytes.get() + in, take);
    pos += take;
  }
  return 0;
}

void Read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  auto* h = reinterpret_cast<FileHandle*>(fi->fh);
  const uint64_t file_size = h->node->size;
  const uint64_t start = uint64_t(off);
  if (h->fd < 0 || start >= file_size) return (void)fuse_reply_buf(req, nullptr, 0);
  const size_t len = size_t(std::min<uint64_t>(size, file_size - start));
  if (!h->sums) {
    std::vector<char> out(len);
    const ssize_t n = PreadFull(h->fd, out.data(), len, start);
    if (n < 0) return (void)fuse_reply_err(req, int(-n));
    return (void)fuse_reply_buf(req, out.data(), size_t(n));
  }
  if (start % kSumBlockBytes == 0 && (len % kSumBlockBytes == 0 || start + len == file_size))
    return ReadWholeBlocks(req, *h, start, len);
  std::vector<char> out(len);
  // The reply goes out after the lock is let go: once the kernel has it, a
  // RELEASE of the handle may arrive on another thread and free the lock.
  const int err = CopyVerified(*h, start, out.data(), len);
  if (err != 0) return (void)fuse_reply_err(req, err);
  fuse_reply_buf(req, out.data(), len);
}

void Release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  auto* h = reinterpret_cast<FileHandle*>(fi->fh);
  if (h->fd >= 0) close(h->fd);
  if (h->direct_fd >= 0) close(h->direct_fd);
  delete h;
  fuse_reply_err(req, 0);
}

void Statfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs s;
  if (statvfs(Fs(req).hdd_dir().c_str(), &s) != 0) return (void)fuse_reply_err(req, EIO);
  fuse_reply_statfs(req, &s);
}

// The POSIX ACLs it has (the root's too); its other extended attributes
// (user.*, trusted.*, security.*: ViewNode::xattrs); user.tierfs.tier and
// user.tierfs.object, for a file with an object; user.tierfs.view on the
// root: what the view shows and from what (JSON).
std::vector<std::pair<std::string, std::string>> Xattrs(const ViewTree& tree,
                                                        const ViewNode& node) {
  std::vector<std::pair<std::string, std::string>> all;
  if (!node.access_acl.empty()) all.emplace_back(kAccessAclXattr, node.access_acl);
  if (!node.default_acl.empty()) all.emplace_back("system.posix_acl_default", node.default_acl);
  for (const auto& [name, value] : node.xattrs) all.emplace_back(name, value);
  if (node.ino == kRootIno) {
    uint64_t files = 0;
    for (const auto& [ino, n] : tree.nodes) files += S_ISREG(n.mode) ? 1 : 0;
    const nlohmann::json summary = {
        {"namespace", tree.ns},     {"snapshot", tree.snapshot}, {"built", UtcNanos(tree.built_ns)},
        {"files", files},           {"ssd_only", tree.ssd_only}, {"removed", tree.removed},
        {"unplaced", tree.unplaced}};
    all.emplace_back("user.tierfs.view", summary.dump());
  } else if (!node.object.empty()) {
    all.emplace_back("user.tierfs.tier", "hdd");
    all.emplace_back("user.tierfs.object", node.object);
  }
  return all;
}

void ReplyXattr(fuse_req_t req, const std::string& value, size_t size) {
  if (size == 0) return (void)fuse_reply_xattr(req, value.size());
  if (size < value.size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, value.data(), value.size());
}

// As the owner's mount (and the kernel for local filesystems): trusted.*
// only to the privileged, root standing in for CAP_SYS_ADMIN.
bool Shown(fuse_req_t req, const std::string& name) {
  return name.rfind("trusted.", 0) != 0 || fuse_req_ctx(req)->uid == 0;
}

void Getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  const std::shared_ptr<const ViewTree> tree = Fs(req).tree();
  const ViewNode* node = FindNode(*tree, ino);
  if (!node) return (void)fuse_reply_err(req, ENOENT);
  for (const auto& [key, value] : Xattrs(*tree, *node))
    if (key == name && Shown(req, key)) return ReplyXattr(req, value, size);
  fuse_reply_err(req, ENODATA);
}

void Listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  const std::shared_ptr<const ViewTree> tree = Fs(req).tree();
  const ViewNode* node = FindNode(*tree, ino);
  if (!node) return (void)fuse_reply_err(req, ENOENT);
  // user.tierfs.* are read by name only, as on the mount (fs/ops_xattr.cc):
  // a cp -a out of the view must not carry a path on the HDD tier along.
  std::string names;
  for (const auto& [key, value] : Xattrs(*tree, *node))
    if (Shown(req, key) && key.rfind("user.tierfs.", 0) != 0) names += key + '\0';
  ReplyXattr(req, names, size);
}

}  // namespace

ViewFs::ViewFs(std::shared_ptr<const ViewTree> tree, std::string hdd_dir, bool refresh,
               double cache_timeout_s)
    : hdd_dir_(std::move(hdd_dir)),
      refresh_(refresh),
      cache_timeout_s_(cache_timeout_s),
      tree_(std::move(tree)) {}

std::shared_ptr<const ViewTree> ViewFs::tree() const {
  MutexLock lock(&mu_);
  return tree_;
}

void ViewFs::Replace(std::shared_ptr<const ViewTree> tree) {
  MutexLock lock(&mu_);
  tree_ = std::move(tree);
}

const fuse_lowlevel_ops& ViewFs::Ops() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o = {};
    o.init = Init;
    o.lookup = Lookup;
    o.getattr = Getattr;
    o.readlink = Readlink;
    o.opendir = Opendir;
    o.readdir = Readdir;
    o.releasedir = Releasedir;
    o.open = Open;
    o.read = Read;
    o.release = Release;
    o.statfs = Statfs;
    o.getxattr = Getxattr;
    o.listxattr = Listxattr;
    return o;
  }();
  return ops;
}

const ViewNode* FindNode(const ViewTree& tree, uint64_t ino) {
  auto it = tree.nodes.find(ino);
  return it == tree.nodes.end() ? nullptr : &it->second;
}

int ViewFs::SumsFor(const ViewNode& node, int fd,
                    std::shared_ptr<const std::vector<uint64_t>>* out) {
  out->reset();
  if (node.checksum == 0) return 0;
  {
    if (!node.sums.empty()) {
      // Not owned: the handle asking holds the tree `node` belongs to.
      *out = std::shared_ptr<const std::vector<uint64_t>>(std::shared_ptr<void>(), &node.sums);
      return 0;
    }
    MutexLock lock(&mu_);
    auto it = sums_.find({node.ino, node.checksum});
    if (it != sums_.end()) {
      *out = it->second;
      return 0;
    }
  }
  // Only the whole file's checksum is known: one pass hashes it and yields
  // the block sums the reads then check.
  BlockSummer summer;
  std::unique_ptr<char[]> buf(new char[kSumBlockBytes]);
  uint64_t total = 0;
  for (;;) {
    const ssize_t n = PreadFull(fd, buf.get(), kSumBlockBytes, total);
    if (n < 0) return int(-n);
    if (n == 0) break;
    summer.Update(buf.get(), size_t(n));
    total += uint64_t(n);
  }
  std::vector<uint64_t> blocks;
  const uint64_t whole = summer.Finish(&blocks);
  if (whole != node.checksum || total != node.size) {
    spdlog::error(
        "view: {} (object {}) does not match its recorded checksum ({} bytes, {} recorded); open "
        "refused (EIO)",
        node.path, node.object, total, node.size);
    return EIO;
  }
  MutexLock lock(&mu_);
  *out = sums_[{node.ino, node.checksum}] =
      std::make_shared<const std::vector<uint64_t>>(std::move(blocks));
  return 0;
}

}  // namespace tierfs

#include "fs/delete_audit.h"

#include <sys/stat.h>

#include <string>
#include <vector>

namespace tierfs {

namespace {

std::string EntryPath(Context& c, uint64_t parent, const char* name, uint64_t ino) {
  const std::string dir = c.table().KnownPath(parent);
  if (!dir.empty()) return (dir == "/" ? "" : dir) + "/" + name;
  const std::string known = c.table().KnownPath(ino);  // one of its names
  return known.empty() ? "(inode " + std::to_string(parent) + ")/" + name : known;
}

}  // namespace

Status AuditDeleteBefore(Context& c, fuse_req_t req, uint64_t parent, const char* name,
                         const char* op, PendingDelete* out) {
  *out = PendingDelete();
  Inode n;
  if (!c.store().Lookup(parent, name, &n).ok()) return Status::Ok();  // the removal will say
  Store::Hold h;
  if (!c.store().GetHold(n.ino, &h).ok() || !Holds::Retains(h, NowNs())) return Status::Ok();
  if (!n.is_reg() && !n.is_dir()) return Status::Ok();  // no data kept in a name alone
  AuditRecord& rec = out->rec;
  if (n.is_dir()) {
    // Only an empty directory goes; anything else fails ENOTEMPTY unrecorded.
    std::vector<DirEntry> entries;
    std::vector<Inode> inodes;
    Status st = c.store().ListDir(n.ino, &entries, &inodes);
    if (!st.ok()) return st;
    for (const DirEntry& e : entries)
      if (e.name != "." && e.name != "..") return Status::Ok();
    rec.action = "delete";
    rec.detail = std::string(op) + " of an empty directory";
  } else if (n.nlink > 1) {
    rec.action = "unlink";  // no bytes go while another name keeps them
    rec.detail = std::string(op) + "; " + std::to_string(n.nlink - 1) +
                 (n.nlink == 2 ? " other link remains" : " other links remain");
  } else {
    rec.action = "delete";
    rec.detail = op;
    struct stat obj;
    if (n.checksum != 0) {
      rec.checksum = n.checksum;
      rec.bytes = c.tier(n.tier).StatObject(n.ino, &obj).ok() ? uint64_t(obj.st_size) : n.size;
    } else {
      Status st = c.tree_ops().HashObject(n, &rec.bytes, &rec.checksum);
      if (!st.ok())
        return Status::Error(st.err(), "checksum before deleting kept file " +
                                           EntryPath(c, parent, name, n.ino) + ": " + st.message());
    }
    rec.has_checksum = true;
  }
  const fuse_ctx* ctx = fuse_req_ctx(req);
  rec.uid = ctx->uid;
  rec.pid = ctx->pid;
  rec.rule = h.rule;
  rec.path = EntryPath(c, parent, name, n.ino);
  rec.ino = n.ino;
  if (n.generation != 0) rec.generation = int64_t(n.generation);
  if (h.manual) rec.detail += "; pinned by uid " + std::to_string(h.uid);
  Status st = c.AppendAudit({rec});
  if (!st.ok())
    return Status::Error(EIO, std::string(op) + " of kept " + rec.path +
                                  " refused: its audit record cannot be written: " + st.message());
  out->audited = true;
  return Status::Ok();
}

Status AuditTruncateBefore(Context& c, fuse_req_t req, const Inode& n, uint64_t new_size,
                           const char* op, PendingDelete* out) {
  *out = PendingDelete();
  // The common path: nothing retained anywhere, or nothing to cut by
  // LMDB's size while nobody writes the file (a writer's bytes may not be
  // recorded yet).
  if (!n.is_reg() || !c.holds().MayRetain()) return Status::Ok();
  if (n.size <= new_size && !c.table().OpenForWriting(n.ino)) return Status::Ok();
  Store::Hold h;
  if (!c.store().GetHold(n.ino, &h).ok() || !Holds::Retains(h, NowNs())) return Status::Ok();
  AuditRecord& rec = out->rec;
  rec.path = c.table().KnownPath(n.ino);
  if (rec.path.empty()) rec.path = "(inode " + std::to_string(n.ino) + ")";
  // What is there now: the object (a writer's bytes included).
  Inode now;
  const TierId tier = c.store().GetInode(n.ino, &now).ok() ? now.tier : n.tier;
  struct stat obj;
  Status st = c.tier(tier).StatObject(n.ino, &obj);
  if (st.err() == ENOENT) return Status::Ok();  // no object: no bytes to cut
  if (st.ok() && uint64_t(obj.st_size) <= new_size) return Status::Ok();
  if (st.ok() && now.checksum != 0 && !c.table().OpenForWriting(n.ino)) {
    rec.bytes = uint64_t(obj.st_size);
    rec.checksum = now.checksum;  // the checksum a move verified vouches for them
  } else {
    st = c.tree_ops().HashObject(now.ino ? now : n, &rec.bytes, &rec.checksum);
    if (!st.ok())
      return Status::Error(
          st.err(), "checksum before truncating kept file " + rec.path + ": " + st.message());
    if (rec.bytes <= new_size) return Status::Ok();
  }
  rec.has_checksum = true;
  rec.action = "truncate";
  rec.detail = op;
  if (h.manual) rec.detail += "; pinned by uid " + std::to_string(h.uid);
  rec.new_size = int64_t(new_size);
  const fuse_ctx* ctx = fuse_req_ctx(req);
  rec.uid = ctx->uid;
  rec.pid = ctx->pid;
  rec.rule = h.rule;
  rec.ino = n.ino;
  if (n.generation != 0) rec.generation = int64_t(n.generation);
  st = c.AppendAudit({rec});
  if (!st.ok())
    return Status::Error(EIO, std::string(op) + " of kept " + rec.path +
                                  " refused: its audit record cannot be written: " + st.message());
  out->audited = true;
  return Status::Ok();
}

Status AuditTruncateAfter(Context& c, const PendingDelete& p, const Status& result) {
  if (!p.audited || result.ok()) return result;
  AuditRecord rec = p.rec;
  rec.result = "not truncated: " + result.message();
  rec.detail += "; the record before this one did not happen";
  c.Audit({rec});
  return result;
}

void AuditDeleteAfter(Context& c, const PendingDelete& p, const Status& removal) {
  if (!p.audited || removal.ok()) return;
  AuditRecord rec = p.rec;
  rec.result = "not deleted: " + removal.message();
  rec.detail += "; the record before this one did not happen";
  c.Audit({rec});
}

}  // namespace tierfs

// The `where` command and the path resolution every command that takes a
// path uses (fs/control_internal.h).
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "fs/context.h"
#include "fs/control_internal.h"
#include "meta/text_format.h"

namespace tierfs {

using nlohmann::json;

Status ResolveForPeer(Context& c, const std::string& path, const ControlPeer& peer, Inode* out,
                      std::string* clean) {
  Store& store = c.store();
  std::vector<std::string> parts;
  for (size_t pos = 0; pos <= path.size();) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    const std::string part = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) return Status::Error(EACCES, path + ": '..' leaves the mount");
      parts.pop_back();
    } else {
      parts.push_back(part);
    }
  }
  Inode cur;
  Status st = store.GetInode(kRootIno, &cur);
  clean->clear();
  for (size_t i = 0; st.ok() && i < parts.size(); ++i) {
    const std::string here = clean->empty() ? "/" : *clean;
    if (cur.is_symlink())
      return Status::Error(ELOOP, here + " is a symlink, which is not followed");
    if (!cur.is_dir()) return Status::Error(ENOTDIR, here + " is not a directory");
    if (!MaySearch(c, cur, peer)) return Status::Error(EACCES, here + ": permission denied");
    *clean += "/" + parts[i];
    Inode child;
    st = store.Lookup(cur.ino, parts[i], &child);
    if (!st.ok()) return Status::Error(st.err(), *clean + ": " + std::strerror(st.err()));
    cur = child;
  }
  if (clean->empty()) *clean = "/";
  if (st.ok()) *out = cur;
  return st;
}

void AddSeriesAndGeneration(Context& c, const Inode& n, json* j) {
  std::string series;
  uint64_t number = 0;
  const bool in_one = c.policy_runner().GenerationOf(n.ino, &series, &number);
  (*j)["series"] = in_one ? json(series) : json(nullptr);
  (*j)["generation"] = in_one ? json(number) : json(nullptr);
}

const char* TypeName(const Inode& n) {
  if (n.is_reg()) return "file";
  if (n.is_dir()) return "directory";
  if (n.is_symlink()) return "symlink";
  return "special";
}

json ControlWhere(Context& c, const ControlInfo&, const json& req, const ControlPeer& peer) {
  std::string path;
  if (!PathField(req, &path)) return ControlError(EINVAL, "where: \"path\" (a string) is required");
  Inode n;
  std::string clean;
  Status st = ResolveForPeer(c, path, peer, &n, &clean);
  if (!st.ok()) return ControlError(st.err(), "where " + st.message());
  json j = {{"ok", true},     {"type", TypeName(n)},
            {"ino", n.ino},   {"uid", n.uid},
            {"gid", n.gid},   {"mode", n.mode & 07777},
            {"size", n.size}, {"mtime", UtcSeconds(n.mtime_ns)}};
  PutName(&j, "path", clean);
  AddSeriesAndGeneration(c, n, &j);
  if (n.is_reg()) {
    const Tier& t = c.tier(n.tier);
    struct stat obj;
    if (t.StatObject(n.ino, &obj).ok()) j["size"] = uint64_t(obj.st_size);
    j["tier"] = t.name();
    j["moving"] = c.placement().IsMoving(n.ino);
    j["object"] = t.ObjectPath(n.ino);
    // The xxh3-64 tierfs recorded of its bytes (hex, as in the audit
    // journal): what `tierctl export` checks its copy against. Only to a
    // caller who may read the file: a checksum of a few secret bytes is the
    // bytes (stat needs no read permission, guessing needs only the hash).
    if (n.checksum != 0 && MayRead(c, n, peer)) {
      j["checksum"] = Hex64(n.checksum);
    }
  }
  Store::Hold h;
  Status hs = c.store().GetHold(n.ino, &h);
  if (hs.ok()) {
    j["hold"] = {{"rule", h.rule},
                 {"since", UtcSeconds(h.since_ns)},
                 {"until", h.until_ns ? json(UtcSeconds(h.until_ns)) : json(nullptr)},
                 {"immutable", h.immutable},
                 {"active", Holds::Active(h, NowNs())},
                 {"manual", h.manual}};
    if (h.manual) j["hold"]["uid"] = h.uid;
    if (h.tier) j["hold"]["tier"] = TierName(*h.tier);
  } else if (hs.err() == ENOENT) {
    j["hold"] = nullptr;
  } else {
    return ControlError(hs.err(), "where " + clean + ": " + hs.message());
  }
  return j;
}

}  // namespace tierfs

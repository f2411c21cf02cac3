#include "fs/control_commands.h"

#include <unistd.h>

#include <ctime>

#include "fs/context.h"
#include "fs/version.h"

namespace tierfs {

using nlohmann::json;

std::string Rfc3339(int64_t ns) {
  const time_t s = time_t(ns / 1000000000);
  struct tm tm;
  gmtime_r(&s, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

json ErrorOf(const Status& st) {
  return ControlError(st.err(), st.message());
}

json Status_(Context& c, const ControlInfo& info) {
  struct Count {
    uint64_t files = 0, bytes = 0;
  } counts[2];
  Status st = c.store().ForEachInode([&](const Inode& n) {
    if (n.is_reg() && n.nlink > 0) {
      Count& k = counts[size_t(n.tier)];
      ++k.files;
      k.bytes += n.size;
    }
    return Status::Ok();
  });
  if (!st.ok()) return ErrorOf(st);
  json tiers = json::array();
  for (TierId id : {TierId::kSsd, TierId::kHdd}) {
    const Tier& t = c.tier(id);
    json j = {{"name", t.name()},
              {"path", t.root()},
              {"files", counts[size_t(id)].files},
              {"bytes", counts[size_t(id)].bytes}};
    Tier::Space space;
    Status sp = t.GetSpace(&space);
    if (sp.ok()) {
      j["capacity"] = space.capacity;
      j["free"] = space.free;
      j["used"] = space.capacity - std::min(space.free, space.capacity);
    } else {
      j["error"] = sp.message();
    }
    Status health = t.CheckHealth();
    j["healthy"] = health.ok();
    if (!health.ok()) j["error"] = health.message();
    tiers.push_back(std::move(j));
  }
  const Watermarks marks = c.space().watermarks();
  const int64_t now = NowNs();
  return {{"ok", true},
          {"version", kVersion},
          {"pid", int64_t(getpid())},
          {"started", Rfc3339(info.started_ns)},
          {"uptime_s", (now - info.started_ns) / 1000000000},
          {"mountpoint", info.mountpoint},
          {"state", info.state},
          {"policy_file", c.options().policy_file},
          {"watermarks", {{"high", marks.high}, {"low", marks.low}}},
          {"tiers", std::move(tiers)}};
}

// Whether `peer` may search directory `d` (its x bit for the peer's class).
bool MaySearch(const Inode& d, const ControlPeer& peer) {
  if (peer.uid == 0) return true;
  if (peer.uid == d.uid) return d.mode & S_IXUSR;
  if (peer.InGroup(d.gid)) return d.mode & S_IXGRP;
  return d.mode & S_IXOTH;
}

// Resolves `path` from the root as described in fs/control_commands.h;
// `clean` is the path it names ("/a/b").
Status Resolve(Store& store, const std::string& path, const ControlPeer& peer, Inode* out,
               std::string* clean) {
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
    if (!MaySearch(cur, peer)) return Status::Error(EACCES, here + ": permission denied");
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

const char* TypeName(const Inode& n) {
  if (n.is_reg()) return "file";
  if (n.is_dir()) return "directory";
  if (n.is_symlink()) return "symlink";
  return "special";
}

json Where(Context& c, const json& req, const ControlPeer& peer) {
  if (!req.contains("path") || !req["path"].is_string())
    return ControlError(EINVAL, "where: \"path\" (a string) is required");
  const std::string path = req["path"].get<std::string>();
  Inode n;
  std::string clean;
  Status st = Resolve(c.store(), path, peer, &n, &clean);
  if (!st.ok()) return ControlError(st.err(), "where " + st.message());
  json j = {{"ok", true},
            {"path", clean},
            {"type", TypeName(n)},
            {"ino", n.ino},
            {"uid", n.uid},
            {"gid", n.gid},
            {"mode", n.mode & 07777},
            {"size", n.size},
            {"mtime", Rfc3339(n.mtime_ns)},
            {"generation", n.generation ? json(n.generation) : json(nullptr)}};
  if (n.is_reg()) {
    const Tier& t = c.tier(n.tier);
    struct stat obj;
    if (t.StatObject(n.ino, &obj).ok()) j["size"] = uint64_t(obj.st_size);
    j["tier"] = t.name();
    j["moving"] = c.placement().IsMoving(n.ino);
    j["object"] = t.ObjectPath(n.ino);
  }
  Store::Hold h;
  Status hs = c.store().GetHold(n.ino, &h);
  if (hs.ok()) {
    j["hold"] = {{"rule", h.rule},
                 {"since", Rfc3339(h.since_ns)},
                 {"until", h.until_ns ? json(Rfc3339(h.until_ns)) : json(nullptr)},
                 {"immutable", h.immutable},
                 {"active", Holds::Active(h, NowNs())}};
  } else if (hs.err() == ENOENT) {
    j["hold"] = nullptr;
  } else {
    return ControlError(hs.err(), "where " + clean + ": " + hs.message());
  }
  return j;
}

}  // namespace

json HandleControl(Context& c, const ControlInfo& info, const json& request,
                   const ControlPeer& peer) {
  const auto cmd = request.find("cmd");
  if (cmd == request.end() || !cmd->is_string())
    return ControlError(EINVAL, "request has no \"cmd\" string");
  const std::string name = cmd->get<std::string>();
  if (name == "status") return Status_(c, info);
  if (name == "where") return Where(c, request, peer);
  return ControlError(EOPNOTSUPP, "unknown command '" + name + "' (known: status, where)");
}

}  // namespace tierfs

// The read-only listings of the control socket: `tree` (tierctl where -r),
// `ls` and `du` (tierctl(1)). A peer sees what it could see through the
// mount: entries of directories it may read and search, below a path it may
// resolve (ResolveForPeer). Listings are paged ("offset", "limit"; the reply
// says "next" while more remain) so that no reply outgrows what a client
// takes in one line, whatever the size of the tree.
#include <unordered_map>
#include <unordered_set>

#include "fs/context.h"
#include "fs/control_internal.h"

namespace tierfs {

using nlohmann::json;

namespace {

constexpr size_t kDefaultLimit = 1000;
constexpr size_t kMaxLimit = 5000;  // about 300 bytes an entry: replies stay near 1.5 MB

// Ends a walk once a page is full (not an error for the reply).
constexpr int kPageFull = ECANCELED;

// "offset" and "limit" of a paged request (ControlFieldError when not
// unsigned integers).
void PageOf(const json& req, size_t* offset, size_t* limit) {
  *offset = UintField(req, "offset", 0);
  *limit = UintField(req, "limit", kDefaultLimit);
  if (*limit == 0 || *limit > kMaxLimit) *limit = kMaxLimit;
}

bool PathOf(const json& req, const char* cmd, std::string* path, json* err) {
  if (PathField(req, path)) return true;
  *err = ControlError(EINVAL, std::string(cmd) + ": \"path\" (a string) is required");
  return false;
}

json HoldJson(const Store::Hold* h) {
  if (h == nullptr) return nullptr;
  return {{"rule", h->rule},
          {"since", UtcSeconds(h->since_ns)},
          {"until", h->until_ns ? json(UtcSeconds(h->until_ns)) : json(nullptr)},
          {"immutable", h->immutable},
          {"active", Holds::Active(*h, NowNs())}};
}

// One row of a listing (the fields tierctl(1) documents for ls and where -r).
json EntryJson(Context& c, const Inode& n, const Store::Hold* hold, const std::string& target) {
  json j = {{"type", TypeName(n)},    {"ino", n.ino},
            {"mode", n.mode & 07777}, {"nlink", n.nlink},
            {"uid", n.uid},           {"gid", n.gid},
            {"size", n.size},         {"mtime", UtcSeconds(n.mtime_ns)},
            {"hold", HoldJson(hold)}};
  AddSeriesAndGeneration(c, n, &j);
  if (n.is_reg()) {
    j["tier"] = TierName(n.tier);
    j["moving"] = c.placement().IsMoving(n.ino);
  }
  if (n.is_symlink()) PutName(&j, "target", target);
  return j;
}

// Resolves a directory (or file) the peer wants listed; a directory must
// grant the peer read and search permission, as ls -l would need.
Status ResolveListable(Context& c, const std::string& path, const ControlPeer& peer, Inode* n,
                       std::string* clean) {
  Status st = ResolveForPeer(c, path, peer, n, clean);
  if (st.ok() && n->is_dir() && !(MayRead(c, *n, peer) && MaySearch(c, *n, peer)))
    return Status::Error(EACCES, *clean + ": permission denied (cannot list it)");
  return st;
}

}  // namespace

json ControlTree(Context& c, const ControlInfo&, const json& req, const ControlPeer& peer) {
  std::string path, clean;
  size_t offset, limit;
  json err;
  if (!PathOf(req, "tree", &path, &err)) return err;
  PageOf(req, &offset, &limit);
  Inode start;
  Status st = ResolveListable(c, path, peer, &start, &clean);
  if (!st.ok()) return ControlError(st.err(), "where -r " + st.message());
  // Directories whose entries the peer may see; a directory is visited
  // before its entries, so its verdict is known when they come.
  std::unordered_map<uint64_t, bool> open;
  json entries = json::array();
  size_t seen = 0;
  bool more = false;
  st = c.store().WalkBelow(start.ino, clean, [&](const Store::TreeEntry& e) {
    const Inode& n = *e.inode;
    if (e.parent != 0) {
      auto it = open.find(e.parent);
      if (it == open.end() || !it->second) return Status::Ok();
    }
    const bool listable = n.is_dir() && MayRead(c, n, peer) && MaySearch(c, n, peer);
    if (n.is_dir()) open[n.ino] = listable;
    if (seen++ < offset) return Status::Ok();
    if (entries.size() == limit) {
      more = true;
      return Status::Error(kPageFull, "page full");
    }
    json j = EntryJson(c, n, e.hold, e.symlink_target);
    PutName(&j, "path", e.path);
    if (n.is_dir() && !listable) j["listable"] = false;
    entries.push_back(std::move(j));
    return Status::Ok();
  });
  if (!st.ok() && st.err() != kPageFull) return ControlError(st.err(), "where -r " + st.message());
  json reply = {{"ok", true},
                {"entries", std::move(entries)},
                {"next", more ? json(offset + limit) : json(nullptr)}};
  PutName(&reply, "path", clean);
  return reply;
}

json ControlLs(Context& c, const ControlInfo&, const json& req, const ControlPeer& peer) {
  std::string path, clean;
  size_t offset, limit;
  json err;
  if (!PathOf(req, "ls", &path, &err)) return err;
  PageOf(req, &offset, &limit);
  Inode dir;
  Status st = ResolveListable(c, path, peer, &dir, &clean);
  if (!st.ok()) return ControlError(st.err(), "ls " + st.message());
  std::vector<DirEntry> names;
  std::vector<Inode> inodes;
  if (dir.is_dir()) {
    st = c.store().ListDir(dir.ino, &names, &inodes);
  } else {  // ls of a file lists the file itself
    names.push_back({clean.substr(clean.find_last_of('/') + 1), dir.ino, dir.mode & S_IFMT});
    inodes.push_back(dir);
  }
  if (!st.ok()) return ControlError(st.err(), "ls " + clean + ": " + st.message());
  json entries = json::array();
  for (size_t i = offset; i < names.size() && entries.size() < limit; ++i) {
    Store::Hold hold;
    const bool held = c.store().GetHold(inodes[i].ino, &hold).ok();
    std::string target;
    if (inodes[i].is_symlink()) (void)c.store().ReadSymlink(inodes[i].ino, &target);
    json j = EntryJson(c, inodes[i], held ? &hold : nullptr, target);
    PutName(&j, "name", names[i].name);
    entries.push_back(std::move(j));
  }
  const size_t end = offset + entries.size();
  json reply = {{"ok", true},
                {"directory", dir.is_dir()},
                {"entries", std::move(entries)},
                {"next", end < names.size() ? json(end) : json(nullptr)}};
  PutName(&reply, "path", clean);
  return reply;
}

json ControlDu(Context& c, const ControlInfo&, const json& req, const ControlPeer& peer) {
  std::string path, clean;
  json err;
  if (!PathOf(req, "du", &path, &err)) return err;
  Inode start;
  Status st = ResolveListable(c, path, peer, &start, &clean);
  if (!st.ok()) return ControlError(st.err(), "du " + st.message());
  struct Count {
    uint64_t files = 0, bytes = 0;
  } tiers[2];
  uint64_t dirs = 0, unlistable = 0;
  std::unordered_map<uint64_t, bool> open;
  std::unordered_set<uint64_t> linked;  // a file of several names counts once, as du counts it
  st = c.store().WalkBelow(start.ino, clean, [&](const Store::TreeEntry& e) {
    const Inode& n = *e.inode;
    if (e.parent != 0) {
      auto it = open.find(e.parent);
      if (it == open.end() || !it->second) return Status::Ok();
    }
    if (n.is_dir()) {
      open[n.ino] = MayRead(c, n, peer) && MaySearch(c, n, peer);
      ++dirs;
      if (!open[n.ino]) ++unlistable;
    } else if (n.is_reg() && (n.nlink < 2 || linked.insert(n.ino).second)) {
      Count& k = tiers[size_t(n.tier)];
      ++k.files;
      k.bytes += n.size;
    }
    return Status::Ok();
  });
  if (!st.ok()) return ControlError(st.err(), "du " + st.message());
  json gens;
  st = GenerationsBelow(c, start.is_dir() ? clean : "", peer, false, &gens);
  if (!st.ok()) return ControlError(st.err(), "du " + clean + ": " + st.message());
  // Per series instance: its generations' bytes by tier.
  std::map<std::pair<std::string, std::string>, json> series;
  for (const json& g : gens) {
    json& s = series[{g["series"], g["dir"]}];
    if (s.is_null())
      s = {{"series", g["series"]},
           {"dir", g["dir"]},
           {"generations", 0},
           {"bytes", 0},
           {"tiers", {{"ssd", 0}, {"hdd", 0}}}};
    s["generations"] = s["generations"].get<uint64_t>() + 1;
    s["bytes"] = s["bytes"].get<uint64_t>() + g["bytes"].get<uint64_t>();
    for (const char* t : {"ssd", "hdd"})
      s["tiers"][t] = s["tiers"][t].get<uint64_t>() + g["tiers"][t].get<uint64_t>();
  }
  json by_series = json::array();
  for (auto& [key, s] : series) by_series.push_back(std::move(s));
  // Generations are bounded like a page; the series totals count them all.
  const bool truncated = gens.size() > kMaxLimit;
  if (truncated) gens.erase(gens.begin() + kMaxLimit, gens.end());
  json tier_json = json::object();
  for (TierId id : {TierId::kSsd, TierId::kHdd})
    tier_json[TierName(id)] = {{"files", tiers[size_t(id)].files},
                               {"bytes", tiers[size_t(id)].bytes}};
  return {{"ok", true},
          {"path", clean},
          {"directories", dirs},
          {"unlistable", unlistable},
          {"tiers", std::move(tier_json)},
          {"series", std::move(by_series)},
          {"generations", std::move(gens)},
          {"truncated", truncated}};
}

}  // namespace tierfs

#include "tests/integration/crash_model.h"

#include <sys/stat.h>
#include <xxhash.h>

#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>

namespace tierfs_test {

namespace fs = std::filesystem;

namespace {

constexpr size_t kHistory = 8;   // notes kept per file
constexpr int kMaxReports = 30;  // failures printed per check (all are counted)

uint64_t Hash(const std::string& data) {
  return XXH3_64bits(data.data(), data.size());
}

std::string Join(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : " | ") + n;
  return out;
}

// The generation number of a name inside ".../checkpoint-N/...", or -1.
bool InFinalGeneration(const std::string& rel) {
  return rel.find("/checkpoint-") != std::string::npos;
}

}  // namespace

void CrashModel::Note(File& f, const std::string& note) {
  f.history.push_back(note);
  if (f.history.size() > kHistory) f.history.erase(f.history.begin());
}

uint64_t CrashModel::Add(int owner, const std::string& rel, const std::string& data,
                         const std::string& note) {
  File f;
  f.owner = owner;
  f.names = {rel};
  f.content = {{Hash(data), data.size()}};
  Note(f, note);
  files_[next_id_] = std::move(f);
  return next_id_++;
}

uint64_t CrashModel::AddGeneration(int owner, const std::string& run, int gen,
                                   const std::string& rel, const std::string& data,
                                   const std::string& note) {
  const uint64_t id = Add(owner, rel, data, note);
  files_[id].run = run;
  files_[id].gen = gen;
  return id;
}

size_t CrashModel::DataCount(int owner) const {
  size_t n = 0;
  for (const auto& [id, f] : files_) n += f.owner == owner && f.gen < 0;
  return n;
}

uint64_t CrashModel::Pick(int owner, uint64_t r) const {
  std::vector<uint64_t> ids;
  for (const auto& [id, f] : files_)
    if (f.owner == owner && f.gen < 0 && f.names.size() == 1) ids.push_back(id);
  return ids.empty() ? 0 : ids[r % ids.size()];
}

std::string CrashModel::PickAny(int owner, uint64_t r) const {
  std::vector<const std::string*> names;
  for (const auto& [id, f] : files_)
    if (f.owner == owner && f.names.size() == 1) names.push_back(&*f.names.begin());
  return names.empty() ? "" : *names[r % names.size()];
}

std::string CrashModel::BeginOverwrite(uint64_t id, const std::string& note) {
  File& f = files_.at(id);
  f.content.clear();
  Note(f, note);
  return *f.names.begin();
}

void CrashModel::EndOverwrite(uint64_t id, const std::string& data, const std::string& note) {
  File& f = files_.at(id);
  f.content = {{Hash(data), data.size()}};
  Note(f, note);
}

std::string CrashModel::BeginRename(uint64_t id, const std::string& to, const std::string& note) {
  File& f = files_.at(id);
  const std::string from = *f.names.begin();
  f.names.insert(to);
  Note(f, note);
  return from;
}

void CrashModel::EndRename(uint64_t id, const std::string& to, const std::string& note) {
  File& f = files_.at(id);
  f.names = {to};
  Note(f, note);
}

std::string CrashModel::Forget(uint64_t id) {
  const std::string name = *files_.at(id).names.begin();
  files_.erase(id);
  return name;
}

void CrashModel::Renamed(const std::string& run, int gen) {
  renamed_[run].insert(gen);
}

bool CrashModel::MayVanish(const File& f, int min_keep) const {
  if (f.gen < 0) return false;
  bool renamed = false;  // only a generation under its final name is in the series
  for (const auto& n : f.names) renamed |= InFinalGeneration(n);
  if (!renamed) return false;
  auto it = renamed_.find(f.run);
  if (it == renamed_.end()) return false;
  int newer = 0;
  for (auto g = it->second.upper_bound(f.gen); g != it->second.end(); ++g) newer++;
  return newer >= min_keep;
}

void CrashModel::Verify(const TierfsMount& mnt, int min_keep, const std::string& where,
                        CampaignCounts* c) {
  c->checks++;
  // Generations present now count as renamed (a rename the kill cut off
  // may have been done): the policy may count them as newer ones.
  for (const auto& [id, f] : files_) {
    if (f.gen < 0) continue;
    for (const auto& name : ListDir(mnt.path(f.run))) {
      if (name.rfind("checkpoint-", 0) == 0) renamed_[f.run].insert(std::stoi(name.substr(11)));
    }
  }
  int reports = 0;
  auto report = [&](const std::string& what, const File& f) {
    if (reports++ >= kMaxReports) return;
    std::ostringstream s;
    s << where << ": " << what << "\n  names: " << Join(f.names) << "\n  fsynced content:";
    if (f.content.empty()) s << " any (overwrite in flight)";
    for (const auto& [h, size] : f.content) s << " " << size << " bytes xxh3 " << std::hex << h;
    s << "\n  history:";
    for (const auto& h : f.history) s << "\n    " << h;
    ADD_FAILURE() << s.str();
  };
  for (auto it = files_.begin(); it != files_.end();) {
    File& f = it->second;
    std::vector<std::string> present;
    std::string good;
    uint64_t good_hash = 0;
    size_t good_size = 0;
    std::string bad;
    for (const auto& name : f.names) {
      struct stat st {};
      if (lstat(mnt.path(name).c_str(), &st) != 0) continue;
      present.push_back(name);
      std::string data;
      const int e = S_ISREG(st.st_mode) ? ReadFile(mnt.path(name), &data) : EISDIR;
      const uint64_t h = Hash(data);
      if (e == 0 && (f.content.empty() || f.content.count(h) != 0)) {
        good = name;
        good_hash = h;
        good_size = data.size();
      } else {
        std::ostringstream s;
        s << name << " reads " << (e != 0 ? strerror(e) : "ok") << ", " << data.size()
          << " bytes xxh3 " << std::hex << h;
        bad = s.str();
      }
    }
    if (present.size() > 1) {
      c->corrupt++;
      report("CORRUPT: both names of a rename exist", f);
      it = files_.erase(it);
    } else if (!bad.empty()) {
      c->corrupt++;
      report("CORRUPT: " + bad, f);
      it = files_.erase(it);
    } else if (good.empty() && MayVanish(f, min_keep)) {
      c->thinned++;
      it = files_.erase(it);
    } else if (good.empty()) {
      c->lost++;
      report("LOST: no name of the fsynced file exists", f);
      it = files_.erase(it);
    } else {
      c->verified++;
      f.names = {good};
      f.content = {{good_hash, good_size}};
      Note(f, where + ": verified at " + good);
      ++it;
    }
  }
}

void CrashModel::RemoveStaleTemporaries(const TierfsMount& mnt) {
  std::set<std::string> runs;
  for (const auto& [id, f] : files_)
    if (f.gen >= 0) runs.insert(f.run);
  for (const auto& run : runs) {
    for (const auto& name : ListDir(mnt.path(run))) {
      if (name.rfind("tmp-checkpoint-", 0) != 0) continue;
      const std::string dir = run + "/" + name + "/";
      for (auto it = files_.begin(); it != files_.end();)
        it = it->second.names.begin()->rfind(dir, 0) == 0 ? files_.erase(it) : std::next(it);
      std::error_code ec;
      fs::remove_all(mnt.path(run + "/" + name), ec);
      EXPECT_FALSE(ec) << "removing " << dir << ": " << ec.message();
    }
  }
}

bool ObjectInode(const std::string& rel, uint64_t* ino, bool* temporary) {
  // ns/<name>/objects/<xx>/<ino-hex>, a move's copy <ino-hex>.moving. Only
  // the last component names the inode.
  std::string base = rel.substr(rel.rfind('/') + 1);
  const std::string kTemp = ".moving";
  *temporary = base.size() > kTemp.size() &&
               base.compare(base.size() - kTemp.size(), kTemp.size(), kTemp) == 0;
  if (*temporary) base.resize(base.size() - kTemp.size());
  if (base.empty() || base.size() > 16 ||
      base.find_first_not_of("0123456789abcdef") != std::string::npos)
    return false;
  *ino = std::stoull(base, nullptr, 16);
  return rel.rfind("objects/", 0) == 0 || rel.find("/objects/") != std::string::npos;
}

void CheckObjects(const TierfsMount& mnt, const std::string& where, CampaignCounts* c) {
  struct Placed {
    std::string tier, path;
    off_t size = 0;
  };
  std::map<uint64_t, Placed> files;  // regular files of the namespace, by inode
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(mnt.mnt(), ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    files[st.st_ino] = {GetTier(it->path()), it->path(), st.st_size};
  }
  EXPECT_FALSE(ec) << where << ": walking " << mnt.mnt() << ": " << ec.message();
  const std::string state = mnt.state_dir().empty() ? mnt.ssd() + "/state" : mnt.state_dir();
  std::set<std::pair<std::string, uint64_t>> found;
  int reports = 0;
  for (const auto& [tier, root] : {std::pair{"ssd", mnt.ssd()}, std::pair{"hdd", mnt.hdd()}}) {
    for (auto it = fs::recursive_directory_iterator(root, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const std::string path = it->path();
      // The archived generations' manifests (fs/generation_manifest.h).
      if (path == state ||
          (it->is_directory() && it->path().filename() == "manifests" && it.depth() == 2)) {
        it.disable_recursion_pending();
        continue;
      }
      const std::string rel = path.substr(root.size() + 1);
      // Not objects: the tier's identity, and the files directly in a
      // namespace's directory: its owner and lock (fs/namespace_setup.h) and the
      // audit chain's head with the temporary it is renamed from (meta/audit.h).
      const size_t name_at = rel.rfind('/') + 1;
      const std::string name = rel.substr(name_at);
      const bool ns_file =
          rel.rfind("ns/", 0) == 0 && rel.find('/', 3) == name_at - 1 &&
          (name == "owner" || name == "lock" || name == "audit.head" || name == "audit.head.tmp");
      // The state's snapshots (fs/snapshot.h), in a namespace's meta/, and
      // the audit journal's copy (meta/audit_mirror.h), in its audit/.
      if (it->is_directory() && (name == "meta" || name == "audit") && rel.rfind("ns/", 0) == 0 &&
          rel.find('/', 3) == name_at - 1) {
        it.disable_recursion_pending();
        continue;
      }
      if (it->is_directory() || rel == "tierfs.id" || ns_file) continue;
      c->objects++;
      uint64_t ino = 0;
      bool temp = false;
      std::string why;
      if (!ObjectInode(rel, &ino, &temp)) {
        why = "not an object's name";
      } else if (temp) {
        why = "a move's temporary left after the remount";
      } else if (files.count(ino) == 0) {
        why = "no regular file has inode " + std::to_string(ino);
      } else if (files[ino].tier != tier) {
        why = files[ino].path + " (inode " + std::to_string(ino) + ") is placed on " +
              files[ino].tier;
      } else {
        found.insert({tier, ino});
        continue;
      }
      c->leaked++;
      if (reports++ < kMaxReports)
        ADD_FAILURE() << where << ": LEAKED object " << path << " on " << tier << ": " << why;
    }
    EXPECT_FALSE(ec) << where << ": walking " << root << ": " << ec.message();
  }
  for (const auto& [ino, f] : files) {
    if (f.size == 0 || found.count({f.tier, ino}) != 0) continue;
    c->missing++;
    if (reports++ < kMaxReports)
      ADD_FAILURE() << where << ": MISSING object of " << f.path << " (inode " << ino << ", "
                    << f.size << " bytes, placed on " << f.tier << ")";
  }
}

}  // namespace tierfs_test

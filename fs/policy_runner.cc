#include "fs/policy_runner.h"

#include <fcntl.h>
#include <linux/limits.h>
#include <pwd.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "fs/generation_manifest.h"
#include "fs/holds.h"

namespace tierfs {

namespace {

// Pointer and marker files the evaluator reads are tiny; anything bigger
// is not one of them.
constexpr uint64_t kMaxPointerBytes = 4096;

std::unordered_set<std::string> PointerNames(const Policy& policy) {
  std::unordered_set<std::string> names;
  for (const Series& s : policy.series) {
    for (const std::string& p : s.pointers) names.insert(p);
    for (const CompletionSignal& c : s.complete)
      if (c.kind == CompletionSignal::Kind::kPointer)
        for (const std::string& f : c.files) names.insert(f.substr(f.rfind('/') + 1));
  }
  return names;
}

// Files whose appearance may complete a generation (pointers, markers):
// creating one wakes the engine instead of waiting for the periodic scan.
std::unordered_set<std::string> SignalNames(const Policy& policy) {
  std::unordered_set<std::string> names = PointerNames(policy);
  for (const Series& s : policy.series)
    for (const CompletionSignal& c : s.complete)
      if (c.kind == CompletionSignal::Kind::kMarker)
        for (const std::string& f : c.files)
          if (f.find('{') == std::string::npos) names.insert(f.substr(f.rfind('/') + 1));
  return names;
}

// The audit record of a policy action: what, which rule, where, how much.
AuditRecord RecordOf(const Action& a, const char* action) {
  AuditRecord rec;
  rec.action = action;
  rec.rule = a.rule;
  rec.path = a.path;
  rec.ino = a.ino;
  rec.series = a.series;
  rec.generation = a.generation ? int64_t(*a.generation) : -1;
  rec.bytes = a.bytes;
  return rec;
}

}  // namespace

Status ParsePolicyText(const std::string& text, const std::string& name, Policy* out) {
  Policy p;
  Status st = ParsePolicy(text, name, &p);
  if (!st.ok()) return st;
  st = ResolveOwnerNames(
      [](const std::string& owner, uint32_t* uid) {
        struct passwd pw, *found = nullptr;
        char buf[4096];
        if (getpwnam_r(owner.c_str(), &pw, buf, sizeof buf, &found) != 0 || !found) return false;
        *uid = found->pw_uid;
        return true;
      },
      &p);
  if (!st.ok()) return Status::Error(st.err(), name + ": " + st.message());
  *out = std::move(p);
  return Status::Ok();
}

Status LoadPolicyFile(const std::string& file, Policy* out, std::string* text) {
  std::string read;
  if (!file.empty()) {
    Status st = ReadPolicyFile(file, &read);
    if (!st.ok()) return st;
  }
  const std::string& source = file.empty() ? DefaultPolicyText() : read;
  Status st = ParsePolicyText(source, file.empty() ? "<built-in policy>" : file, out);
  if (st.ok() && text) *text = source;
  return st;
}

PolicyRunner::PolicyRunner(EngineTree& tree, Policy policy, std::string file,
                           int64_t scan_interval_ns, Metrics* metrics)
    : tree_(tree),
      metrics_(metrics),
      file_(std::move(file)),
      interval_ns_(scan_interval_ns),
      policy_(std::make_shared<const Policy>(std::move(policy))),
      signal_names_(SignalNames(*policy_)) {
  info_.file = file_;
  info_.loaded_ns = NowNs();
  info_.scrub = policy_->scrub;
  info_.pins = policy_->pins;
  // The caller parsed the file a moment ago; its text is read again for
  // `policy show` (best effort: a file that changed since says so on reload).
  if (file_.empty())
    info_.text = DefaultPolicyText();
  else if (!ReadPolicyFile(file_, &info_.text).ok())
    info_.text.clear();
}

PolicyRunner::Info PolicyRunner::GetInfo() {
  MutexLock lock(&info_mu_);
  return info_;
}

ScrubLimits PolicyRunner::scrub_limits() {
  MutexLock lock(&info_mu_);
  return info_.scrub;
}

PinLimits PolicyRunner::pin_limits() {
  MutexLock lock(&info_mu_);
  return info_.pins;
}

void PolicyRunner::OnCreate(const char* name) {
  {
    MutexLock lock(&signal_mu_);
    if (!signal_names_.count(name)) return;
  }
  Poke();
}

PolicyRunner::~PolicyRunner() {
  Stop();
}

void PolicyRunner::Start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
}

void PolicyRunner::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void PolicyRunner::Poke() {
  {
    MutexLock lock(&mu_);
    poked_ = true;
  }
  wake_.SignalAll();
}

void PolicyRunner::Loop() {
  MutexLock lock(&mu_);
  while (!stop_) {
    // SIGHUP is blocked in every thread (fs/daemon.cc); this thread takes
    // it, once a second, as a request to reload.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(interval_ns_);
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    const struct timespec no_wait = {0, 0};
    while (!stop_ && !poked_ && !reload_requested_ && std::chrono::steady_clock::now() < deadline) {
      wake_.WaitFor(&mu_, std::chrono::seconds(1));
      if (sigtimedwait(&hup, nullptr, &no_wait) == SIGHUP) reload_requested_ = true;
    }
    if (stop_) break;
    if (poked_) {
      // A rename often comes with more (a framework finishing a checkpoint
      // writes its pointer right after): let the burst settle.
      const auto settle = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
      while (!stop_ && std::chrono::steady_clock::now() < settle)
        wake_.WaitFor(&mu_, settle - std::chrono::steady_clock::now());
      poked_ = false;
    }
    lock.Unlock();
    if (reload_requested_.exchange(false)) (void)Reload();  // Reload logs why it refused
    RunOnce();
    lock.Lock();
  }
}

Status PolicyRunner::Reload() {
  Policy fresh;
  std::string text;
  Status st = LoadPolicyFile(file_, &fresh, &text);
  {
    MutexLock lock(&info_mu_);
    if (st.ok()) {
      info_.text = std::move(text);
      info_.loaded_ns = NowNs();
      info_.scrub = fresh.scrub;
      info_.pins = fresh.pins;
      info_.last_error.clear();
      info_.last_error_ns = 0;
    } else {
      info_.last_error = st.message();
      info_.last_error_ns = NowNs();
    }
  }
  AuditRecord rec;
  rec.action = "reload";
  rec.rule = "-";
  rec.path = file_.empty() ? "<built-in policy>" : file_;
  if (metrics_) metrics_->CountReload(st.ok());
  if (!st.ok()) {
    // Logged here, whoever asked (SIGHUP, the xattr, tierctl): tierctl
    // status shows the daemon's last errors.
    spdlog::error("policy reload refused, the running policy stays: {}", st.message());
    rec.result = "refused: " + st.message();
    tree_.Audit({rec});
    return st;
  }
  {
    MutexLock lock(&policy_mu_);  // never during an evaluation
    tree_.SetLimits(fresh.limits);
    policy_ = std::make_shared<const Policy>(std::move(fresh));
    refusals_logged_.clear();
    MutexLock names(&signal_mu_);
    signal_names_ = SignalNames(*policy_);
  }
  tree_.Audit({rec});
  spdlog::info("policy reloaded from {}", rec.path);
  return Status::Ok();
}

Status PolicyRunner::BuildSnapshot(const Policy& policy, Snapshot* out) {
  out->clear();
  const auto pointer_names = PointerNames(policy);
  std::unordered_set<uint64_t> open;
  for (uint64_t ino : tree_.OpenInodes()) open.insert(ino);
  // One read transaction: the rules judge one consistent state of the tree
  // (a generation and the pointer that names it seen at the same instant).
  size_t too_deep = 0;
  Status st = tree_.Walk([&](const Store::TreeEntry& e) {
    // A path no system call can name (PATH_MAX) is left to no rule: each
    // entry keeps its whole path here, so a chain of directories a user
    // made by mkdir and chdir alone would cost memory as its depth squared
    // (20,000 levels: half a gigabyte, every scan).
    if (e.path.size() >= PATH_MAX) {
      ++too_deep;
      return Status::Ok();
    }
    const Inode& n = *e.inode;
    FileFacts f;
    f.path = e.path;
    f.ino = n.ino;
    f.is_dir = n.is_dir();
    f.is_symlink = n.is_symlink();
    f.size = n.size;
    f.mtime_ns = n.mtime_ns;
    f.atime_ns = std::max(n.atime_ns, tree_.LastOpen(n.ino));
    f.uid = n.uid;
    f.tier = n.tier;
    f.open = open.count(n.ino) > 0;
    if (e.hold && e.hold->placement_only) {  // keeps the tier, retains nothing
      f.placed = Holds::Active(*e.hold, NowNs());
      f.pin_tier = e.hold->tier;
      f.pin_uid = e.hold->uid;
    } else if (e.hold) {
      f.pinned = true;
      f.pin_until_ns = e.hold->until_ns;
      f.immutable = e.hold->immutable;
      f.manual_pin = e.hold->manual;
      f.pin_tier = e.hold->tier;
      f.pin_uid = e.hold->uid;
      f.pin_rule = e.hold->rule;
      f.pin_since_ns = e.hold->since_ns;
    }
    f.checksum = n.checksum;
    f.symlink_target = e.symlink_target;
    // A read error fails the scan: judging by empty content could thin the
    // generation the pointer names.
    if (n.is_reg() && n.size <= kMaxPointerBytes && pointer_names.count(e.name))
      if (Status st = tree_.ReadPointer(n, kMaxPointerBytes, &f.content); !st.ok()) return st;
    out->push_back(std::move(f));
    return Status::Ok();
  });
  if (too_deep != too_deep_logged_ && too_deep > 0)
    spdlog::warn("policy scan: {} entries have paths of {} bytes or more; no rule applies to them",
                 too_deep, PATH_MAX);
  too_deep_logged_ = too_deep;
  return st;
}

Status PolicyRunner::Scan(Plan* plan, size_t* files) {
  MutexLock lock(&policy_mu_);
  Snapshot snap;
  Status st = BuildSnapshot(*policy_, &snap);
  if (!st.ok()) return st;
  *files = snap.size();
  *plan = Evaluate(*policy_, snap, NowNs());
  return Status::Ok();
}

Status PolicyRunner::Inspect(std::shared_ptr<const Policy>* policy, Snapshot* snapshot) {
  MutexLock lock(&policy_mu_);  // as Scan: the snapshot is read as a scan reads it
  *policy = policy_;
  return BuildSnapshot(**policy, snapshot);
}

std::string PolicyRunner::DryRun() {
  MutexLock lock(&policy_mu_);
  Snapshot snap;
  Status st = BuildSnapshot(*policy_, &snap);
  if (!st.ok()) return "error: " + st.message() + "\n";
  return DescribePlan(Evaluate(*policy_, snap, NowNs()));
}

Status PolicyRunner::PlanWith(const Policy* policy, Plan* plan) {
  MutexLock lock(&policy_mu_);
  const Policy& p = policy ? *policy : *policy_;
  Snapshot snap;
  Status st = BuildSnapshot(p, &snap);
  if (st.ok()) *plan = Evaluate(p, snap, NowNs());
  return st;
}

int PolicyRunner::RunOnce() {
  MutexLock lock(&policy_mu_);
  const int64_t now = NowNs();
  std::vector<AuditRecord> unpinned;
  int done = tree_.ExpireHolds(now, &unpinned);
  tree_.Audit(unpinned);
  Snapshot snap;
  Status st = BuildSnapshot(*policy_, &snap);
  if (!st.ok()) {
    spdlog::error("policy scan: {}", st.message());
    return done;
  }
  // Every member of every generation, for the xattrs (fs/ops_xattr.cc).
  std::unordered_map<uint64_t, GenerationTag> tags;
  const std::vector<Generation> gens = RecognizeGenerations(*policy_, snap, now);
  for (const Generation& g : gens)
    for (size_t i : g.members) tags[snap[i].ino] = {policy_->series[g.series].name, g.number};
  WriteManifests(snap, gens);
  {
    MutexLock gen_lock(&gen_mu_);
    generation_of_.swap(tags);
  }
  return done + Execute(Evaluate(*policy_, snap, now));
}

void PolicyRunner::WriteManifests(const Snapshot& snap, const std::vector<Generation>& gens) {
  for (const Generation& g : gens) {
    std::string name, text;
    if (!ArchivedGenerationManifest(*policy_, snap, g, &name, &text)) continue;
    auto it = manifests_.find(name);
    if (it != manifests_.end() && it->second == text) continue;
    // Remembered once written: a generation's manifest is its record on the
    // HDD tier, so one the tier failed (a network filesystem that dropped)
    // is written at a later scan, not at the next start only.
    Status st = tree_.WriteManifest(name, text);
    if (st.ok()) {
      manifests_[name] = text;
      manifests_failed_.erase(name);
    } else if (!manifests_failed_.insert(name).second) {
      continue;  // failed before: audited and logged then
    }
    AuditRecord rec;
    rec.action = "manifest";
    rec.rule = "archive";
    rec.path = snap[g.roots[0]].path;
    rec.ino = snap[g.roots[0]].ino;
    rec.series = policy_->series[g.series].name;
    rec.generation = int64_t(g.number);
    rec.bytes = g.bytes;
    rec.to = "hdd";
    rec.detail = "manifests/" + name;
    if (!st.ok()) {
      rec.result = st.message();
      spdlog::warn("manifest of {} generation {} ({}): {}", rec.series, g.number, rec.path,
                   st.message());
    }
    tree_.Audit({rec});
  }
}

bool PolicyRunner::GenerationOf(uint64_t ino, std::string* series, uint64_t* number) {
  MutexLock lock(&gen_mu_);
  auto it = generation_of_.find(ino);
  if (it == generation_of_.end()) return false;
  *series = it->second.series;
  *number = it->second.number;
  return true;
}

int PolicyRunner::Execute(const Plan& plan) {
  int done = 0;
  for (const Action& a : plan) {
    Status st;
    switch (a.kind) {
      case Action::Kind::kMigrate: {
        if (!a.to) break;
        st = tree_.Move(a.ino, *a.to, a.rule, a.path);
        if (st.ok()) done++;
        break;
      }
      case Action::Kind::kThin:
        st = Thin(a);
        if (st.ok()) done++;
        break;
      case Action::Kind::kPin:
        st = Pin(a);
        if (st.ok()) done++;
        break;
      case Action::Kind::kRefuse: {
        const std::string key = a.rule + "\n" + a.path + "\n" + a.reason;
        if (!refusals_logged_.insert(key).second) break;
        if (metrics_) metrics_->CountRefusal(a.rule);
        AuditRecord rec = RecordOf(a, "refuse");
        rec.result = "refused: " + a.reason;
        tree_.Audit({rec});
        spdlog::info("policy rule '{}' on {}: {}", a.rule, a.path, a.reason);
        break;
      }
    }
    // Busy, cancelled, or removed since the scan planned it: routine.
    if (!st.ok() && st.err() != EBUSY && st.err() != ECANCELED && st.err() != ENOENT)
      spdlog::warn("policy rule '{}' on {}: {}", a.rule, a.path, st.message());
  }
  return done;
}

// One record per removed file (its path, bytes and checksum), then one for
// the action as a whole, all made durable together before anything goes: a
// thinning the journal cannot record does not happen (the next scan tries
// again). Files a removal failing part way did not remove get a record
// saying so, which recover's replay honours.
Status PolicyRunner::Thin(const Action& a) {
  std::vector<AuditRecord> planned;
  std::vector<RemovedFile> files;
  bool journaled = false;
  auto journal_first = [&](const std::vector<RemovedFile>& going) {
    planned.clear();
    uint64_t bytes = 0;
    for (const RemovedFile& f : going) {
      AuditRecord rec = RecordOf(a, "thin");
      rec.path = f.path;
      rec.ino = f.ino;
      rec.bytes = f.bytes;
      rec.checksum = f.checksum;
      rec.has_checksum = true;
      rec.detail = "part of " + a.path;
      bytes += f.bytes;
      planned.push_back(std::move(rec));
    }
    AuditRecord rec = RecordOf(a, "thin");
    rec.detail = a.reason;
    rec.bytes = bytes;
    rec.detail +=
        (rec.detail.empty() ? "" : "; ") + std::to_string(going.size()) + " files removed";
    planned.push_back(std::move(rec));
    Status st = tree_.Journal(planned);
    if (!st.ok())
      return Status::Error(EIO,
                           "not thinned: its audit records cannot be written: " + st.message());
    journaled = true;
    return st;
  };
  Status st = tree_.RemovePath(a.path, a.ino, journal_first, &files);
  // Deferred (a setxattr holds a lock the kernel's notification needs), or
  // unrecordable: nothing happened and the next scan plans the thin again,
  // so nothing is audited; the log says why the thin waits, once per wait.
  const bool deferred = st.err() == EBUSY && st.message().rfind("deferred:", 0) == 0;
  const bool unjournaled = !st.ok() && !journaled && files.empty() && st.err() == EIO &&
                           st.message().rfind("not thinned:", 0) == 0;
  const std::string wait_key = "waits\n" + a.rule + "\n" + a.path;
  if (deferred || unjournaled) {
    if (refusals_logged_.insert(wait_key).second) {
      if (unjournaled)
        spdlog::error("policy rule '{}' on {}: {}", a.rule, a.path, st.message());
      else
        spdlog::info("policy rule '{}' on {}: {}", a.rule, a.path, st.message());
    }
    return st;
  }
  refusals_logged_.erase(wait_key);
  if (st.ok()) {
    if (metrics_) metrics_->CountThin(a.rule, files.size(), planned.back().bytes);
    return st;
  }
  std::vector<AuditRecord> records;
  if (journaled) {
    // The removal failed part way after its records: the files still there
    // and the action as a whole did not happen as recorded.
    for (AuditRecord rec : planned) {
      const bool gone =
          rec.has_checksum && std::any_of(files.begin(), files.end(), [&](const RemovedFile& f) {
            return f.ino == rec.ino && f.path == rec.path;
          });
      if (gone) continue;
      rec.result = (rec.has_checksum ? "not removed: " : "") + st.message();
      rec.detail += "; the record before this one did not happen";
      records.push_back(std::move(rec));
    }
    uint64_t bytes = 0;
    for (const RemovedFile& f : files) bytes += f.bytes;
    if (metrics_) metrics_->CountThin(a.rule, files.size(), bytes);
    tree_.Audit(records);
    return st;
  }
  // Refused before anything was planned (open, held, stale): one record.
  AuditRecord rec = RecordOf(a, "thin");
  rec.detail = a.reason;
  rec.result = st.message();
  if (st.err() == EBUSY || st.err() == EPERM) {
    rec.action = "refuse";
    if (metrics_) metrics_->CountRefusal(a.rule);
  }
  records.push_back(std::move(rec));
  tree_.Audit(records);
  return st;
}

Status PolicyRunner::Pin(const Action& a) {
  Store::Hold want;
  want.until_ns = a.pin_until_ns;
  want.since_ns = NowNs();
  want.immutable = a.immutable;
  want.rule = a.rule;
  int changed = 0;
  Status st = tree_.HoldTree(a.ino, want, &changed);
  if (st.ok() && a.to) st = tree_.Move(a.ino, *a.to, a.rule, a.path);
  if (changed > 0) {
    if (metrics_) metrics_->CountPin(a.rule);
    AuditRecord rec = RecordOf(a, "pin");
    rec.detail = std::string(a.immutable ? "immutable, " : "") + "until " +
                 (a.pin_until_ns ? std::to_string(a.pin_until_ns / 1000000000) + " (unix s)"
                                 : std::string("indefinitely")) +
                 (a.to ? std::string(", on ") + TierName(*a.to) : "");
    if (!st.ok()) rec.result = st.message();
    tree_.Audit({rec});
  }
  return st;
}

}  // namespace tierfs

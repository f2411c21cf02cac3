// PolicyRunner: the daemon's side of the policy engine (policy/policy.h).
// One background thread that, periodically and soon after a rename (a
// framework publishing a checkpoint), reads a snapshot of the namespace from
// LMDB, evaluates the policy over it and carries the plan out: migrate
// through the mover, thin by unlinking (and telling the kernel), pin by
// setting holds. Every action, refusal and hold expiry goes to the audit
// journal. A reload (SIGHUP or request) parses the file first and swaps the
// policy only if it is valid; reload and evaluation never overlap, so nothing
// is thinned while a policy is being replaced.
//
// Thread-safety: all public methods may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "fs/engine_tree.h"
#include "fs/metrics.h"
#include "meta/mutex.h"
#include "meta/status.h"
#include "policy/policy.h"

namespace tierfs {

// The policy the daemon runs: `file` parsed (the built-in default when
// empty), with owner names resolved to uids through the user database.
// Errors read "file:line:column: reason".
// `text` (when given) gets the text that was parsed.
Status LoadPolicyFile(const std::string& file, Policy* out, std::string* text = nullptr);
// Policy text parsed under `name` (for messages), owner names resolved as
// LoadPolicyFile does (a dry run of a policy tierctl sends).
Status ParsePolicyText(const std::string& text, const std::string& name, Policy* out);

class PolicyRunner {
 public:
  // `file` is reread on reload; empty means the built-in default policy.
  // `tree` is all the runner sees of the mount (fs/engine_tree.h); it must
  // outlive the runner.
  // `metrics`, when given, counts thinning, pins, refusals and reloads.
  PolicyRunner(EngineTree& tree, Policy policy, std::string file, int64_t scan_interval_ns,
               Metrics* metrics = nullptr);
  ~PolicyRunner();  // stops the thread

  void Start();
  void Stop();
  // Something changed that may complete a generation: evaluate soon.
  void Poke();
  // A file was created: pokes when its name is a pointer or marker file of
  // a series (DeepSpeed `latest`, `.metadata`, ...). Cheap otherwise.
  void OnCreate(const char* name);
  // Reloads the policy file now; on error the running policy stays and the
  // error ("file:line:column: reason") is returned.
  Status Reload();
  // Asks the thread to reload (from a signal handler: only sets a flag).
  void RequestReload() { reload_requested_ = true; }
  // What the policy would do now, rule by rule, without doing it.
  std::string DryRun();
  // The plan `policy` (the running one when null) makes for the tree now.
  Status PlanWith(const Policy* policy, Plan* plan);

  // What `tierctl policy show` tells: the running policy and its history.
  struct Info {
    std::string file;        // "" for the built-in policy
    std::string text;        // as parsed (the built-in text, or the file's)
    int64_t loaded_ns = 0;   // when the running policy was loaded
    std::string last_error;  // of the last reload, "" when it succeeded
    int64_t last_error_ns = 0;
    ScrubLimits scrub;  // the running policy's [scrub] (fs/scrub.h follows it)
    PinLimits pins;     // and its [pins] (tierctl pin, fs/control_pins.cc)
  };
  Info GetInfo();
  // Info::scrub alone, without copying the text (the scrub asks often).
  ScrubLimits scrub_limits();
  // Info::pins alone: what a user's immutable pin is held to now.
  PinLimits pin_limits();
  // The scan alone: a snapshot of the tree and the plan for it (what
  // RunOnce carries out); `files` counts the snapshot's entries.
  Status Scan(Plan* plan, size_t* files);
  // A snapshot of the tree and the running policy, for read-only views
  // (tierctl gens and du evaluate it at several times). The policy stays
  // valid while the caller holds the pointer, whatever a reload does.
  Status Inspect(std::shared_ptr<const Policy>* policy, Snapshot* snapshot);
  // One scan, evaluation and execution on the caller's thread; returns the
  // number of actions carried out.
  int RunOnce();
  // The checkpoint series and generation inode `ino` belonged to at the
  // last RunOnce (user.tierfs.series, .generation); false outside any.
  bool GenerationOf(uint64_t ino, std::string* series, uint64_t* number);

 private:
  void Loop();
  Status BuildSnapshot(const Policy& policy, Snapshot* out) REQUIRES(policy_mu_);
  int Execute(const Plan& plan) REQUIRES(policy_mu_);
  Status Thin(const Action& a) REQUIRES(policy_mu_);
  Status Pin(const Action& a);
  // Writes the manifest of each archived generation of `gens` whose text
  // changed since it was last written (fs/generation_manifest.h), one audit
  // record each. One that fails (the HDD tier away) is tried again at every
  // scan until written; its failure is audited and logged once.
  void WriteManifests(const Snapshot& snap, const std::vector<Generation>& gens)
      REQUIRES(policy_mu_);

  EngineTree& tree_;
  Metrics* const metrics_;
  std::string file_;
  int64_t interval_ns_;
  Mutex policy_mu_;  // held across a whole RunOnce and a Reload
  std::shared_ptr<const Policy> policy_ GUARDED_BY(policy_mu_);
  Mutex info_mu_;
  Info info_ GUARDED_BY(info_mu_);
  // Audit a refusal once, not every scan.
  std::set<std::string> refusals_logged_ GUARDED_BY(policy_mu_);
  // The text of each manifest written, by name.
  std::unordered_map<std::string, std::string> manifests_ GUARDED_BY(policy_mu_);
  // Manifests whose last write failed (audited once; retried each scan).
  std::set<std::string> manifests_failed_ GUARDED_BY(policy_mu_);
  // Entries the last scan left out for their path length (BuildSnapshot),
  // so a warning says a change, not every scan.
  size_t too_deep_logged_ GUARDED_BY(policy_mu_) = 0;
  Mutex signal_mu_;
  std::unordered_set<std::string> signal_names_ GUARDED_BY(signal_mu_);  // swapped on reload
  struct GenerationTag {
    std::string series;
    uint64_t number = 0;
  };
  Mutex gen_mu_;
  std::unordered_map<uint64_t, GenerationTag> generation_of_ GUARDED_BY(gen_mu_);
  Mutex mu_;
  CondVar wake_;
  bool poked_ GUARDED_BY(mu_) = false;
  bool stop_ GUARDED_BY(mu_) = false;
  std::atomic<bool> reload_requested_{false};
  std::thread thread_;
};

}  // namespace tierfs

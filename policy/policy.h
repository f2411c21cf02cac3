// policy/policy.h: the tiering policy, what it recognises and what it proposes.
//
// Contract:
// - LoadPolicy / ParsePolicy turn a TOML policy file (format: policy/example.toml
//   and tierfs.policy(5)) into a validated Policy, or fail with EINVAL (or the
//   errno of reading the file) and a message "file:line:column: reason". Only
//   a regular file (or a symlink to one) of at most 1 MiB is read. They
//   never throw and never leave *out half-written: it changes only on success,
//   so a reload with a bad file keeps the old policy.
// - RecognizeGenerations and Evaluate are pure functions of their arguments
//   (no I/O, no clock, no global state). Evaluate only proposes a Plan; the
//   daemon executes it and journals it. Whatever the rules say, Evaluate never
//   proposes to thin the newest complete generation of a series instance, a
//   generation a pointer file names, an incomplete generation, or anything
//   open, held by a pin, or immutable: such cases become kRefuse actions.
// Thread-safety: every function is reentrant; a const Policy may be shared
// by any number of threads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "meta/inode.h"
#include "meta/limits.h"
#include "meta/status.h"
#include "policy/pattern.h"

namespace tierfs {

// ---- The policy model (what the file says, validated) ----

// When a generation counts as complete. A series lists one or more; all must hold,
// and in any case no file of the generation may be open.
struct CompletionSignal {
  enum class Kind : uint8_t {
    kRename,   // the final name exists (frameworks write a temporary name, then rename)
    kMarker,   // one of `files` exists ("marker:a|b"; "metadata:" is a synonym)
    kAbsent,   // `files[0]` does not exist ("absent:../{stem}-unfinished")
    kPointer,  // `files[0]` in the containing dir names generation N; all <= N are complete
    kQuiet,    // nothing in the generation written for `quiet_ns`
  };
  Kind kind = Kind::kRename;
  // Marker/absent names are relative to the generation directory (to the
  // containing directory for a file generation, or with a "../" prefix) and
  // may use {name} (the generation's entry name) and {stem} (the name without
  // a trailing alphabetic extension such as ".ckpt").
  std::vector<std::string> files;
  int64_t quiet_ns = 0;
};

struct Series {
  enum class Kind : uint8_t { kDir, kFile, kAny };
  std::string name;
  std::vector<PathPattern> patterns;  // each has exactly one {gen}
  Kind kind = Kind::kAny;
  std::vector<CompletionSignal> complete;
  std::vector<std::string> pointers;       // files in the containing dir (content or symlink
                                           // target names a generation that is never thinned)
  std::vector<PathPattern> exclude_names;  // entry names that are never generations
  // Whether one instance spans generations of different owners (the uid of
  // each generation's top entry). Off: in a shared (sticky) directory one
  // user's newer generations must not make the engine thin another's.
  bool span_owners = false;
};

struct Rule {
  enum class Action : uint8_t { kMigrate, kThin, kPin, kExclude };
  std::string name;
  Action action = Action::kMigrate;
  uint32_t line = 0;  // where [[rule]] starts, for messages

  // Conditions; every one given must hold. Rules with a series condition or a
  // generation selector judge each generation as a unit (size = its bytes,
  // ages from its newest file); other rules judge each file.
  std::optional<PathPattern> path;
  bool any_series = false;        // series = "*"
  std::vector<size_t> series;     // indexes into Policy::series
  std::optional<bool> in_series;  // file belongs (or not) to any generation
  std::optional<uint64_t> min_size, max_size;
  std::optional<int64_t> older_than_ns;  // since last write (mtime)
  std::optional<int64_t> idle_for_ns;    // since last access or write
  std::optional<uint32_t> owner_uid;
  std::string owner_name;  // as written; see ResolveOwnerNames
  // Generation selectors; generations are ranked by complete ones only.
  std::optional<uint32_t> keep_last;          // the newest N complete generations
  std::optional<uint32_t> every_kth;          // complete, number a multiple of K x save interval
  std::optional<uint32_t> older_than_newest;  // any with at least K newer complete generations

  // Action arguments.
  std::optional<TierId> to;             // migrate (required), pin (optional)
  std::optional<int64_t> pin_for_ns;    // pin: from the generation's (file's) last write
  std::optional<int64_t> pin_until_ns;  // pin: absolute; neither = indefinitely
  bool immutable = false;               // pin

  bool judges_generations() const {
    return any_series || !series.empty() || keep_last || every_kth || older_than_newest;
  }
};

struct Policy {
  TierLimits limits;  // [tiers] watermarks and [throttle]
  ScrubLimits scrub;  // [scrub]
  PinLimits pins;     // [pins]
  std::vector<Series> series;
  std::vector<Rule> rules;  // in file order; order decides
};

// Reads and parses `path`; errors name `path`.
Status LoadPolicy(const std::string& path, Policy* out);
// Parses policy text; errors read "<name_for_errors>:line:column: reason".
Status ParsePolicy(const std::string& text, const std::string& name_for_errors, Policy* out);
// Every error of policy text, not only the first (`tierctl policy check`):
// each section, [[series]] and [[rule]] table is read even after an error in
// another; a syntax error ends the reading. *out holds what parsed (not a
// policy to run when there are errors). ParsePolicy fails with errors[0].
void ParsePolicyAll(const std::string& text, const std::string& name_for_errors, Policy* out,
                    std::vector<Status>* errors);
// The text of policy file `path` under LoadPolicy's rules (a regular file
// of at most 1 MiB, never blocking on a FIFO); errors name `path`.
Status ReadPolicyFile(const std::string& path, std::string* out);
// The built-in policy, as TOML text (it parses with ParsePolicy).
const std::string& DefaultPolicyText();
// Replaces owner names with uids via `lookup` (e.g. getpwnam_r). Rules whose
// owner stays unresolved match nothing. ENOENT names the first unknown user.
Status ResolveOwnerNames(const std::function<bool(const std::string&, uint32_t*)>& lookup,
                         Policy* policy);

// ---- What the evaluator sees ----

struct FileFacts {
  std::string path;  // absolute within the mount: "/a/b"
  uint64_t ino = 0;
  bool is_dir = false;
  bool is_symlink = false;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t atime_ns = 0;
  uint32_t uid = 0;
  TierId tier = TierId::kSsd;
  bool open = false;    // any handle, reader or writer
  bool pinned = false;  // held until pin_until_ns (0 = indefinitely)
  int64_t pin_until_ns = 0;
  bool immutable = false;
  // The hold is a manual pin (tierctl pin/move): while it is in force no
  // rule migrates, thins or re-pins the file; `pin_tier` is where it was
  // put (empty: where it is), `pin_uid` who pinned it.
  bool manual_pin = false;
  std::optional<TierId> pin_tier;
  uint32_t pin_uid = 0;
  std::string pin_rule;      // the rule (or "manual") that holds it
  int64_t pin_since_ns = 0;  // since when
  // xxh3-64 of the bytes as the last move verified them, 0 when unknown
  // (Inode::checksum): what a generation's manifest records.
  uint64_t checksum = 0;
  // Placed by hand (tierctl move) and not pinned: no rule migrates it, but
  // nothing else is held off (pin_tier and pin_uid say where and by whom).
  bool placed = false;
  std::string content;         // small pointer files only (`latest`, trackers); else empty
  std::string symlink_target;  // for symlinks (Lightning's last.ckpt)
};
using Snapshot = std::vector<FileFacts>;

// One checkpoint generation of one series instance (series, containing dir).
struct Generation {
  size_t series = 0;         // index into Policy::series
  std::string instance_dir;  // "/runs/a" for "/runs/a/checkpoint-500"
  uint64_t number = 0;
  std::vector<size_t> roots;    // snapshot indexes of the matched entries
  std::vector<size_t> members;  // roots and everything below them
  uint64_t bytes = 0;
  int64_t last_write_ns = 0;
  int64_t last_access_ns = 0;
  bool complete = false;
  std::string incomplete_reason;
  bool newest_complete = false;
  std::string named_by;         // path of a pointer naming it, if any
  uint32_t newer_complete = 0;  // complete generations of the instance with larger numbers,
                                // created later (CountSuperseding in completeness.h)
  uint64_t save_interval = 0;   // gcd of the instance's generation numbers
  uint32_t owner = 0;           // uid of the first root; an instance holds one owner's
                                // generations unless the series spans owners
  // Complete generations with larger numbers in the same series and directory
  // but owned by others (0 when the series spans owners), and one such owner:
  // what the series would have counted without the ownership bound.
  uint32_t newer_complete_of_others = 0;
  uint32_t newer_owner = 0;
};

// Finds every generation in `snapshot` (first series in file order wins; a
// match nested inside another generation belongs to the outer one).
std::vector<Generation> RecognizeGenerations(const Policy& policy, const Snapshot& snapshot,
                                             int64_t now_ns);

// ---- What the evaluator proposes ----

struct Action {
  enum class Kind : uint8_t { kMigrate, kThin, kPin, kRefuse };
  Kind kind = Kind::kMigrate;
  std::string rule;
  std::string path;
  uint64_t ino = 0;
  std::string series;  // empty outside series
  std::optional<uint64_t> generation;
  std::optional<TierId> to;  // migrate; pin with a tier
  int64_t pin_until_ns = 0;  // pin: 0 = indefinitely
  bool immutable = false;    // pin
  uint64_t bytes = 0;        // thin of a directory: everything below it
  std::string reason;        // why (for kRefuse: why not)
};
using Plan = std::vector<Action>;

// Rules apply in file order; per file the first match wins for each kind of
// action. An exclude rule shields a file from all later rules; a pin rule in
// effect also shields it from later migrate and thin rules. A manual pin in
// force shields it from every rule: what a rule would have done to it is a
// kRefuse saying "manually pinned to TIER by uid N until DATE".
Plan Evaluate(const Policy& policy, const Snapshot& snapshot, int64_t now_ns);

// A human listing of `plan`, grouped by rule (for dry runs).
std::string DescribePlan(const Plan& plan);

const char* ActionKindName(Action::Kind kind);

}  // namespace tierfs

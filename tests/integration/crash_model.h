// CrashModel: what the crash campaign (crash_campaign_test.cc) made
// durable, and the checks after each kill -9 and remount.
//
// A file enters the model only once POSIX promises it survives: its bytes
// after fsync(file), its name after fsync(parent dir). While an operation
// is in flight the model accepts every outcome a crash may leave: during a
// rename both names (exactly one must exist), during an overwrite any bytes
// (the name must still exist). Files of a checkpoint generation may vanish
// once the generation was renamed into place and at least `min_keep` newer
// generations of its run exist or were renamed into place: only then may
// the policy thin it. Nothing else may vanish.
//
// Not thread-safe: the campaign guards it with one mutex.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {

struct CampaignCounts {
  int kills = 0;
  int checks = 0;
  uint64_t verified = 0;  // fsynced files found with their fsynced bytes
  int lost = 0;           // fsynced files gone (and not thinnable)
  int corrupt = 0;        // fsynced files with other bytes
  int thinned = 0;        // generation files gone that the policy may thin
  uint64_t objects = 0;   // object files looked at on both tiers
  int leaked = 0;         // object files no regular file on that tier owns
  int missing = 0;        // non-empty regular files without their object
  int wedged = 0;         // kills the daemon survived until its connection was aborted
};

class CrashModel {
 public:
  // A data file, durable at `rel` with `data`. Returns its id (never 0).
  uint64_t Add(int owner, const std::string& rel, const std::string& data, const std::string& note);
  // A file of generation `gen` of the series instance `run`.
  uint64_t AddGeneration(int owner, const std::string& run, int gen, const std::string& rel,
                         const std::string& data, const std::string& note);
  // Data files (not generations) of `owner`.
  size_t DataCount(int owner) const;
  // A data file of `owner` with one known name, chosen by `r`; 0 if none.
  uint64_t Pick(int owner, uint64_t r) const;
  // The name of some file of `owner` (data or generation), or "".
  std::string PickAny(int owner, uint64_t r) const;
  // Any bytes are acceptable from here on; returns the file's name.
  std::string BeginOverwrite(uint64_t id, const std::string& note);
  // fsync of the new bytes returned 0.
  void EndOverwrite(uint64_t id, const std::string& data, const std::string& note);
  // Either name is acceptable from here on; returns the current name.
  std::string BeginRename(uint64_t id, const std::string& to, const std::string& note);
  // Both directories were fsynced after the rename.
  void EndRename(uint64_t id, const std::string& to, const std::string& note);
  // Drops the file (an unlink follows); returns its name.
  std::string Forget(uint64_t id);
  // Generation `gen` of `run` was renamed into place.
  void Renamed(const std::string& run, int gen);

  // Checks every file against the mount, adding to `c`; failures name
  // `where` and the file's history. Afterwards the model holds what was
  // found (the state the next crash starts from).
  void Verify(const TierfsMount& fs, int min_keep, const std::string& where, CampaignCounts* c);
  // Removes generations a kill left unrenamed (tmp-checkpoint-N), so the
  // model does not grow with every kill.
  void RemoveStaleTemporaries(const TierfsMount& fs);

 private:
  struct File {
    int owner = 0;
    std::set<std::string> names;         // acceptable names; one when settled
    std::map<uint64_t, size_t> content;  // acceptable xxh3 -> size; empty: any
    std::string run;                     // generation files only
    int gen = -1;
    std::vector<std::string> history;
  };
  void Note(File& f, const std::string& note);
  bool MayVanish(const File& f, int min_keep) const;

  std::map<uint64_t, File> files_;
  std::map<std::string, std::set<int>> renamed_;  // run -> generations renamed into place
  uint64_t next_id_ = 1;
};

// Object accounting on a mount nothing else changes: every object file on
// each tier belongs to a regular file of the namespace placed on that tier,
// and every non-empty regular file has its object. Adds to `c`.
void CheckObjects(const TierfsMount& fs, const std::string& where, CampaignCounts* c);

// The inode number an object file's path (relative to the tier root)
// stands for; false if the name is no object's. `temporary` is set for a
// move's temporary copy. The one place that knows how objects are named.
bool ObjectInode(const std::string& rel, uint64_t* ino, bool* temporary);

}  // namespace tierfs_test

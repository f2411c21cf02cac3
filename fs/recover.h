// `tierfs recover`: rebuilds a namespace's state from its capacity tier
// alone, after the SSD tier and the state directory are lost.
//
// What the HDD tier holds for this (HDD/ns/NAME/): the objects, each with
// its identity (tiering/identity.h), and the newest snapshots of the state
// (fs/snapshot.h). Recover copies the newest snapshot into the new state
// directory (an empty state when there is none) and then settles every
// file against the objects:
//   kept       the snapshot places the file on HDD and its object is there;
//   placed     the snapshot places it on SSD but its object is on HDD (moved
//              after the snapshot): switched to HDD (size: the object's;
//              checksum: the identity's while size and mtime agree with the
//              object, else unknown; kept files get the same);
//   recreated  an object the snapshot does not know (a file archived after
//              it): created from its identity under its archived path
//              (directories made as needed), or /recovered/<ino> when the
//              name is taken, unknown or was cut;
//   lost       the snapshot places a file with bytes on SSD and the HDD has
//              no object for it: its names are removed;
//   missing    the snapshot places it on HDD but the object is gone (thinned
//              or deleted after the snapshot: the audit journal that would
//              tell which is in the lost state directory): its names are removed;
//   unplaced   an object that could not be placed (no readable identity for
//              an inode the snapshot does not know, or a failed create).
// Journaled moves of the snapshot are dropped (the objects say where each
// file is), the lost SSD tier's identity is forgotten (the next mount, or
// --ssd, records the new one), and the old audit head is kept as
// meta/audit.head.before-recover (the journal it vouched for is lost).
// The result is complete (exit 0) when nothing is missing or unplaced:
// every archived file has its name; lost SSD-only files do not count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "meta/status.h"

namespace tierfs {

struct RecoverOptions {
  std::string hdd_dir;    // the capacity tier's root
  std::string state_dir;  // the new state: must not hold one yet
  std::string ssd_dir;    // the new (empty) SSD tier, or "" to leave to the mount
  std::string ns;         // the namespace; "" when the tier holds only one
};

struct RecoverEntry {
  std::string status;  // kept, placed, recreated, lost, missing, unplaced
  uint64_t ino = 0;
  std::string path;
  uint64_t size = 0;
  std::string detail;  // why, for lost, missing and unplaced
};

struct RecoverReport {
  std::string ns;
  std::string snapshot;  // the snapshot used, "" for none
  std::vector<RecoverEntry> entries;
  bool complete() const;
};

// Errors (the state was not made): EINVAL for a bad namespace or none to
// choose, EEXIST for a state directory that holds a state, errno of the
// failing call naming the path otherwise.
Status Recover(const RecoverOptions& options, RecoverReport* report);

// The `tierfs recover ...` mode: argv[0] is "recover". Prints the report
// as JSON lines; returns the exit status (0 complete, 1 not, 2 bad usage).
int RecoverMain(int argc, char** argv);

}  // namespace tierfs

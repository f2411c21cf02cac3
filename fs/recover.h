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
//   thinned,   the audit journal says so after the snapshot (see below):
//   deleted    the file's names are removed (a stray object is left for
//              the mount to free), with the record's time, rule and uid;
//   missing    the snapshot places it on HDD but the object is gone and
//              the journal does not say why: its names are removed;
//   unplaced   an object that could not be placed (no readable identity for
//              an inode the snapshot does not know, or a failed create);
//   corrupt    a kept, placed or recreated file whose object does not
//              hash to its recorded checksum (the identity's): marked
//              corrupt (every read EIO until restored or removed).
// Journaled moves of the snapshot are dropped (the objects say where each
// file is) and the lost SSD tier's identity is forgotten (the next mount,
// or --ssd, records the new one).
//
// The new state takes the namespace over (fs/namespace_setup.h,
// TakeOverNamespace): it gets a new state id, which the owner files of the
// HDD tier's namespace directory (and of --ssd's) name from then on, so
// the state it replaces is refused should its node come back. Recover
// holds the namespace's lock throughout and refuses (EBUSY) a namespace
// that a mount, on this node or another, holds.
//
// The audit journal (fs/recover_journal.h): the copy on the HDD tier
// (HDD/ns/NAME/audit/, meta/audit_mirror.h), every rotated file, becomes
// the new state's journal, so the chain continues; its records from the
// snapshot's time on are replayed: a file a "thin" or "delete" record
// (result ok) names by inode is thinned or deleted, not missing. The old
// head stays when the copy verifies against it; otherwise (no copy, or a
// copy that ends before the head) it is kept as
// meta/audit.head.before-recover. The first record after recovery is an
// action "recover" record: the snapshot used, the counts, the journal.
//
// Block sums (fs/recover_sums.h): every HDD file kept, placed or recreated
// that has none is read once and gets them, so the rebuilt mount serves
// every archived file verified.
// The result is complete (exit 0) when nothing is missing, unplaced or
// corrupt: every archived file has its name and its checksum; lost
// SSD-only files and journaled removals do not count.
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
  std::string
      status;  // kept, placed, recreated, lost, thinned, deleted, missing, unplaced, corrupt
  uint64_t ino = 0;
  std::string path;
  uint64_t size = 0;
  std::string detail;  // why, for all but kept
  // The journal's record, for thinned and deleted: its time, rule and uid.
  std::string time, rule;
  int64_t uid = -1;
};

struct RecoverReport {
  std::string ns;
  std::string snapshot;        // the snapshot used, "" for none
  std::string journal;         // what became of the audit journal (its copy's verification)
  std::string previous_owner;  // the state id the namespace was taken over from ("" none)
  std::string owner;           // the new state's id
  std::vector<RecoverEntry> entries;
  bool complete() const;
};

// Errors (the state was not made): EINVAL for a bad namespace or none to
// choose, EEXIST for a state directory that holds a state, EBUSY for a
// namespace in use (its lock held), errno of the failing call naming the
// path otherwise.
Status Recover(const RecoverOptions& options, RecoverReport* report);

// The `tierfs recover ...` mode: argv[0] is "recover". Prints the report
// as JSON lines; returns the exit status (0 complete, 1 not, 2 bad usage).
int RecoverMain(int argc, char** argv);

}  // namespace tierfs

// Snapshots of the state (LMDB) on the capacity tier, so that the archive
// survives the loss of the SSD tier and of the state directory
// (`tierfs recover`, fs/recover.h).
//
// A snapshot is a compacted copy of the LMDB environment (one data.mdb
// file, Store::CopyCompactTo) at HDD/ns/NAME/meta/snap-<UTC time>.mdb,
// written to a .tmp name, fsynced, renamed, and the directory fsynced: a
// snapshot that has its final name is whole. The daemon takes one every
// --snapshot-interval, after every policy (re)load (the one at start
// included) and at unmount (Stop), and keeps the newest --snapshot-keep. A failed snapshot is
// logged as an error (so `tierctl status` lists it among recent errors) and
// never stops the mount.
// Thread-safety: Snapshotter's methods are called from the daemon's main
// thread; TakeSnapshot may run on any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "meta/mutex.h"
#include "meta/status.h"
#include "meta/store.h"
#include "tiering/tier.h"

namespace tierfs {

inline constexpr char kSnapshotPrefix[] = "snap-";
inline constexpr char kSnapshotSuffix[] = ".mdb";

// Where the snapshots of the namespace on `hdd` live: <ns dir>/meta.
inline std::string SnapshotDir(const std::string& hdd_namespace_dir) {
  return hdd_namespace_dir + "/meta";
}

// The snapshots' file names in `dir`, oldest first (the names sort by
// time). A missing directory holds none.
Status ListSnapshots(const std::string& dir, std::vector<std::string>* names);

// Takes one snapshot of `store` into `dir` (created if needed) and removes
// all but the newest `keep` (at least 1). `path` (may be null) gets the new
// snapshot's path. Errors name the file.
Status TakeSnapshot(Store& store, const std::string& dir, unsigned keep, std::string* path);

struct SnapshotOptions {
  double interval_s = 3600;  // 0: no snapshots at all
  unsigned keep = 3;
  // Asked before each snapshot (empty: always yes): the daemon's HDD health
  // check. A namespace another state took over must not get snapshots of
  // this one, which a later recover would take for the newest.
  std::function<Status()> may_write;
};

class Snapshotter {
 public:
  // `policy_loaded_ns` tells when the running policy was loaded: a change
  // means a (re)load, and a snapshot follows.
  Snapshotter(Store& store, std::string dir, SnapshotOptions opt,
              std::function<int64_t()> policy_loaded_ns);
  ~Snapshotter();
  void Start();
  void Stop();

 private:
  void Loop();
  // TakeSnapshot unless may_write says no: the snapshot's path, or why not.
  Status Take(std::string* path);
  Store& store_;
  const std::string dir_;
  const SnapshotOptions opt_;
  std::function<int64_t()> loaded_ns_;
  Mutex mu_;
  CondVar wake_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tierfs

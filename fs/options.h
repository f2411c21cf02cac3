// Options: the daemon's command line (tierfs(8)), parsed once by fs/main.cc
// and never changed after start. The limits a policy file also sets
// (watermarks, move throttle) are here only when the command line gave
// them: they then win over the policy's (EffectiveLimits); their defaults
// live in meta/limits.h alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "meta/limits.h"

namespace tierfs {

struct Options {
  std::string ssd_dir;
  std::string hdd_dir;
  std::string state_dir;
  std::string policy_file;
  std::string namespace_name;  // --namespace; "" for the state's own (fs/namespace_setup.h)
  std::string mountpoint;
  std::string mount_options;  // comma-separated, passed to the kernel mount
  // `-o ro`: nothing changes the tree, so the policy engine does not run
  // (no thinning, migration or pinning; tierfs --dry-run still shows what
  // it would do), no move is made (Placement::SetReadOnly) and tierctl's
  // pin, unpin and move are refused (EROFS).
  bool read_only = false;
  // Largest READ the kernel sends (-o max_read=N; fs/daemon.cc Init): 1 MiB,
  // one verified block (fs/verified_read.h).
  uint32_t max_read = uint32_t(1) << 20;
  bool foreground = false;
  unsigned max_threads = 16;
  bool writeback_cache = false;  // the kernel's writeback cache (see Init)
  // Write-only opens bypass the kernel's page cache of the mount (see
  // fs/ops_file.cc SetOpenFlags).
  bool direct_writes = true;
  // Read-only opens read their object through the kernel (fs/passthrough.h).
  bool passthrough = true;
  // Requests travel through FUSE over io_uring when the kernel offers it
  // (fs/fuse_uring.h); --no-io-uring turns it off.
  bool io_uring = true;
  // Room promised to a read-write writer the kernel serves itself when no
  // file of its shape was written before (fs/write_sizes.h, fs/space.h).
  uint64_t write_estimate = uint64_t(1) << 30;
  // Reads of HDD-resident files are checked block by block against their
  // recorded checksums (fs/verified_read.h); --no-verify-reads turns it off.
  bool verify_reads = true;
  // POSIX ACLs, stored and enforced by the kernel (fs/posix_acl.h) where it
  // offers FUSE_POSIX_ACL; --no-acl refuses them, as a noacl mount does.
  bool acl = true;
  double scan_interval_s = 60;  // the policy engine's periodic scan
  // Given on the command line (--ssd-high-watermark/--ssd-low-watermark,
  // --move-bandwidth, --max-moves): they win over the policy file.
  std::optional<Watermarks> watermarks;
  std::optional<uint64_t> move_bytes_per_sec;
  std::optional<unsigned> max_moves;
  // tierfs is the only writer of its namespace, so the kernel may keep
  // entries and attributes for long; we invalidate when we change them.
  double entry_timeout = 86400.0;
  double attr_timeout = 86400.0;
  double negative_timeout = 86400.0;
  // Tests only: --inject-fault TIER:OP:N[+]:ERRNO rules (tiering/fault_io.h).
  std::vector<std::string> inject_faults;
  // Tests only: --control-idle-timeout, how long a silent control client
  // keeps its connection (fs/control.h ControlLimits).
  double control_idle_timeout_s = 10;
  size_t map_size = 0;  // of the LMDB state (--map-size); 0: the default
  // --audit-max-bytes: the audit journal is rotated past it (meta/audit.h).
  uint64_t audit_max_bytes = uint64_t(256) << 20;
  // --metrics: where the Prometheus endpoint listens (fs/metrics_http.h);
  // port 0: off.
  std::string metrics_address;
  uint16_t metrics_port = 0;
  // Snapshots of the state on the HDD tier (fs/snapshot.h): every this many
  // seconds and after every policy (re)load, 0: none; the newest kept.
  double snapshot_interval_s = 3600;
  unsigned snapshot_keep = 3;
};

// The limits in force: the policy's, with those the command line gave.
TierLimits EffectiveLimits(const Options& options, const TierLimits& policy);

}  // namespace tierfs

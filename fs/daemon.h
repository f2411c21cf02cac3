// Serve: the daemon's life. Validates the tiers, state and mountpoint, opens
// the namespace, mounts, and serves FUSE requests until the filesystem is
// unmounted or the process gets SIGTERM/SIGINT; returns once everything is
// durable.
#pragma once

#include <functional>

#include "fs/context.h"

namespace tierfs {

// `on_ready` is called exactly once: with Ok once the mount is usable, or
// with the reason it could not be set up (then Serve returns that reason).
// `on_state`, when set, is called once the state directory has been checked
// and locked, before anything is logged there; an error from it is a
// refusal like any other.
Status Serve(const Options& options, const std::function<void(const Status&)>& on_ready,
             const std::function<Status(const std::string& state)>& on_state = {});

// The mountpoint `mountpoint` as `real` (its real path): EINVAL/ENOTDIR
// for what is not a directory, EBUSY when something is mounted there
// already; errors name it.
Status CheckMountpoint(const std::string& mountpoint, std::string* real);

// Tunes the bdi of the FUSE mount at `mountpoint`, before its INIT is
// answered: its share of the dirty page budget up to 40% and its readahead
// up to 4 MiB (four 1 MiB READs in flight; the kernel starts a FUSE mount at
// 128 KiB). Not root: logged, left as it is.
void TuneMountBdi(const std::string& mountpoint);

// The state directory used when --state is not given.
std::string DefaultStateDir(const std::string& ssd_dir);

}  // namespace tierfs

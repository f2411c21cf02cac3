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
Status Serve(const Options& options, const std::function<void(const Status&)>& on_ready);

// The state directory used when --state is not given.
std::string DefaultStateDir(const std::string& ssd_dir);

}  // namespace tierfs

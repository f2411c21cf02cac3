// STATE/tierfs.pid: the serving daemon's pid, for scripts and init
// systems (`kill -HUP $(cat STATE/tierfs.pid)` reloads the policy). It is
// written once the mount is usable and removed at a clean exit, so it
// exists exactly while a daemon serves the state; one left by a killed
// daemon is replaced.
#pragma once

#include <string>

#include "meta/status.h"

namespace tierfs {

std::string PidFilePath(const std::string& state);

// Refuses when the pid file names another live tierfs process (the error
// names its pid); a stale one is left for WritePidFile to replace.
Status CheckPidFile(const std::string& path);

// Writes this process's pid (a new file renamed over the old, so a reader
// never sees it half written).
Status WritePidFile(const std::string& path);

void RemovePidFile(const std::string& path);

}  // namespace tierfs

// Safe access to the files of the state directory (daemon.lock,
// audit.jsonl, tierfs.log, LMDB's data.mdb and lock.mdb). The daemon often
// runs as root while the state directory may sit where another user can
// reach it, so nothing here follows a symbolic link, shares a file with
// another name (hard link) or writes into a file owned by someone else.
#pragma once

#include <sys/types.h>

#include <string>

#include "meta/status.h"

namespace tierfs {

// Refuses a state directory that is not ours to trust: not owned by the
// daemon's effective uid, or writable by group or others. Its ancestors
// must be owned by root or by us and not writable by others unless sticky
// (as /tmp is), so nobody else can swap the directory for another.
Status CheckStateDir(const std::string& dir);

// open(2) of a state file with O_NOFOLLOW and O_CLOEXEC (`flags` may add
// O_CREAT, created with `mode`). Refuses a symbolic link, anything but a
// regular file, a file owned by another uid and a file with more than one
// link; permission bits beyond `mode` are taken away. Errors name the file.
Status OpenStateFile(const std::string& path, int flags, mode_t mode, int* fd);

// The same checks for a state file opened by someone else (LMDB), when it
// exists already: ok if `path` does not exist.
Status CheckStateFile(const std::string& path);

}  // namespace tierfs

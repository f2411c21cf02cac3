// The one file copy of `tierfs recover` (fs/recover.h): the snapshot that
// becomes the new state's data.mdb (fs/recover.cc) and the files of the
// audit journal's HDD copy (fs/recover_journal.cc).
#pragma once

#include <sys/types.h>

#include <string>

#include "meta/status.h"

namespace tierfs {

// Whether the source of a copy may be a symbolic link.
enum class CopySource : bool { kFollowLinks, kNoLinks };

// Copies `from` into the new file `to`, created with `mode` (never over an
// existing file, never through a link), and fsyncs it. Errors name the file.
Status CopyToNewFile(const std::string& from, const std::string& to, mode_t mode,
                     CopySource source);

}  // namespace tierfs

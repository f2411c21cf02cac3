// Generation manifests: every archived checkpoint generation describes
// itself on the capacity tier, so that what was kept, and as which bytes,
// can be read from the HDD alone (an auditor, or a rebuild after the SSD
// that held LMDB is lost).
//
// A generation is archived when it is complete and every regular file in it
// is on the HDD tier, held by a rule (not a placement alone) and has a
// recorded checksum (the xxh3-64 its move verified). Its manifest is JSON:
// series, generation number, instance directory and root path(s), the
// rules that keep it, since when and until when, and every entry below its
// root(s) with type, size, inode, xxh3-64 (files) or target (symlinks).
// The text depends only on those facts, so an unchanged generation gives
// the same text and is not rewritten.
//
// Written by the policy runner (fs/policy_runner.h) through
// EngineTree::WriteManifest to <hdd>/ns/<namespace>/manifests/<series>/<name>.
#pragma once

#include <string>

#include "policy/policy.h"

namespace tierfs {

// When `g` is archived: true, with `name` (a file name: the root path with
// '/' and '%' escaped, or a hash of it when long) and `text` (the
// manifest). False when it is not archived (yet).
bool ArchivedGenerationManifest(const Policy& policy, const Snapshot& snapshot, const Generation& g,
                                std::string* name, std::string* text);

}  // namespace tierfs

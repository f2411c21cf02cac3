// Running tierctl(1) from integration tests: as root from the build tree,
// or as another user from a copy that user may execute.
#pragma once

#include <string>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace tierfs_test {

// $TIERCTL_BIN, else the tierctl next to TierfsBin().
std::string TierctlBin();

// tierctl with `args`, to completion (60 s at most).
CommandResult Tierctl(const std::vector<std::string>& args);

// A copy of tierctl in `dir` (a test's temporary root) that any user may
// execute (the build tree may not be reachable for them); its path.
// Copies once; later calls return the same path.
std::string TierctlForOthers(const std::string& dir);

// `bin args` run through the shell as `creds` (a child switched to them):
// its exit status (-1 if it did not exit), stdout and stderr together in
// *out (cleared first).
int TierctlAs(const Creds& creds, const std::string& bin, const std::string& args,
              std::string* out);

}  // namespace tierfs_test

// How mount(8) and its FUSE helper (mount.fuse3) call a filesystem:
//   tierfs SSD_DIR:HDD_DIR MOUNTPOINT -o opt,opt,...
// so that an /etc/fstab line of type fuse.tierfs mounts tierfs at boot.
// SplitMountOptions sorts the -o items: tierfs's own long options
// (state=DIR, ssd=DIR, writeback-cache, ...) become --name[=value] for the
// option parser, FUSE/kernel mount options go to the kernel mount, the ones
// only mount(8) reads (noauto, _netdev, x-systemd.*, comment=...) are
// dropped, and anything else is an error naming it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "meta/status.h"

namespace tierfs {

// Whether `name` is a long option tierfs accepts as -o name[=value], and
// (in *takes_value) whether it takes a value.
using LongOptionLookup = std::function<bool(const std::string& name, bool* takes_value)>;

struct SplitArgs {
  std::vector<std::string> args;          // the command line without -o, with --name=value added
  std::vector<std::string> fuse_options;  // for the kernel mount (fs/daemon.cc)
};

// `argv` without the program name. -o OPTS, -oOPTS, --options OPTS and
// --options=OPTS are all taken apart.
Status SplitMountOptions(const std::vector<std::string>& argv, const LongOptionLookup& is_option,
                         SplitArgs* out);

// The first positional argument of the mount-helper convention: "SSD:HDD"
// sets the tiers (split at the first ':'); anything else is a label, as
// fstab's first field, allowed only when --ssd and --hdd are given.
Status ParseMountSource(const std::string& source, std::string* ssd_dir, std::string* hdd_dir);

}  // namespace tierfs

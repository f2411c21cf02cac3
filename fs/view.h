// `tierfs view`: a read-only mount of one namespace of a shared capacity
// tier, from any node, beside the mount that owns the namespace (which goes
// on writing there) and without taking it over (`tierfs recover` does
// that). A job that restarts on other nodes, or a rank that needs another
// node's shard, reads the archived checkpoints through it.
//
// What it shows is the namespace as the tier described it when the view
// was mounted (fs/view_tree.h): the files whose bytes are on the tier,
// under their names; files only on the owner's SSD tier are left out.
// Remount to see later archives. It never writes to the tier: no lock, no
// owner file, no journal, no snapshot; the mount is read-only (EROFS for
// every change) and opens objects O_RDONLY.
//
// Reads are verified: each 1 MiB block against its recorded block sum; a
// file with a recorded checksum but no block sums is hashed whole at its
// first open (EIO when it does not match), its block sums kept from that
// pass. A mismatch is EIO and logged with the path and object, never the
// bytes. Files with no recorded checksum (written on the tier since their
// move, or since the snapshot) are served unverified, logged at open. A
// file the owner removed or rewrote since the view was mounted reads EIO.
//
// Logs go to stderr with -f, else to syslog (ident tierfs-view).
#pragma once

namespace tierfs {

// The `tierfs view ...` mode: argv[0] is "view". Returns the exit status
// (0 unmounted cleanly or daemonized; 1 refused; 2 bad usage).
int ViewMain(int argc, char** argv);

}  // namespace tierfs

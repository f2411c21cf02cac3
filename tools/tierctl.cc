// tierctl: asks the daemon of a tierfs mount what it holds. It finds the
// daemon from any path inside the mount: the mount is the deepest entry of
// /proc/self/mountinfo above the path (it must be of type fuse.tierfs), and
// the read-only extended attribute user.tierfs.control of its root names the
// control socket (fs/control.h). See tierctl(1).
#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "fs/version.h"
#include "tools/tierctl.h"

namespace po = boost::program_options;
using namespace tierctl;

namespace {

constexpr char kUsage[] =
    "Usage: tierctl [--json] [-b] status [PATH...]\n"
    "       tierctl [--json] [-b] where [-r] PATH...\n"
    "       tierctl [--json] [-b] ls [-l] [DIR...]\n"
    "       tierctl [--json] [-b] du [PATH...]\n"
    "       tierctl [--json] [-b] gens [DIR...]\n"
    "       tierctl [--json] [-b] policy check FILE | show [PATH] | dry-run [FILE] [PATH]\n"
    "                                    | reload [PATH]\n"
    "       tierctl [--json] [-b] audit [--since TIME] [--path P] [--action A] [PATH]\n"
    "       tierctl [--json] audit verify [--journal FILE [--head FILE]] [PATH]\n"
    "       tierctl [--json] audit export DEST [PATH]\n"
    "       tierctl [--json] pin [--tier ssd|hdd] [--until DATE | --for DURATION]\n"
    "                            [--immutable] PATH...\n"
    "       tierctl [--json] unpin PATH...\n"
    "       tierctl [--json] [-b] move --to ssd|hdd [--no-wait] PATH...\n"
    "       tierctl [--json] [-b] export PATH DEST\n"
    "       tierctl [--json] verify [PATH...]\n"
    "       tierctl [--json] scrub [PATH...]\n\n"
    "Asks the tierfs daemon of the mount that holds PATH (no socket to name):\n"
    "  status [PATH..] version, pid, uptime, mountpoint, policy file, SSD watermarks,\n"
    "                  the scrub's last pass and next, and per tier its path,\n"
    "                  capacity, used, free, files and bytes\n"
    "                  (every tierfs mount when PATH is not given)\n"
    "  where PATH...   the tier, size, generation, hold, move state and object path\n"
    "                  of each file (for any user of the socket: paths they may stat);\n"
    "                  -r: every entry below each PATH too\n"
    "  ls [-l] [DIR..] the entries of DIR (default .); -l: mode, owner, size, mtime,\n"
    "                  tier and generation\n"
    "  du [PATH...]    files and bytes per tier below PATH (default: the mount of the\n"
    "                  working directory), per series and per generation\n"
    "  gens [DIR...]   each series' generations below DIR, newest first: tier, size,\n"
    "                  completeness, hold, and what the policy will do to each next\n"
    "  policy check FILE  every error of a policy file (file:line:column); no daemon\n"
    "  policy show [PATH] the running policy: file, text, when loaded, last reload error\n"
    "  policy dry-run [FILE] [PATH]  what FILE's policy (or the running one) would do\n"
    "                  now, rule by rule, with files and bytes (non-root: paths they\n"
    "                  may stat)\n"
    "  policy reload [PATH]  reread the policy file (root); refused with the reason\n"
    "  audit [PATH]    the audit journal, oldest first (non-root: records of paths\n"
    "                  they may stat); --since TIME (a date \"2026-12-05 14:00\" or\n"
    "                  an age \"1h\", \"2d\"), --path P (P and below), --action A\n"
    "                  (move, thin, pin, unpin, refuse, delete, truncate...)\n"
    "  audit verify    checks the journal's hash chain and its head on the HDD tier\n"
    "                  (root); --journal/--head: a copy, no daemon; exit 1 names\n"
    "                  the first bad line\n"
    "  audit export DEST  copies the journal and its head to directory DEST (root),\n"
    "                  then verifies the copy\n"
    "  pin PATH...     a manual hold (directories: everything below), sticky: the\n"
    "                  policy never moves, thins or re-pins it; --tier also moves it\n"
    "                  there; DATE 2027-01-31[T12:00] (local) or RFC 3339; DURATION\n"
    "                  30d, 12h, 90m, 1w; --immutable: no change until it ends, not\n"
    "                  even by root (users other than root: an end is required, at\n"
    "                  most the policy's [pins] max_user_immutable away, 30d by default)\n"
    "  unpin PATH...   removes the holds (not an immutable one before its end)\n"
    "  move PATH...    moves a file (a directory: every file below) to a tier and\n"
    "                  pins it there; waits with progress unless --no-wait (owners\n"
    "                  of every file, or root); other file types are refused\n"
    "                  pin, unpin, move: users other than root 10 a second, 100 at\n"
    "                  once (EAGAIN \"too many requests from uid N; retry later\")\n"
    "  export PATH DEST  copies PATH's tree out as plain files into DEST (new or\n"
    "                  empty), with DEST/MANIFEST.json (tier, series, generation,\n"
    "                  hold, SHA-256 of each file) and DEST/SHA256SUMS; exit 1 when\n"
    "                  a file cannot be read or differs from its recorded checksum\n"
    "  verify [PATH..] re-reads every file below PATH (default: the mount of the\n"
    "                  working directory) and checks it against its block checksums:\n"
    "                  ok, corrupt at block N (then marked: reads fail), no sums,\n"
    "                  busy (open for writing); root; exit 1 when one is corrupt\n"
    "  scrub [PATH..]  starts a scrub pass of the HDD tier now (root); tierctl status\n"
    "                  shows what the last pass found and when the next is due\n"
    "Names in tables and messages are escaped as ls -b does: \\\\, \\n, \\t, \\r, and\n"
    "\\xNN for other control characters (ESC \\x1b, DEL \\x7f) and bytes that are\n"
    "not UTF-8; --json is exact (a name that is not UTF-8 in NAME_hex).\n"
    "Exit status: 0 success, 1 refused or failed, 2 bad usage. See tierctl(1).\n\n"
    "Options";

struct Command {
  const char* name;
  int min_args;  // PATH arguments it needs
  int (*run)(const std::vector<std::string>& args, const Flags& f);
  bool options = false;  // takes options of its own (in `args`, in order)
};

constexpr Command kCommands[] = {
    {"status", 0, CmdStatus},     {"where", 1, CmdWhereViews, true}, {"ls", 0, CmdLs, true},
    {"du", 0, CmdDu, true},       {"gens", 0, CmdGens, true},        {"pin", 0, CmdPin, true},
    {"unpin", 0, CmdUnpin, true}, {"move", 0, CmdMove, true},        {"policy", 1, CmdPolicy, true},
    {"audit", 0, CmdAudit, true}, {"export", 2, CmdExport, true},    {"verify", 0, CmdVerify},
    {"scrub", 0, CmdScrub},
};

int Usage(const std::string& msg) {
  std::cerr << "tierctl: " << msg << " (see tierctl --help)\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  std::string command;
  std::vector<std::string> args;
  po::options_description desc(kUsage);
  // clang-format off
  desc.add_options()
      ("help,h", "print this help and exit")
      ("version", "print the version and exit")
      ("json", po::bool_switch(&f.json), "print JSON (an array) instead of a table")
      ("bytes,b", po::bool_switch(&f.bytes), "print sizes in bytes");
  // clang-format on
  // Options tierctl does not know are left, in order with the positional
  // words, for the subcommand that takes options of its own.
  std::vector<std::string> words;
  po::variables_map vm;
  try {
    const po::parsed_options parsed =
        po::command_line_parser(argc, argv).options(desc).allow_unregistered().run();
    po::store(parsed, vm);
    po::notify(vm);
    words = po::collect_unrecognized(parsed.options, po::include_positional);
  } catch (const std::exception& e) {
    return Usage(e.what());
  }
  if (!words.empty() && words[0].size() > 1 && words[0][0] == '-')
    return Usage("unrecognised option '" + words[0] + "'");
  if (!words.empty()) {
    command = words[0];
    args.assign(words.begin() + 1, words.end());
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (vm.count("version")) {
    std::cout << "tierctl " << tierfs::kVersion << "\n";
    return 0;
  }
  std::string known;
  for (const Command& c : kCommands) {
    if (command == c.name) {
      if (int(args.size()) < c.min_args)
        return Usage(std::string(c.name) + " needs at least one " +
                     (c.options ? "argument" : "PATH"));
      for (const std::string& a : args)
        if (!c.options && a.size() > 1 && a[0] == '-')
          return Usage("unrecognised option '" + a + "'");
      return c.run(args, f);
    }
    known += (known.empty() ? "" : ", ") + std::string(c.name);
  }
  if (command.empty()) return Usage("a command is required: " + known);
  return Usage("unknown command '" + command + "' (known: " + known + ")");
}

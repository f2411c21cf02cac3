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
    "       tierctl [--json] [-b] gens [DIR...]\n\n"
    "Asks the tierfs daemon of the mount that holds PATH (no socket to name):\n"
    "  status [PATH..] version, pid, uptime, mountpoint, policy file, SSD watermarks,\n"
    "                  and per tier its path, capacity, used, free, files and bytes\n"
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
    "Exit status: 0 success, 1 refused or failed, 2 bad usage. See tierctl(1).\n\n"
    "Options";

struct Command {
  const char* name;
  int min_args;  // PATH arguments it needs
  int (*run)(const std::vector<std::string>& args, const Flags& f);
};

constexpr Command kCommands[] = {
    {"status", 0, CmdStatus}, {"where", 1, CmdWhereViews}, {"ls", 0, CmdLs},
    {"du", 0, CmdDu},         {"gens", 0, CmdGens},
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
  po::options_description hidden;
  hidden.add_options()("command", po::value(&command))("args", po::value(&args));
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  pos.add("command", 1).add("args", -1);
  po::variables_map vm;
  try {
    const po::parsed_options parsed =
        po::command_line_parser(argc, argv).options(all).positional(pos).allow_unregistered().run();
    po::store(parsed, vm);
    po::notify(vm);
    // Short options tierctl does not know are the subcommand's (where -r,
    // ls -l): passed on ahead of its arguments, for it to take or refuse.
    const std::vector<std::string> sub =
        po::collect_unrecognized(parsed.options, po::exclude_positional);
    for (const std::string& s : sub)
      if (s.rfind("--", 0) == 0) return Usage("unrecognised option '" + s + "'");
    args.insert(args.begin(), sub.begin(), sub.end());
  } catch (const std::exception& e) {
    return Usage(e.what());
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
        return Usage(std::string(c.name) + " needs at least one PATH");
      return c.run(args, f);
    }
    known += (known.empty() ? "" : ", ") + std::string(c.name);
  }
  if (command.empty()) return Usage("a command is required: " + known);
  return Usage("unknown command '" + command + "' (known: " + known + ")");
}

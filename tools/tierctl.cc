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
    "       tierctl [--json] [-b] where PATH...\n"
    "       tierctl [--json] pin [--tier ssd|hdd] [--until DATE | --for DURATION]\n"
    "                            [--immutable] PATH...\n"
    "       tierctl [--json] unpin PATH...\n"
    "       tierctl [--json] [-b] move --to ssd|hdd [--no-wait] PATH...\n\n"
    "Asks the tierfs daemon of the mount that holds PATH (no socket to name):\n"
    "  status [PATH..] version, pid, uptime, mountpoint, policy file, SSD watermarks,\n"
    "                  and per tier its path, capacity, used, free, files and bytes\n"
    "                  (every tierfs mount when PATH is not given)\n"
    "  where PATH...   the tier, size, generation, hold, move state and object path\n"
    "                  of each file (for any user of the socket: paths they may stat)\n"
    "  pin PATH...     a manual hold (directories: everything below), sticky: the\n"
    "                  policy never moves, thins or re-pins it; --tier also moves it\n"
    "                  there; DATE 2027-01-31[T12:00] (local) or RFC 3339; DURATION\n"
    "                  30d, 12h, 90m, 1w; --immutable: no change until it ends\n"
    "  unpin PATH...   removes the holds (not an immutable one before its end)\n"
    "  move PATH...    moves to a tier and pins it there; waits with progress\n"
    "                  unless --no-wait (owners of every file, or root)\n"
    "Exit status: 0 success, 1 refused or failed, 2 bad usage. See tierctl(1).\n\n"
    "Options";

struct Command {
  const char* name;
  int min_args;  // PATH arguments it needs
  int (*run)(const std::vector<std::string>& args, const Flags& f);
  bool own_options = false;  // gets the raw arguments after its name
};

constexpr Command kCommands[] = {
    {"status", 0, CmdStatus},     {"where", 1, CmdWhere},     {"pin", 0, CmdPin, true},
    {"unpin", 0, CmdUnpin, true}, {"move", 0, CmdMove, true},
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
  // A command with options of its own gets every argument after its name;
  // only the global flags before it are parsed here.
  int first = 1;
  while (first < argc && argv[first][0] == '-') ++first;
  for (const Command& c : kCommands) {
    if (first < argc && c.own_options && std::string(argv[first]) == c.name) {
      args.assign(argv + first + 1, argv + argc);
      argc = first;
      command = c.name;
    }
  }
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
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

// The `tierfs recover` command line (fs/recover.h).
#include <boost/program_options.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "fs/recover.h"

namespace po = boost::program_options;

namespace tierfs {

namespace {

constexpr char kRecoverUsage[] =
    "Usage: tierfs recover --hdd DIR --state NEWDIR [--ssd NEWSSD] [--namespace NAME]\n\n"
    "Rebuilds a namespace's state from the HDD tier alone (the SSD tier and the state\n"
    "lost): the newest snapshot of the state in HDD/ns/NAME/meta, then every object by\n"
    "its identity; the audit journal's copy on the HDD tier continues in NEWDIR and what\n"
    "it records after the snapshot is replayed; every HDD file gets its block sums.\n"
    "Prints one JSON line per file it did not simply keep as the snapshot had it\n"
    "(placed, recreated, lost, thinned, deleted, missing, unplaced, corrupt), then a\n"
    "summary line. Exit 0 when every archived file has its name and checksum, 1\n"
    "otherwise, 2 for bad usage. Then mount with --state NEWDIR and an empty SSD tier.\n"
    "The new state takes the namespace over: the state it replaces may not mount it\n"
    "again. A namespace still mounted (its lock held, on any node) is refused.\n"
    "See tierfs(8), RECOVERY.\n\n"
    "Options";

}  // namespace

int RecoverMain(int argc, char** argv) {
  RecoverOptions opt;
  po::options_description desc(kRecoverUsage);
  // clang-format off
  desc.add_options()
      ("help,h", "print this help and exit")
      ("hdd", po::value(&opt.hdd_dir)->value_name("DIR"), "the HDD (capacity) tier's directory")
      ("state", po::value(&opt.state_dir)->value_name("NEWDIR"),
       "where to write the new state (empty or new)")
      ("ssd", po::value(&opt.ssd_dir)->value_name("NEWSSD"),
       "the new, empty SSD tier (else the first mount takes the one it is given)")
      ("namespace", po::value(&opt.ns)->value_name("NAME"),
       "the namespace to recover (needed when the HDD tier holds several)");
  // clang-format on
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "tierfs recover: " << e.what() << " (see tierfs recover --help)\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (opt.hdd_dir.empty() || opt.state_dir.empty()) {
    std::cerr << "tierfs recover: --hdd DIR and --state NEWDIR are required\n";
    return 2;
  }
  RecoverReport report;
  Status st = Recover(opt, &report);
  if (!st.ok()) {
    std::cerr << "tierfs recover: " << st.message() << "\n";
    return 1;
  }
  std::map<std::string, uint64_t> counts;
  for (const RecoverEntry& e : report.entries) {
    counts[e.status]++;
    if (e.status == "kept") continue;
    nlohmann::ordered_json j;
    j["status"] = e.status;
    j["path"] = e.path;
    j["ino"] = e.ino;
    j["size"] = e.size;
    if (!e.time.empty()) j["time"] = e.time;
    if (!e.rule.empty()) j["rule"] = e.rule;
    if (e.uid >= 0) j["uid"] = e.uid;
    if (!e.detail.empty()) j["detail"] = e.detail;
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  nlohmann::ordered_json sum;
  sum["summary"] = "recover";
  sum["namespace"] = report.ns;
  sum["snapshot"] = report.snapshot;
  for (const char* k : {"kept", "placed", "recreated", "lost", "thinned", "deleted", "missing",
                        "unplaced", "corrupt"})
    sum[k] = counts[k];
  sum["complete"] = report.complete();
  sum["journal"] = report.journal;
  sum["owner"] = report.owner;
  sum["previous_owner"] = report.previous_owner;
  std::cout << sum.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  return report.complete() ? 0 : 1;
}

}  // namespace tierfs

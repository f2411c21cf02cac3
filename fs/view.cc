// `tierfs view` (fs/view.h): options, the tree, the mount, the loop.
#include "fs/view.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "fs/daemon.h"
#include "fs/view_fs.h"
#include "meta/mutex.h"

namespace po = boost::program_options;

namespace tierfs {

namespace {

constexpr char kViewUsage[] =
    "Usage: tierfs view --hdd DIR [--namespace NAME] [-f] [--log FILE] [--refresh SECONDS]\n"
    "                   [-o OPT[,OPT...]] MOUNTPOINT\n\n"
    "Mounts one namespace of a capacity tier read-only, as its objects and its newest\n"
    "snapshot describe it, beside the mount that owns it (on this node or another) and\n"
    "without taking it over: files only on the owner's SSD tier are left out, every\n"
    "read is verified against the recorded checksums, nothing on the tier is written.\n"
    "--refresh, or a new mount, shows what was archived since. Unmount with\n"
    "`fusermount3 -u MOUNTPOINT`.\n"
    "See tierfs(8), VIEWS.\n\nOptions";

int Refuse(const std::string& msg) {
  std::cerr << "tierfs view: " << msg << "\n";
  return 1;
}

int Usage(const std::string& msg) {
  std::cerr << "tierfs view: " << msg << " (see tierfs view --help)\n";
  return 2;
}

struct ViewArgs {
  std::string hdd_dir, ns, mountpoint, fuse_options, log_file;
  bool foreground = false;
  double refresh_s = 0;  // 0: never
  unsigned threads = 8;
};

// 0 with `args` filled, or the exit status to return.
int ParseArgs(int argc, char** argv, ViewArgs* args, bool* done) {
  std::vector<std::string> options, positional;
  int64_t threads = args->threads;
  po::options_description desc(kViewUsage);
  // clang-format off
  desc.add_options()
      ("help,h", "print this help and exit")
      ("hdd", po::value(&args->hdd_dir)->value_name("DIR"),
       "the capacity tier's directory (as the owner's mount names it on its node)")
      ("namespace", po::value(&args->ns)->value_name("NAME"),
       "the namespace to show (HDD_DIR/ns/NAME); may be left out when the tier holds one")
      ("foreground,f", po::bool_switch(&args->foreground),
       "stay in the foreground, log to stderr (else to --log, or syslog as tierfs-view)")
      ("log", po::value(&args->log_file)->value_name("FILE"),
       "in the background, append the log to FILE instead of syslog")
      ("options,o", po::value(&options)->value_name("OPT[,OPT...]"),
       "FUSE mount options (allow_other, noatime, ...); the view is always ro")
      ("refresh", po::value(&args->refresh_s)->value_name("SECONDS"),
       "build the view again this often while mounted, to show what was archived since "
       "(default: never; mount again instead)")
      ("threads", po::value(&threads)->value_name("N")->default_value(threads),
       "most worker threads serving requests (1-256)");
  // clang-format on
  po::options_description all;
  all.add(desc).add_options()("positional", po::value(&positional));
  po::positional_options_description pos;
  pos.add("positional", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return Usage(e.what());
  }
  *done = true;
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (args->hdd_dir.empty()) return Usage("--hdd DIR is required");
  if (positional.empty()) return Usage("MOUNTPOINT is required");
  if (positional.size() > 1) return Usage("unexpected argument " + positional[1]);
  if (threads < 1 || threads > 256)
    return Usage("--threads " + std::to_string(threads) + " is out of range (1..256)");
  args->threads = unsigned(threads);
  if (!(args->refresh_s >= 0) || args->refresh_s > 86400)
    return Usage("--refresh must be from 0 (never) to 86400 seconds");
  for (const std::string& list : options) {
    std::string item;
    for (size_t pos = 0; pos <= list.size(); ++pos) {
      if (pos < list.size() && list[pos] != ',') {
        item += list[pos];
        continue;
      }
      if (item == "rw") return Usage("a view is read-only: -o rw is refused");
      if (!item.empty()) args->fuse_options += "," + item;
      item.clear();
    }
  }
  args->mountpoint = std::filesystem::absolute(positional[0]).string();
  args->hdd_dir = std::filesystem::absolute(args->hdd_dir).string();
  if (!args->log_file.empty()) args->log_file = std::filesystem::absolute(args->log_file).string();
  *done = false;
  return 0;
}

// Once in the background, stderr is /dev/null: the log goes to `file`, or
// to syslog. Called before the mount, so a log file that cannot be opened
// is refused while the caller still sees the error.
void LogInBackground(const std::string& file) {
  spdlog::sink_ptr sink;
  if (file.empty())
    sink =
        std::make_shared<spdlog::sinks::syslog_sink_mt>("tierfs-view", LOG_PID, LOG_DAEMON, false);
  else
    sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file);
  auto logger = std::make_shared<spdlog::logger>("tierfs-view", sink);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

// Without --refresh nothing changes while mounted: the kernel may keep
// what it learns this long.
constexpr double kStillSeconds = 3600;

struct ViewCounts {
  uint64_t files = 0, ssd_only = 0, removed = 0, unplaced = 0;
  std::string snapshot;
  bool operator==(const ViewCounts&) const = default;
};

// Builds the tree of the view `args` asks for (the snapshot copied to a
// scratch directory under $TMPDIR, removed after) and logs what it holds
// when that differs from `before`; `counts` (may be null) gets it.
Status BuildTree(const ViewArgs& args, const ViewCounts& before,
                 std::shared_ptr<const ViewTree>* out, ViewCounts* counts) {
  const char* tmp = getenv("TMPDIR");
  std::string scratch = std::string(tmp && *tmp ? tmp : "/tmp") + "/tierfs-view-XXXXXX";
  if (!mkdtemp(scratch.data())) return Status::Errno(errno, "scratch directory " + scratch);
  auto tree = std::make_shared<ViewTree>();
  Status st = BuildViewTree(args.hdd_dir, args.ns, scratch, tree.get());
  rmdir(scratch.c_str());
  if (!st.ok()) return st;
  ViewCounts now{0, tree->ssd_only, tree->removed, tree->unplaced, tree->snapshot};
  for (const auto& [ino, node] : tree->nodes) now.files += S_ISREG(node.mode) ? 1 : 0;
  if (!(now == before))
    spdlog::info(
        "view of namespace {} of {} ({}): {} files; left out: {} only on the owner's SSD tier, "
        "{} thinned or deleted since the snapshot, {} objects without a usable identity",
        tree->ns, args.hdd_dir, now.snapshot.empty() ? "no snapshot" : "snapshot " + now.snapshot,
        now.files, now.ssd_only, now.removed, now.unplaced);
  if (counts) *counts = now;
  *out = std::move(tree);
  return Status::Ok();
}

// --refresh: builds the tree again every interval and serves the new one;
// a build that fails leaves the tree served as it was, logged.
class Refresher {
 public:
  // `counts`: what the tree served now holds (a refresh that finds the
  // same is not logged).
  Refresher(ViewFs& fs, const ViewArgs& args, ViewCounts counts)
      : fs_(fs), args_(args), counts_(std::move(counts)) {
    if (args_.refresh_s > 0) thread_ = std::thread([this] { Run(); });
  }
  ~Refresher() { Stop(); }
  void Stop() EXCLUDES(mu_) {
    {
      MutexLock lock(&mu_);
      stop_ = true;
    }
    wake_.SignalAll();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() EXCLUDES(mu_) {
    for (;;) {
      {
        MutexLock lock(&mu_);
        const auto until =
            std::chrono::steady_clock::now() + std::chrono::duration<double>(args_.refresh_s);
        while (!stop_ && std::chrono::steady_clock::now() < until)
          wake_.WaitFor(&mu_, until - std::chrono::steady_clock::now());
        if (stop_) return;
      }
      std::shared_ptr<const ViewTree> tree;
      Status st = BuildTree(args_, counts_, &tree, &counts_);
      if (st.ok())
        fs_.Replace(std::move(tree));
      else
        spdlog::error("view refresh: {}; the view stays as it was", st.message());
    }
  }

  ViewFs& fs_;
  const ViewArgs& args_;
  ViewCounts counts_;  // the refresh thread's only
  Mutex mu_;
  CondVar wake_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace

int ViewMain(int argc, char** argv) {
  ViewArgs args;
  bool done = false;
  const int rc = ParseArgs(argc, argv, &args, &done);
  if (done) return rc;
  Status st = CheckMountpoint(args.mountpoint, &args.mountpoint);
  if (!st.ok()) return Refuse(st.message());

  if (!args.foreground) {
    try {
      LogInBackground(args.log_file);
    } catch (const std::exception& e) {
      return Refuse("--log " + args.log_file + ": " + e.what());
    }
  }
  std::shared_ptr<const ViewTree> tree;
  ViewCounts counts;
  st = BuildTree(args, ViewCounts{}, &tree, &counts);
  if (!st.ok()) return Refuse(st.message());

  const bool refresh = args.refresh_s > 0;
  ViewFs fs(std::move(tree), args.hdd_dir, refresh, refresh ? args.refresh_s : kStillSeconds);
  const std::string mount_opts = "fsname=tierfs-view,subtype=tierfs,ro,default_permissions," +
                                 std::string("max_read=1048576") + args.fuse_options;
  std::vector<const char*> fuse_argv = {"tierfs", "-o", mount_opts.c_str()};
  fuse_args fargs = FUSE_ARGS_INIT(int(fuse_argv.size()), const_cast<char**>(fuse_argv.data()));
  fuse_session* se = fuse_session_new(&fargs, &ViewFs::Ops(), sizeof(fuse_lowlevel_ops), &fs);
  fuse_opt_free_args(&fargs);
  if (!se) return Refuse("bad mount options: " + mount_opts);
  if (fuse_session_mount(se, args.mountpoint.c_str()) != 0) {
    fuse_session_destroy(se);
    return Refuse("cannot mount on " + args.mountpoint + " (see above)");
  }
  // Readahead of four whole 1 MiB blocks, each read and checked at once
  // (ViewFs); the kernel's 128 KiB default made every block eight READs.
  TuneMountBdi(args.mountpoint);
  if (!args.foreground) fuse_daemonize(0);  // the parent exits 0 once the child runs
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_session_unmount(se);
    fuse_session_destroy(se);
    return Refuse("cannot set signal handlers");
  }
  spdlog::info("mounted the view at {}", args.mountpoint);
  Refresher refresher(fs, args, counts);  // after the fork: threads do not survive it
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(cfg, 1);
  fuse_loop_cfg_set_max_threads(cfg, args.threads);
  const int loop_rc = fuse_session_loop_mt(se, cfg);
  fuse_loop_cfg_destroy(cfg);
  refresher.Stop();
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  spdlog::info("unmounted the view at {}", args.mountpoint);
  return loop_rc >= 0 ? 0 : 1;
}

}  // namespace tierfs

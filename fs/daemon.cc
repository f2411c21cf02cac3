#include "fs/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "fs/namespace_setup.h"
#include "tiering/fault_io.h"

namespace tierfs {

namespace {

// Mount points in /proc/self/mountinfo escape blanks as octal (\040).
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out.push_back(char(std::stoi(s.substr(i + 1, 3), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The "major:minor" of the filesystem mounted at `path`, or "" if none is.
std::string MountedDevice(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, found;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    f >> id >> parent >> dev >> root >> point;
    if (Unescape(point) == path) found = dev;  // the last one is on top
  }
  return found;
}

Status CheckMountpoint(const std::string& mountpoint, std::string* real) {
  char buf[PATH_MAX];
  if (!realpath(mountpoint.c_str(), buf)) return Status::Errno(errno, "mountpoint " + mountpoint);
  *real = buf;
  struct stat st;
  if (stat(buf, &st) != 0) return Status::Errno(errno, "mountpoint " + mountpoint);
  if (!S_ISDIR(st.st_mode))
    return Status::Error(ENOTDIR, "mountpoint " + mountpoint + " is not a directory");
  if (!MountedDevice(*real).empty())
    return Status::Error(EBUSY,
                         "mountpoint " + mountpoint + " is busy: something is mounted there");
  return Status::Ok();
}

Status MkdirP(const std::string& dir) {
  for (size_t pos = dir.find('/', 1);; pos = dir.find('/', pos + 1)) {
    const std::string part = dir.substr(0, pos);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
      return Status::Errno(errno, "create " + part);
    if (pos == std::string::npos) return Status::Ok();
  }
}

// One daemon per state directory; LMDB alone would let two share it.
Status LockState(const std::string& state, int* fd) {
  const std::string path = state + "/daemon.lock";
  *fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (*fd < 0) return Status::Errno(errno, "open " + path);
  if (flock(*fd, LOCK_EX | LOCK_NB) != 0)
    return Status::Error(EBUSY, "state " + state + " is in use by another tierfs daemon");
  return Status::Ok();
}

// Lifts the kernel's 1% share of the dirty page budget for a FUSE mount.
// (Readahead is set by max_readahead in Init: the kernel applies that
// when it handles the INIT reply, over anything written here before.)
void TuneBdi(const std::string& device) {
  if (device.empty()) return;
  const std::string path = "/sys/class/bdi/" + device + "/max_ratio";
  std::ofstream out(path);
  out << "40";
  if (!out.flush()) spdlog::info("could not set {} (not root?)", path);
}

void Init(void* userdata, fuse_conn_info* conn) {
  const Options& opt = static_cast<Context*>(userdata)->options();
  auto want = [conn](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  // Off by default: with it, all writes of a mount funnel through the
  // kernel's one writeback thread (8 concurrent writers reached half the
  // bandwidth they get without it), and every unlink and rename costs an
  // extra SETATTR round trip to flush the ctime the kernel keeps.
  if (opt.writeback_cache) want(FUSE_CAP_WRITEBACK_CACHE);
  // No splice: side by side on this kind of VM (2026-11-25, 4 GiB written
  // in 1 MiB blocks + fsync, four rounds of three), one writer reached
  // 310-520 MiB/s with requests read into libfuse's buffer against 200-360
  // through a pipe, and eight writers were even (about 1.0-1.2 GiB/s). It
  // also needs no system-wide pipe-max-size change. libfuse turns splice on
  // by itself when the operations allow it, so it is turned off here.
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_ASYNC_DIO);
  want(FUSE_CAP_ATOMIC_O_TRUNC);
  want(FUSE_CAP_READDIRPLUS);
  want(FUSE_CAP_READDIRPLUS_AUTO);
  want(FUSE_CAP_CACHE_SYMLINKS);
  // Not the first version: tierfs takes FUSE_HANDLE_KILLPRIV_V2 in the INIT
  // reply instead (fs/session_io.h), which libfuse 3.14 cannot negotiate.
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
  conn->max_write = 1 << 20;
  // The kernel caps the mount's readahead at this when it handles the INIT
  // reply, i.e. after mount: 4 MiB keeps four 1 MiB reads in flight.
  conn->max_readahead = 4 << 20;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  conn->time_gran = 1;
}

void Destroy(void* userdata) {
  Status st = static_cast<Context*>(userdata)->SyncAll();
  if (!st.ok()) spdlog::error("final sync: {}", st.message());
}

}  // namespace

std::string DefaultStateDir(const std::string& ssd_dir) {
  return ssd_dir + "/state";
}

Status Serve(const Options& opt, const std::function<void(const Status&)>& on_ready) {
  auto fail = [&](const Status& st) {
    on_ready(st);
    return st;
  };
  std::string mountpoint;
  Status st = CheckMountpoint(opt.mountpoint, &mountpoint);
  if (!st.ok()) return fail(st);
  std::shared_ptr<Io> ssd_io, hdd_io;  // null: PosixIo; a FaultIo in tests
  st = MakeFaultIos(opt.inject_faults, &ssd_io, &hdd_io);
  for (const std::string& f : opt.inject_faults)
    if (st.ok()) spdlog::warn("injecting fault {} (tests only)", f);
  if (!st.ok()) return fail(st);
  const std::string state = opt.state_dir.empty() ? DefaultStateDir(opt.ssd_dir) : opt.state_dir;
  int lock_fd = -1;
  st = MkdirP(state);
  if (st.ok()) st = LockState(state, &lock_fd);
  NamespaceOptions ns_opt;
  ns_opt.name = opt.namespace_name;
  if (opt.map_size) ns_opt.store.map_size = opt.map_size;
  ns_opt.ssd_io = ssd_io;
  ns_opt.hdd_io = hdd_io;
  OpenedNamespace ns;
  if (st.ok()) st = OpenNamespace(state, opt.ssd_dir, opt.hdd_dir, ns_opt, &ns);
  if (!st.ok()) return fail(st);

  Policy policy;
  st = LoadPolicyFile(opt.policy_file, &policy);
  if (!st.ok()) return fail(st);
  std::unique_ptr<AuditLog> audit;
  st = AuditLog::Open(state + "/audit.jsonl", &audit);
  if (!st.ok()) return fail(st);

  Context ctx(opt, std::move(ns.store), std::move(ns.ssd), std::move(ns.hdd), std::move(audit));
  ctx.ApplyPolicyLimits(policy);
  ctx.SetPolicyRunner(std::make_unique<PolicyRunner>(ctx, std::move(policy), opt.policy_file,
                                                     int64_t(opt.scan_interval_s * 1e9)));
  ctx.RecoverMoves();  // before anything reads placement
  ctx.ReapOrphans();

  fuse_lowlevel_ops ops = {};
  ops.init = Init;
  ops.destroy = Destroy;
  AddAttrOps(&ops);
  AddNamespaceOps(&ops);
  AddFileOps(&ops);
  AddDirOps(&ops);
  AddXattrOps(&ops);

  std::string mount_opts = "fsname=tierfs,subtype=tierfs,default_permissions";
  if (!opt.mount_options.empty()) mount_opts += "," + opt.mount_options;
  std::vector<const char*> argv = {"tierfs", "-o", mount_opts.c_str()};
  fuse_args args = FUSE_ARGS_INIT(int(argv.size()), const_cast<char**>(argv.data()));
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, &ctx);
  fuse_opt_free_args(&args);  // the session keeps its own copies
  if (!se) return fail(Status::Error(EINVAL, "bad mount options: " + opt.mount_options));
  if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, mountpoint.c_str()) != 0) {
    fuse_session_destroy(se);
    return fail(Status::Error(EIO, "cannot mount on " + mountpoint + " (see above)"));
  }
  ctx.SetSession(se);
  ctx.passthrough().Attach(se);
  if (!ctx.session_io().Install(se, opt.passthrough && !opt.writeback_cache)) {
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return fail(Status::Error(EIO, "could not install the FUSE session's I/O functions"));
  }
  // SIGHUP reloads the policy (libfuse would end the session on it): every
  // thread started from here on inherits the block, and the policy thread
  // takes the signal with sigtimedwait.
  sigset_t hup;
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &hup, nullptr);
  TuneBdi(MountedDevice(mountpoint));
  spdlog::info("mounted {} (namespace {}, ssd {}, hdd {}, state {})", mountpoint, ns.name,
               opt.ssd_dir, opt.hdd_dir, state);
  on_ready(Status::Ok());

  ctx.StartBackground();
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(cfg, 1);
  fuse_loop_cfg_set_max_threads(cfg, opt.max_threads);
  int rc = fuse_session_loop_mt(se, cfg);
  fuse_loop_cfg_destroy(cfg);
  ctx.StopBackground();  // no move may outlive the session
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);  // calls Destroy: the final sync
  st = ctx.SyncAll();
  close(lock_fd);
  spdlog::info("unmounted {}", mountpoint);
  if (!st.ok()) return st;
  // libfuse reports the signal that ended the loop as a positive number:
  // SIGTERM/SIGINT/SIGHUP are a requested, clean unmount.
  return rc >= 0 ? Status::Ok() : Status::Error(-rc, "FUSE session ended with an error");
}

}  // namespace tierfs

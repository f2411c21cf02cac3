#include "fs/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "fs/control_commands.h"
#include "fs/metrics_http.h"
#include "fs/metrics_scrape.h"
#include "fs/namespace_setup.h"
#include "fs/op_guard.h"
#include "fs/pid_file.h"
#include "fs/sd_notify.h"
#include "fs/snapshot.h"
#include "meta/audit_verify.h"
#include "meta/state_file.h"
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

// The real path of `path`, or of its deepest existing ancestor followed by
// the rest (a state directory is created later).
std::string RealPathOrAncestor(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf)) return buf;
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return RealPathOrAncestor(".") + "/" + path;
  if (slash == 0) return path;
  return RealPathOrAncestor(path.substr(0, slash)) + path.substr(slash);
}

// Whether `inner` is `outer` or below it: by name, and by device and inode
// along inner's parent chain (the same directory reached by another path,
// e.g. through a bind mount).
bool IsInside(const std::string& inner, const std::string& outer) {
  if (inner == outer || outer == "/" ||
      (inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
       inner[outer.size()] == '/'))
    return true;
  struct stat o;
  if (stat(outer.c_str(), &o) != 0) return false;
  for (std::string p = inner; !p.empty();) {
    struct stat s;
    if (stat(p.c_str(), &s) == 0 && s.st_dev == o.st_dev && s.st_ino == o.st_ino) return true;
    if (p == "/") break;
    const size_t slash = p.find_last_of('/');
    p = slash == 0 ? "/" : p.substr(0, slash);
  }
  return false;
}

// One directory as both tiers, or one tier inside the other, would mix the
// tiers' objects, owner files and the default state: refused before anything
// is created. Compared as real paths and by device and inode (IsInside), so a
// symlink, another spelling or a bind mount does not hide it.
Status CheckTierPair(const Options& opt) {
  const std::string ssd = RealPathOrAncestor(opt.ssd_dir);
  const std::string hdd = RealPathOrAncestor(opt.hdd_dir);
  const bool hdd_in_ssd = IsInside(hdd, ssd), ssd_in_hdd = IsInside(ssd, hdd);
  if (hdd_in_ssd && ssd_in_hdd)
    return Status::Error(EINVAL, "the same directory was given as both tiers (--ssd " +
                                     opt.ssd_dir + ", --hdd " + opt.hdd_dir +
                                     "); give the SSD and HDD tiers a directory each");
  if (hdd_in_ssd || ssd_in_hdd)
    return Status::Error(EINVAL, std::string("the ") + (hdd_in_ssd ? "HDD" : "SSD") + " tier " +
                                     (hdd_in_ssd ? opt.hdd_dir : opt.ssd_dir) + " is inside the " +
                                     (hdd_in_ssd ? "SSD" : "HDD") + " tier " +
                                     (hdd_in_ssd ? opt.ssd_dir : opt.hdd_dir) +
                                     "; give the tiers two separate directories");
  return Status::Ok();
}

// A mountpoint in a tier or the state makes the daemon reach its own files
// through its own mount: on the SSD tier the first open deadlocks, on the
// HDD tier every move fails. A tier or the state under the mountpoint is
// hidden by the mount the same way.
Status CheckNesting(const std::string& mountpoint, const Options& opt, const std::string& state) {
  const std::pair<const char*, std::string> dirs[] = {
      {"SSD tier", opt.ssd_dir}, {"HDD tier", opt.hdd_dir}, {"state directory", state}};
  for (const auto& [what, dir] : dirs) {
    const std::string real = RealPathOrAncestor(dir);
    if (IsInside(mountpoint, real))
      return Status::Error(EINVAL, "mountpoint " + opt.mountpoint + " is inside the " + what + " " +
                                       dir + "; mount somewhere else");
    if (IsInside(real, mountpoint))
      return Status::Error(EINVAL, std::string("the ") + what + " " + dir +
                                       " is inside the mountpoint " + opt.mountpoint +
                                       "; the mount would hide it");
  }
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

struct LockHolder {
  pid_t pid = 0;
  std::string mountpoint;
};

LockHolder ReadHolder(int fd) {
  char buf[PATH_MAX + 32] = {};
  LockHolder h;
  const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return h;
  std::istringstream in(std::string(buf, size_t(n)));
  in >> h.pid;
  in.get();
  std::getline(in, h.mountpoint);
  return h;
}

// Whether the daemon holding the lock still serves its mount; if not it is
// exiting (unmounted, killed, a zombie) and lets go of the lock soon.
bool HolderServes(const LockHolder& h) {
  if (h.pid <= 0 || h.mountpoint.empty()) return false;
  std::ifstream stat_file("/proc/" + std::to_string(h.pid) + "/stat");
  std::string line;
  if (!std::getline(stat_file, line)) return false;
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return false;
  const char state = line[paren + 2];
  if (state == 'Z' || state == 'X') return false;
  return !MountedDevice(h.mountpoint).empty();
}

// One daemon per state directory; LMDB alone would let two share it. The
// previous daemon of a remount may still be exiting (final sync) when the
// new one starts: wait for it, up to kLockWait. A daemon that still serves
// its mount is named at once.
constexpr auto kLockWait = std::chrono::seconds(10);

Status LockState(const std::string& state, const std::string& mountpoint, int* fd) {
  const std::string path = state + "/daemon.lock";
  Status st = OpenStateFile(path, O_RDWR | O_CREAT, 0600, fd);
  if (!st.ok()) return st;
  const auto deadline = std::chrono::steady_clock::now() + kLockWait;
  for (;;) {
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0) break;
    if (errno != EWOULDBLOCK && errno != EINTR) return Status::Errno(errno, "lock " + path);
    const LockHolder h = ReadHolder(*fd);
    const bool serves = HolderServes(h);
    if (serves || std::chrono::steady_clock::now() >= deadline) {
      if (h.pid <= 0)
        return Status::Error(EBUSY, "state " + state + " is in use by another tierfs daemon");
      return Status::Error(EBUSY, "state " + state + " is in use by tierfs pid " +
                                      std::to_string(h.pid) + " mounted on " + h.mountpoint +
                                      (serves ? "" : " (still exiting)"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string me = std::to_string(getpid()) + " " + mountpoint + "\n";
  if (ftruncate(*fd, 0) != 0 || pwrite(*fd, me.data(), me.size(), 0) != ssize_t(me.size()))
    return Status::Errno(errno, "write " + path);
  return Status::Ok();
}

// LMDB opens data.mdb and lock.mdb itself, following links: refuse planted ones.
Status CheckStateFiles(const std::string& state) {
  for (const char* name : {"data.mdb", "lock.mdb"}) {
    Status st = CheckStateFile(state + "/" + name);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

// The largest WRITE request's payload (and READ's): checkpoint writers'
// 1 MiB writes arrive whole.
constexpr uint32_t kMaxWrite = 1 << 20;

// Readahead of the mount: four 1 MiB READs in flight. Reads tierfs serves
// itself (verified reads of the HDD tier, cached reads) waited for one
// 128 KiB READ at a time without it.
constexpr uint32_t kReadahead = 4 << 20;

// A write from a buffer that does not start on a page boundary (malloc's,
// Python's bytes) spans one page more than its length: 1 MiB spans 257
// pages, and with the kernel's default cap of 256 pages a request, every
// such 1 MiB write reached tierfs as two requests (1 MiB - 16 bytes, then
// 16 bytes). SessionIo asks for max_write's pages plus one in INIT; the
// kernel grants at most fs.fuse.max_pages_limit, raised here (before INIT
// is answered) when lower. Only a cap: other FUSE daemons ask for what
// they ask for.
void RaiseMaxPagesLimit() {
  const char* path = "/proc/sys/fs/fuse/max_pages_limit";
  const long wanted = long(kMaxWrite / uint32_t(sysconf(_SC_PAGESIZE))) + 1;
  long limit = 0;
  std::ifstream in(path);
  if (!(in >> limit) || limit >= wanted) return;  // an older kernel has no such knob
  std::ofstream out(path);
  out << wanted;
  if (!out.flush())
    spdlog::info(
        "could not raise {} from {} to {} (not root?): writes from unaligned "
        "buffers take two requests per MiB",
        path, limit, wanted);
}

// The kernel offers FUSE over io_uring in INIT only while the fuse module's
// enable_uring parameter is set; the daemon sets it (root), before mounting,
// unless --no-io-uring. Without it requests come through /dev/fuse.
void EnableFuseUring() {
  const char* path = "/sys/module/fuse/parameters/enable_uring";
  std::ifstream in(path);
  std::string value;
  if (!(in >> value)) {
    spdlog::info("no FUSE over io_uring: no {} (a kernel without CONFIG_FUSE_IO_URING)", path);
    return;
  }
  if (value == "Y" || value == "1") return;
  std::ofstream out(path);
  out << "Y";
  if (!out.flush()) spdlog::info("no FUSE over io_uring: could not set {} (not root?)", path);
}

void Init(void* userdata, fuse_conn_info* conn) {
  Context& c = *static_cast<Context*>(userdata);
  const Options& opt = c.options();
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
  // POSIX ACLs (fs/posix_acl.h): the kernel enforces them and no longer
  // applies the umask (FUSE_DONT_MASK), which tierfs then applies itself,
  // or a directory's default ACL instead, as ext4 does. Both or neither.
  const unsigned acl_caps = FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
  c.set_acls(opt.acl && (conn->capable & acl_caps) == acl_caps);
  if (c.acls()) conn->want |= acl_caps;
  // Not the first version: tierfs takes FUSE_HANDLE_KILLPRIV_V2 in the INIT
  // reply instead (fs/session_io.h), which libfuse 3.14 cannot negotiate.
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
  conn->max_write = kMaxWrite;
  // The mount option's value (Serve), which libfuse wants repeated here.
  // Readahead READs are then whole 1 MiB blocks by default: with one page
  // more allowed for unaligned writes (fs/session_io.h) they were 257
  // pages, and every READ of a verified read straddled two blocks.
  conn->max_read = opt.max_read;
  // The kernel caps the mount's readahead at this on INIT (TuneBdi raised it).
  conn->max_readahead = kReadahead;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  conn->time_gran = 1;
}

void Destroy(void* userdata) {
  Status st = static_cast<Context*>(userdata)->SyncAll();
  if (!st.ok()) spdlog::error("final sync: {}", st.message());
}

// The operations of fs/ops_*.cc (Status ops, replied to by fs/op_table.h),
// wrapped by fs/op_guard.h.
struct DaemonOps {
  static const fuse_lowlevel_ops& Inner() {
    static const fuse_lowlevel_ops ops = [] {
      fuse_lowlevel_ops o = {};
      o.init = Init;
      o.destroy = Destroy;
      AddAttrOps(&o);
      AddNamespaceOps(&o);
      AddFileOps(&o);
      AddWriteOps(&o);
      AddDirOps(&o);
      AddXattrOps(&o);
      return o;
    }();
    return ops;
  }
  static void ReplyErr(fuse_req_t req, int err) { fuse_reply_err(req, err); }
  static void ReplyNone(fuse_req_t req) { fuse_reply_none(req); }
  static void Log(const char* op, const char* what, int err) {
    spdlog::error("FUSE {}: exception: {}{}", op, what,
                  err ? std::string(", replied ") + strerror(err) : std::string());
  }
};

}  // namespace

Status CheckMountpoint(const std::string& mountpoint, std::string* real) {
  char buf[PATH_MAX];
  if (!realpath(mountpoint.c_str(), buf)) return Status::Errno(errno, "mountpoint " + mountpoint);
  *real = buf;
  struct stat st;
  if (stat(buf, &st) != 0) return Status::Errno(errno, "mountpoint " + mountpoint);
  if (!S_ISDIR(st.st_mode))
    return Status::Error(ENOTDIR, "mountpoint " + mountpoint + " is not a directory");
  if (const std::string device = MountedDevice(*real); !device.empty()) {
    // A daemon killed without unmounting leaves its mount answering
    // ENOTCONN: say so, and how to clear it, rather than "busy".
    struct statfs sf;
    if (statfs(buf, &sf) != 0 && errno == ENOTCONN)
      return Status::Error(
          EBUSY, "mountpoint " + mountpoint + " still holds a FUSE mount (" + device +
                     ") whose daemon is gone; unmount it first: fusermount3 -u " + mountpoint);
    return Status::Error(EBUSY,
                         "mountpoint " + mountpoint + " is busy: " + device + " is mounted there");
  }
  return Status::Ok();
}

// Tunes the mount's bdi, before INIT is answered: its share of the dirty
// page budget (the kernel's 1% for a FUSE mount) up to 40%, and its
// readahead up to kReadahead. The kernel starts a FUSE bdi at 128 KiB and
// on INIT takes the smaller of that and max_readahead, so max_readahead
// alone can only lower it.
void TuneMountBdi(const std::string& mountpoint) {
  const std::string device = MountedDevice(mountpoint);
  if (device.empty()) return;
  const std::string bdi = "/sys/class/bdi/" + device;
  for (const auto& [name, value] :
       {std::pair<std::string, uint32_t>{"max_ratio", 40}, {"read_ahead_kb", kReadahead >> 10}}) {
    std::ofstream out(bdi + "/" + name);
    out << value;
    if (!out.flush()) spdlog::info("could not set {}/{} (not root?)", bdi, name);
  }
}

std::string DefaultStateDir(const std::string& ssd_dir) {
  return ssd_dir + "/state";
}

Status Serve(const Options& opt, const std::function<void(const Status&)>& on_ready,
             const std::function<Status(const std::string& state)>& on_state) {
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
  // The tiers must exist before anything is created: the default state
  // directory lives inside the SSD tier and would create it.
  for (const auto& [name, dir] : {std::pair{"ssd", opt.ssd_dir}, std::pair{"hdd", opt.hdd_dir}}) {
    struct stat tier_st;
    if (stat(dir.c_str(), &tier_st) != 0)
      return fail(Status::Errno(errno, std::string(name) + " tier " + dir));
    if (!S_ISDIR(tier_st.st_mode))
      return fail(
          Status::Error(ENOTDIR, std::string(name) + " tier " + dir + " is not a directory"));
  }
  st = CheckTierPair(opt);
  if (st.ok()) st = CheckNesting(mountpoint, opt, state);
  if (!st.ok()) return fail(st);
  int lock_fd = -1;
  st = MkdirP(state);
  if (st.ok()) st = CheckStateDir(state);
  if (st.ok()) st = CheckStateFiles(state);
  if (st.ok()) st = LockState(state, mountpoint, &lock_fd);
  if (st.ok()) st = CheckPidFile(PidFilePath(state));
  if (st.ok() && on_state) st = on_state(state);
  NamespaceOptions ns_opt;
  ns_opt.name = opt.namespace_name;
  if (opt.map_size) ns_opt.store.map_size = opt.map_size;
  ns_opt.ssd_io = ssd_io;
  ns_opt.hdd_io = hdd_io;
  OpenedNamespace ns;
  if (st.ok())
    st = OpenNamespace(state, opt.ssd_dir, opt.hdd_dir, ns_opt, "mount " + mountpoint, &ns);
  if (!st.ok()) return fail(st);

  Policy policy;
  st = LoadPolicyFile(opt.policy_file, &policy);
  if (!st.ok()) return fail(st);
  std::unique_ptr<AuditLog> audit;
  st = AuditLog::Open(state + "/audit.jsonl", &audit,
                      ns.hdd->namespace_dir() + "/" + kAuditHeadName, opt.audit_max_bytes,
                      ns.hdd->namespace_dir() + "/" + kAuditMirrorDir + "/audit.jsonl");
  if (!st.ok()) return fail(st);

  // The HDD tier's health check fails for good once another state takes
  // the namespace over (Tier::RequireOwner): nothing of this state's is
  // written there from then on, neither journal copies nor snapshots.
  const Tier* hdd = ns.hdd.get();
  audit->SetHddGate([hdd] { return hdd->CheckHealth(); });
  Context ctx(opt, std::move(ns.store), std::move(ns.ssd), std::move(ns.hdd), std::move(audit),
              std::move(policy));
  ctx.Recover();
  // tierctl's socket (fs/control.h); a mount without it still serves files.
  ControlInfo control_info{mountpoint, state, NowNs(), nullptr};
  for (const auto& sink : spdlog::default_logger()->sinks())
    if (auto ring = std::dynamic_pointer_cast<spdlog::sinks::ringbuffer_sink_mt>(sink))
      control_info.recent_errors = ring;
  ControlLimits control_limits;
  control_limits.idle_timeout =
      std::chrono::milliseconds(int64_t(opt.control_idle_timeout_s * 1000));
  std::unique_ptr<ControlServer> control;
  st = ControlServer::Start(
      ControlSocketPath(state),
      [&ctx, &control_info](const nlohmann::json& req, const ControlPeer& peer) {
        return HandleControl(ctx, control_info, req, peer);
      },
      control_limits, &control);
  if (st.ok())
    ctx.SetControlPath(control->path());
  else
    spdlog::error("no control socket, tierctl will not reach this mount: {}", st.message());

  // --metrics: unlike the control socket, asked for, so a failure is fatal.
  std::unique_ptr<MetricsServer> metrics;
  if (opt.metrics_port != 0) {
    st = MetricsServer::Start(
        opt.metrics_address, opt.metrics_port, [&ctx] { return ScrapeMetrics(ctx); }, &metrics);
    if (!st.ok()) return fail(st);
  }

  fuse_lowlevel_ops ops;
  GuardOps<DaemonOps>(&ops);

  if (opt.io_uring) EnableFuseUring();  // the kernel's INIT, sent at mount, offers it or not
  std::string mount_opts =
      "fsname=tierfs,subtype=tierfs,default_permissions,max_read=" + std::to_string(opt.max_read);
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
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  const unsigned uring_threads = opt.io_uring ? std::max(1u, opt.max_threads / cpus) : 0;
  if (!ctx.session_io().Install(se, opt.passthrough && !opt.writeback_cache, uring_threads)) {
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
  TuneMountBdi(mountpoint);
  RaiseMaxPagesLimit();
  spdlog::info("mounted {} (namespace {}, ssd {}, hdd {}, state {})", mountpoint, ns.name,
               opt.ssd_dir, opt.hdd_dir, state);
  st = WritePidFile(PidFilePath(state));
  if (!st.ok()) spdlog::error("no pid file: {}", st.message());
  on_ready(Status::Ok());
  st = SdNotify("READY=1");  // systemd's Type=notify (packaging/tierfs@.service)
  if (!st.ok()) spdlog::error("{}", st.message());

  ctx.StartBackground();
  SnapshotOptions snapshot_opt{opt.snapshot_interval_s, opt.snapshot_keep,
                               [hdd] { return hdd->CheckHealth(); }};
  Snapshotter snapshots(ctx.store(), SnapshotDir(ctx.tier(TierId::kHdd).namespace_dir()),
                        snapshot_opt, [&ctx] { return ctx.policy_runner().GetInfo().loaded_ns; });
  snapshots.Start();
  ctx.scrubber().Start();
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(cfg, 1);
  fuse_loop_cfg_set_max_threads(cfg, opt.max_threads);
  int rc = fuse_session_loop_mt(se, cfg);
  fuse_loop_cfg_destroy(cfg);
  ctx.session_io().Stop();
  (void)SdNotify("STOPPING=1");  // nothing to do if systemd does not hear it
  if (control) control->Stop();
  if (metrics) metrics->Stop();
  ctx.scrubber().Stop();  // at once, even mid-pass
  snapshots.Stop();
  ctx.StopBackground();  // no move may outlive the session
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);  // calls Destroy: the final sync
  st = ctx.SyncAll();
  RemovePidFile(PidFilePath(state));  // before the lock: the next daemon may start then
  close(lock_fd);
  spdlog::info("unmounted {}", mountpoint);
  if (!st.ok()) return st;
  // libfuse reports the signal that ended the loop as a positive number:
  // SIGTERM/SIGINT/SIGHUP are a requested, clean unmount.
  return rc >= 0 ? Status::Ok() : Status::Error(-rc, "FUSE session ended with an error");
}

}  // namespace tierfs

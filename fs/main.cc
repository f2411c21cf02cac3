// tierfs: mount the tiered filesystem. See man/tierfs.8.
#include <fcntl.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "fs/control_commands.h"
#include "fs/daemon.h"
#include "fs/metrics_http.h"
#include "fs/mount_args.h"
#include "fs/policy_runner.h"
#include "fs/recover.h"
#include "fs/version.h"
#include "fs/view.h"
#include "meta/state_file.h"
#include "policy/units.h"

namespace po = boost::program_options;

namespace {

constexpr char kUsage[] =
    "Usage: tierfs --ssd DIR --hdd DIR [--state DIR] [--policy FILE] [-f] [-o OPT[,OPT...]] "
    "MOUNTPOINT\n"
    "       tierfs SSD_DIR:HDD_DIR MOUNTPOINT [-o OPT[,OPT...]]   (as mount(8) calls it)\n"
    "       tierfs --check-policy FILE | --print-default-policy | --dry-run MOUNTPOINT | "
    "--version\n"
    "       tierfs recover --hdd DIR --state NEWDIR [--ssd NEWSSD] [--namespace NAME]\n"
    "       tierfs view --hdd DIR [--namespace NAME] [--refresh SECONDS] [-o OPT[,OPT...]] "
    "MOUNTPOINT\n\n"
    "Mounts one POSIX namespace whose metadata lives in LMDB (--state) and whose file\n"
    "data lives as one object per file on the SSD tier or the HDD tier. New files are\n"
    "written to the SSD tier; a policy (tierfs.policy(5); built in unless --policy) moves,\n"
    "thins and pins checkpoints. SIGHUP reloads the policy. Unmount with\n"
    "`fusermount3 -u MOUNTPOINT`, umount or SIGTERM. See tierfs(8).\n\n"
    "A SIZE is bytes or a number with a unit, as in the policy file: 4M and 64GiB\n"
    "(powers of 1024), 512KB (powers of 1000), 1.5T.\n\n"
    "Options";

int Fail(const std::string& msg) {
  std::cerr << "tierfs: " << msg << "\n";
  return 1;
}

// A bad option or option value: exit status 2 (1 is for a refused setup).
int BadOption(const std::string& msg) {
  std::cerr << "tierfs: " << msg << " (see tierfs --help)\n";
  return 2;
}

// spdlog's default logger writes to stdout, which is /dev/null in the
// background: every message goes to stderr instead, which is the terminal
// with -f and STATE/tierfs.log once daemonized (Daemonize).
// A second sink keeps the last warnings and errors for `tierctl status`
// (fs/control_commands.h, ControlInfo::recent_errors), times in UTC.
void LogToStderr() {
  auto recent = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(tierfs::kRecentErrors);
  recent->set_level(spdlog::level::warn);
  recent->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      "%Y-%m-%dT%H:%M:%SZ %l: %v", spdlog::pattern_time_type::utc, ""));
  auto logger = std::make_shared<spdlog::logger>(
      "tierfs", spdlog::sinks_init_list{std::make_shared<spdlog::sinks::stderr_sink_mt>(), recent});
  spdlog::set_default_logger(std::move(logger));
}

// The background daemon's log is bounded (tierfs(8), FILES): STATE/tierfs.log
// rotates to tierfs.1.log .. tierfs.<kLogFilesKept>.log once it holds
// `file_bytes`, the oldest dropped; each file mode 0600. What a process
// writes to stderr other than through the logger (libfuse's rare messages)
// goes on to the file tierfs.log was when the daemon started.
constexpr size_t kLogFileBytes = 4 << 20;
constexpr size_t kLogFilesKept = 3;
tierfs::Status LogToStateFile(const std::string& file, size_t file_bytes) {
  spdlog::file_event_handlers events;
  events.after_open = [](const std::string&, std::FILE* f) { fchmod(fileno(f), 0600); };
  std::shared_ptr<spdlog::sinks::sink> out;
  try {
    out = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(file, file_bytes, kLogFilesKept,
                                                                 false, events);
  } catch (const std::exception& e) {
    return tierfs::Status::Error(EIO, "open log " + file + ": " + e.what());
  }
  std::vector<spdlog::sink_ptr> sinks = {out};
  for (const auto& sink : spdlog::default_logger()->sinks())  // the recent errors
    if (std::dynamic_pointer_cast<spdlog::sinks::ringbuffer_sink_mt>(sink)) sinks.push_back(sink);
  auto logger = std::make_shared<spdlog::logger>("tierfs", sinks.begin(), sinks.end());
  logger->flush_on(spdlog::level::trace);  // as unbuffered stderr was: a crash loses nothing
  spdlog::set_default_logger(std::move(logger));
  return tierfs::Status::Ok();
}

// Without -f: the parent waits until the child has mounted (or failed) and
// exits with the outcome, so `tierfs ... && ls MOUNTPOINT` works.
int Daemonize(const tierfs::Options& opt, size_t log_file_bytes) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return Fail("pipe: " + std::string(strerror(errno)));
  pid_t pid = fork();
  if (pid < 0) return Fail("fork: " + std::string(strerror(errno)));
  if (pid > 0) {
    close(pipefd[1]);
    std::string msg;
    char buf[512];
    for (ssize_t n; (n = read(pipefd[0], buf, sizeof buf)) > 0;) msg.append(buf, n);
    if (msg == "OK") return 0;
    return Fail(msg.empty() ? "daemon exited before mounting" : msg);
  }
  close(pipefd[0]);
  setsid();
  // The log is opened where the state is checked and locked (a planted link
  // or a file of another user is refused like any bad state), and takes
  // stderr at once, so the rest of the setup is logged there too.
  int log_fd = -1;
  auto open_log = [&](const std::string& state) {
    tierfs::Status st =
        tierfs::OpenStateFile(state + "/tierfs.log", O_WRONLY | O_CREAT | O_APPEND, 0600, &log_fd);
    if (!st.ok()) return st;
    dup2(log_fd, 2);
    return LogToStateFile(state + "/tierfs.log", log_file_bytes);
  };
  bool mounted = false;
  tierfs::Status st = tierfs::Serve(
      opt,
      [&](const tierfs::Status& ready) {
        mounted = ready.ok();
        const std::string msg = ready.ok() ? "OK" : ready.message();
        if (write(pipefd[1], msg.data(), msg.size()) < 0) {
        }
        close(pipefd[1]);
        if (!ready.ok()) return;
        int null_fd = open("/dev/null", O_RDWR);
        dup2(null_fd, 0);
        dup2(null_fd, 1);
        if (chdir("/") != 0) {
        }
      },
      open_log);
  if (!st.ok() && (mounted || log_fd >= 0)) spdlog::error("{}", st.message());
  _exit(st.ok() ? 0 : 1);
}

// An integer option's value within [lo, hi], or a message naming it.
bool InRange(const char* name, int64_t v, int64_t lo, int64_t hi, std::string* err) {
  if (v >= lo && v <= hi) return true;
  *err = std::string("--") + name + " " + std::to_string(v) + " is out of range (" +
         std::to_string(lo) + ".." + std::to_string(hi) + ")";
  return false;
}

// A size-valued option, written as the policy file writes sizes
// (tierfs.policy(5) UNITS, policy/units.h ParseSize: "4M", "64GiB", "1.5T"
// or plain bytes), from lo to hi bytes; or a message naming the option.
bool SizeInRange(const char* name, const std::string& text, uint64_t lo, uint64_t hi,
                 uint64_t* bytes, std::string* err) {
  std::string why;
  if (!tierfs::ParseSize(text, bytes, &why)) {
    *err = std::string("--") + name + ": " + why;
    return false;
  }
  const auto bound = [](uint64_t b) {
    return tierfs::FormatBytes(b) + " (" + std::to_string(b) + " bytes)";
  };
  if (*bytes < lo) *err = std::string("--") + name + " " + text + " is less than " + bound(lo);
  if (*bytes > hi) *err = std::string("--") + name + " " + text + " is more than " + bound(hi);
  return *bytes >= lo && *bytes <= hi;
}

int CheckPolicy(const std::string& file) {
  tierfs::Policy policy;
  tierfs::Status st = tierfs::LoadPolicyFile(file, &policy);
  if (!st.ok()) {
    std::cerr << st.message() << "\n";
    return 1;
  }
  std::cout << file << ": ok (" << policy.series.size() << " series, " << policy.rules.size()
            << " rules)\n";
  return 0;
}

// The running daemon computes the plan; it is read as an extended attribute
// of the mount's root (root only), so no socket is needed.
int DryRun(const std::string& mountpoint) {
  std::string buf(65536, '\0');
  ssize_t n = getxattr(mountpoint.c_str(), "user.tierfs.plan", buf.data(), buf.size());
  if (n < 0) {
    const int err = errno;
    return Fail("dry run on " + mountpoint + ": " + strerror(err) +
                (err == ENODATA || err == ENOTSUP ? " (is it a tierfs mount root?)" : ""));
  }
  std::cout << buf.substr(0, size_t(n));
  return 0;
}

// "90%" for 0.9: how --help shows a default fraction.
std::string Percent(double fraction) {
  return std::to_string(int(fraction * 100 + 0.5)) + "%";
}

}  // namespace

int main(int argc, char** argv) {
  LogToStderr();
  // A mode of its own, with its own options (fs/recover.h).
  if (argc > 1 && std::string(argv[1]) == "recover") return tierfs::RecoverMain(argc - 1, argv + 1);
  if (argc > 1 && std::string(argv[1]) == "view") return tierfs::ViewMain(argc - 1, argv + 1);
  tierfs::Options opt;
  // Signed, so that "-1" is a value to refuse rather than a huge unsigned one.
  const tierfs::TierLimits defaults;
  int64_t threads = opt.max_threads, max_moves = defaults.max_moves;
  int64_t snapshot_keep = opt.snapshot_keep;
  int64_t move_mib = int64_t(defaults.move_bytes_per_sec >> 20);
  std::string high = Percent(defaults.watermarks.high), low = Percent(defaults.watermarks.low);
  std::string check_policy, dry_run, metrics, write_estimate = "1G";
  // Sizes are read as text: "4M" as well as 4194304 (SizeInRange).
  std::string map_size, audit_max = std::to_string(opt.audit_max_bytes);
  std::string log_file_size = std::to_string(kLogFileBytes);
  bool cached_writes = false, no_passthrough = false, no_verify_reads = false, no_acl = false;
  bool no_io_uring = false;
  po::options_description desc(kUsage);
  // clang-format off
  desc.add_options()
      ("help,h", "print this help and exit")
      ("version", "print the version and exit")
      ("ssd", po::value(&opt.ssd_dir)->value_name("DIR"),
       "existing directory of the SSD (cache) tier")
      ("hdd", po::value(&opt.hdd_dir)->value_name("DIR"),
       "existing directory of the HDD (capacity) tier: another than the SSD tier's, and "
       "neither inside the other")
      ("state", po::value(&opt.state_dir)->value_name("DIR"),
       "where the LMDB namespace lives (default: SSD_DIR/state)")
      ("policy", po::value(&opt.policy_file)->value_name("FILE"), "policy file (TOML)")
      ("namespace", po::value(&opt.namespace_name)->value_name("NAME"),
       "name of this tree's directory on each tier (TIER/ns/NAME; default: random, chosen "
       "when the state is created); mounts that share a tier need different names")
      ("foreground,f", po::bool_switch(&opt.foreground),
       "stay in the foreground, log to stderr (else to STATE/tierfs.log)")
      ("options,o", po::value<std::vector<std::string>>()->value_name("OPT[,OPT...]"),
       "mount options: FUSE's (allow_other, ro, noatime, ...), any long option above as "
       "name=value or name (state=DIR, ssd=DIR, writeback-cache); mount(8)'s own (noauto, "
       "_netdev, x-systemd.*, comment=...) are ignored")
      ("threads", po::value(&threads)->value_name("N")->default_value(threads),
       "most worker threads serving requests (1-4096)")
      ("move-bandwidth", po::value(&move_mib)->value_name("MiB/s")->default_value(move_mib),
       "bandwidth all moves between tiers share (0: unlimited)")
      ("max-moves", po::value(&max_moves)->value_name("N")->default_value(max_moves),
       "moves between tiers that run at once (1-1024)")
      ("ssd-high-watermark", po::value(&high)->value_name("FRACTION")->default_value(high),
       "evict least recently used files to hdd when the ssd tier is fuller than this")
      ("ssd-low-watermark", po::value(&low)->value_name("FRACTION")->default_value(low),
       "...until it is below this")
      ("scan-interval", po::value(&opt.scan_interval_s)->value_name("SECONDS")
           ->default_value(opt.scan_interval_s),
       "how often the policy engine scans the tree (also soon after every rename)")
      ("writeback-cache", po::bool_switch(&opt.writeback_cache),
       "let the kernel buffer writes: faster small writes, slower concurrent large ones")
      ("cached-writes", po::bool_switch(&cached_writes),
       "send write-only opens through the kernel page cache too (default: direct, faster)")
      ("no-passthrough", po::bool_switch(&no_passthrough),
       "serve read-only and read-write opens in tierfs (default: the kernel reads and writes "
       "the tier itself)")
      ("no-io-uring", po::bool_switch(&no_io_uring),
       "take requests through read(2) and writev(2) on /dev/fuse (default: FUSE over io_uring "
       "where the kernel has it, kernel 6.14+; the daemon turns the fuse module's enable_uring "
       "on)")
      ("write-estimate", po::value(&write_estimate)->value_name("SIZE")
           ->default_value(write_estimate),
       "room a read-write writer is promised on the ssd tier when no file of its shape was "
       "written before (passthrough needs it free; else writes go through tierfs)")
      ("no-verify-reads", po::bool_switch(&no_verify_reads),
       "serve reads of HDD-resident files unverified (default: each 1 MiB block is checked "
       "against its recorded checksum, a mismatch is EIO)")
      ("verify-reads", po::value(&opt.verify_reads)->value_name("0|1")->default_value(true),
       "the same as a mount option: verify_reads=0 is --no-verify-reads")
      ("no-acl", po::bool_switch(&no_acl),
       "refuse POSIX ACLs (system.posix_acl_*: EOPNOTSUPP), as a noacl mount does (default: "
       "stored with the inode and enforced by the kernel, as on ext4)")
      ("acl", po::value(&opt.acl)->value_name("0|1")->default_value(true),
       "the same as a mount option: acl=0 (or noacl) is --no-acl")
      ("metrics", po::value(&metrics)->value_name("[ADDR:]PORT"),
       "serve Prometheus metrics at http://ADDR:PORT/metrics (ADDR: 127.0.0.1 unless given; "
       "off by default)")
      ("snapshot-interval", po::value(&opt.snapshot_interval_s)->value_name("SECONDS")
           ->default_value(opt.snapshot_interval_s),
       "copy the state (LMDB) to HDD_DIR/ns/NAME/meta this often and after every policy "
       "(re)load, for `tierfs recover` (0: never)")
      ("snapshot-keep", po::value(&snapshot_keep)->value_name("N")->default_value(snapshot_keep),
       "how many of those snapshots to keep (1-1000)")
      ("map-size", po::value(&map_size)->value_name("SIZE"),
       "most the LMDB state may hold (default 64GiB, sparse; at least 1M)")
      ("audit-max-bytes", po::value(&audit_max)->value_name("SIZE"),
       "rotate the audit journal to audit.jsonl.N once it holds this much; the hash chain "
       "goes on in the new file (default 256MiB; 0: never; else at least 1KiB)")
      ("check-policy", po::value(&check_policy)->value_name("FILE"),
       "validate a policy file and exit (0: valid; 1: errors as file:line:column: reason)")
      ("print-default-policy", "print the built-in policy as a file to start from, and exit")
      ("dry-run", po::value(&dry_run)->value_name("MOUNTPOINT"),
       "print what the running policy would do now to a mounted tree, rule by rule, and exit");
  // clang-format on
  po::options_description hidden;
  // Tests only (tierfs(8), TESTING): fails chosen system calls of a tier.
  std::vector<std::string> positional;
  hidden.add_options()("positional", po::value(&positional))(
      "inject-fault", po::value(&opt.inject_faults)->value_name("TIER:OP:N[+]:ERRNO"))(
      "control-idle-timeout", po::value(&opt.control_idle_timeout_s)->value_name("SECONDS"))(
      "log-file-size", po::value(&log_file_size)->value_name("SIZE"));
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  pos.add("positional", -1);
  // -o items are sorted out first (fs/mount_args.h): long options become
  // --name=value, the FUSE ones go to the kernel mount.
  tierfs::SplitArgs split;
  tierfs::Status split_st = tierfs::SplitMountOptions(
      std::vector<std::string>(argv + 1, argv + argc),
      [&desc](const std::string& name, bool* takes_value) {
        const po::option_description* d = desc.find_nothrow(name, false, false, false);
        if (d) *takes_value = d->semantic()->max_tokens() > 0;
        return d != nullptr;
      },
      &split);
  if (!split_st.ok()) return BadOption(split_st.message());
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(split.args).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return BadOption(e.what());
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (vm.count("version")) {
    std::cout << "tierfs " << tierfs::kVersion << "\n";
    return 0;
  }
  if (vm.count("print-default-policy")) {
    std::cout << tierfs::DefaultPolicyText();
    return 0;
  }
  if (vm.count("check-policy")) return CheckPolicy(check_policy);
  if (vm.count("dry-run")) return DryRun(dry_run);
  if (positional.size() > 2) return BadOption("unexpected argument " + positional[2]);
  if (positional.size() == 2) {
    // mount(8) passes a source the tiers given as options make meaningless
    // ("tierfs", "none"); a directory there is a second mountpoint typed by
    // mistake, and mounting the last one alone would hide the slip.
    std::error_code ec;
    if (positional[0].find(':') == std::string::npos &&
        std::filesystem::is_directory(positional[0], ec))
      return BadOption("unexpected argument " + positional[0] +
                       ": give one MOUNTPOINT (the tiers are --ssd and --hdd, or SSD_DIR:HDD_DIR)");
    tierfs::Status st = tierfs::ParseMountSource(positional[0], &opt.ssd_dir, &opt.hdd_dir);
    if (!st.ok()) return BadOption(st.message());
  }
  if (!positional.empty()) opt.mountpoint = positional.back();
  if (opt.ssd_dir.empty()) return BadOption("--ssd DIR is required");
  if (opt.hdd_dir.empty()) return BadOption("--hdd DIR is required");
  if (opt.mountpoint.empty()) return BadOption("MOUNTPOINT is required");
  // The daemon changes to / once in the background, so a relative tier,
  // state or policy path would name another directory from then on.
  for (std::string* path :
       {&opt.ssd_dir, &opt.hdd_dir, &opt.state_dir, &opt.policy_file, &opt.mountpoint}) {
    if (!path->empty() && (*path)[0] != '/') *path = std::filesystem::absolute(*path).string();
  }
  std::string range_err;
  if (!InRange("threads", threads, 1, 4096, &range_err) ||
      !InRange("max-moves", max_moves, 1, 1024, &range_err) ||
      !InRange("snapshot-keep", snapshot_keep, 1, 1000, &range_err) ||
      !InRange("move-bandwidth", move_mib, 0, int64_t(1) << 30, &range_err))
    return BadOption(range_err);
  opt.max_threads = unsigned(threads);
  opt.snapshot_keep = unsigned(snapshot_keep);
  if (!(opt.snapshot_interval_s >= 0) || !(opt.snapshot_interval_s <= 365 * 86400.0))
    return BadOption("--snapshot-interval must be from 0 to 31536000 seconds");
  if (!vm["max-moves"].defaulted()) opt.max_moves = unsigned(max_moves);
  if (!vm["move-bandwidth"].defaulted()) opt.move_bytes_per_sec = uint64_t(move_mib) << 20;
  // At most a year: the interval becomes nanoseconds in an int64_t.
  if (!(opt.scan_interval_s > 0) || !(opt.scan_interval_s <= 365 * 86400.0))
    return BadOption("--scan-interval must be more than 0 and at most 31536000 seconds");
  uint64_t log_file_bytes = 0;
  if (!SizeInRange("log-file-size", log_file_size, 1024, uint64_t(1) << 40, &log_file_bytes,
                   &range_err))
    return BadOption(range_err);
  if (!(opt.control_idle_timeout_s >= 0.1) || !(opt.control_idle_timeout_s <= 3600))
    return BadOption("--control-idle-timeout must be from 0.1 to 3600 seconds");
  opt.direct_writes = !cached_writes;
  if (!SizeInRange("write-estimate", write_estimate, 0, UINT64_MAX, &opt.write_estimate,
                   &range_err))
    return BadOption(range_err);
  if (no_verify_reads) opt.verify_reads = false;
  if (no_acl) opt.acl = false;
  if (no_io_uring) opt.io_uring = false;
  // Passthrough reads bypass the tiers' Io, where injected faults live.
  opt.passthrough = !no_passthrough && opt.inject_faults.empty();
  if (!SizeInRange("audit-max-bytes", audit_max, 0, UINT64_MAX, &opt.audit_max_bytes, &range_err))
    return BadOption(range_err);
  if (opt.audit_max_bytes != 0 && opt.audit_max_bytes < 1024)
    return BadOption("--audit-max-bytes " + audit_max +
                     " must be 0 (never rotate) or at least 1 KiB (1024 bytes)");
  if (vm.count("map-size")) {
    uint64_t bytes = 0;
    if (!SizeInRange("map-size", map_size, 1 << 20, SIZE_MAX, &bytes, &range_err))
      return BadOption(range_err);
    opt.map_size = size_t(bytes);
  }
  if (vm.count("metrics")) {
    tierfs::Status mst =
        tierfs::ParseMetricsAddress(metrics, &opt.metrics_address, &opt.metrics_port);
    if (!mst.ok()) return BadOption(mst.message());
  }
  std::string why;
  tierfs::Watermarks marks;
  if (!tierfs::ParseFraction(high, &marks.high, &why))
    return BadOption("--ssd-high-watermark: " + why);
  if (!tierfs::ParseFraction(low, &marks.low, &why))
    return BadOption("--ssd-low-watermark: " + why);
  if (marks.low >= marks.high)
    return BadOption("--ssd-low-watermark (" + low + ") must be below --ssd-high-watermark (" +
                     high + ")");
  if (!vm["ssd-high-watermark"].defaulted() || !vm["ssd-low-watermark"].defaulted())
    opt.watermarks = marks;
  if (!opt.policy_file.empty() && access(opt.policy_file.c_str(), R_OK) != 0)
    return Fail("policy file " + opt.policy_file + ": " + strerror(errno));
  for (const auto& o : split.fuse_options) {
    if (o.rfind("max_read=", 0) == 0) {  // Serve passes it; Init must repeat it (libfuse)
      const std::string v = o.substr(9);
      char* end = nullptr;
      errno = 0;
      const unsigned long n = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || !std::isdigit(static_cast<unsigned char>(v[0])) || *end != '\0' ||
          errno != 0 || n < 4096 || n > (1ul << 20))
        return BadOption("mount option max_read=" + v +
                         ": want a number of bytes from 4096 to 1048576");
      opt.max_read = uint32_t(n);
      continue;
    }
    if (o == "ro") opt.read_only = true;
    if (o == "rw") opt.read_only = false;
    opt.mount_options += (opt.mount_options.empty() ? "" : ",") + o;
  }

  if (!opt.foreground) return Daemonize(opt, size_t(log_file_bytes));
  tierfs::Status st = tierfs::Serve(opt, [](const tierfs::Status&) {});
  if (!st.ok()) return Fail(st.message());
  return 0;
}

#include "fs/mount_args.h"

#include <algorithm>
#include <string_view>

namespace tierfs {

namespace {

// What libfuse 3.14's mount code (lib/mount.c, fuse_mount_opts and
// mount_flags) takes; "NAME=" takes a value.
constexpr std::string_view kFuseOptions[] = {
    "allow_other",  "allow_root",  "auto_unmount",  "blkdev",     "default_permissions",
    "max_read=",    "blksize=",    "context=",      "fscontext=", "defcontext=",
    "rootcontext=", "fsname=",     "subtype=",      "user=",      "ro",
    "rw",           "suid",        "nosuid",        "dev",        "nodev",
    "exec",         "noexec",      "async",         "sync",       "dirsync",
    "atime",        "noatime",     "diratime",      "nodiratime", "relatime",
    "norelatime",   "strictatime", "nostrictatime", "lazytime",   "nolazytime",
    "symfollow",    "nosymfollow", "debug"};

// Read by mount(8), systemd's fstab generator or the admin alone: the
// kernel and libfuse do not know them, so they are dropped (libfuse's own
// mount.fuse3 drops the same).
constexpr std::string_view kMountOnly[] = {"defaults", "auto",  "noauto", "user",    "nouser",
                                           "users",    "owner", "group",  "_netdev", "nofail"};

// Long options that make no sense in a mount's option list.
constexpr std::string_view kNotMountOptions[] = {
    "help", "version", "options", "check-policy", "print-default-policy", "dry-run", "mountpoint"};

template <size_t N>
bool In(const std::string_view (&list)[N], std::string_view s) {
  return std::find(std::begin(list), std::end(list), s) != std::end(list);
}

Status SortOne(std::string item, const LongOptionLookup& is_option, SplitArgs* out) {
  // ext4's spelling in fstab: POSIX ACLs on (tierfs's default) or off.
  if (item == "acl") return Status::Ok();
  if (item == "noacl") item = "no-acl";
  const size_t eq = item.find('=');
  std::string name = item.substr(0, eq);
  // fstab spells options with underscores (verify_reads=0): a long option
  // of that name with dashes is meant.
  if (bool ignored; name.find('_') != std::string::npos && !is_option(name, &ignored)) {
    std::string dashed = name;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    if (is_option(dashed, &ignored)) {
      item.replace(0, name.size(), dashed);
      name = dashed;
    }
  }
  const bool has_value = eq != std::string::npos;
  bool takes_value = false;
  if (!In(kNotMountOptions, name) && is_option(name, &takes_value)) {
    if (takes_value && !has_value)
      return Status::Error(EINVAL, "mount option " + name + " needs a value (" + name + "=...)");
    if (!takes_value && has_value)
      return Status::Error(EINVAL, "mount option " + name + " takes no value (" + item + ")");
    out->args.push_back("--" + item);
    return Status::Ok();
  }
  if (In(kFuseOptions, has_value ? name + "=" : name)) {
    out->fuse_options.push_back(item);
    return Status::Ok();
  }
  if (In(kMountOnly, item) || name == "comment" || name.rfind("x-", 0) == 0) return Status::Ok();
  return Status::Error(EINVAL, "unknown mount option '" + item + "'");
}

Status SortList(const std::string& list, const LongOptionLookup& is_option, SplitArgs* out) {
  for (size_t start = 0; start <= list.size();) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    const std::string item = list.substr(start, comma - start);
    if (!item.empty()) {
      Status st = SortOne(item, is_option, out);
      if (!st.ok()) return st;
    }
    start = comma + 1;
  }
  return Status::Ok();
}

}  // namespace

Status SplitMountOptions(const std::vector<std::string>& argv, const LongOptionLookup& is_option,
                         SplitArgs* out) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    std::string list;
    bool takes_value = false;
    if (a.rfind("--", 0) == 0 && a.find('=') == std::string::npos && a != "--options" &&
        is_option(a.substr(2), &takes_value) && takes_value && i + 1 < argv.size()) {
      // "--namespace -o": the next argument is the value, whatever it looks
      // like; the option parser judges it.
      out->args.push_back(a);
      out->args.push_back(argv[++i]);
      continue;
    }
    if (a == "-o" || a == "--options") {
      if (i + 1 == argv.size()) return Status::Error(EINVAL, a + " needs a list of options");
      list = argv[++i];
    } else if (a.rfind("--options=", 0) == 0) {
      list = a.substr(10);
    } else if (a.rfind("-o", 0) == 0 && a.size() > 2) {
      list = a.substr(2);
    } else {
      out->args.push_back(a);
      continue;
    }
    Status st = SortList(list, is_option, out);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

Status ParseMountSource(const std::string& source, std::string* ssd_dir, std::string* hdd_dir) {
  const size_t colon = source.find(':');
  if (colon == std::string::npos) {
    if (!ssd_dir->empty() && !hdd_dir->empty()) return Status::Ok();
    return Status::Error(EINVAL,
                         "source " + source + " is not SSD_DIR:HDD_DIR (or give ssd=DIR,hdd=DIR)");
  }
  if (!ssd_dir->empty() || !hdd_dir->empty())
    return Status::Error(EINVAL, "source " + source + " and --ssd/--hdd both name the tiers");
  *ssd_dir = source.substr(0, colon);
  *hdd_dir = source.substr(colon + 1);
  if (ssd_dir->empty() || hdd_dir->empty())
    return Status::Error(EINVAL, "source " + source + " is not SSD_DIR:HDD_DIR");
  return Status::Ok();
}

}  // namespace tierfs

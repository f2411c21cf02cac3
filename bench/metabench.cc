// metabench: metadata micro-benchmark for `make bench`.
//
// Usage: metabench DIR [NFILES] [NDIRS]
//
// Creates NDIRS subdirectories of DIR (untimed), then times four passes over
// NFILES empty files spread evenly over them:
//   create: open(O_CREAT|O_EXCL|O_WRONLY) + close
//   stat:   stat() of every file, done twice; the second (warm) pass is reported
//   list:   what `ls -l` and `du` do: readdir of every directory and
//           fstatat of every entry, after sync and drop_caches (as root;
//           list_cold=0 when the caches could not be dropped)
//   unlink: unlink() of every file
// and removes the subdirectories (untimed). Prints one `key=value` per line,
// rates in operations per second, so a shell script can parse it with awk.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Prints what failed and exits: a partial run must not report a rate.
[[noreturn]] void Die(const char* what, const std::string& path) {
  std::fprintf(stderr, "metabench: %s %s: %s\n", what, path.c_str(), std::strerror(errno));
  std::exit(1);
}

// Runs op(path) for every path and returns operations per second.
template <typename Op>
double TimePass(const std::vector<std::string>& paths, Op op) {
  const auto start = Clock::now();
  for (const std::string& path : paths) op(path);
  const std::chrono::duration<double> secs = Clock::now() - start;
  return static_cast<double>(paths.size()) / secs.count();
}

// Lists every directory and stats every entry; returns entries per second.
double TimeListing(const std::vector<std::string>& dirs) {
  long entries = 0;
  const auto start = Clock::now();
  for (const std::string& dir : dirs) {
    DIR* d = opendir(dir.c_str());
    if (!d) Die("opendir", dir);
    while (const dirent* e = readdir(d)) {
      if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
        continue;
      struct stat st;
      if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) Die("stat", e->d_name);
      ++entries;
    }
    closedir(d);
  }
  const std::chrono::duration<double> secs = Clock::now() - start;
  return static_cast<double>(entries) / secs.count();
}

// Drops the kernel's caches (dentries, inodes, pages); false when not root.
bool DropCaches() {
  sync();
  const int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, "3", 1) == 1;
  close(fd);
  return ok;
}

long ParseCount(const char* arg, const char* name) {
  char* end = nullptr;
  const long value = std::strtol(arg, &end, 10);
  if (*end != '\0' || value <= 0) {
    std::fprintf(stderr, "metabench: bad %s: %s\n", name, arg);
    std::exit(2);
  }
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr, "usage: %s DIR [NFILES=20000] [NDIRS=20]\n", argv[0]);
    return 2;
  }
  const std::string root = argv[1];
  const long nfiles = argc > 2 ? ParseCount(argv[2], "NFILES") : 20000;
  const long ndirs = argc > 3 ? ParseCount(argv[3], "NDIRS") : 20;

  // Build every path up front so string formatting is not timed.
  std::vector<std::string> dirs;
  for (long d = 0; d < ndirs; ++d) dirs.push_back(root + "/d" + std::to_string(d));
  std::vector<std::string> files;
  files.reserve(nfiles);
  // Consecutive runs of per_dir files share a directory (1000 each by default).
  const long per_dir = (nfiles + ndirs - 1) / ndirs;
  for (long i = 0; i < nfiles; ++i) files.push_back(dirs[i / per_dir] + "/f" + std::to_string(i));

  for (const std::string& dir : dirs) {
    if (mkdir(dir.c_str(), 0755) != 0) Die("mkdir", dir);
  }

  const double creates = TimePass(files, [](const std::string& path) {
    const int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) Die("create", path);
    if (close(fd) != 0) Die("close", path);
  });

  auto stat_one = [](const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) Die("stat", path);
  };
  const double stats_cold = TimePass(files, stat_one);
  const double stats_warm = TimePass(files, stat_one);
  const bool cold = DropCaches();
  const double listing = TimeListing(dirs);

  const double unlinks = TimePass(files, [](const std::string& path) {
    if (unlink(path.c_str()) != 0) Die("unlink", path);
  });

  for (const std::string& dir : dirs) {
    if (rmdir(dir.c_str()) != 0) Die("rmdir", dir);
  }

  std::printf("files=%ld\ndirs=%ld\n", nfiles, ndirs);
  std::printf("create_per_s=%.0f\n", creates);
  std::printf("stat_first_per_s=%.0f\n", stats_cold);
  std::printf("stat_warm_per_s=%.0f\n", stats_warm);
  std::printf("list_per_s=%.0f\nlist_cold=%d\n", listing, cold ? 1 : 0);
  std::printf("unlink_per_s=%.0f\n", unlinks);
  return 0;
}

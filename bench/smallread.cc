// smallread: the data-loader pattern for `make bench`: many small files,
// each opened, read whole and closed by a pool of loader threads.
//
// Usage: smallread write DIR FILES     (lays the files out, then syncs)
//        smallread read DIR FILES THREADS
//
// File i is DIR/d<i % 32>/f<i>, of 4 KiB to 128 KiB (a fixed pseudo-random
// size per i, so every target gets the same set). `read` visits them in a
// shuffled order, as a sampler does, and prints `files_per_s=` and
// `mib_per_s=`. The caller drops the caches between the two.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kDirs = 32;

size_t SizeOf(long i) {
  // 4 KiB .. 128 KiB in 4 KiB steps, spread by a multiplicative hash.
  return size_t((uint64_t(i) * 2654435761u >> 7) % 32 + 1) * 4096;
}

std::string PathOf(const std::string& dir, long i) {
  return dir + "/d" + std::to_string(i % kDirs) + "/f" + std::to_string(i);
}

int Write(const std::string& dir, long files) {
  std::vector<char> buf(128 << 10, 'x');
  for (int d = 0; d < kDirs; ++d) mkdir((dir + "/d" + std::to_string(d)).c_str(), 0755);
  for (long i = 0; i < files; ++i) {
    int fd = open(PathOf(dir, i).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, buf.data(), SizeOf(i)) != ssize_t(SizeOf(i)) || close(fd) != 0) {
      std::fprintf(stderr, "smallread: writing %s: %s\n", PathOf(dir, i).c_str(),
                   std::strerror(errno));
      return 1;
    }
  }
  sync();
  return 0;
}

int Read(const std::string& dir, long files, int threads) {
  std::vector<long> order(files);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(42));
  std::atomic<long> next{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<int> failed{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      std::vector<char> buf(128 << 10);
      for (long k; (k = next.fetch_add(1)) < files;) {
        int fd = open(PathOf(dir, order[k]).c_str(), O_RDONLY | O_CLOEXEC);
        ssize_t got = fd < 0 ? -1 : read(fd, buf.data(), buf.size());
        if (fd >= 0) close(fd);
        if (got != ssize_t(SizeOf(order[k]))) {
          failed++;
          continue;
        }
        bytes += uint64_t(got);
      }
    });
  for (auto& t : pool) t.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (failed > 0) {
    std::fprintf(stderr, "smallread: %d files could not be read whole\n", failed.load());
    return 1;
  }
  std::printf("files_per_s=%.1f\nmib_per_s=%.1f\n", files / secs, bytes / secs / (1 << 20));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if ((mode == "write" && argc == 4) || (mode == "read" && argc == 5)) {
    const long files = std::atol(argv[3]);
    if (files > 0)
      return mode == "write" ? Write(argv[2], files) : Read(argv[2], files, std::atoi(argv[4]));
  }
  std::fprintf(stderr, "usage: smallread write DIR FILES | smallread read DIR FILES THREADS\n");
  return 2;
}

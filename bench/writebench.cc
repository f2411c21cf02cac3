// writebench: checkpoint-style writers for `make bench`.
//
// Usage: writebench DIR WRITERS MIB_EACH
//
// Starts WRITERS threads at once; each writes DIR/shard.<i> the way
// torch.save or safetensors write a checkpoint shard: open(O_WRONLY |
// O_CREAT | O_TRUNC), MIB_EACH writes of 1 MiB, fsync, close. Prints
// `mib_per_s=` of all bytes over the time from the start to the last
// writer's close (fsync included), and leaves the files for the caller.
// (fio opens O_RDWR, which is not how checkpoint writers open files.)
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

// 0, or the errno of the first failure.
int WriteShard(const std::string& path, long mib, const std::vector<char>& block) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  int err = 0;
  for (long i = 0; err == 0 && i < mib; ++i)
    if (write(fd, block.data(), block.size()) != ssize_t(block.size())) err = errno ? errno : EIO;
  if (err == 0 && fsync(fd) != 0) err = errno;
  if (close(fd) != 0 && err == 0) err = errno;
  return err;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: writebench DIR WRITERS MIB_EACH\n");
    return 2;
  }
  const std::string dir = argv[1];
  const int writers = std::atoi(argv[2]);
  const long mib = std::atol(argv[3]);
  if (writers < 1 || mib < 1) {
    std::fprintf(stderr, "writebench: WRITERS and MIB_EACH must be positive\n");
    return 2;
  }
  // Not zeros: a tier that compresses or dedups must not get an easy ride.
  std::vector<char> block(1 << 20);
  uint64_t x = 0x9e3779b97f4a7c15;
  for (char& c : block) c = char((x = x * 6364136223846793005 + 1442695040888963407) >> 56);

  std::vector<std::thread> threads;
  std::vector<int> err(size_t(writers), 0);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < writers; ++i)
    threads.emplace_back(
        [&, i] { err[i] = WriteShard(dir + "/shard." + std::to_string(i), mib, block); });
  for (std::thread& t : threads) t.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (int i = 0; i < writers; ++i) {
    if (err[i] != 0) {
      std::fprintf(stderr, "writebench: writing %s/shard.%d failed: %s\n", dir.c_str(), i,
                   std::strerror(err[i]));
      return 1;
    }
  }
  std::printf("mib_per_s=%.1f\n", double(writers) * double(mib) / secs);
  return 0;
}

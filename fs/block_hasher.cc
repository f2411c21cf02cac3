#include "fs/block_hasher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>

#include "fs/object_attrs.h"
#include "meta/block_sums.h"

namespace tierfs {

void BlockHasher::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!stop_) return;
  stop_ = false;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void BlockHasher::Stop() {
  stopping_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    queue_.clear();
    queued_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BlockHasher::Enqueue(uint64_t ino, uint64_t epoch, std::optional<StreamedSums> streamed,
                          bool passthrough_writer) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    // Already queued: the job checks against the older epoch, which a write
    // since would fail; keep the newer one so the rested file is hashed.
    if (!queued_.insert(ino).second) {
      for (Job& j : queue_)
        if (j.ino == ino) {
          j.epoch = epoch;
          j.streamed = std::move(streamed);
          j.passthrough_writer = j.passthrough_writer || passthrough_writer;
        }
      return;
    }
    wake = queue_.empty();  // else the thread is up, or already told
    queue_.push_back({ino, epoch, std::move(streamed), passthrough_writer});
  }
  if (wake) cv_.notify_one();
}

namespace {

// How long the hasher lets releases gather once the first wakes it: a
// storm of small files (each create's close is a release) woke it once a
// file, a thread switch each on the creating CPU's neighbour.
constexpr std::chrono::milliseconds kGather{1};

}  // namespace

void BlockHasher::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  bool told_full = false;  // a full state is said once, not once per file
  while (true) {
    if (queue_.empty()) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      cv_.wait_for(lock, kGather, [&] { return stop_; });
    }
    if (stop_) return;
    const Job job = std::move(queue_.front());
    queue_.pop_front();
    queued_.erase(job.ino);
    lock.unlock();
    if (job.passthrough_writer && StillMappedForWriting(job.ino)) {
      lock.lock();
      continue;
    }
    Status st = HashNow(job.ino, job.epoch, job.streamed ? &*job.streamed : nullptr);
    if (st.err() == ENOSPC) {
      if (!told_full)
        spdlog::warn(
            "block checksums not recorded while the state is full (such files are "
            "served unverified): {}",
            st.message());
      told_full = true;
    } else if (!st.ok() && st.err() != ESTALE && st.err() != ENOENT) {
      spdlog::warn("block checksums of inode {}: {}", job.ino, st.message());
    }
    if (st.ok()) told_full = false;
    lock.lock();
  }
}

bool BlockHasher::StillMappedForWriting(uint64_t ino) {
  Inode n;
  if (!store_.GetInode(ino, &n).ok() || !n.is_reg() || n.nlink == 0) return false;
  // Also a handle's backing file the kernel has not let go of yet: it
  // drops it a moment after the release (a deferred fput; a third of the
  // releases here needed a second look 200 us later). Asked over 20 ms.
  const Tier& tier = tiers_[n.tier];
  for (int look = 0; tier.WritableElsewhere(ino); ++look) {
    if (look == 20) {
      const Status st = store_.Update(
          ino,
          [](Inode& i) {
            i.ForgetObjectAttrs();
            return Status::Ok();
          },
          nullptr);
      const std::string path = table_.KnownPath(ino);
      spdlog::info(
          "{} (inode {}) is still open for writing after its last close (a shared mapping): "
          "not hashed, and not moved while it is{}",
          path.empty() ? tier.ObjectPath(ino) : path, ino,
          st.ok() ? "" : "; its recorded attributes stand: " + st.message());
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

// Reads the object of `n` through and hashes it into `summer`.
Status BlockHasher::ReadAndSum(const Inode& n, BlockSummer* summer) {
  const Tier& tier = tiers_[n.tier];
  const uint64_t ino = n.ino;
  Status st;
  int fd = tier.OpenObject(ino, O_RDONLY, &st);
  struct stat before {};
  if (fd >= 0) {
    std::vector<char> buf(kSumBlockBytes);
    if (fstat(fd, &before) != 0) st = Status::Errno(errno, "stat " + tier.ObjectPath(ino));
    // A size LMDB does not record yet is a write still to be released.
    if (st.ok() && uint64_t(before.st_size) != n.size)
      st = Status::Error(ESTALE, tier.ObjectPath(ino) + " is not the size recorded");
    for (uint64_t off = 0; st.ok() && off < n.size;) {
      if (stopping_.load(std::memory_order_relaxed)) {
        st = Status::Error(ECANCELED, tier.ObjectPath(ino) + ": unmounting");
        break;
      }
      const size_t want = size_t(std::min<uint64_t>(kSumBlockBytes, n.size - off));
      const ssize_t got = tier.io().Pread(fd, buf.data(), want, off_t(off));
      if (got < 0) {
        st = Status::Errno(int(-got), "read " + tier.ObjectPath(ino));
      } else if (got == 0) {
        st = Status::Error(ESTALE, tier.ObjectPath(ino) + " shrank while it was hashed");
      } else {
        summer->Update(buf.data(), size_t(got));
        off += uint64_t(got);
      }
    }
    struct stat after {};
    if (st.ok() && fstat(fd, &after) == 0 &&
        (after.st_size != before.st_size ||
         TimespecNs(after.st_mtim) != TimespecNs(before.st_mtim)))
      st = Status::Error(ESTALE, tier.ObjectPath(ino) + " changed while it was hashed");
    close(fd);
    return st;
  }
  if (st.err() != ENOENT || n.size != 0)
    return st.ok() ? Status::Error(EIO, "no object")
                   : st;  // a lost object is not ours to vouch for
  return Status::Ok();
}

Status BlockHasher::HashNow(uint64_t ino, uint64_t epoch, const StreamedSums* streamed) {
  Inode n;
  Status st = store_.GetInode(ino, &n);
  if (!st.ok()) return st;
  if (!n.is_reg() || n.nlink == 0) return Status::Error(ENOENT, "inode is not a named file");
  const Tier& tier = tiers_[n.tier];
  if (n.tier == TierId::kHdd) {
    st = tier.CheckHealth();
    if (!st.ok()) return st;
  }
  // The writes' own sums, when they cover the file as recorded and as it
  // is on its tier (a write since would also fail the commit's checks).
  struct stat obj {};
  const Status found = tier.StatObject(ino, &obj);
  const bool use_streamed = streamed && streamed->bytes == n.size &&
                            (found.ok() ? uint64_t(obj.st_size) == n.size : n.size == 0);
  // The object's attributes go with the sums when it is as LMDB records it
  // (no object: an empty file); the commit's checks below then also vouch
  // that nothing changed it since. stat answers from them (meta/inode.h).
  const std::optional<Store::ObjectAttrs> attrs = AgreeingObjectAttrs(n, found, obj);
  BlockSummer summer;
  if (!use_streamed) {
    st = ReadAndSum(n, &summer);
    if (!st.ok()) return st;
  }
  std::vector<uint64_t> blocks;
  const uint64_t whole = use_streamed ? streamed->whole : summer.Finish(&blocks);
  if (use_streamed) blocks = streamed->blocks;
  st = store_.CommitSums(
      ino,
      [&](const Inode& now) {
        if (now.size != n.size || now.mtime_ns != n.mtime_ns || now.tier != n.tier ||
            now.nlink == 0 || (now.checksum != 0 && now.checksum != whole))
          return false;
        // Under LMDB's write lock: a writer's open clears the checksum in a
        // write transaction after it counted itself (the header's comment).
        std::shared_ptr<LiveState> live = table_.FindLive(ino);
        return !live || (live->writers.load() == 0 && live->last_write.load() <= epoch);
      },
      whole, blocks, attrs ? &*attrs : nullptr);
  if (st.ok()) recorded_.fetch_add(1);
  if (st.ok() && use_streamed) recorded_streamed_.fetch_add(1);
  if (st.ok() && n.tier == TierId::kHdd && on_hdd_recorded_) on_hdd_recorded_(ino, whole);
  return st;
}

}  // namespace tierfs

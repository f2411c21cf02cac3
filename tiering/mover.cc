// MoveObject: the steps of one move (see tiering/mover.h for the contract).
#include "tiering/mover.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "meta/xxh3.h"

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>

#include "tiering/identity.h"
#include "tiering/settle.h"
#include "tiering/uring_copy.h"

namespace tierfs {

const char* MoveStepName(MoveStep step) {
  switch (step) {
    case MoveStep::kNone:
      return "none";
    case MoveStep::kJournal:
      return "journal";
    case MoveStep::kCopy:
      return "copy";
    case MoveStep::kIdentity:
      return "identity";
    case MoveStep::kFsync:
      return "fsync";
    case MoveStep::kVerify:
      return "verify";
    case MoveStep::kRename:
      return "rename";
    case MoveStep::kCommit:
      return "commit";
    case MoveStep::kRemove:
      return "remove source";
    case MoveStep::kEnd:
      return "end journal";
  }
  return "?";
}

namespace {

struct Fd {
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  int fd = -1;
};

// Holds a slot of the shared throttle for the length of one move.
struct Slot {
  ~Slot() {
    if (throttle) throttle->Release();
  }
  MoveThrottle* throttle = nullptr;
};

// The source's identity and every field a write or truncate changes.
bool SameObject(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
         a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

class Move {
 public:
  Move(Store& store, const Tier& from, const Tier& to, uint64_t ino, const MoveOptions& opt,
       const std::function<bool()>& should_abort)
      : store_(store), from_(from), to_(to), ino_(ino), opt_(opt), abort_(should_abort) {
    prefix_ = "move of inode " + std::to_string(ino) + " " + from.name() + " -> " + to.name();
  }

  Status Run(MoveResult* result);

 private:
  Status Fail(MoveStep step, const Status& st) const {
    return Status::Error(st.err(), prefix_ + ": " + MoveStepName(step) + ": " + st.message());
  }
  // The test hook: true when the move must stop dead after `step`.
  bool Crash(MoveStep step, Status* out) {
    if (opt_.crash_after != step) return false;
    *out = Status::Error(EINTR, prefix_ + ": simulated crash after " + MoveStepName(step));
    return true;
  }
  bool Aborted() const { return abort_ && abort_(); }
  Status CopyToTarget(MoveResult* r, Status* crash);
  Status CheckSource(MoveStep step) const;
  Status CheckRecorded(uint64_t got, const std::vector<uint64_t>* blocks = nullptr) const;
  Status WriteIdentityOf(int fd, uint64_t checksum);
  Status Undo(const Status& why);

  Store& store_;
  const Tier& from_;
  const Tier& to_;
  const uint64_t ino_;
  const MoveOptions& opt_;
  const std::function<bool()>& abort_;
  std::string prefix_;
  bool has_source_ = false;
  struct stat source_ {};
};

Status Move::Run(MoveResult* result) {
  if (from_.id() == to_.id()) return Fail(MoveStep::kJournal, Status::Error(EINVAL, "same tier"));
  Slot slot;
  if (opt_.throttle) {
    if (!opt_.throttle->Acquire(abort_))
      return Fail(MoveStep::kJournal, Status::Error(ECANCELED, "aborted waiting for a move slot"));
    slot.throttle = opt_.throttle;
  }
  Store::MoveRecord rec;
  rec.ino = ino_;
  rec.from = from_.id();
  rec.to = to_.id();
  rec.started_ns = NowNs();
  // Not ours to undo on failure: EBUSY means another move's record.
  Status st = store_.BeginMove(rec);
  if (!st.ok()) return Fail(MoveStep::kJournal, st);
  // Synced so that even power loss cannot leave a temporary nobody knows of.
  st = store_.Sync();
  if (!st.ok()) return Undo(Fail(MoveStep::kJournal, st));
  if (Crash(MoveStep::kJournal, &st)) return st;

  MoveResult r;
  Status crash;
  st = CopyToTarget(&r, &crash);
  if (!crash.ok()) return crash;
  if (!st.ok()) return Undo(st);
  // The last guard, as late as possible: a write since the copy began means
  // the copy is stale, and the file must stay where the write went.
  {
    std::unique_lock<std::mutex> switching;
    if (opt_.switch_lock) switching = std::unique_lock<std::mutex>(*opt_.switch_lock);
    st = CheckSource(MoveStep::kVerify);
    if (st.ok()) {
      st = store_.CommitMove(ino_, to_.id(), r.checksum, &r.block_sums);
      if (!st.ok()) st = Fail(MoveStep::kCommit, st);
    }
  }
  if (!st.ok()) return Undo(st);
  // From here on the file lives on `to`; failures leave the record for
  // RecoverMoves instead of undoing. The switch must be durable before the
  // source goes, or power loss could name an object that no longer exists.
  st = store_.Sync();
  if (!st.ok()) return Fail(MoveStep::kCommit, st);
  if (Crash(MoveStep::kCommit, &st)) return st;
  if (opt_.committed) opt_.committed(r);
  st = from_.RemoveObject(ino_);
  // The removal must be durable before the record goes, or power loss would
  // bring back a source object nothing names and no recovery removes.
  if (st.ok()) st = SyncObjectDir(from_, ino_);
  if (!st.ok()) return Fail(MoveStep::kRemove, st);
  if (Crash(MoveStep::kRemove, &st)) return st;
  st = store_.EndMove(ino_);
  if (!st.ok()) return Fail(MoveStep::kEnd, st);
  if (result) *result = r;
  return Status::Ok();
}

// Steps copy, fsync, verify and rename. Sets `crash` when the test hook fired.
Status Move::CopyToTarget(MoveResult* r, Status* crash) {
  Status st;
  Fd in;
  in.fd = from_.OpenObject(ino_, O_RDONLY, &st);
  if (in.fd < 0) {
    if (st.err() != ENOENT) return Fail(MoveStep::kCopy, st);
    // No object: the file is empty and was never written. Switching the
    // placement is the whole move.
    r->checksum = XXH3_64bits(nullptr, 0);
    return CheckRecorded(r->checksum);
  }
  has_source_ = true;
  if (fstat(in.fd, &source_) != 0)
    return Fail(MoveStep::kCopy, Status::Errno(errno, "stat " + from_.ObjectPath(ino_)));
  const uint64_t size = uint64_t(source_.st_size);
  const std::string tmp = to_.TempPath(ino_);
  // O_DIRECT where the tier allows it: the copy then bypasses the page cache
  // (a moved file is cold, and each byte is copied by the CPU once, not
  // twice), fsync has little left to write, and the read-back below reads
  // the medium rather than the cache.
  Fd out;
  bool direct = true;
  out.fd = to_.OpenTemp(ino_, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, &st);
  if (out.fd < 0 && st.err() == EINVAL) {
    direct = false;
    out.fd = to_.OpenTemp(ino_, O_RDWR | O_CREAT | O_TRUNC, &st);
  }
  if (out.fd < 0) return Fail(MoveStep::kCopy, st);
  // Reserves the space up front: ENOSPC now, not after most of the copy, and
  // one contiguous extent on a rotating disk. Not for a sparse file: its
  // holes stay holes (CopyParams::skip_holes), and reserving them would
  // make a small file with a large size fill the tier, or fail to fit.
  const off_t first_hole = lseek(in.fd, 0, SEEK_HOLE);
  const bool sparse = first_hole >= 0 && uint64_t(first_hole) < size;
  const int prealloc = size > 0 && !sparse ? to_.io().Fallocate(out.fd, 0, 0, off_t(size)) : 0;
  if (prealloc != 0 && prealloc != -EOPNOTSUPP)
    return Fail(MoveStep::kCopy, Status::Errno(-prealloc, "preallocate " + tmp));

  CopyParams p;
  p.queue_depth = opt_.queue_depth;
  p.chunk_bytes = opt_.chunk_bytes;
  MoveThrottle local(opt_.max_bytes_per_sec, 0);
  p.throttle = opt_.throttle ? opt_.throttle : &local;
  p.should_abort = &abort_;
  p.src_name = from_.ObjectPath(ino_);
  p.dst_name = tmp;
  p.direct_out = direct;
  p.in_io = &from_.io();
  p.out_io = &to_.io();
  p.progress = opt_.progress;
  p.block_sums = &r->block_sums;
  p.skip_holes = true;
  st = CopyAndHash(in.fd, out.fd, size, p, &r->checksum);
  if (!st.ok()) return Fail(MoveStep::kCopy, st);
  st = CheckRecorded(r->checksum, &r->block_sums);
  if (!st.ok()) return st;
  r->bytes = size;
  if (Crash(MoveStep::kCopy, crash)) return *crash;

  // stat() of a file reports its object's mtime (fs/ FillStat): keep it.
  const struct timespec times[2] = {source_.st_atim, source_.st_mtim};
  if (futimens(out.fd, times) != 0)
    return Fail(MoveStep::kCopy, Status::Errno(errno, "set times of " + tmp));
  // Before the fsync, which makes it durable with the bytes; before the
  // commit, so that no object reaches the HDD tier without saying whose it is.
  st = WriteIdentityOf(out.fd, r->checksum);
  if (!st.ok()) return st;
  if (Crash(MoveStep::kIdentity, crash)) return *crash;
  const int synced = to_.io().Fsync(out.fd);
  if (synced != 0) return Fail(MoveStep::kFsync, Status::Errno(-synced, "fsync " + tmp));
  if (Crash(MoveStep::kFsync, crash)) return *crash;

  // Read back what landed: from the medium when the copy was direct, else
  // from the page cache (which catches a bad copy path, not media errors).
  // Not paced: the cap protects the source tier's foreground writes.
  CopyParams v;
  v.queue_depth = opt_.queue_depth;
  v.chunk_bytes = opt_.chunk_bytes;
  v.src_name = tmp;
  v.in_io = &to_.io();
  v.skip_holes = true;  // a hole in the copy reads as zeros: nothing to read
  uint64_t check = 0;
  st = ReadAndHash(out.fd, size, v, &check);
  if (!st.ok()) return Fail(MoveStep::kVerify, st);
  if (check != r->checksum) {
    char msg[96];
    std::snprintf(msg, sizeof msg, "checksum mismatch: source %016" PRIx64 ", copy %016" PRIx64,
                  r->checksum, check);
    return Fail(MoveStep::kVerify, Status::Error(EIO, msg + (" in " + tmp)));
  }
  if (Crash(MoveStep::kVerify, crash)) return *crash;

  st = to_.CommitTemp(ino_);
  if (!st.ok()) return Fail(MoveStep::kRename, st);
  if (Crash(MoveStep::kRename, crash)) return *crash;
  return Status::Ok();
}

// ECANCELED when a write arrived or the source object is no longer the one
// copied (written, truncated, replaced, created or removed meanwhile).
Status Move::CheckSource(MoveStep step) const {
  if (Aborted()) return Fail(step, Status::Error(ECANCELED, "aborted: the file was written"));
  struct stat now;
  Status st = from_.StatObject(ino_, &now);
  if (st.ok() && has_source_ && SameObject(source_, now)) return Status::Ok();
  if (st.err() == ENOENT && !has_source_) return Status::Ok();
  if (!st.ok() && st.err() != ENOENT) return Fail(step, st);
  return Fail(step, Status::Error(ECANCELED,
                                  "source " + from_.ObjectPath(ino_) + " changed during the copy"));
}

// A move never launders corruption: the source must still hash to the
// checksum the last move recorded (0: none; every write clears it), and a
// missing source is only an empty file's. EIO otherwise, unless the source
// changed during the copy (ECANCELED then: it was written, not damaged).
Status Move::CheckRecorded(uint64_t got, const std::vector<uint64_t>* blocks) const {
  Inode n;
  Status st = store_.GetInode(ino_, &n);
  if (!st.ok()) return Fail(MoveStep::kVerify, st);
  // The recorded block sums (when there are some for this checksum) name
  // the first bad block of a corrupt source.
  std::vector<uint64_t> recorded;
  size_t bad_block = SIZE_MAX;
  if (blocks && n.checksum != 0 && n.checksum != got && store_.GetBlockSums(ino_, &recorded).ok())
    for (size_t b = 0; b < recorded.size() && b < blocks->size(); ++b)
      if (recorded[b] != (*blocks)[b]) {
        bad_block = b;
        break;
      }
  char why[200] = "";
  if (!has_source_ && n.size > 0) {
    std::snprintf(why, sizeof why, "source object missing, the file has %" PRIu64 " bytes", n.size);
  } else if (n.checksum != 0 && n.checksum != got && bad_block != SIZE_MAX) {
    std::snprintf(why, sizeof why,
                  "source is corrupt at block %zu: xxh3 %016" PRIx64 " where %016" PRIx64
                  " was recorded; not moved",
                  bad_block, (*blocks)[bad_block], recorded[bad_block]);
  } else if (n.checksum != 0 && n.checksum != got) {
    std::snprintf(why, sizeof why,
                  "source is corrupt: xxh3 %016" PRIx64 " where the last move recorded %016" PRIx64
                  "; not moved",
                  got, n.checksum);
  }
  if (why[0] == 0) return Status::Ok();
  st = CheckSource(MoveStep::kVerify);
  if (!st.ok()) return st;
  return Fail(MoveStep::kVerify, Status::Error(EIO, why + (" in " + from_.ObjectPath(ino_))));
}

// Only an object on the capacity tier needs to describe itself (the SSD
// tier is what recovery does without).
Status Move::WriteIdentityOf(int fd, uint64_t checksum) {
  if (to_.id() != TierId::kHdd) return Status::Ok();
  Inode n;
  Status st = store_.GetInode(ino_, &n);
  if (!st.ok()) return Fail(MoveStep::kIdentity, st);
  ObjectIdentity id;
  st = IdentityFromStore(store_, n, to_.namespace_name(), opt_.path, uint64_t(source_.st_size),
                         TimespecNs(source_.st_mtim), checksum, &id);
  if (!st.ok()) return Fail(MoveStep::kIdentity, st);
  st = WriteIdentity(to_, ino_, fd, id, nullptr);
  return st.ok() ? st : Fail(MoveStep::kIdentity, st);
}

// Before the switch: removes what the move created and the record. If that
// fails, the record stays so that RecoverMoves retries the cleanup.
Status Move::Undo(const Status& why) {
  Status st = SettleMove(store_, from_, to_, ino_, /*repair=*/false);
  if (st.ok()) return why;
  return Status::Error(why.err(),
                       why.message() + "; cleanup failed, left to recovery: " + st.message());
}

}  // namespace

Status MoveObject(Store& store, const Tier& from, const Tier& to, uint64_t ino,
                  const MoveOptions& opt, const std::function<bool()>& should_abort,
                  MoveResult* result) {
  return Move(store, from, to, ino, opt, should_abort).Run(result);
}

}  // namespace tierfs

// create, open, read, release, fsync, lseek: the data path, with the
// writes that may spill in fs/ops_write.cc. Bytes go straight between the
// kernel and the inode's object on its tier; LMDB is touched only on
// create, open with O_TRUNC, release after writes, and fsync. Calls on an
// object go through its tier's Io (tiering/io.h), so a test can fail them.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <shared_mutex>
#include <vector>

#include "fs/delete_audit.h"
#include "fs/holds.h"
#include "fs/op_table.h"

namespace tierfs {

namespace {

// Replies to an open or create of handle `fh`, in the I/O mode AdmitHandle
// chose. Write-only descriptors (how torch.save, safetensors and DCP write a
// checkpoint) cannot be mmap'ed or read, so they give up nothing by
// bypassing the page cache: each write goes from the writer's own pages to
// the object, one copy less, with no page cache of ours to fill and flush
// (2-3x one writer's bandwidth here, about 2x for eight). The kernel keeps
// other descriptors' cached pages and mappings coherent with them.
// Whether a pin in force keeps inode `ino` on the HDD tier (tierctl pin
// --tier hdd, a rule's pin there): its writes go there too. A manual
// placement alone (setfattr, tierctl move) does not keep a file from being
// written: PromoteForWriting ends it.
bool PinnedOnHdd(Context& c, uint64_t ino) {
  Store::Hold h;
  return c.store().GetHold(ino, &h).ok() && !h.placement_only && h.tier == TierId::kHdd &&
         Holds::Active(h, NowNs());
}

// After a promotion: a manual placement on the HDD tier no longer says
// where the file is, and would keep every rule from moving it again (it
// would stay on the SSD tier for good, and be lost with it).
void EndPlacement(Context& c, uint64_t ino) {
  Store::Hold h;
  if (!c.store().GetHold(ino, &h).ok() || !h.placement_only) return;
  Status st = c.store().RemoveHold(ino);
  c.holds().Count();
  if (!st.ok()) spdlog::warn("inode {}: ending its manual placement on hdd: {}", ino, st.message());
}

// Returns false when the reply failed (the handle must go).
bool ReplyOpened(Context& c, fuse_req_t req, FileHandle* fh, fuse_file_info* fi,
                 const fuse_entry_param* entry, bool may_passthrough) {
  int backing_id = -1;
  const IoMode mode = c.handles().Admit(*fh, fi->flags, may_passthrough, &backing_id);
  auto unpromise = [&] {
    if (fh->promised) c.space().EndPromise(fh->ino);
    fh->promised = false;
  };
  if (mode != IoMode::kPassthrough) unpromise();  // its writes come here, and spill
  // A writer joining a file readers hold through passthrough writes where
  // tierfs cannot see it: set-ID bits go now, as its first write would
  // clear them (not for root, which has CAP_FSETID).
  if (mode == IoMode::kPassthrough && fh->writable && fuse_req_ctx(req)->uid != 0) {
    bool changed = false;
    Status st = c.KillSuidSgid(fh->ino, &changed);
    if (!st.ok()) spdlog::warn("clearing set-ID bits of a passthrough writer: {}", st.message());
    if (changed) c.session_io().InvalidateAttrs(fh->ino);
  }
  c.metrics().CountOpen((fi->flags & O_ACCMODE) != O_RDONLY,
                        mode == IoMode::kPassthrough ? OpenMode::kPassthrough
                        : mode == IoMode::kDirect    ? OpenMode::kDirect
                                                     : OpenMode::kPageCache);
  fi->fh = reinterpret_cast<uint64_t>(fh);
  if (mode == IoMode::kPassthrough) {
    // Read before the reply: once it is sent, a RELEASE may free `fh`.
    const bool mapping_writer = fh->mapping_writer;
    const uint64_t ino = fh->ino;
    const int rc = entry ? Passthrough::ReplyCreate(req, *entry, fi->fh, backing_id)
                         : Passthrough::ReplyOpen(req, fi->fh, backing_id);
    if (rc != 0) unpromise();
    // It may write through a shared mapping, which the kernel's FUSE inode
    // never sees: its day-long cached attributes go, and until its close
    // every stat asks (Context::FillStat) and sees the object's mtime.
    if (rc == 0 && mapping_writer) c.session_io().InvalidateAttrs(ino);
    return rc == 0;
  }
  // Nobody else writes our objects, so cached pages stay valid across opens.
  fi->keep_cache = 1;
  fi->direct_io = mode == IoMode::kDirect;
  return entry ? fuse_reply_create(req, entry, fi) == 0 : fuse_reply_open(req, fi) == 0;
}

// A read-write open (fio's; some frameworks open checkpoints r+w) is served
// through passthrough when the SSD tier has room for what it will write
// (fs/space.h PromiseRoom, sized by fs/write_sizes.h): the kernel writes the
// object itself, and such a descriptor may still be mmap'ed. The object must
// exist to back the file, so it is made now. Write-only opens stay direct:
// measured, torch.save's 16 MiB writes reached ext4 slower whole (through
// passthrough) than as the 1 MiB requests FUSE makes of them (make bench,
// eight ranks: 1.99 s against 1.29 s; docs/BENCHMARKS.md). True when
// promised and the object is there.
// A set-ID file is not: the kernel clears set-ID bits on a write it sees,
// and it would not see these. Nor is a file with capabilities: every write
// must drop them (Context::DropCapabilities), and one the daemon does not
// see could not. Asked last: it may cost an LMDB lookup.
bool PromiseWriterRoom(Context& c, FileHandle& fh, int flags, const Inode& n) {
  const bool set_id = (n.mode & S_ISUID) || ((n.mode & S_ISGID) && (n.mode & S_IXGRP));
  if ((flags & O_ACCMODE) != O_RDWR || n.tier != TierId::kSsd || set_id ||
      !c.handles().passthrough().active() || c.MayHaveCapabilities(fh.ino, *fh.live))
    return false;
  const uint64_t size_now = n.size;
  const std::optional<uint64_t> seen = c.write_sizes().Expect(c.table().KnownPath(fh.ino));
  // A quarter more than last time: checkpoints grow a little (step counters,
  // optimizer state), and a writer past its promise cannot spill.
  const uint64_t expect =
      std::max(size_now, seen ? *seen + *seen / 4 + (1 << 20) : c.options().write_estimate);
  if (!c.space().PromiseRoom(fh.ino, expect)) return false;
  fh.promised = true;
  Status made;
  return c.handles().ObjectOf(fh, true, &made) != nullptr;
}

// Files smaller than this are not remembered by their shape (WriteSizes):
// their writers are promised --write-estimate, which covers them.
constexpr uint64_t kRememberedSizeMin = 1 << 20;

// Persists the object's size in LMDB so scans (policy, du of the tree) see it
// without touching the tiers; `size` gets it. At a writer's close
// (`closing`) with no other writer left, all the attributes stat reports of
// the object are recorded, and stat stops asking the tier for them
// (Inode::object_attrs_recorded); an open for writing forgets them.
Status RecordSize(Context& c, FileHandle& fh, bool closing, uint64_t* size = nullptr) {
  // Not while a truncate runs (SetAttr holds LiveState::io exclusively): a
  // shrink records the new size before it cuts the object, and a release
  // reading the object's size in between recorded the old one, so the
  // object then looked cut short and every open failed with EIO.
  std::shared_lock<std::shared_mutex> io(fh.live->io);
  // A passthrough handle's writes never came through here: open the object
  // if the handle has not yet.
  Status st;
  ObjectRef object = c.handles().ObjectOf(fh, false, &st);
  if (!object) return Status::Ok();
  // The object is read inside the write transaction: of two closes in a
  // row, the later transaction records what the object is after both.
  bool unreadable = false;
  st = c.store().Update(
      fh.ino,
      [&](Inode& i) {
        struct stat s;
        if (fstat(object->fd, &s) != 0) {
          unreadable = true;  // nothing to record (as for a missing object)
          return Status::Errno(errno, "stat " + c.tier(object->tier).ObjectPath(fh.ino));
        }
        if (size) *size = uint64_t(s.st_size);
        i.size = s.st_size;
        i.checksum = 0;  // written: what the last move verified is gone
        // The object's mtime is the file's (FillStat); scans read LMDB only.
        i.mtime_ns = TimespecNs(s.st_mtim);
        // An open for writing counts itself before it forgets the record in
        // its own transaction: either this sees it and records nothing, or
        // the forgetting comes after. A crash never leaves a record standing
        // over later writes.
        const uint32_t own = fh.writable ? 1 : 0;
        if (closing && fh.live->writers.load() == own && object->tier == i.tier) {
          i.ctime_ns = std::max(i.ctime_ns, TimespecNs(s.st_ctim));
          i.RecordObjectAttrs(uint64_t(s.st_blocks));
        } else {
          i.ForgetObjectAttrs();
        }
        return Status::Ok();
      },
      nullptr);
  return unreadable ? Status::Ok() : st;
}

Status Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  Context& c = Ctx(req);
  Status st;
  NewNode node = NewNodeFor(req, parent, S_IFREG | (mode & 07777), &st);
  Inode n;
  if (st.ok()) st = c.space().CheckMetaSpace("create");
  if (st.ok()) {
    node.tier = c.space().TierForNewFile();
    st = c.store().Create(parent, name, node, &n);
  }
  // ENOSPC is not logged by OpFailed (a full tier is the user's business),
  // but a full state is the operator's: say which.
  if (st.err() == ENOSPC) spdlog::warn("create: {}", st.message());
  if (!st.ok()) return st;
  c.policy_runner().OnCreate(name);
  FileHandle* fh = c.handles().New(n, fi->flags);
  fuse_entry_param e;
  c.FillEntry(n, &e);
  c.table().Ref(n.ino, parent, name);
  const bool may_passthrough = PromiseWriterRoom(c, *fh, fi->flags, n);
  if (!ReplyOpened(c, req, fh, fi, &e, may_passthrough)) {
    c.table().Forget(n.ino, 1);
    c.handles().Delete(fh);
  }
  return Status::Ok();
}

// Empties inode `n`'s object, LMDB first; TruncateOnOpen's locks held.
Status EmptyObject(Context& c, const Inode& n, LiveState* live) {
  const uint64_t ino = n.ino;
  // A truncate drops file capabilities whoever truncates (do_truncate).
  Status st = c.DropCapabilities(ino, *live);
  if (!st.ok()) return st;
  c.table().NoteWrite(*live);  // aborts a move of the old bytes
  live->stream_sums.Restart();
  // LMDB first: a crash in between leaves the object longer than recorded,
  // which is legitimate; shorter would read as lost bytes.
  st = c.store().Update(
      ino,
      [](Inode& i) {
        i.size = 0;
        i.checksum = 0;
        i.set_corrupt(false);  // rewritten: the damage is gone with the bytes
        i.ForgetObjectAttrs();
        i.mtime_ns = i.ctime_ns = NowNs();
        return Status::Ok();
      },
      nullptr);
  if (!st.ok()) return st;
  const Tier& t = c.tier(n.tier);
  int fd = t.OpenObject(ino, O_WRONLY, &st);
  if (fd >= 0) {
    const int rc = t.io().Ftruncate(fd, 0);
    st = rc == 0 ? Status::Ok() : Status::Errno(-rc, "truncate on open " + t.ObjectPath(ino));
    close(fd);
  } else if (st.err() == ENOENT) {
    st = Status::Ok();  // no object: already empty
  }
  return st;
}

// O_TRUNC (FUSE_CAP_ATOMIC_O_TRUNC): empties the object where it is, under
// the placement lock so a concurrent move cannot switch it meanwhile. The
// bytes of a kept file are journaled first (fs/delete_audit.h).
Status TruncateOnOpen(Context& c, fuse_req_t req, uint64_t ino) {
  // As a setattr resize (fs/ops_attr.cc): a release recording the object's
  // size (RecordSize) sees LMDB and the object both truncated or neither.
  std::shared_ptr<LiveState> live = c.table().Live(ino);
  std::unique_lock<std::shared_mutex> resizing(live->io);
  std::lock_guard<std::mutex> lock(c.placement().Lock(ino));
  Inode n;
  Status st = c.store().GetInode(ino, &n);
  if (st.ok()) st = c.CheckTierWritable(n.tier, ino, "truncate on open");
  PendingDelete audit;
  if (st.ok()) st = AuditTruncateBefore(c, req, n, 0, "O_TRUNC open", &audit);
  if (!st.ok()) return st;
  return AuditTruncateAfter(c, audit, EmptyObject(c, n, live.get()));
}

// Immutable holds were checked by the table when the flags write
// (ChangesIfOpenWrites).
Status Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Context& c = Ctx(req);
  Inode n;
  Status st = c.store().GetInode(ino, &n);
  if (!st.ok()) return st;
  const bool writable = (fi->flags & O_ACCMODE) != O_RDONLY;
  // A file a verified read, verify or the scrub found corrupt reads as EIO until it is
  // rewritten (O_TRUNC, truncate) or removed: never its wrong bytes.
  if (n.corrupt() && !(fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_WRONLY)
    return Status::Error(
        EIO, "open of " + c.table().KnownPath(ino) + " (inode " + std::to_string(ino) +
                 "): marked corrupt (a block did not match its checksum); truncate or remove it");
  // O_TRUNC empties the file whatever the access mode, as on Linux's own
  // filesystems (the kernel has checked write permission).
  if (fi->flags & O_TRUNC) {
    st = TruncateOnOpen(c, req, ino);
  } else {
    st = c.handles().CheckObjectIntact(ino);  // a lost or cut object is EIO, not a short file
  }
  if (!st.ok()) return st;
  // Writes land on the SSD tier: an HDD-resident file opened for writing
  // comes back first (after O_TRUNC that copies nothing). If it cannot
  // (SSD full or failing, another writer), it is served where it is; and
  // so is a file pinned on the HDD tier, which the pin would otherwise keep
  // on the SSD tier, where it is lost with that tier.
  if (writable && n.is_reg() && n.tier == TierId::kHdd && !c.space().SsdNearlyFull() &&
      !c.space().SsdFailing() && !PinnedOnHdd(c, ino)) {
    // With O_TRUNC and the writeback cache the kernel holds the inode's lock
    // meanwhile, and the move may wait for a slot behind a long tree move:
    // the policy engine must not wait for that lock (TreeOps::RemovePath).
    LockedRequest locked(c, ino, "promotion for writing");
    st = locked.status();
    if (st.ok()) st = c.placement().Move(ino, TierId::kSsd, "promote");
    if (st.ok()) EndPlacement(c, ino);
    // EIO: a corrupt source (writing it would clear the checksum that shows
    // the damage) or a failing tier; the file stays where it is only when
    // the SSD tier is the one failing.
    if (st.err() == EIO || st.err() == EROFS) c.space().RecheckSsdHealth();
    if (st.err() == EIO && !c.space().SsdFailing()) return st;
    if (!st.ok()) spdlog::warn("open for writing: inode {} stays on hdd: {}", ino, st.message());
  }
  FileHandle* fh = c.handles().New(n, fi->flags);
  fh->wrote = fi->flags & O_TRUNC;
  // Before any write: the checksums recorded at the last close or move no
  // longer vouch for the bytes (a crash before release must not leave them
  // standing). In a write transaction AFTER New counted the writer, so a
  // hash committing concurrently is either cleared here or sees the writer
  // and gives up (fs/block_hasher.h); the inode read above may be stale.
  if (writable && n.is_reg()) {
    st = c.store().Update(
        ino,
        [](Inode& i) {
          i.checksum = 0;
          i.ForgetObjectAttrs();  // the writer may change the object
          return Status::Ok();
        },
        nullptr);
    if (!st.ok()) {
      c.handles().Delete(fh);
      return st;
    }
  }
  // The HDD tier's bytes are read verified, through tierfs.
  bool may_passthrough = n.is_reg() && !(c.options().verify_reads && n.tier == TierId::kHdd);
  if (writable && may_passthrough) {
    Inode now;  // promoted to the SSD tier above, perhaps
    if (c.store().GetInode(ino, &now).ok()) n = now;
    may_passthrough = PromiseWriterRoom(c, *fh, fi->flags, n);
  }
  if (!ReplyOpened(c, req, fh, fi, nullptr, may_passthrough)) c.handles().Delete(fh);
  return Status::Ok();
}

Status Read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  Context& c = Ctx(req);
  Status st;
  ObjectRef object = c.handles().ObjectOf(*Handle(fi), false, &st);
  if (!object) {
    // No object: an empty file, unless LMDB records bytes (then they are lost).
    if (st.err() == ENOENT) st = c.handles().CheckObjectIntact(Handle(fi)->ino);
    if (!st.ok()) return st;
    fuse_reply_buf(req, nullptr, 0);
    return Status::Ok();
  }
  // A per-thread buffer that stays mapped: on this kind of VM a page fault
  // costs more than copying the page, and libfuse would allocate (and fault
  // in) a fresh buffer for every reply.
  if (object->tier == TierId::kHdd && c.options().verify_reads) {
    bool handled = false;
    st = VerifiedRead(c, req, *Handle(fi), object->fd, size, off, &handled);
    if (handled || !st.ok()) return st;
  }
  thread_local std::vector<char> buf;
  if (buf.size() < size) buf.resize(size);
  const Tier& t = c.tier(object->tier);
  ssize_t n = t.io().Pread(object->fd, buf.data(), size, off);
  if (n < 0) return Status::Errno(int(-n), "read " + t.ObjectPath(Handle(fi)->ino));
  fuse_reply_buf(req, buf.data(), n);
  return Status::Ok();
}

Status Release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Context& c = Ctx(req);
  FileHandle* fh = Handle(fi);
  // A passthrough writer's writes never came here: the policy's quiet
  // periods and the hasher's epoch see them now.
  if (fh->mode == IoMode::kPassthrough && fh->writable) c.table().NoteWrite(*fh->live);
  if (fh->promised) c.space().EndPromise(fh->ino);
  if (fh->wrote) {
    uint64_t size = 0;
    Status st = RecordSize(c, *fh, true, &size);
    if (!st.ok()) spdlog::warn("release of inode {}: {}", fh->ino, st.message());
    // Sizes worth a promise only: small files' releases stay cheap (no
    // walk of the path).
    if (st.ok() && size >= kRememberedSizeMin)
      c.write_sizes().Record(c.table().KnownPath(fh->ino), size);
  }
  // The last writer gone: its checksums are recorded off this path
  // (fs/block_hasher.h), against the epoch while it still counted.
  const bool writable = fh->writable;
  const bool passthrough_writer = writable && fh->mode == IoMode::kPassthrough;
  const uint64_t ino = fh->ino, epoch = c.table().epoch();
  std::shared_ptr<LiveState> live = fh->live;
  c.handles().Delete(fh);
  fuse_reply_err(req, 0);
  // Its writes (a mapping's too) changed the backing file's times behind
  // the kernel's cached attributes, kept for a day: they must go.
  if (passthrough_writer) c.session_io().InvalidateAttrs(ino);
  if (writable && live->writers.load() == 0)
    c.hasher().Enqueue(ino, epoch, live->stream_sums.Take(), passthrough_writer);
  return Status::Ok();
}

Status Fsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  Context& c = Ctx(req);
  FileHandle& fh = *Handle(fi);
  Status st;
  ObjectRef object = c.handles().ObjectOf(fh, false, &st);
  // No object (never written): nothing to sync. Any other failure to open
  // it (an unhealthy tier) means its bytes may not be durable: say so.
  if (!object && st.err() != ENOENT) return st;
  if (object) {
    const Tier& t = c.tier(object->tier);
    const int fd = object->fd;
    const int rc = datasync ? t.io().Fdatasync(fd) : t.io().Fsync(fd);
    if (rc != 0) return Status::Errno(-rc, "fsync " + t.ObjectPath(fh.ino));
    // A new object's name, too (once): otherwise a power loss could keep
    // the size in LMDB and lose the bytes.
    if (fh.live->object_name_unsynced.exchange(false)) {
      st = t.SyncObjectDir(fh.ino);
      if (!st.ok()) {
        fh.live->object_name_unsynced = true;
        return st;
      }
    }
  }
  // The metadata that names the object must be as durable as its bytes. A
  // reader changed no bytes: recording would clear the checksum a later
  // move verifies the object against.
  if (fh.writable || fh.wrote) st = RecordSize(c, fh, false);
  if (st.ok()) st = c.store().Sync();
  if (!st.ok()) return st;
  fuse_reply_err(req, 0);
  return Status::Ok();
}

Status Lseek(fuse_req_t req, fuse_ino_t, off_t off, int whence, fuse_file_info* fi) {
  Context& c = Ctx(req);
  Status st;
  FileHandle& fh = *Handle(fi);
  ObjectRef object = c.handles().ObjectOf(fh, false, &st);
  // No object: an empty file, where every SEEK_DATA/SEEK_HOLE is past the end.
  if (!object && st.err() == ENOENT)
    st = Status::Error(ENXIO, "lseek of inode " + std::to_string(fh.ino) + ": no data");
  if (!object) return st;
  off_t res = lseek(object->fd, off, whence);
  if (res < 0) return Status::Errno(errno, "lseek " + c.tier(object->tier).ObjectPath(fh.ino));
  fuse_reply_lseek(req, res);
  return Status::Ok();
}

}  // namespace

void AddFileOps(fuse_lowlevel_ops* ops) {
  ops->create = Op<Create, "create", AddsNames>;
  ops->open = Op<Open, "open", ChangesIfOpenWrites>;
  ops->read = Op<Read, "read", ReadsOnly>;
  // No flush: nothing is buffered here, and without the operation the
  // kernel stops sending FLUSH on every close (one round trip less).
  ops->release = Op<Release, "release", WritesThroughHandle>;
  ops->fsync = Op<Fsync, "fsync", WritesThroughHandle>;
  ops->lseek = Op<Lseek, "lseek", ReadsOnly>;
}

}  // namespace tierfs

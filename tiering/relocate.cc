#include "tiering/relocate.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tierfs {

namespace {

// Copies all of `in` to `out` with copy_file_range (reflink or in-kernel
// copy where the filesystems allow), falling back to read/write.
Status CopyAll(int in, int out, const std::string& what) {
  struct stat st;
  if (fstat(in, &st) != 0) return Status::Errno(errno, "stat " + what);
  off_t done = 0;
  while (done < st.st_size) {
    ssize_t n = copy_file_range(in, nullptr, out, nullptr, st.st_size - done, 0);
    if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP)) {
      char buf[1 << 16];
      n = pread(in, buf, sizeof buf, done);
      if (n > 0 && pwrite(out, buf, n, done) != n) return Status::Errno(errno, "write " + what);
    }
    if (n < 0) return Status::Errno(errno, "copy " + what);
    if (n == 0) break;
    done += n;
  }
  if (ftruncate(out, st.st_size) != 0) return Status::Errno(errno, "size " + what);
  // The object's mtime is the file's mtime (see fs/ FillStat): keep it.
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (futimens(out, times) != 0) return Status::Errno(errno, "set times of " + what);
  return Status::Ok();
}

}  // namespace

Status RelocateObject(Store& store, const Tier& from, const Tier& to, uint64_t ino) {
  Inode n;
  Status st = store.GetInode(ino, &n);
  if (!st.ok()) return st;
  if (!n.is_reg()) return Status::Error(EINVAL, "inode " + std::to_string(ino) + " is not a file");
  if (n.tier != from.id())
    return Status::Error(EINVAL, "inode " + std::to_string(ino) + " is not on " + from.name());
  const std::string what = "object " + from.ObjectPath(ino) + " to " + to.name() + " tier";
  int in = from.OpenObject(ino, O_RDONLY, &st);
  if (in < 0 && st.err() != ENOENT) return st;  // ENOENT: an empty file without object yet
  const std::string tmp_rel = Tier::ObjectRelPath(ino) + ".moving";
  const std::string tmp = to.root() + "/" + tmp_rel;
  int out = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) {
    st = Status::Errno(errno, "create " + tmp);
  } else {
    if (in >= 0) st = CopyAll(in, out, what);
    if (st.ok() && fsync(out) != 0) st = Status::Errno(errno, "fsync " + tmp);
    close(out);
  }
  if (in >= 0) close(in);
  if (st.ok() && rename(tmp.c_str(), to.ObjectPath(ino).c_str()) != 0)
    st = Status::Errno(errno, "rename " + tmp);
  if (!st.ok()) {
    unlink(tmp.c_str());
    return st;
  }
  st = store.Update(
      ino,
      [&](Inode& i) {
        i.tier = to.id();
        return Status::Ok();
      },
      nullptr);
  if (st.ok()) st = store.Sync();
  if (!st.ok()) return st;
  return from.RemoveObject(ino);
}

}  // namespace tierfs

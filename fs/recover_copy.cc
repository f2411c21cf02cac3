#include "fs/recover_copy.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace tierfs {

Status CopyToNewFile(const std::string& from, const std::string& to, mode_t mode,
                     CopySource source) {
  const int in =
      open(from.c_str(), O_RDONLY | O_CLOEXEC | (source == CopySource::kNoLinks ? O_NOFOLLOW : 0));
  if (in < 0) return Status::Errno(errno, "open " + from);
  const int out = open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (out < 0) {
    const int err = errno;
    close(in);
    return Status::Errno(err, "create " + to);
  }
  Status st;
  char buf[1 << 16];
  for (ssize_t n; st.ok() && (n = read(in, buf, sizeof buf)) != 0;)
    if (n < 0 || write(out, buf, size_t(n)) != n)
      st = Status::Errno(errno ? errno : EIO, "copy to " + to);  // a short write leaves errno 0
  if (st.ok() && fsync(out) != 0) st = Status::Errno(errno, "fsync " + to);
  close(in);
  close(out);
  return st;
}

}  // namespace tierfs

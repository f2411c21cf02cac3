#include "fs/op_table.h"

#include <spdlog/spdlog.h>

#include <string>

namespace tierfs {

namespace {

// Errors that answer the request as the application expects (a name that
// is not there, a refusal, a full tier): not the operator's business.
bool Ordinary(int err) {
  switch (err) {
    case ENOENT:
    case EEXIST:
    case ENOTEMPTY:
    case ENOTDIR:
    case EISDIR:
    case ENODATA:
    case ERANGE:
    case EPERM:
    case EACCES:
    case EINVAL:
    case ENXIO:
    case ENOSPC:
    case EXDEV:
    case EOPNOTSUPP:
    case ENAMETOOLONG:
    case EFBIG:
    case EBUSY:
    case ECANCELED:
      return true;
    default:
      return false;
  }
}

// "inode 12 (/run/model.pt, hdd)": what an operator needs to find the file.
// Only on the rare unexpected error, so the store lookups cost nothing that
// matters (and a failure to find either is simply left out).
std::string Naming(Context& c, uint64_t ino) {
  std::string s = "inode " + std::to_string(ino);
  std::string detail = c.placement().PathOf(ino);
  Inode n;
  if (c.store().GetInode(ino, &n).ok() && n.is_reg())
    detail += (detail.empty() ? "" : ", ") + std::string(TierName(n.tier));
  return detail.empty() ? s : s + " (" + detail + ")";
}

// What the application gets for `err`. A tier on a network filesystem (the
// capacity tier that nodes share) fails with the errors of its transport:
// ENOTCONN is also what a dead FUSE mount gives, so an application (or an
// admin) would take tierfs itself for gone, and ESTALE makes the kernel
// retry a lookup. Each becomes EIO: the file's tier failed (the log says
// which and why).
int ForApplication(int err) {
  switch (err) {
    case ENOTCONN:
    case ESHUTDOWN:
    case ECONNABORTED:
    case ECONNRESET:
    case ECONNREFUSED:
    case EHOSTDOWN:
    case EHOSTUNREACH:
    case ENETDOWN:
    case ENETUNREACH:
    case ENETRESET:
    case ETIMEDOUT:
    case ESTALE:
    case ENOLINK:
    case ECOMM:
    case EREMOTEIO:
      return EIO;
    default:
      return err;
  }
}

}  // namespace

// Called with a failed Status only (the op's contract).
void OpFailed(Context& c, fuse_req_t req, const char* op, std::optional<uint64_t> ino,
              const Status& st) {
  if (!Ordinary(st.err())) {
    if (ino)
      spdlog::error("{} of {}: {}", op, Naming(c, *ino), st.message());
    else
      spdlog::error("{}: {}", op, st.message());
  }
  fuse_reply_err(req, ForApplication(st.err()));
}

}  // namespace tierfs

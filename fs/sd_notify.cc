#include "fs/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace tierfs {

Status SdNotify(const std::string& message) {
  const char* env = std::getenv("NOTIFY_SOCKET");
  if (!env || !*env) return Status::Ok();
  const std::string name = env;
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if ((name[0] != '/' && name[0] != '@') || name.size() >= sizeof addr.sun_path)
    return Status::Error(EINVAL, "NOTIFY_SOCKET " + name + " is not a socket path");
  memcpy(addr.sun_path, name.data(), name.size());
  if (name[0] == '@') addr.sun_path[0] = '\0';  // the abstract namespace
  const socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + name.size());
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Errno(errno, "socket for NOTIFY_SOCKET");
  const ssize_t n = sendto(fd, message.data(), message.size(), MSG_NOSIGNAL,
                           reinterpret_cast<const sockaddr*>(&addr), len);
  const int err = errno;
  close(fd);
  if (n != ssize_t(message.size())) return Status::Errno(err, "notify " + name);
  return Status::Ok();
}

}  // namespace tierfs

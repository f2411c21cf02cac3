// The systemd readiness protocol (sd_notify(3)): a datagram such as
// "READY=1" sent to the AF_UNIX socket named by $NOTIFY_SOCKET, a path or
// an abstract name ("@name"). Spoken directly rather than through
// libsystemd: the protocol is a documented stable interface of a few
// lines, and the daemon gains no library dependency (the build machines
// lack libsystemd-dev). Nothing happens when NOTIFY_SOCKET is unset.
#pragma once

#include <string>

#include "meta/status.h"

namespace tierfs {

Status SdNotify(const std::string& message);

}  // namespace tierfs

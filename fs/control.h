// ControlServer: the control socket of one mount, which tierctl(1) talks to.
//
// A Unix stream socket, mode 0660, group `tierfs` when that group exists
// (else the daemon's group), at /run/tierfs/<hash of the state directory>.sock,
// or STATE/control.sock when /run/tierfs cannot be used (a daemon not run
// by root). The daemon answers the read-only extended attribute
// `user.tierfs.control` on the mount's root with that path, so tierctl finds
// it from any path inside the mount.
//
// Protocol: one JSON object per line each way. A request names a command
// ({"cmd":"status"}); the reply is an object with "ok": true and the
// command's fields, or "ok": false with "error" (words naming the path and
// the reason) and "errno". A connection may carry any number of requests.
//
// Hostile clients: a line that is not a JSON object or names an unknown
// command gets an error reply; a line longer than `max_line` gets an error
// reply and the connection is closed; a client silent for `idle_timeout`
// (or not reading its replies) is disconnected; beyond `max_clients`
// connections a new client gets an error reply (EBUSY) and is closed, and
// so does a client not root beyond `max_clients - reserved_for_root` in
// all or `max_clients_per_uid` of its uid (one user holding connections
// open cannot lock out the others, nor root at all). Nothing a
// client sends can block a FUSE thread: the socket is served by its own
// threads (one io_context), and the handler only reads the store and the
// units' state.
//
// Thread-safety: Start and Stop from one thread (the daemon's main thread);
// the handler runs on the server's threads, possibly concurrently.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "meta/status.h"

namespace tierfs {

// Who is asking, from SO_PEERCRED and SO_PEERGROUPS.
struct ControlPeer {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
  bool InGroup(gid_t g) const;
};

struct ControlLimits {
  size_t max_line = 64 * 1024;  // bytes of one request line, newline included
  std::chrono::milliseconds idle_timeout{10000};
  size_t max_clients = 64;
  // Of them, the places only root may take, so that no other user can
  // lock root out; and how many one other uid may hold at once.
  size_t reserved_for_root = 8;
  size_t max_clients_per_uid = 8;
  unsigned threads = 2;
};

class ControlServer {
 public:
  // Answers one request (a JSON object) of `peer`; may throw (the client
  // then gets an error reply).
  using Handler =
      std::function<nlohmann::json(const nlohmann::json& request, const ControlPeer& peer)>;

  // Binds `path` (replacing a stale socket there; anything else there is
  // refused), sets its mode and group, and starts serving.
  static Status Start(const std::string& path, Handler handler, const ControlLimits& limits,
                      std::unique_ptr<ControlServer>* out);
  ~ControlServer();  // Stop()
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Closes every connection, joins the threads and removes the socket.
  void Stop();
  const std::string& path() const;

  class Impl;

 private:
  explicit ControlServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Where the control socket of the mount whose state directory is `state`
// goes: /run/tierfs/<16 hex digits>.sock when /run/tierfs is (or can be
// made) a directory of ours that only we may write, else STATE/control.sock.
std::string ControlSocketPath(const std::string& state);

// An error reply: {"ok": false, "error": message, "errno": err}.
nlohmann::json ControlError(int err, const std::string& message);

}  // namespace tierfs

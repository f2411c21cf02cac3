#include "fs/control.h"

#include <grp.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
// Asio uses atomic_thread_fence, which g++ 12 warns TSan does not model
// (-Wtsan); -Werror would make that an error in a -fsanitize=thread build.
// (clang has no such warning, and make thread-check runs clang.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
#include <boost/asio.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include "meta/mutex.h"

namespace tierfs {

namespace asio = boost::asio;
using Proto = asio::local::stream_protocol;
using boost::system::error_code;

bool ControlPeer::InGroup(gid_t g) const {
  return g == gid || std::find(groups.begin(), groups.end(), g) != groups.end();
}

nlohmann::json ControlError(int err, const std::string& message) {
  return {{"ok", false}, {"error", message}, {"errno", err}};
}

namespace {

// What the log quotes of one request, and how many errors of requests it
// logs a second at most (ControlServer::Impl::MayLogError).
constexpr size_t kLoggedBytes = 256;
constexpr unsigned kErrorsLogged = 10;

// Invalid UTF-8 in a string (a path a client sent) is replaced, not thrown.
std::string Line(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// At most the first `max` bytes of `text` (cut before a UTF-8 continuation
// byte), saying how long it was when cut: what the log may quote of what a
// client sent.
std::string Excerpt(const std::string& text, size_t max) {
  if (text.size() <= max) return text;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "... (" + std::to_string(text.size()) + " bytes)";
}

ControlPeer PeerOf(int fd) {
  ControlPeer p;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    p.pid = cred.pid;
    p.uid = cred.uid;
    p.gid = cred.gid;
  } else {
    p.uid = p.gid = gid_t(-1);  // nobody: refused everything but status
  }
  gid_t groups[256];
  len = sizeof groups;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
    p.groups.assign(groups, groups + len / sizeof(gid_t));
  return p;
}

// The group that may use control sockets: `tierfs` when it exists.
gid_t SocketGroup() {
  char buf[4096];
  group g, *found = nullptr;
  if (getgrnam_r("tierfs", &g, buf, sizeof buf, &found) == 0 && found) return found->gr_gid;
  return getegid();
}

}  // namespace

class ControlServer::Impl {
 public:
  Impl(std::string path, Handler handler, ControlLimits limits)
      : path_(std::move(path)),
        handler_(std::move(handler)),
        limits_(limits),
        io_(std::make_unique<asio::io_context>()),
        acceptor_(std::make_unique<Proto::acceptor>(*io_)) {}

  Status Listen() {
    struct stat st;
    if (lstat(path_.c_str(), &st) == 0) {
      // Ours to replace: the name is unique to this state, and the state's
      // lock is held; anything but a socket there was put by someone else.
      if (!S_ISSOCK(st.st_mode))
        return Status::Error(EEXIST, "control socket " + path_ + " exists and is not a socket");
      if (unlink(path_.c_str()) != 0) return Status::Errno(errno, "remove stale " + path_);
    }
    if (path_.size() >= sizeof(sockaddr_un::sun_path))
      return Status::Error(ENAMETOOLONG, "control socket path " + path_ + " is too long");
    error_code ec;
    acceptor_->open(Proto(), ec);
    if (!ec) acceptor_->bind(Proto::endpoint(path_), ec);
    if (ec) return Status::Error(ec.value(), "bind control socket " + path_ + ": " + ec.message());
    // The socket was created with the daemon's umask, which leaves it not
    // writable (not connectable) by group and others until here.
    // A daemon not in group `tierfs` (not root) keeps its own group (EPERM).
    if (chown(path_.c_str(), uid_t(-1), SocketGroup()) != 0 && errno != EPERM)
      return Status::Errno(errno, "set group of control socket " + path_);
    if (chmod(path_.c_str(), 0660) != 0 || lstat(path_.c_str(), &st) != 0)
      return Status::Errno(errno, "set mode of control socket " + path_);
    bound_ino_ = st.st_ino;
    acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Status::Error(ec.value(), "listen on " + path_ + ": " + ec.message());
    Accept();
    // The server's threads take no signals: SIGHUP is the policy thread's
    // (fs/daemon.cc), SIGTERM and SIGINT libfuse's.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (unsigned i = 0; i < std::max(1u, limits_.threads); ++i)
      threads_.emplace_back([this] { io_->run(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return Status::Ok();
  }

  void Stop() {
    if (!io_) return;
    io_->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    acceptor_.reset();
    // Destroys the pending handlers, and with them every connection.
    io_.reset();
    struct stat st;
    if (lstat(path_.c_str(), &st) == 0 && st.st_ino == bound_ino_) unlink(path_.c_str());
  }

  const std::string& path() const { return path_; }

 private:
  class Connection;

  // Whether an error a client's request caused may be logged now: at most
  // kErrorsLogged a second for the whole socket, so that no client can
  // fill the state filesystem through the log. *suppressed is how many
  // were not logged since the last one that was.
  bool MayLogError(uint64_t* suppressed) EXCLUDES(log_mu_) {
    MutexLock lock(&log_mu_);
    const auto now = std::chrono::steady_clock::now();
    if (now - log_window_ >= std::chrono::seconds(1)) {
      log_window_ = now;
      logged_in_window_ = 0;
    }
    if (logged_in_window_ >= kErrorsLogged) {
      ++not_logged_;
      return false;
    }
    ++logged_in_window_;
    *suppressed = not_logged_;
    not_logged_ = 0;
    return true;
  }

  void Accept();

  std::string path_;
  Handler handler_;
  ControlLimits limits_;
  std::unique_ptr<asio::io_context> io_;
  std::unique_ptr<Proto::acceptor> acceptor_;  // destroyed before io_
  std::vector<std::thread> threads_;
  ino_t bound_ino_ = 0;
  // Connections served now, in all and per uid (ControlLimits).
  Mutex clients_mu_;
  size_t clients_ GUARDED_BY(clients_mu_) = 0;
  std::map<uid_t, size_t> clients_of_ GUARDED_BY(clients_mu_);
  // Takes a place for a client of `uid`; "" or why it gets none.
  std::string Admit(uid_t uid) EXCLUDES(clients_mu_);
  void Leave(uid_t uid) EXCLUDES(clients_mu_);

  Mutex log_mu_;
  std::chrono::steady_clock::time_point log_window_ GUARDED_BY(log_mu_);
  unsigned logged_in_window_ GUARDED_BY(log_mu_) = 0;
  uint64_t not_logged_ GUARDED_BY(log_mu_) = 0;
};

// One client: read a line, answer it, read the next; every step on the
// connection's strand, each bounded by the idle timer.
class ControlServer::Impl::Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `peer` has a place (Admit) that the connection gives back when done.
  Connection(Impl& server, Proto::socket socket, ControlPeer peer)
      : server_(server),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        buf_(server.limits_.max_line),
        peer_(std::move(peer)) {}
  ~Connection() { server_.Leave(peer_.uid); }

  void Read() {
    Arm();
    auto self = shared_from_this();
    asio::async_read_until(socket_, buf_, '\n', [self](error_code ec, size_t n) {
      self->timer_.cancel();
      if (ec == asio::error::not_found) {
        return self->Reply(
            ControlError(EMSGSIZE, "request longer than " +
                                       std::to_string(self->server_.limits_.max_line) + " bytes"),
            /*close=*/true);
      }
      if (ec) return self->Close();
      std::string line(asio::buffers_begin(self->buf_.data()),
                       asio::buffers_begin(self->buf_.data()) + n - 1);
      self->buf_.consume(n);
      self->Reply(self->Answer(line), /*close=*/false);
    });
  }

 private:
  nlohmann::json Answer(const std::string& line) {
    nlohmann::json req = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (req.is_discarded() || !req.is_object())
      return ControlError(EINVAL, "request is not a JSON object on one line");
    try {
      return server_.handler_(req, peer_);
    } catch (const std::exception& e) {
      // Quoted in part: the request is the client's, as long as max_line.
      uint64_t suppressed = 0;
      if (server_.MayLogError(&suppressed))
        spdlog::error("control socket: request of uid {} {}: {}{}", peer_.uid,
                      Excerpt(req.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                              kLoggedBytes),
                      Excerpt(e.what(), kLoggedBytes),
                      suppressed ? " (" + std::to_string(suppressed) + " more not logged)" : "");
      return ControlError(EIO, std::string("internal error: ") + e.what());
    }
  }

  void Reply(const nlohmann::json& reply, bool close) {
    out_ = Line(reply);
    Arm();
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(out_), [self, close](error_code ec, size_t) {
      self->timer_.cancel();
      if (ec || close) return self->Close();
      self->Read();
    });
  }

  // A client that neither sends nor reads for idle_timeout is dropped.
  void Arm() {
    timer_.expires_after(server_.limits_.idle_timeout);
    auto self = shared_from_this();
    timer_.async_wait([self](error_code ec) {
      if (!ec) self->Close();
    });
  }

  void Close() {
    error_code ignored;
    timer_.cancel();
    socket_.shutdown(Proto::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  Impl& server_;
  Proto::socket socket_;
  asio::steady_timer timer_;
  asio::streambuf buf_;
  std::string out_;
  ControlPeer peer_;
};

std::string ControlServer::Impl::Admit(uid_t uid) {
  MutexLock lock(&clients_mu_);
  const size_t others =
      limits_.max_clients - std::min(limits_.reserved_for_root, limits_.max_clients);
  if (clients_ >= limits_.max_clients || (uid != 0 && clients_ >= others))
    return "too many control clients (" + std::to_string(clients_) + " of " +
           std::to_string(limits_.max_clients) + ", " +
           std::to_string(limits_.max_clients - others) + " of them root's only); try again";
  size_t& mine = clients_of_[uid];
  if (uid != 0 && mine >= limits_.max_clients_per_uid)
    return "too many control clients of uid " + std::to_string(uid) + " (" + std::to_string(mine) +
           ", at most " + std::to_string(limits_.max_clients_per_uid) +
           " a user); close one and try again";
  ++mine;
  ++clients_;
  return "";
}

void ControlServer::Impl::Leave(uid_t uid) {
  MutexLock lock(&clients_mu_);
  --clients_;
  const auto it = clients_of_.find(uid);
  if (it != clients_of_.end() && --it->second == 0) clients_of_.erase(it);
}

void ControlServer::Impl::Accept() {
  acceptor_->async_accept(asio::make_strand(*io_), [this](error_code ec, Proto::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      ControlPeer peer = PeerOf(socket.native_handle());
      const std::string refused = Admit(peer.uid);
      if (!refused.empty()) {
        // A fresh socket's buffer takes this short line without blocking.
        // A client still sending meets a closed socket (EPIPE) and then
        // reads this reply (tierctl does: tools/tierctl_client.cc).
        const std::string busy = Line(ControlError(EBUSY, refused));
        error_code ignored;
        asio::write(socket, asio::buffer(busy), ignored);
        socket.close(ignored);
      } else {
        std::make_shared<Connection>(*this, std::move(socket), std::move(peer))->Read();
      }
    } else if (ec == asio::error::no_descriptors) {
      spdlog::warn("control socket {}: {}", path_, ec.message());
    }
    Accept();
  });
}

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ControlServer::~ControlServer() {
  Stop();
}
void ControlServer::Stop() {
  impl_->Stop();
}
const std::string& ControlServer::path() const {
  return impl_->path();
}

Status ControlServer::Start(const std::string& path, Handler handler, const ControlLimits& limits,
                            std::unique_ptr<ControlServer>* out) {
  auto impl = std::make_unique<Impl>(path, std::move(handler), limits);
  Status st = impl->Listen();
  if (!st.ok()) {
    impl->Stop();
    return st;
  }
  out->reset(new ControlServer(std::move(impl)));
  return Status::Ok();
}

std::string ControlSocketPath(const std::string& state) {
  const std::string dir = "/run/tierfs";
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return state + "/control.sock";
  struct stat st;
  // Only a directory nobody else can plant names in.
  if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
      (st.st_mode & 022) != 0 || access(dir.c_str(), W_OK) != 0)
    return state + "/control.sock";
  char real[PATH_MAX];
  const std::string key = realpath(state.c_str(), real) ? real : state;
  char name[32];
  snprintf(name, sizeof name, "%016llx", (unsigned long long)XXH3_64bits(key.data(), key.size()));
  return dir + "/" + name + ".sock";
}

}  // namespace tierfs

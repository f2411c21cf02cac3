// Asio uses atomic_thread_fence, which g++ 12 warns TSan does not model
// (-Wtsan), at the fence in <atomic> when the templates are instantiated:
// ignored for the whole file, before any header brings <atomic> in, or
// -Werror fails the -fsanitize=thread build. (clang has no such warning.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wtsan"
#endif
#include "fs/metrics_http.h"

#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <thread>

namespace tierfs {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Status ParseMetricsAddress(const std::string& spec, std::string* address, uint16_t* port) {
  auto bad = [&](const std::string& why) {
    return Status::Error(EINVAL, "--metrics '" + spec + "': " + why);
  };
  std::string host, port_text = spec;
  const size_t colon = spec.rfind(':');
  if (colon != std::string::npos) {
    host = spec.substr(0, colon);
    port_text = spec.substr(colon + 1);
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return bad("an IPv6 address goes in brackets: [ADDR]:PORT");
  }
  // Only a port: loopback. Anything else is listened on only when named.
  if (host.empty() || host == "localhost") host = "127.0.0.1";
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), [](char c) { return std::isdigit(c); }))
    return bad("expected [ADDR:]PORT with PORT a number");
  const unsigned long p = std::stoul(port_text);
  if (p < 1 || p > 65535) return bad("port " + port_text + " is out of range (1..65535)");
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  if (ec) return bad("'" + host + "' is not an IP address");
  *address = host;
  *port = uint16_t(p);
  return Status::Ok();
}

// Members in this order: the io_context is destroyed after the acceptor and
// before what its pending handlers (sessions) reach when they are freed.
struct MetricsServer::Impl {
  std::function<std::string()> scrape;
  size_t connections = 0;  // the io thread's only
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  asio::steady_timer retry{ioc};
  uint16_t port = 0;
  std::thread thread;

  void Accept();
};

namespace {

// One connection: one request read under a deadline, one reply, closed.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, MetricsServer::Impl& server)
      : stream_(std::move(socket)), server_(server) {
    server_.connections++;
  }
  ~Session() { server_.connections--; }

  void Start() {
    parser_.header_limit(MetricsServer::kMaxRequestBytes);
    stream_.expires_after(std::chrono::seconds(MetricsServer::kTimeoutSeconds));
    http::async_read(stream_, buffer_, parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->Read(ec); });
  }

 private:
  void Read(beast::error_code ec) {
    if (ec == beast::error::timeout || ec == http::error::end_of_stream ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted)
      return;  // nothing to answer: the socket closes with the session
    if (ec) {
      Reply(http::status::bad_request, "bad request: " + ec.message() + "\n");
      return;
    }
    const auto& req = parser_.get();
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    if (req.method() != http::verb::get) {
      Reply(http::status::method_not_allowed, "only GET\n");
    } else if (path != "/metrics") {
      Reply(http::status::not_found, "tierfs serves /metrics only\n");
    } else {
      std::string body;
      try {
        body = server_.scrape();
      } catch (const std::exception& e) {
        spdlog::error("metrics scrape: {}", e.what());
        Reply(http::status::internal_server_error, std::string(e.what()) + "\n");
        return;
      }
      Reply(http::status::ok, std::move(body));
    }
  }

  void Reply(http::status status, std::string body) {
    res_.result(status);
    res_.version(11);
    res_.keep_alive(false);
    res_.set(http::field::server, "tierfs");
    if (status == http::status::method_not_allowed) res_.set(http::field::allow, "GET");
    res_.set(http::field::content_type, status == http::status::ok
                                            ? "text/plain; version=0.0.4; charset=utf-8"
                                            : "text/plain; charset=utf-8");
    res_.body() = std::move(body);
    res_.prepare_payload();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code, size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  beast::tcp_stream stream_;
  MetricsServer::Impl& server_;
  beast::flat_buffer buffer_{MetricsServer::kMaxRequestBytes};
  // No body: a request with one is refused (unexpected_body).
  http::request_parser<http::empty_body> parser_;
  http::response<http::string_body> res_;
};

}  // namespace

void MetricsServer::Impl::Accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;  // stopping
    if (ec) {
      // Out of descriptors, say: try again shortly instead of spinning.
      spdlog::warn("metrics: accept: {}", ec.message());
      retry.expires_after(std::chrono::milliseconds(100));
      retry.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) Accept();
      });
      return;
    }
    if (connections < kMaxConnections) std::make_shared<Session>(std::move(socket), *this)->Start();
    Accept();  // over the limit, `socket` closes here
  });
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  Stop();
}

uint16_t MetricsServer::port() const {
  return impl_->port;
}

Status MetricsServer::Start(const std::string& address, uint16_t port,
                            std::function<std::string()> scrape,
                            std::unique_ptr<MetricsServer>* out) {
  auto impl = std::make_unique<Impl>();
  impl->scrape = std::move(scrape);
  std::string naming = (address.find(':') != std::string::npos ? "[" + address + "]" : address) +
                       ":" + std::to_string(port);
  boost::system::error_code ec;
  const tcp::endpoint ep(asio::ip::make_address(address, ec), port);
  if (!ec) impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Status::Error(ec.value() > 0 ? ec.value() : EINVAL,
                         "metrics address " + naming + ": " + ec.message());
  impl->port = impl->acceptor.local_endpoint().port();
  naming = naming.substr(0, naming.rfind(':') + 1) + std::to_string(impl->port);
  impl->Accept();
  Impl* raw = impl.get();
  // The thread blocks every signal (it inherits the mask): a SIGHUP taken
  // here would reach libfuse's handler and end the session instead of
  // reloading the policy (fs/daemon.cc).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  impl->thread = std::thread([raw] {
    for (;;) {
      try {
        raw->ioc.run();
        return;
      } catch (const std::exception& e) {  // a session's bug must not end the daemon
        spdlog::error("metrics server: {}", e.what());
      }
    }
  });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  spdlog::info("metrics on http://{}/metrics", naming);
  out->reset(new MetricsServer(std::move(impl)));
  return Status::Ok();
}

void MetricsServer::Stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->ioc.stop();
  impl_->thread.join();
}

}  // namespace tierfs

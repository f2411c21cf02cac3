// MetricsServer: --metrics ADDR:PORT, the Prometheus scrape endpoint over
// HTTP (Boost.Beast). One thread with one io_context serves every
// connection asynchronously, so a stalled or hostile client holds only its
// own connection, bounded: GET /metrics only (404 for other paths, 405 for
// other methods), a request of at most kMaxRequestBytes with no body, a
// deadline for each connection, at most kMaxConnections at once (more are
// closed at accept). FUSE threads never touch it: a scrape reads the
// counters (fs/metrics.h) and computes the gauges on this thread.
//
// Thread-safety: Start and Stop from one thread (the daemon's).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "meta/status.h"

namespace tierfs {

// Parses --metrics: "PORT" or ":PORT" listen on loopback (127.0.0.1);
// "ADDR:PORT" (an IPv4 address, "[IPv6]:PORT" or "localhost") on ADDR, so a
// non-loopback address is used only when given. EINVAL naming the value.
Status ParseMetricsAddress(const std::string& spec, std::string* address, uint16_t* port);

class MetricsServer {
 public:
  static constexpr size_t kMaxRequestBytes = 8192;
  static constexpr size_t kMaxConnections = 64;
  static constexpr int kTimeoutSeconds = 10;

  // Listens on `address`:`port` and serves `scrape()`'s text; an address in
  // use or not local is an error naming it.
  static Status Start(const std::string& address, uint16_t port,
                      std::function<std::string()> scrape, std::unique_ptr<MetricsServer>* out);
  ~MetricsServer();  // Stop()
  void Stop();
  uint16_t port() const;

  struct Impl;

 private:
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tierfs

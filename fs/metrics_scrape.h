// The scrape: what --metrics serves. The gauges are computed now, the way
// the control socket's status command computes them (capacity and free
// space from each tier's filesystem, files and bytes from the namespace),
// then the counters of the mount's Metrics (fs/metrics.h) follow.
#pragma once

#include <string>

namespace tierfs {

class Context;

// The Prometheus text of `c`; runs on the metrics server's thread.
std::string ScrapeMetrics(Context& c);

}  // namespace tierfs

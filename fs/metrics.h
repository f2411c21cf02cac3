// Metrics: what a mount counts for Prometheus (tierfs(8), METRICS). One
// object per mount, owned by the Context; no global state.
//
// Two kinds of cells:
//  - the hot path's (FUSE operations, their latency, their errors, opens by
//    I/O mode): fixed arrays of relaxed atomics indexed at compile time, so
//    a FUSE op never takes a mutex to count itself;
//  - the slow path's (moves, thinning, pins, refusals, reloads): counters
//    whose label values (a policy rule's name) are only known at run time,
//    kept in a map under a mutex; they change a few times a second at most.
// Gauges (tier capacity, files, queue depth) are computed at scrape time
// (fs/metrics_scrape.h), not stored here.
//
// Render writes the Prometheus text exposition format (version 0.0.4).
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "meta/mutex.h"

namespace tierfs {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Builds an exposition: one family (# HELP, # TYPE) then its samples.
class Exposition {
 public:
  void Family(std::string_view name, std::string_view help, std::string_view type);
  void Sample(std::string_view name, const MetricLabels& labels, double value);
  void Sample(std::string_view name, const MetricLabels& labels, uint64_t value);
  const std::string& text() const { return text_; }

 private:
  void Head(std::string_view name, const MetricLabels& labels);
  std::string text_;
};

// Latency histogram with fixed buckets (seconds): lock-free Observe.
class Histogram {
 public:
  static constexpr std::array<double, 16> kBounds = {
      0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
      0.005,   0.01,     0.025,   0.05,   0.1,     0.25,   1.0,   10.0};
  // Two relaxed atomic adds: the bucket and the sum (the count is the
  // buckets' total).
  void Observe(int64_t ns);
  uint64_t count() const;
  // The `name`_bucket/_sum/_count samples, with `labels` and le.
  void Render(Exposition& out, std::string_view name, const MetricLabels& labels) const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};  // last: above all
  std::atomic<uint64_t> sum_ns_{0};
};

// A counter family whose label values are known only at run time.
class LabeledCounter {
 public:
  LabeledCounter(std::string name, std::string help, std::vector<std::string> label_names)
      : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}
  // `values` line up with the label names.
  void Add(const std::vector<std::string>& values, uint64_t n = 1);
  uint64_t Get(const std::vector<std::string>& values) const;
  void Render(Exposition& out) const;

 private:
  const std::string name_, help_;
  const std::vector<std::string> label_names_;
  mutable Mutex mu_;
  std::map<std::vector<std::string>, uint64_t> values_ GUARDED_BY(mu_);
};

// Every operation fs/op_table.h's Op<> registers, by the name it is
// registered with: an op missing here does not compile (OpIndex).
inline constexpr std::string_view kOpNames[] = {
    "lookup",      "getattr",    "setattr",    "access",          "statfs", "opendir", "readdir",
    "readdirplus", "releasedir", "fsyncdir",   "create",          "open",   "read",    "write",
    "release",     "fsync",      "fallocate",  "copy_file_range", "lseek",  "mknod",   "mkdir",
    "symlink",     "readlink",   "unlink",     "rmdir",           "rename", "link",    "setxattr",
    "getxattr",    "listxattr",  "removexattr"};
inline constexpr size_t kOpCount = std::size(kOpNames);
constexpr size_t OpIndex(std::string_view name) {
  for (size_t i = 0; i < kOpCount; ++i)
    if (kOpNames[i] == name) return i;
  return kOpCount;
}
// errno values above this are counted as this one ("other").
inline constexpr int kMaxCountedErrno = 134;

// One op's cells.
struct OpStats {
  Histogram latency;  // its count is the number of requests
  std::array<std::atomic<uint64_t>, kMaxCountedErrno + 1> errors{};
  void Failed(int err) {
    errors[size_t(err > 0 && err < kMaxCountedErrno ? err : kMaxCountedErrno)].fetch_add(
        1, std::memory_order_relaxed);
  }
};

// How an open is served (fs/handles.h IoMode), for write admission.
enum class OpenMode : uint8_t { kPageCache, kDirect, kPassthrough };

class Metrics {
 public:
  explicit Metrics(int64_t start_ns) : start_ns_(start_ns) {}
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  OpStats& op(size_t index) { return ops_[index]; }
  const OpStats& op(size_t index) const { return ops_[index]; }
  void CountOpen(bool for_writing, OpenMode mode) {
    opens_[for_writing][size_t(mode)].fetch_add(1, std::memory_order_relaxed);
  }
  // A move that ended (Placement::Run): `why` is the rule, or "manual",
  // "evict", "promote", "spill". Routine refusals (EBUSY, ECANCELED) are
  // not failures: the evictor and the policy retry them.
  void CountMove(bool to_hdd, const std::string& why, uint64_t bytes, int err);
  void CountThin(const std::string& rule, uint64_t files, uint64_t bytes);
  void CountPin(const std::string& rule) { pins_.Add({rule}); }
  void CountRefusal(const std::string& rule) { refusals_.Add({rule}); }
  void CountReload(bool ok) {
    (ok ? reloads_ : reload_errors_).fetch_add(1, std::memory_order_relaxed);
  }

  // A verified read found a block that does not match its checksum
  // (fs/verified_read.h).
  void CountCorruptRead() { corrupt_reads_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t corrupt_reads() const { return corrupt_reads_.load(std::memory_order_relaxed); }

  // The scrub of the HDD tier (fs/scrub.h): bytes it read (as each block's
  // read starts), files it found
  // corrupt (each once: a file already marked is not counted again),
  // objects it could not read, and finished passes with the last one's end.
  void CountScrubBytes(uint64_t n) { scrub_bytes_.fetch_add(n, std::memory_order_relaxed); }
  void CountScrubCorrupt() { scrub_corrupt_.fetch_add(1, std::memory_order_relaxed); }
  void CountScrubError() { scrub_errors_.fetch_add(1, std::memory_order_relaxed); }
  void CountScrubPass(int64_t ended_ns) {
    scrub_passes_.fetch_add(1, std::memory_order_relaxed);
    scrub_last_ns_.store(ended_ns, std::memory_order_relaxed);
  }

  // Bytes of the moves that completed in the last `window_ns` (at most the
  // last kRecentMoves moves): tierctl status's move throughput.
  uint64_t MovedBytesWithin(int64_t window_ns) const;

  // Counters for tests and the scrape.
  uint64_t moves(const std::string& direction, const std::string& reason,
                 const std::string& rule) const {
    return moves_.Get({direction, reason, rule});
  }

  // Everything above, after `gauges` (the scrape-time families).
  std::string Render(const Exposition& gauges) const;
  int64_t start_ns() const { return start_ns_; }

 private:
  static constexpr size_t kRecentMoves = 4096;
  const int64_t start_ns_;
  std::array<OpStats, kOpCount> ops_;
  mutable Mutex recent_mu_;
  std::deque<std::pair<int64_t, uint64_t>> recent_moves_ GUARDED_BY(recent_mu_);  // (when, bytes)
  std::array<std::array<std::atomic<uint64_t>, 3>, 2> opens_{};
  std::atomic<uint64_t> reloads_{0}, reload_errors_{0};
  std::atomic<uint64_t> corrupt_reads_{0};  // tierfs_corrupt_reads_total
  std::atomic<uint64_t> scrub_passes_{0}, scrub_bytes_{0}, scrub_corrupt_{0}, scrub_errors_{0};
  std::atomic<int64_t> scrub_last_ns_{0};  // 0: no pass finished yet
  LabeledCounter moves_{
      "tierfs_moves_total", "Moves between tiers that completed.", {"direction", "reason", "rule"}};
  LabeledCounter moved_bytes_{"tierfs_moved_bytes_total",
                              "Bytes copied by completed moves.",
                              {"direction", "reason", "rule"}};
  LabeledCounter move_failures_{
      "tierfs_move_failures_total",
      "Moves that failed (a tier unusable, a bad checksum), not counting busy files retried later.",
      {"direction", "reason", "rule"}};
  LabeledCounter thinned_files_{
      "tierfs_policy_thinned_files_total", "Files removed by thinning, by policy rule.", {"rule"}};
  LabeledCounter thinned_bytes_{
      "tierfs_policy_thinned_bytes_total", "Bytes removed by thinning, by policy rule.", {"rule"}};
  LabeledCounter pins_{
      "tierfs_policy_pins_total", "Pins set or changed by the policy, by rule.", {"rule"}};
  LabeledCounter refusals_{"tierfs_policy_refusals_total",
                           "Policy actions refused (counted once while they persist), by rule.",
                           {"rule"}};
};

}  // namespace tierfs

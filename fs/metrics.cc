#include "fs/metrics.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "meta/inode.h"

namespace tierfs {

namespace {

// A label value as the exposition format quotes it.
void AppendEscaped(std::string* out, std::string_view v) {
  for (char ch : v) {
    if (ch == '\\') {
      *out += "\\\\";
    } else if (ch == '"') {
      *out += "\\\"";
    } else if (ch == '\n') {
      *out += "\\n";
    } else {
      *out += ch;
    }
  }
}

std::string FormatDouble(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  // The shortest text that reads back as `v` ("0.00025", not
  // "0.00025000000000000001").
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {
    snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (strtod(buf, nullptr) == v) break;
  }
  return buf;
}

const char* kOpenModes[] = {"page_cache", "direct", "passthrough"};

// "ssd_to_hdd" / "hdd_to_ssd".
const char* Direction(bool to_hdd) {
  return to_hdd ? "ssd_to_hdd" : "hdd_to_ssd";
}

// The reason label of a move's `why`, and its rule label ("" unless a
// policy rule asked).
std::pair<std::string, std::string> ReasonOf(const std::string& why) {
  for (const char* r : {"manual", "evict", "promote", "spill"})
    if (why == r) return {why, ""};
  return {"policy", why};
}

}  // namespace

void Exposition::Family(std::string_view name, std::string_view help, std::string_view type) {
  text_ += "# HELP ";
  text_ += name;
  text_ += ' ';
  // HELP text escapes backslashes and newlines only.
  for (char ch : help) text_ += ch == '\n' ? std::string("\\n") : std::string(1, ch);
  text_ += "\n# TYPE ";
  text_ += name;
  text_ += ' ';
  text_ += type;
  text_ += '\n';
}

void Exposition::Head(std::string_view name, const MetricLabels& labels) {
  text_ += name;
  if (!labels.empty()) {
    text_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i) text_ += ',';
      text_ += labels[i].first;
      text_ += "=\"";
      AppendEscaped(&text_, labels[i].second);
      text_ += '"';
    }
    text_ += '}';
  }
  text_ += ' ';
}

void Exposition::Sample(std::string_view name, const MetricLabels& labels, double value) {
  Head(name, labels);
  text_ += FormatDouble(value);
  text_ += '\n';
}

void Exposition::Sample(std::string_view name, const MetricLabels& labels, uint64_t value) {
  Head(name, labels);
  text_ += std::to_string(value);
  text_ += '\n';
}

namespace {

// The bounds in nanoseconds, so Observe compares integers.
constexpr auto kBoundsNs = [] {
  std::array<int64_t, Histogram::kBounds.size()> ns{};
  for (size_t i = 0; i < ns.size(); ++i) ns[i] = int64_t(Histogram::kBounds[i] * 1e9 + 0.5);
  return ns;
}();

}  // namespace

void Histogram::Observe(int64_t ns) {
  size_t i = 0;
  while (i < kBoundsNs.size() && ns > kBoundsNs[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(uint64_t(ns < 0 ? 0 : ns), std::memory_order_relaxed);
}

uint64_t Histogram::count() const {
  uint64_t n = 0;
  for (const auto& b : buckets_) n += b.load(std::memory_order_relaxed);
  return n;
}

void Histogram::Render(Exposition& out, std::string_view name, const MetricLabels& labels) const {
  // Read the buckets once; _count is their total so the samples agree even
  // while requests are counted meanwhile.
  uint64_t cumulative = 0;
  MetricLabels with_le = labels;
  with_le.emplace_back("le", "");
  const std::string bucket = std::string(name) + "_bucket";
  for (size_t i = 0; i <= kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    with_le.back().second = i < kBounds.size() ? FormatDouble(kBounds[i]) : "+Inf";
    out.Sample(bucket, with_le, cumulative);
  }
  out.Sample(std::string(name) + "_sum", labels,
             double(sum_ns_.load(std::memory_order_relaxed)) / 1e9);
  out.Sample(std::string(name) + "_count", labels, cumulative);
}

void LabeledCounter::Add(const std::vector<std::string>& values, uint64_t n) {
  MutexLock lock(&mu_);
  values_[values] += n;
}

uint64_t LabeledCounter::Get(const std::vector<std::string>& values) const {
  MutexLock lock(&mu_);
  auto it = values_.find(values);
  return it == values_.end() ? 0 : it->second;
}

void LabeledCounter::Render(Exposition& out) const {
  out.Family(name_, help_, "counter");
  MutexLock lock(&mu_);
  for (const auto& [values, n] : values_) {
    MetricLabels labels;
    for (size_t i = 0; i < label_names_.size() && i < values.size(); ++i)
      labels.emplace_back(label_names_[i], values[i]);
    out.Sample(name_, labels, n);
  }
}

void Metrics::CountMove(bool to_hdd, const std::string& why, uint64_t bytes, int err) {
  if (err == EBUSY || err == ECANCELED) return;
  const auto [reason, rule] = ReasonOf(why);
  const std::vector<std::string> labels = {Direction(to_hdd), reason, rule};
  if (err != 0) {
    move_failures_.Add(labels);
    return;
  }
  moves_.Add(labels);
  moved_bytes_.Add(labels, bytes);
  MutexLock lock(&recent_mu_);
  recent_moves_.emplace_back(NowNs(), bytes);
  if (recent_moves_.size() > kRecentMoves) recent_moves_.pop_front();
}

uint64_t Metrics::MovedBytesWithin(int64_t window_ns) const {
  const int64_t since = NowNs() - window_ns;
  MutexLock lock(&recent_mu_);
  uint64_t bytes = 0;
  for (auto it = recent_moves_.rbegin(); it != recent_moves_.rend() && it->first >= since; ++it)
    bytes += it->second;
  return bytes;
}

void Metrics::CountThin(const std::string& rule, uint64_t files, uint64_t bytes) {
  thinned_files_.Add({rule}, files);
  thinned_bytes_.Add({rule}, bytes);
}

std::string Metrics::Render(const Exposition& gauges) const {
  Exposition out = gauges;
  out.Family("tierfs_fuse_requests_total", "FUSE requests served, by operation.", "counter");
  for (size_t i = 0; i < kOpCount; ++i)
    out.Sample("tierfs_fuse_requests_total", {{"op", std::string(kOpNames[i])}},
               ops_[i].latency.count());
  out.Family("tierfs_fuse_request_duration_seconds",
             "Time from a FUSE request's arrival in tierfs to its reply, by operation.",
             "histogram");
  for (size_t i = 0; i < kOpCount; ++i)
    ops_[i].latency.Render(out, "tierfs_fuse_request_duration_seconds",
                           {{"op", std::string(kOpNames[i])}});
  out.Family("tierfs_fuse_request_errors_total",
             "FUSE requests answered with an error, by operation and errno name.", "counter");
  for (size_t i = 0; i < kOpCount; ++i) {
    for (int e = 1; e <= kMaxCountedErrno; ++e) {
      const uint64_t n = ops_[i].errors[size_t(e)].load(std::memory_order_relaxed);
      if (n == 0) continue;
      const char* name = e < kMaxCountedErrno ? strerrorname_np(e) : nullptr;
      out.Sample("tierfs_fuse_request_errors_total",
                 {{"op", std::string(kOpNames[i])},
                  {"errno", name ? name : (e < kMaxCountedErrno ? std::to_string(e) : "other")}},
                 n);
    }
  }
  out.Family("tierfs_opens_total",
             "Opens and creates of regular files, by access (read, write) and the I/O mode they "
             "were admitted in (page_cache, direct, passthrough).",
             "counter");
  for (int w = 0; w < 2; ++w)
    for (size_t m = 0; m < 3; ++m)
      out.Sample("tierfs_opens_total", {{"access", w ? "write" : "read"}, {"mode", kOpenModes[m]}},
                 opens_[size_t(w)][m].load(std::memory_order_relaxed));
  for (const LabeledCounter* c : {&moves_, &moved_bytes_, &move_failures_, &thinned_files_,
                                  &thinned_bytes_, &pins_, &refusals_})
    c->Render(out);
  out.Family("tierfs_policy_reloads_total", "Policy reloads that took effect.", "counter");
  out.Sample("tierfs_policy_reloads_total", {}, reloads_.load(std::memory_order_relaxed));
  out.Family("tierfs_policy_reload_errors_total",
             "Policy reloads refused (the running policy stayed).", "counter");
  out.Sample("tierfs_policy_reload_errors_total", {},
             reload_errors_.load(std::memory_order_relaxed));
  out.Family("tierfs_corrupt_reads_total",
             "Reads refused with EIO because a block did not match its recorded checksum.",
             "counter");
  out.Sample("tierfs_corrupt_reads_total", {}, corrupt_reads_.load(std::memory_order_relaxed));
  const std::pair<const char*, const char*> scrub[] = {
      {"tierfs_scrub_passes_total", "Scrub passes of the HDD tier that finished."},
      {"tierfs_scrub_read_bytes_total", "Bytes the scrub read from the HDD tier."},
      {"tierfs_scrub_corrupt_files_total",
       "Files the scrub found corrupt (and marked: reads fail with EIO); each counted once."},
      {"tierfs_scrub_errors_total", "Objects the scrub could not read."}};
  const std::atomic<uint64_t>* cells[] = {&scrub_passes_, &scrub_bytes_, &scrub_corrupt_,
                                          &scrub_errors_};
  for (size_t i = 0; i < std::size(scrub); ++i) {
    out.Family(scrub[i].first, scrub[i].second, "counter");
    out.Sample(scrub[i].first, {}, cells[i]->load(std::memory_order_relaxed));
  }
  out.Family("tierfs_scrub_last_pass_timestamp_seconds",
             "When the last scrub pass finished (Unix time); 0 before the first.", "gauge");
  out.Sample("tierfs_scrub_last_pass_timestamp_seconds", {},
             double(scrub_last_ns_.load(std::memory_order_relaxed)) / 1e9);
  return out.text();
}

}  // namespace tierfs
